import type { RunRecord } from '../../otel/processors/run-record.js';
import { addDelta, emptyRollup, hourBucket, rollupKey, type AnalyticsDelta, type Rollup } from './analytics-rollup.js';

/**
 * The hourly rollup contributions of finished runs, from the same spans' record the
 * database writer stores: per model call its tokens, cost, latency and error; per run
 * its terminal status (failed runs count as errors). Written in the run record's own
 * transaction, so a run reaches the rollups exactly once, through outages, spool
 * replays and crashes alike — the rollups cannot drift from the run rows.
 */
export const rollupsFromRecords = (records: readonly RunRecord[]): Rollup[] => {
  const rollups = new Map<string, Rollup>();
  const add = (delta: AnalyticsDelta) => {
    const bucket = hourBucket(delta.at);
    const key = rollupKey(bucket, delta.userId, delta.provider, delta.model);
    let rollup = rollups.get(key);
    if (rollup === undefined) {
      rollup = emptyRollup(bucket, delta.userId, delta.provider, delta.model);
      rollups.set(key, rollup);
    }
    addDelta(rollup, delta);
  };
  for (const record of records) {
    if (record.userId === '') {
      continue;
    }
    for (const call of record.modelCalls) {
      add({
        at: call.startedAt + call.latencyMs,
        userId: record.userId,
        provider: call.provider,
        model: call.requestModel,
        ...(call.usage === null ? {} : { tokens: call.usage }),
        ...(call.costUsd === null ? {} : { costUsd: call.costUsd }),
        modelCalls: 1,
        errors: call.error === null ? 0 : 1,
        latencyMs: call.latencyMs,
      });
    }
    add({
      at: record.finishedAt,
      userId: record.userId,
      provider: record.provider,
      model: record.model,
      runStatus: record.status,
      errors: record.status === 'failed' ? 1 : 0,
    });
  }
  return [...rollups.values()];
};
