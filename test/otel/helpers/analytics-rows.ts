import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { latencyBucketIndex, LATENCY_BOUNDS_MS } from '../../../src/analytics/latency-histogram.js';
import type { FinishedRun } from './emit-run.js';

export const AnalyticsRowSchema = z.object({
  bucket_start: z.string(),
  user_id: z.string(),
  provider: z.string(),
  model: z.string(),
  input_tokens: z.number(),
  cache_read_tokens: z.number(),
  cache_write_tokens: z.number(),
  output_tokens: z.number(),
  reasoning_tokens: z.number(),
  cost: z.number(),
  model_calls: z.number(),
  runs_total: z.number(),
  runs_by_status: z.record(z.string(), z.number()),
  errors: z.number(),
  latency_sum_ms: z.number(),
  latency_count: z.number(),
  latency_buckets: z.array(z.number()),
});
export type AnalyticsRow = z.infer<typeof AnalyticsRowSchema>;

const byKey = (a: AnalyticsRow, b: AnalyticsRow): number =>
  a.bucket_start.localeCompare(b.bucket_start) ||
  a.user_id.localeCompare(b.user_id) ||
  a.provider.localeCompare(b.provider) ||
  a.model.localeCompare(b.model);

/** Every analytics_hourly row, in key order (sorted here, whatever the database collation). */
export const readAnalyticsRows = async (db: CommonQueryMethods): Promise<AnalyticsRow[]> =>
  [
    ...(await db.any(sql.type(AnalyticsRowSchema)`
    SELECT bucket_start, user_id, provider, model, input_tokens, cache_read_tokens, cache_write_tokens,
      output_tokens, reasoning_tokens, cost, model_calls, runs_total, runs_by_status, errors,
      latency_sum_ms, latency_count, latency_buckets
    FROM analytics_hourly
  `)),
  ].sort(byKey);

export const insertUsers = async (db: CommonQueryMethods, ids: readonly string[]): Promise<void> => {
  for (const id of ids) {
    await db.query(sql.unsafe`
      INSERT INTO users (id, email, username, password_hash)
      VALUES (${id}, ${`${id}@example.test`}, ${id}, 'not-a-hash')
    `);
  }
};

const hourOf = (epochMs: number): string => new Date(Math.floor(epochMs / 3_600_000) * 3_600_000).toISOString();

type Accumulator = AnalyticsRow & { costUnits: number };

/**
 * The rows the rollup must hold for `runs`, computed independently from what the runs
 * emitted: every chat span counts in the hour it ended under its own provider/model,
 * every run in the hour its root ended under the run's provider/model.
 */
export const expectedAnalyticsRows = (runs: readonly FinishedRun[]): AnalyticsRow[] => {
  const rows = new Map<string, Accumulator>();
  const row = (at: number, userId: string, provider: string, model: string): Accumulator => {
    const key = JSON.stringify([hourOf(at), userId, provider, model]);
    let current = rows.get(key);
    if (current === undefined) {
      current = {
        bucket_start: hourOf(at),
        user_id: userId,
        provider,
        model,
        input_tokens: 0,
        cache_read_tokens: 0,
        cache_write_tokens: 0,
        output_tokens: 0,
        reasoning_tokens: 0,
        cost: 0,
        costUnits: 0,
        model_calls: 0,
        runs_total: 0,
        runs_by_status: {},
        errors: 0,
        latency_sum_ms: 0,
        latency_count: 0,
        latency_buckets: LATENCY_BOUNDS_MS.map(() => 0),
      };
      rows.set(key, current);
    }
    return current;
  };
  for (const run of runs) {
    for (const call of run.chatCalls) {
      const target = row(call.endAt, run.userId, call.provider, call.requestModel);
      if (call.usage !== null && call.errorType === undefined) {
        target.input_tokens += call.usage.inputUncached;
        target.cache_read_tokens += call.usage.cacheRead;
        target.cache_write_tokens += call.usage.cacheWrite;
        target.output_tokens += call.usage.output;
        target.reasoning_tokens += call.usage.reasoning;
      }
      if (call.costUsd !== null) target.costUnits += Math.round(call.costUsd * 1e10);
      target.model_calls += 1;
      target.errors += call.errorType === undefined ? 0 : 1;
      target.latency_sum_ms += call.latencyMs;
      target.latency_count += 1;
      const index = latencyBucketIndex(call.latencyMs);
      target.latency_buckets[index] = (target.latency_buckets[index] ?? 0) + 1;
    }
    const target = row(run.endAt, run.userId, run.provider, run.model);
    target.runs_total += 1;
    target.runs_by_status[run.status] = (target.runs_by_status[run.status] ?? 0) + 1;
    target.errors += run.status === 'failed' ? 1 : 0;
  }
  return [...rows.values()].map(({ costUnits, ...rest }) => ({ ...rest, cost: costUnits / 1e10 })).sort(byKey);
};
