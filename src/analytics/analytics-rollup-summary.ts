import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import {
  bucketSums,
  createAnalyticsBreakdownQueries,
  createAnalyticsQueries,
  extraBuckets,
  otherStatuses,
  rangeCondition,
  sourceOf,
  statusSums,
  type AnalyticsRange,
  type DailyTotalsRow,
  type HourOfDayTotalsRow,
  type LatencyHistogram,
} from './analytics-queries.js';

/** What the reports read from the rollups: the three groupings of the same rows. */
export type RollupSummary = {
  readonly daily: readonly DailyTotalsRow[];
  readonly hours: readonly HourOfDayTotalsRow[];
  readonly histograms: readonly LatencyHistogram[];
};

const count = z.number().int().nonnegative();
const SummaryRow = z.object({
  /** 0: day × provider × model; 1: hour of day; 2: provider × model. */
  grouping_set: z.number().int(),
  day: z.string().nullable(),
  hour: z.number().int().nullable(),
  provider: z.string().nullable(),
  model: z.string().nullable(),
  input_tokens: count,
  cache_read_tokens: count,
  cache_write_tokens: count,
  output_tokens: count,
  reasoning_tokens: count,
  prompt_tokens: count,
  total_tokens: count,
  cost: z.number(),
  model_calls: count,
  runs_total: count,
  runs_by_status: z.record(z.string(), z.number()),
  errors: count,
  latency_sum_ms: count,
  latency_count: count,
  counts: z.array(count),
  other_statuses: z.boolean(),
  extra_buckets: z.boolean(),
});

/**
 * dailyTotals, hourOfDayTotals and latencyHistograms of a range in one read of the
 * rollup rows (GROUPING SETS): a report read them three times, and for one user the
 * rows lie scattered over the table, so the reads, not the sums, were the cost. Rows
 * that only the generic queries can read (unknown statuses, extra histogram buckets)
 * make it fall back to them.
 */
export const readRollupSummary = async (db: CommonQueryMethods, range: AnalyticsRange): Promise<RollupSummary> => {
  const rows = await db.any(sql.type(SummaryRow)`
    SELECT
      CASE WHEN grouping(r.day, r.provider, r.model) = 0 THEN 0 WHEN grouping(r.hour) = 0 THEN 1 ELSE 2 END AS grouping_set,
      to_char(r.day, 'YYYY-MM-DD') AS day, r.hour, r.provider, r.model,
      sum(input_tokens)::int8 AS input_tokens,
      sum(cache_read_tokens)::int8 AS cache_read_tokens,
      sum(cache_write_tokens)::int8 AS cache_write_tokens,
      sum(output_tokens)::int8 AS output_tokens,
      sum(reasoning_tokens)::int8 AS reasoning_tokens,
      sum(input_tokens + cache_read_tokens + cache_write_tokens)::int8 AS prompt_tokens,
      sum(input_tokens + cache_read_tokens + cache_write_tokens + output_tokens)::int8 AS total_tokens,
      sum(cost) AS cost,
      sum(model_calls)::int8 AS model_calls,
      sum(runs_total)::int8 AS runs_total,
      ${statusSums} AS runs_by_status,
      sum(errors)::int8 AS errors,
      sum(latency_sum_ms)::int8 AS latency_sum_ms,
      sum(latency_count)::int8 AS latency_count,
      ${bucketSums} AS counts,
      ${otherStatuses} AS other_statuses,
      ${extraBuckets} AS extra_buckets
    FROM (
      SELECT (bucket_start AT TIME ZONE 'UTC')::date AS day, extract(hour FROM bucket_start AT TIME ZONE 'UTC')::int4 AS hour, *
      FROM ${sourceOf(range)}
      WHERE ${rangeCondition(range)}
    ) AS r
    GROUP BY GROUPING SETS ((r.day, r.provider, r.model), (r.hour), (r.provider, r.model))
    ORDER BY 1, r.day, r.provider, r.model, r.hour
  `);
  if (rows.some((row) => row.other_statuses || row.extra_buckets)) {
    const rollups = createAnalyticsQueries(db);
    const breakdowns = createAnalyticsBreakdownQueries(db);
    return {
      daily: await rollups.dailyTotals(range),
      hours: await breakdowns.hourOfDayTotals(range),
      histograms: await breakdowns.latencyHistograms(range),
    };
  }
  const daily: DailyTotalsRow[] = [];
  const hours: HourOfDayTotalsRow[] = [];
  const histograms: LatencyHistogram[] = [];
  for (const row of rows) {
    const { grouping_set: set, day, hour, provider, model, counts, other_statuses: _o, extra_buckets: _e, ...sums } = row;
    if (set === 0 && day !== null && provider !== null && model !== null) {
      daily.push({ day, provider, model, ...sums });
    } else if (set === 1 && hour !== null) {
      hours.push({
        hour,
        total_tokens: sums.total_tokens,
        model_calls: sums.model_calls,
        runs_total: sums.runs_total,
        runs_by_status: sums.runs_by_status,
        errors: sums.errors,
        latency_sum_ms: sums.latency_sum_ms,
        latency_count: sums.latency_count,
      });
    } else if (set === 2 && provider !== null && model !== null) {
      histograms.push({ provider, model, counts });
    }
  }
  return { daily, hours, histograms };
};
