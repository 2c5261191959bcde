import { emptyLatencyBuckets, latencyBucketIndex } from './latency-histogram.js';

/**
 * One contribution to the hourly rollups, from one span. All counts are additive; the
 * store merges deltas with the same (hour, user, provider, model) before writing.
 */
export type AnalyticsDelta = {
  /** When it happened (epoch ms): the span's end. Bucketed to the UTC hour. */
  readonly at: number;
  readonly userId: string;
  readonly provider: string;
  readonly model: string;
  /** Token usage in non-overlapping buckets (input = uncached input). */
  readonly tokens?: {
    readonly inputUncached: number;
    readonly cacheRead: number;
    readonly cacheWrite: number;
    readonly output: number;
    readonly reasoning: number;
  };
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
const COST_SCALE = 10;
const COST_UNITS_PER_USD = 10 ** COST_SCALE;

export const hourBucket = (epochMs: number): number => Math.floor(epochMs / HOUR_MS) * HOUR_MS;

export const rollupKey = (bucketStart: number, userId: string, provider: string, model: string): string =>
  JSON.stringify([bucketStart, userId, provider, model]);

/** USD → 1e-10 USD units, rounded like each model call's cost (docs/run-contract.md). */
export const costToUnits = (usd: number): bigint => BigInt(Math.round(usd * COST_UNITS_PER_USD));

/** 1e-10 USD units → an exact decimal string for a numeric(20, 10) column. */
export const unitsToDecimal = (units: bigint): string => {
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(COST_SCALE + 1, '0');
  const integer = digits.slice(0, -COST_SCALE);
  const fraction = digits.slice(-COST_SCALE);
  return `${negative ? '-' : ''}${integer}.${fraction}`;
};

/**
 * An exact decimal (a numeric(20, 10) column read as text, e.g. `0.0000123000`) → 1e-10
 * USD units, the inverse of {@link unitsToDecimal}.
 * @throws RangeError when the text is not a decimal with at most 10 fraction digits.
 */
export const decimalToUnits = (text: string): bigint => {
  const match = /^(-?)(\d+)(?:\.(\d{0,10}))?$/.exec(text.trim());
  if (match === null) {
    throw new RangeError(`not an exact decimal of scale ${COST_SCALE}: ${text}`);
  }
  const [, sign = '', integer = '0', fraction = ''] = match;
  const units = BigInt(integer) * BigInt(COST_UNITS_PER_USD) + BigInt(fraction.padEnd(COST_SCALE, '0'));
  return sign === '-' ? -units : units;
};

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

const isCount = (value: number): boolean => Number.isSafeInteger(value) && value >= 0;

/** Why a delta cannot be added, or undefined when it is well-formed. */
export const invalidDeltaReason = (delta: AnalyticsDelta): string | undefined => {
  if (!Number.isFinite(delta.at)) return 'at is not a time';
  if (delta.userId === '' || delta.provider === '' || delta.model === '') return 'empty key';
  const { tokens } = delta;
  if (tokens !== undefined && !Object.values(tokens).every(isCount)) return 'token count is not a count';
  if (delta.costUsd !== undefined && !(Number.isFinite(delta.costUsd) && delta.costUsd >= 0)) return 'bad cost';
  if (delta.modelCalls !== undefined && !isCount(delta.modelCalls)) return 'bad model call count';
  if (delta.errors !== undefined && !isCount(delta.errors)) return 'bad error count';
  if (delta.latencyMs !== undefined && !(Number.isFinite(delta.latencyMs) && delta.latencyMs >= 0)) return 'bad latency';
  return undefined;
};

/** Adds a (valid) delta into its rollup. */
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

/** Adds one rollup into another of the same key (putting back an unapplied batch). */
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
