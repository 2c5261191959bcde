import { diag, type Context, type Counter, type Meter } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace';
import type { AnalyticsFeed } from '../../src/analytics/analytics-feed.js';
import type { AnalyticsStore } from '../../src/analytics/analytics-store.js';
import {
  ATTR_ERROR_TYPE,
  ATTR_GEN_AI_CONVERSATION_ID,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_USAGE_COST,
  ATTR_RUN_ID,
  ATTR_RUN_STATUS,
  ATTR_TELEMETRY_PROCESSOR,
  ATTR_USER_ID,
  ATTR_WORKFLOW_NAME,
  METRIC_PROCESSOR_ERRORS,
  OPERATION_CHAT,
  OPERATION_INVOKE_WORKFLOW,
} from '../semconv.js';
import {
  isErrorSpan,
  numberAttribute,
  readSpanUsage,
  spanDurationMs,
  spanEndEpochMs,
  spanOperation,
  stringAttribute,
} from './metrics-span-readers.js';

export type AnalyticsSpanProcessorOptions = {
  /** Receives the rollup deltas (merges and writes them in batches). */
  readonly store: Pick<AnalyticsStore, 'add' | 'flush' | 'shutdown'>;
  /** Receives a `run_completed` event per finished run, immediately. */
  readonly feed?: Pick<AnalyticsFeed, 'publish'>;
  /** Counts `chatter.telemetry.processor_errors` when given. */
  readonly meter?: Meter;
  /** Runs remembered between their root's start and end (default 10 000). */
  readonly maxTrackedRuns?: number;
  /** Finished runs remembered for child spans that end after their root (default 1 000). */
  readonly maxRecentRuns?: number;
};

type RunInfo = { readonly userId: string };

const PROCESSOR = 'analytics';
const UNKNOWN = 'unknown';
/** The terminal status counted as an error in the rollups (besides failed model calls). */
const FAILED_STATUS = 'failed';

/**
 * Turns span ends into hourly analytics deltas and live `run_completed` events.
 *
 * Only the root span carries the user id, so the processor remembers it per run id
 * from the root's onStart and attributes child spans with it; the entry moves to a
 * small "recently finished" map when the root ends, both maps bounded. onEnd does no
 * I/O: the store merges in memory and writes in batches on its own schedule.
 */
export class AnalyticsSpanProcessor implements SpanProcessor {
  private readonly store: AnalyticsSpanProcessorOptions['store'];
  private readonly feed: AnalyticsSpanProcessorOptions['feed'];
  private readonly errors: Counter | undefined;
  private readonly maxTrackedRuns: number;
  private readonly maxRecentRuns: number;
  private readonly runs = new Map<string, RunInfo>();
  private readonly recentRuns = new Map<string, RunInfo>();

  constructor({ store, feed, meter, maxTrackedRuns = 10_000, maxRecentRuns = 1_000 }: AnalyticsSpanProcessorOptions) {
    this.store = store;
    this.feed = feed;
    this.maxTrackedRuns = maxTrackedRuns;
    this.maxRecentRuns = maxRecentRuns;
    this.errors = meter?.createCounter(METRIC_PROCESSOR_ERRORS, {
      description: 'Failures inside telemetry span processors (never raised into the application).',
      unit: '{error}',
    });
  }

  /** Runs currently remembered (for tests and diagnostics). */
  get trackedRuns(): number {
    return this.runs.size;
  }

  onStart(span: Span, _parentContext: Context): void {
    try {
      if (spanOperation(span) !== OPERATION_INVOKE_WORKFLOW) return;
      const runId = stringAttribute(span.attributes, ATTR_RUN_ID);
      const userId = stringAttribute(span.attributes, ATTR_USER_ID);
      if (runId === undefined || userId === undefined) return;
      if (this.runs.size >= this.maxTrackedRuns) {
        // Oldest first: a run that never ended must not block new ones forever.
        const oldest = this.runs.keys().next();
        if (!oldest.done) this.runs.delete(oldest.value);
        this.reportError('tracked_runs_overflow', new Error(`more than ${this.maxTrackedRuns} open runs`));
      }
      this.runs.set(runId, { userId });
    } catch (error) {
      this.reportError('on_start', error);
    }
  }

  onEnd(span: ReadableSpan): void {
    try {
      const operation = spanOperation(span);
      if (operation === OPERATION_CHAT) {
        this.onChatEnd(span);
      } else if (operation === OPERATION_INVOKE_WORKFLOW) {
        this.onRunEnd(span);
      }
    } catch (error) {
      this.reportError('on_end', error);
    }
  }

  async forceFlush(): Promise<void> {
    await this.store.flush();
  }

  async shutdown(): Promise<void> {
    this.runs.clear();
    this.recentRuns.clear();
    await this.store.shutdown();
  }

