import { diag, type Context, type Counter, type Meter } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace';
import { totalTokens } from '../../machines/usage.js';
import { decodeRunEnd, stringAttribute } from '../run-span-codec.js';
import {
  ATTR_ERROR_TYPE,
  ATTR_GEN_AI_CONVERSATION_ID,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_RUN_ID,
  ATTR_TELEMETRY_PROCESSOR,
  ATTR_USER_ID,
  ATTR_WORKFLOW_NAME,
  METRIC_PROCESSOR_ERRORS,
  OPERATION_INVOKE_WORKFLOW,
} from '../semconv.js';
import { spanDurationMs, spanEndEpochMs, spanOperation } from './metrics-span-readers.js';

/** Pushed when a run's root span ends, before its record (and rollups) reach the database. */
export type RunCompletedEvent = {
  readonly type: 'run_completed';
  readonly run_id: string;
  readonly user_id: string;
  readonly conversation_id: string | null;
  readonly workflow: string;
  readonly status: string;
  readonly provider: string;
  readonly model: string;
  /** Non-overlapping buckets: input is uncached input; total = input + cache_read + cache_write + output. */
  readonly tokens: {
    readonly input: number;
    readonly cache_read: number;
    readonly cache_write: number;
    readonly output: number;
    /** The part of output spent on reasoning (not added to total). */
    readonly reasoning: number;
    readonly total: number;
  };
  /** USD over the run's calls; null when a call's price was unknown (never 0 for unknown). */
  readonly cost: number | null;
  readonly duration_ms: number;
  /** ISO-8601 time of the run's end. */
  readonly at: string;
};

/** Where the live events go (src/analytics/analytics-feed.ts: in-process publish/subscribe). */
export type RunCompletedSink = { readonly publish: (event: RunCompletedEvent) => void };

export type AnalyticsSpanProcessorOptions = {
  /** Receives a `run_completed` event per finished run, immediately. */
  readonly feed: RunCompletedSink;
  /** Counts `chatter.telemetry.processor_errors` when given. */
  readonly meter?: Meter;
};

const PROCESSOR = 'analytics';
const UNKNOWN = 'unknown';

/**
 * The live analytics feed: when a run's root span ends, publishes its `run_completed`
 * event, decoded by the run span codec like every other processor's figures. It stores
 * nothing: the hourly rollups are written with the run's record, in the database writer's
 * transaction (src/analytics/run-record-rollups.ts), so they are counted exactly once.
 */
export class AnalyticsSpanProcessor implements SpanProcessor {
  private readonly feed: RunCompletedSink;
  private readonly errors: Counter | undefined;

  constructor({ feed, meter }: AnalyticsSpanProcessorOptions) {
    this.feed = feed;
    this.errors = meter?.createCounter(METRIC_PROCESSOR_ERRORS, {
      description: 'Failures inside telemetry span processors (never raised into the application).',
      unit: '{error}',
    });
  }

  onStart(_span: Span, _parentContext: Context): void {}

  onEnd(span: ReadableSpan): void {
    try {
      if (spanOperation(span) === OPERATION_INVOKE_WORKFLOW) {
        this.publishRunCompleted(span);
      }
    } catch (error) {
      this.reportError('feed_failed', error);
    }
  }

  async forceFlush(): Promise<void> {}

  async shutdown(): Promise<void> {}

  private publishRunCompleted(span: ReadableSpan): void {
    const { attributes } = span;
    const runId = stringAttribute(attributes, ATTR_RUN_ID);
    const userId = stringAttribute(attributes, ATTR_USER_ID);
    if (runId === undefined || userId === undefined) {
      // Nobody could subscribe to a run without a user.
      return;
    }
    const run = decodeRunEnd(attributes);
    this.feed.publish({
      type: 'run_completed',
      run_id: runId,
      user_id: userId,
      conversation_id: stringAttribute(attributes, ATTR_GEN_AI_CONVERSATION_ID) ?? null,
      workflow: stringAttribute(attributes, ATTR_WORKFLOW_NAME) ?? UNKNOWN,
      status: run.status,
      provider: stringAttribute(attributes, ATTR_GEN_AI_PROVIDER_NAME) ?? UNKNOWN,
      model: stringAttribute(attributes, ATTR_GEN_AI_REQUEST_MODEL) ?? UNKNOWN,
      tokens: {
        input: run.usage.inputUncached,
        cache_read: run.usage.cacheRead,
        cache_write: run.usage.cacheWrite,
        output: run.usage.output,
        reasoning: run.usage.reasoning,
        total: totalTokens(run.usage),
      },
      cost: run.costUsd,
      duration_ms: Math.round(spanDurationMs(span)),
      at: new Date(spanEndEpochMs(span)).toISOString(),
    });
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
