import { AlwaysOffSampler, TracerProvider, createAlwaysRecordSampler, type SpanProcessor } from '@opentelemetry/sdk-trace';
import { sql, type DatabasePool } from 'slonik';
import { DatabaseWriterSpanProcessor, type RunRecordSink } from '../../../otel/processors/database-writer-span-processor.js';
import type { RunRecord } from '../../../otel/processors/run-record.js';
import { applyRunRecords } from '../../../src/repositories/run-records-repository.js';
import { emitRun, type EmitRunOptions, type FinishedRun, type RunStatus } from './emit-run.js';

export type RunPlan = Omit<EmitRunOptions, 'tracer'> & { readonly status?: RunStatus };

export type RecordPath = {
  readonly tracer: ReturnType<TracerProvider['getTracer']>;
  readonly provider: TracerProvider;
  /** Records built by the database writer processor and not committed yet. */
  readonly pending: () => readonly RunRecord[];
  /** Commits the pending records the way the run-record writer does (applyRunRecords), `batchSize` per transaction. */
  readonly commit: (batchSize?: number) => Promise<readonly RunRecord[]>;
  /** Emits the runs (outside any conversation unless a plan names one) and commits their records. */
  readonly seed: (plans: readonly RunPlan[], batchSize?: number) => Promise<FinishedRun[]>;
  readonly shutdown: () => Promise<void>;
};

/**
 * The service's record path without its timers: spans → DatabaseWriterSpanProcessor →
 * run records → applyRunRecords, in the caller's hands. Analytics tests seed rollups with
 * it, so their rows are written by the same code as a real run's (in the record's own
 * transaction). Unsampled spans are recorded, as in the service.
 */
export const createRecordPath = (pool: DatabasePool, processors: readonly SpanProcessor[] = []): RecordPath => {
  const records: RunRecord[] = [];
  const sink: RunRecordSink = {
    enqueue: (record) => void records.push(record),
    progress: () => {},
    forceFlush: async () => {},
    shutdown: async () => {},
  };
  const provider = new TracerProvider({
    sampler: createAlwaysRecordSampler(new AlwaysOffSampler()),
    spanProcessors: [new DatabaseWriterSpanProcessor({ sink }), ...processors],
  });
  const tracer = provider.getTracer('record-path');
  // emit-run names each priced call's price `price-<model>`; model_calls.price_id must
  // name a price row, so the ones a batch names are made (zero-priced, never matched).
  const ensurePrices = async (batch: readonly RunRecord[]): Promise<void> => {
    const ids = [...new Set(batch.flatMap((record) => record.modelCalls.flatMap((call) => (call.priceId === null ? [] : [call.priceId]))))];
    for (const id of ids) {
      await pool.query(sql.unsafe`
        INSERT INTO model_prices (id, provider, model_pattern, valid_from, input_per_mtok, cache_read_per_mtok,
          cache_write_per_mtok, output_per_mtok)
        VALUES (${id}, 'test', ${`test:${id}`}, '2000-01-01T00:00:00Z', 0, 0, 0, 0)
        ON CONFLICT DO NOTHING`);
    }
  };
  const commit = async (batchSize = 500): Promise<readonly RunRecord[]> => {
    const batch = records.splice(0);
    await ensurePrices(batch);
    for (let index = 0; index < batch.length; index += batchSize) {
      const chunk = batch.slice(index, index + batchSize);
      await pool.transaction(async (tx) => applyRunRecords(tx, chunk));
    }
    return batch;
  };
  return {
    tracer,
    provider,
    pending: () => records,
    commit,
    seed: async (plans, batchSize) => {
      const runs = plans.map((plan) => emitRun({ conversationId: null, httpParent: false, ...plan, tracer }));
      await commit(batchSize);
      return runs;
    },
    shutdown: () => provider.shutdown(),
  };
};
