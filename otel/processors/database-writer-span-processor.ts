import { diag, type Context } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace';
import { buildRunRecord, isRootRunSpan, runIdOf, type RunRecord } from './run-record.js';

/** Where finished runs' records go (the batching, spooling writer). */
export type RunRecordSink = {
  readonly enqueue: (record: RunRecord) => void;
  readonly forceFlush: () => Promise<void>;
  readonly shutdown: () => Promise<void>;
};

export type DatabaseWriterSpanProcessorOptions = {
  readonly sink: RunRecordSink;
  /** Runs whose child spans are held at once; beyond it the oldest run's are dropped. */
  readonly maxOpenRuns?: number;
  readonly onError?: (error: unknown) => void;
};

/**
 * Turns the spans of a run into its database record: child spans (model calls, tool
 * calls) are held by run id until the run's root span ends, then the whole record goes
 * to the sink in one piece. Sees unsampled (RECORD_ONLY) spans too.
 */
export class DatabaseWriterSpanProcessor implements SpanProcessor {
  private readonly sink: RunRecordSink;
  private readonly maxOpenRuns: number;
  private readonly onError: (error: unknown) => void;
  private readonly children = new Map<string, ReadableSpan[]>();

  public constructor(options: DatabaseWriterSpanProcessorOptions) {
    this.sink = options.sink;
    this.maxOpenRuns = options.maxOpenRuns ?? 100_000;
    this.onError = options.onError ?? ((error) => diag.error('database writer span processor failed', error));
  }

  public onStart(_span: Span, _parentContext: Context): void {}

  public onEnd(span: ReadableSpan): void {
    try {
      const runId = runIdOf(span);
      if (runId === null) {
        return;
      }
      if (!isRootRunSpan(span)) {
        let held = this.children.get(runId);
        if (held === undefined) {
          if (this.children.size >= this.maxOpenRuns) {
            const [oldest] = this.children.keys();
            if (oldest !== undefined) {
              this.children.delete(oldest);
              this.onError(new Error(`dropped child spans of run ${oldest}: too many open runs`));
            }
          }
          held = [];
          this.children.set(runId, held);
        }
        held.push(span);
        return;
      }
      const children = this.children.get(runId) ?? [];
      this.children.delete(runId);
      this.sink.enqueue(buildRunRecord(span, children));
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