  private onChatEnd(span: ReadableSpan): void {
    const { attributes } = span;
    const runId = stringAttribute(attributes, ATTR_RUN_ID);
    const run = runId === undefined ? undefined : (this.runs.get(runId) ?? this.recentRuns.get(runId));
    const userId = run?.userId ?? stringAttribute(attributes, ATTR_USER_ID);
    if (userId === undefined) {
      this.reportError('run_unknown', new Error(`no user known for run ${runId ?? '(no run id)'}`));
      return;
    }
    const usage = readSpanUsage(attributes);
    const cost = numberAttribute(attributes, ATTR_GEN_AI_USAGE_COST);
    this.store.add({
      at: spanEndEpochMs(span),
      userId,
      provider: stringAttribute(attributes, ATTR_GEN_AI_PROVIDER_NAME) ?? UNKNOWN,
      model: stringAttribute(attributes, ATTR_GEN_AI_REQUEST_MODEL) ?? UNKNOWN,
      ...(usage === null ? {} : { tokens: usage }),
      ...(cost === undefined ? {} : { costUsd: cost }),
      modelCalls: 1,
      errors: isErrorSpan(span) ? 1 : 0,
      latencyMs: spanDurationMs(span),
    });
  }

  private onRunEnd(span: ReadableSpan): void {
    const { attributes } = span;
    const runId = stringAttribute(attributes, ATTR_RUN_ID);
    const userId = stringAttribute(attributes, ATTR_USER_ID) ?? (runId === undefined ? undefined : this.runs.get(runId)?.userId);
    if (runId !== undefined) {
      this.forgetRun(runId, userId);
    }
    if (userId === undefined || runId === undefined) {
      // Runs without a user (or id) have no analytics row to go to.
      return;
    }
    const endMs = spanEndEpochMs(span);
    const status = stringAttribute(attributes, ATTR_RUN_STATUS) ?? UNKNOWN;
    const provider = stringAttribute(attributes, ATTR_GEN_AI_PROVIDER_NAME) ?? UNKNOWN;
    const model = stringAttribute(attributes, ATTR_GEN_AI_REQUEST_MODEL) ?? UNKNOWN;
    // Published first: the feed is the live path and must not wait for anything; its
    // failure must not cost the run its rollup either.
    try {
      this.publishRunCompleted(span, { runId, userId, status, provider, model, endMs });
    } catch (error) {
      this.reportError('feed_failed', error);
    }
    this.store.add({
      at: endMs,
      userId,
      provider,
      model,
      runStatus: status,
      errors: status === FAILED_STATUS ? 1 : 0,
    });
  }

  private publishRunCompleted(
    span: ReadableSpan,
    run: { runId: string; userId: string; status: string; provider: string; model: string; endMs: number },
  ): void {
    if (this.feed === undefined) return;
    const { attributes } = span;
    const usage = readSpanUsage(attributes);
    const input = usage?.inputUncached ?? 0;
    const cacheRead = usage?.cacheRead ?? 0;
    const cacheWrite = usage?.cacheWrite ?? 0;
    const output = usage?.output ?? 0;
    this.feed.publish({
      type: 'run_completed',
      run_id: run.runId,
      user_id: run.userId,
      conversation_id: stringAttribute(attributes, ATTR_GEN_AI_CONVERSATION_ID) ?? null,
      workflow: stringAttribute(attributes, ATTR_WORKFLOW_NAME) ?? UNKNOWN,
      status: run.status,
      provider: run.provider,
      model: run.model,
      tokens: {
        input,
        cache_read: cacheRead,
        cache_write: cacheWrite,
        output,
        reasoning: usage?.reasoning ?? 0,
        total: input + cacheRead + cacheWrite + output,
      },
      cost: numberAttribute(attributes, ATTR_GEN_AI_USAGE_COST) ?? null,
      duration_ms: Math.round(spanDurationMs(span)),
      at: new Date(run.endMs).toISOString(),
    });
  }

  private forgetRun(runId: string, userId: string | undefined): void {
    this.runs.delete(runId);
    if (userId === undefined) return;
    this.recentRuns.delete(runId);
    this.recentRuns.set(runId, { userId });
    if (this.recentRuns.size > this.maxRecentRuns) {
      const oldest = this.recentRuns.keys().next();
      if (!oldest.done) this.recentRuns.delete(oldest.value);
    }
  }

  private reportError(reason: string, error: unknown): void {
    try {
      diag.error(`AnalyticsSpanProcessor: ${reason}`, error);
      this.errors?.add(1, { [ATTR_TELEMETRY_PROCESSOR]: PROCESSOR, [ATTR_ERROR_TYPE]: reason });
    } catch {
      // Reporting must not throw into the application either.
    }
  }
}
