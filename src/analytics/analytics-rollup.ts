import { costToUnits, unitsToDecimal, type Usage } from '../../machines/usage.js';
import { emptyLatencyBuckets, latencyBucketIndex } from './latency-histogram.js';

/**
 * One contribution to the hourly rollups, from one model call or run of a run record
 * (run-record-rollups.ts). All counts are additive; deltas with the same (hour, user,
 * provider, model) merge before they are written.
 */
export type AnalyticsDelta = {
  /** When it happened (epoch ms): the span's end. Bucketed to the UTC hour. */
  readonly at: number;
  readonly userId: string;
  readonly provider: string;
  readonly model: string;
  /** Token usage in non-overlapping buckets (input = uncached input). */
  readonly tokens?: Usage;
  /** USD; only for calls whose price is known. */
  readonly costUsd?: number;
  readonly modelCalls?: number;
  readonly errors?: number;
  /** One model call's latency, added to the sum, the count and the histogram. */
  readonly latencyMs?: number;
  /** A finished run with this terminal status (runs_total + runs_by_status). */
  readonly runStatus?: string;
};

/** The in-memory sum of deltas for one analytics_hourly row. */
export type Rollup = {
  readonly bucketStart: number;
  readonly userId: string;
  readonly provider: string;
  readonly model: string;
  inputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  outputTokens: number;
  reasoningTokens: number;
  /** Cost in units of 1e-10 USD, the scale of numeric(20, 10): sums stay exact. */
  costUnits: bigint;
  modelCalls: number;
  runsTotal: number;
  runsByStatus: Record<string, number>;
  errors: number;
  latencySumMs: number;
  latencyCount: number;
  latencyBuckets: number[];
};

const HOUR_MS = 3_600_000;
export const hourBucket = (epochMs: number): number => Math.floor(epochMs / HOUR_MS) * HOUR_MS;

export const rollupKey = (bucketStart: number, userId: string, provider: string, model: string): string =>
  JSON.stringify([bucketStart, userId, provider, model]);

export const emptyRollup = (bucketStart: number, userId: string, provider: string, model: string): Rollup => ({
  bucketStart,
  userId,
  provider,
  model,
  inputTokens: 0,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
  outputTokens: 0,
  reasoningTokens: 0,
  costUnits: 0n,
  modelCalls: 0,
  runsTotal: 0,
  runsByStatus: {},
  errors: 0,
  latencySumMs: 0,
  latencyCount: 0,
  latencyBuckets: emptyLatencyBuckets(),
});

/** Adds a delta into its rollup. */
export const addDelta = (rollup: Rollup, delta: AnalyticsDelta): void => {
  if (delta.tokens !== undefined) {
    rollup.inputTokens += delta.tokens.inputUncached;
    rollup.cacheReadTokens += delta.tokens.cacheRead;
    rollup.cacheWriteTokens += delta.tokens.cacheWrite;
    rollup.outputTokens += delta.tokens.output;
    rollup.reasoningTokens += delta.tokens.reasoning;
  }
  if (delta.costUsd !== undefined) {
    rollup.costUnits += costToUnits(delta.costUsd);
  }
  rollup.modelCalls += delta.modelCalls ?? 0;
  rollup.errors += delta.errors ?? 0;
  if (delta.latencyMs !== undefined) {
    // Whole milliseconds: latency_sum_ms is a bigint, and the histogram must count the
    // same value the sum adds.
    const latencyMs = Math.round(delta.latencyMs);
    rollup.latencySumMs += latencyMs;
    rollup.latencyCount += 1;
    const index = latencyBucketIndex(latencyMs);
    rollup.latencyBuckets[index] = (rollup.latencyBuckets[index] ?? 0) + 1;
  }
  if (delta.runStatus !== undefined) {
    rollup.runsTotal += 1;
    rollup.runsByStatus[delta.runStatus] = (rollup.runsByStatus[delta.runStatus] ?? 0) + 1;
  }
};

/** Adds one rollup into another (a batch's per-user rows into their sums over users). */
export const mergeRollup = (into: Rollup, from: Rollup): void => {
  into.inputTokens += from.inputTokens;
  into.cacheReadTokens += from.cacheReadTokens;
  into.cacheWriteTokens += from.cacheWriteTokens;
  into.outputTokens += from.outputTokens;
  into.reasoningTokens += from.reasoningTokens;
  into.costUnits += from.costUnits;
  into.modelCalls += from.modelCalls;
  into.runsTotal += from.runsTotal;
  into.errors += from.errors;
  into.latencySumMs += from.latencySumMs;
  into.latencyCount += from.latencyCount;
  for (const [status, count] of Object.entries(from.runsByStatus)) {
    into.runsByStatus[status] = (into.runsByStatus[status] ?? 0) + count;
  }
  from.latencyBuckets.forEach((count, index) => {
    into.latencyBuckets[index] = (into.latencyBuckets[index] ?? 0) + count;
  });
};

/** The row as the upsert's jsonb_to_recordset reads it (column names, exact cost text). */
export const rollupToRecord = (rollup: Rollup): Record<string, unknown> => ({
  bucket_start: new Date(rollup.bucketStart).toISOString(),
  user_id: rollup.userId,
  provider: rollup.provider,
  model: rollup.model,
  input_tokens: rollup.inputTokens,
  cache_read_tokens: rollup.cacheReadTokens,
  cache_write_tokens: rollup.cacheWriteTokens,
  output_tokens: rollup.outputTokens,
  reasoning_tokens: rollup.reasoningTokens,
  cost: unitsToDecimal(rollup.costUnits),
  model_calls: rollup.modelCalls,
  runs_total: rollup.runsTotal,
  runs_by_status: rollup.runsByStatus,
  errors: rollup.errors,
  latency_sum_ms: rollup.latencySumMs,
  latency_count: rollup.latencyCount,
  latency_buckets: rollup.latencyBuckets,
});
