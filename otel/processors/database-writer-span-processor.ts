import { diag, type Context } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanProcessor, TimedEvent } from '@opentelemetry/sdk-trace';
import {
  buildRunRecord,
  eventOf,
  isModelCallSpan,
  isRootRunSpan,
  isToolCallSpan,
  modelCallOf,
  modelCallStartOf,
  runIdOf,
  runRefOf,
  toolCallOf,
  type ModelCallRecord,
  type ModelCallStart,
  type RunRecord,
  type RunRef,
  type ToolCallRecord,
  type EventRecord,
} from './run-record.js';

/** What a live run reported, item by item, as it happened. */
export type RunProgressItem =
  | { readonly kind: 'modelCallStarted'; readonly call: ModelCallStart }
  | { readonly kind: 'modelCallEnded'; readonly call: ModelCallRecord }
  | { readonly kind: 'toolCallStarted' }
  | { readonly kind: 'toolCallEnded'; readonly call: ToolCallRecord }
  | { readonly kind: 'event'; readonly event: EventRecord };

/** Where runs' records go (the batching, spooling writer). */
export type RunRecordSink = {
  /** A finished run's whole record. */
  readonly enqueue: (record: RunRecord) => void;
  /** Something a live run reported (committed in the next group commit). */
  readonly progress: (run: RunRef, item: RunProgressItem) => void;
  readonly forceFlush: () => Promise<void>;
  readonly shutdown: () => Promise<void>;
};

export type DatabaseWriterSpanProcessorOptions = {
  readonly sink: RunRecordSink;
  /** Runs whose calls are held at once; beyond it the oldest run's are dropped. */
  readonly maxOpenRuns?: number;
  readonly onError?: (error: unknown) => void;
};

type OpenRun = { ref: RunRef; modelCalls: ModelCallRecord[]; toolCalls: ToolCallRecord[] };

/**
 * Turns the spans of a run into its database rows. While the run goes on, each model
 * call (as it starts and as it ends), tool call and lifecycle event goes to the sink as
 * progress, so what a provider reported is durable within one flush interval; when the
 * root span ends, the run's whole record goes to the sink (it names the same rows, so
 * whatever progress was already committed is not written twice). Each span is decoded
 * once. Sees unsampled (RECORD_ONLY) spans too.
 */
export class DatabaseWriterSpanProcessor implements SpanProcessor {
  private readonly sink: RunRecordSink;
  private readonly maxOpenRuns: number;
  private readonly onError: (error: unknown) => void;
  private readonly runs = new Map<string, OpenRun>();

  public constructor(options: DatabaseWriterSpanProcessorOptions) {
    this.sink = options.sink;
    this.maxOpenRuns = options.maxOpenRuns ?? 100_000;
    this.onError = options.onError ?? ((error) => diag.error('database writer span processor failed', error));
  }

  private open(runId: string): OpenRun | undefined {
    return this.runs.get(runId);
  }

  public onStart(span: Span, _parentContext: Context): void {
    try {
      const runId = runIdOf(span);
      if (runId === null) {
        return;
      }
      if (isRootRunSpan(span)) {
        if (this.runs.size >= this.maxOpenRuns) {
          const [oldest] = this.runs.keys();
          if (oldest !== undefined) {
            this.runs.delete(oldest);
            this.onError(new Error(`dropped the calls of run ${oldest}: too many open runs`));
          }
        }
        this.runs.set(runId, { ref: runRefOf(span), modelCalls: [], toolCalls: [] });
        return;
      }
      const run = this.open(runId);
      if (run === undefined) {
        return;
      }
      if (isModelCallSpan(span)) {
        this.sink.progress(run.ref, { kind: 'modelCallStarted', call: modelCallStartOf(span) });
      } else if (isToolCallSpan(span)) {
        this.sink.progress(run.ref, { kind: 'toolCallStarted' });
      }
    } catch (error) {
      this.onError(error);
    }
  }

  /** A lifecycle event added to a run's root span (see RunSpans). */
  public onSpanEvent(span: ReadableSpan, event: TimedEvent): void {
    try {
      const runId = runIdOf(span);
      const run = runId === null ? undefined : this.open(runId);
      if (run !== undefined) {
        this.sink.progress(run.ref, { kind: 'event', event: eventOf(event) });
      }
    } catch (error) {
      this.onError(error);
    }
  }

  public onEnd(span: ReadableSpan): void {
    try {
      const runId = runIdOf(span);
      if (runId === null) {
        return;
      }
      const run = this.open(runId);
      if (isRootRunSpan(span)) {
        this.runs.delete(runId);
        this.sink.enqueue(buildRunRecord(span, run ?? { modelCalls: [], toolCalls: [] }));
        return;
      }
      if (run === undefined) {
        return;
      }
      if (isModelCallSpan(span)) {
        const call = modelCallOf(span);
        run.modelCalls.push(call);
        this.sink.progress(run.ref, { kind: 'modelCallEnded', call });
      } else if (isToolCallSpan(span)) {
        const call = toolCallOf(span);
        run.toolCalls.push(call);
        this.sink.progress(run.ref, { kind: 'toolCallEnded', call });
      }
    } catch (error) {
      this.onError(error);
    }
  }

  public forceFlush(): Promise<void> {
    return this.sink.forceFlush();
  }

  public shutdown(): Promise<void> {
    return this.sink.shutdown();
  }
}
