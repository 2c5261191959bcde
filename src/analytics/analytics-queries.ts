/** The row shapes of the analytics rollups' read side (analytics_hourly and its day level). */

import { z } from 'zod';

/**
 * A time range over the hourly rollups, matched on each row's hour start:
 * `from <= bucket_start < to` (so the range has hour granularity).
 */
export type AnalyticsRange = {
  readonly from: Date;
  readonly to: Date;
  /** One user's rows, or `null` for every user's (admins; the caller authorises). */
  readonly userId: string | null;
};

const count = z.number().int().nonnegative();

/** Sums for one UTC day × provider × model. Tokens are non-overlapping buckets (input = uncached). */
export const DailyTotalsRowSchema = z.object({
  day: z.string(),
  provider: z.string(),
  model: z.string(),
  input_tokens: count,
  cache_read_tokens: count,
  cache_write_tokens: count,
  output_tokens: count,
  /** Part of output_tokens. */
  reasoning_tokens: count,
  /** All input tokens (input + cache read + cache write). */
  prompt_tokens: count,
  /** prompt_tokens + output_tokens. */
  total_tokens: count,
  cost: z.number(),
  model_calls: count,
  runs_total: count,
  runs_by_status: z.record(z.string(), z.number()),
  errors: count,
  latency_sum_ms: count,
  latency_count: count,
});
export type DailyTotalsRow = z.infer<typeof DailyTotalsRowSchema>;

export type LatencySummary = {
  readonly count: number;
  readonly mean_ms: number | null;
  /** Estimated from the histogram buckets: see {@link percentileFromBuckets}. */
  readonly p50_ms: number | null;
  readonly p95_ms: number | null;
  readonly p99_ms: number | null;
  /** Per-bucket counts; `le` is the bucket's upper bound in ms, null for the open last one. */
  readonly buckets: readonly { readonly le: number | null; readonly count: number }[];
};

/** Sums for one hour of the day (0–23, UTC) over every day of a range. */
export const HourOfDayTotalsRowSchema = z.object({
  hour: z.number().int().min(0).max(23),
  /** All tokens (input + cache read + cache write + output). */
  total_tokens: count,
  model_calls: count,
  runs_total: count,
  runs_by_status: z.record(z.string(), z.number()),
  errors: count,
  latency_sum_ms: count,
  latency_count: count,
});
export type HourOfDayTotalsRow = z.infer<typeof HourOfDayTotalsRowSchema>;

/** The summed latency histogram of one provider × model: counts aligned with LATENCY_BOUNDS_MS. */
export type LatencyHistogram = { readonly provider: string; readonly model: string; readonly counts: readonly number[] };
