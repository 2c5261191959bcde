import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import {
  DailyTotalsRowSchema,
  HourOfDayTotalsRowSchema,
  type AnalyticsRange,
  type DailyTotalsRow,
  type HourOfDayTotalsRow,
  type LatencyHistogram,
  type LatencySummary,
} from '../../src/analytics/analytics-queries.js';
import { LATENCY_BOUNDS_MS, percentileFromBuckets } from '../../src/analytics/latency-histogram.js';

const count = z.number().int().nonnegative();

/**
 * Reference reads straight over the hourly rollups (analytics_hourly, or
 * analytics_hourly_totals for all users), hour row by hour row: what the service's
 * reports (src/analytics/analytics-rollup-summary.ts, day rows for whole days) must equal.
 */

const LatencyBucketRow = z.object({ index: z.number().int(), count });
const LatencySumsRow = z.object({ sum_ms: count, count });

const rangeCondition = (range: AnalyticsRange, filter: { provider?: string; model?: string } = {}) =>
  sql.join(
    [
      sql.fragment`bucket_start >= ${range.from.toISOString()}::timestamptz`,
      sql.fragment`bucket_start < ${range.to.toISOString()}::timestamptz`,
      ...(range.userId === null ? [] : [sql.fragment`user_id = ${range.userId}`]),
      ...(filter.provider === undefined ? [] : [sql.fragment`provider = ${filter.provider}`]),
      ...(filter.model === undefined ? [] : [sql.fragment`model = ${filter.model}`]),
    ],
    sql.fragment` AND `,
  );

/**
 * The rollup table a range reads: one user's rows in analytics_hourly, or for every
 * user the same figures already summed over users (analytics_hourly_totals, kept equal
 * to the sums of analytics_hourly in the same transactions: migration 0004).
 */
const sourceOf = (range: AnalyticsRange) => sql.identifier([range.userId === null ? 'analytics_hourly_totals' : 'analytics_hourly']);

/**
 * The run statuses a rollup row can count (workflow_runs.status). Summing their keys of
 * runs_by_status one by one is several times faster than expanding every row's jsonb;
 * a row with any other key (none is written today) makes the query fall back to the
 * generic expansion, so the figures stay exact whatever the rows hold.
 */
const RUN_STATUSES = ['queued', 'running', 'completed', 'failed', 'cancelled', 'timedOut', 'budgetExceeded', 'interrupted'] as const;

/** runs_by_status summed over the group, keys without runs left out (like jsonb_object_agg over the present keys). */
const statusSums = sql.fragment`jsonb_strip_nulls(jsonb_build_object(${sql.join(
  RUN_STATUSES.map((status) => sql.fragment`${status}::text, sum((runs_by_status ->> ${status}::text)::int8)`),
  sql.fragment`, `,
)}))`;

/** Whether a row of the group counts a status outside RUN_STATUSES. */
const otherStatuses = sql.fragment`coalesce(bool_or((runs_by_status - ${sql.array([...RUN_STATUSES], 'text')}) <> '{}'::jsonb), false)`;

/** latency_buckets summed element-wise over the group, as an int8 array aligned with LATENCY_BOUNDS_MS. */
const bucketSums = sql.fragment`ARRAY[${sql.join(
  LATENCY_BOUNDS_MS.map((_, index) => sql.fragment`coalesce(sum((latency_buckets ->> ${index}::int)::int8), 0)`),
  sql.fragment`, `,
)}]::int8[]`;

/** Whether a row of the group has more histogram buckets than LATENCY_BOUNDS_MS (never written: a migration would be due). */
const extraBuckets = sql.fragment`coalesce(bool_or(jsonb_array_length(latency_buckets) > ${LATENCY_BOUNDS_MS.length}::int), false)`;

const withoutFlag = <T extends { other_statuses: boolean }>(rows: readonly T[]): Omit<T, 'other_statuses'>[] =>
  rows.map(({ other_statuses: _, ...row }) => row);

/** dailyTotals for rows with statuses outside RUN_STATUSES: every row's runs_by_status expanded. */
const dailyTotalsExpanded = async (db: CommonQueryMethods, range: AnalyticsRange): Promise<readonly DailyTotalsRow[]> =>
  db.any(sql.type(DailyTotalsRowSchema)`
      WITH rows AS (
        SELECT to_char(bucket_start AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, *
        FROM ${sourceOf(range)}
        WHERE ${rangeCondition(range)}
      ),
      statuses AS (
        SELECT day, provider, model, jsonb_object_agg(key, total) AS runs_by_status
        FROM (
          SELECT r.day, r.provider, r.model, s.key, sum(s.value::bigint) AS total
          FROM rows AS r CROSS JOIN LATERAL jsonb_each_text(r.runs_by_status) AS s
          GROUP BY r.day, r.provider, r.model, s.key
        ) AS per_status
        GROUP BY day, provider, model
      ),
      sums AS (
        SELECT day, provider, model,
          sum(input_tokens) AS input_tokens, sum(cache_read_tokens) AS cache_read_tokens,
          sum(cache_write_tokens) AS cache_write_tokens, sum(output_tokens) AS output_tokens,
          sum(reasoning_tokens) AS reasoning_tokens, sum(cost) AS cost,
          sum(model_calls) AS model_calls, sum(runs_total) AS runs_total, sum(errors) AS errors,
          sum(latency_sum_ms) AS latency_sum_ms, sum(latency_count) AS latency_count
        FROM rows
        GROUP BY day, provider, model
      )
      SELECT s.day, s.provider, s.model,
        s.input_tokens::int8 AS input_tokens,
        s.cache_read_tokens::int8 AS cache_read_tokens,
        s.cache_write_tokens::int8 AS cache_write_tokens,
        s.output_tokens::int8 AS output_tokens,
        s.reasoning_tokens::int8 AS reasoning_tokens,
        (s.input_tokens + s.cache_read_tokens + s.cache_write_tokens)::int8 AS prompt_tokens,
        (s.input_tokens + s.cache_read_tokens + s.cache_write_tokens + s.output_tokens)::int8 AS total_tokens,
        s.cost,
        s.model_calls::int8 AS model_calls,
        s.runs_total::int8 AS runs_total,
        coalesce(st.runs_by_status, '{}'::jsonb) AS runs_by_status,
        s.errors::int8 AS errors,
        s.latency_sum_ms::int8 AS latency_sum_ms,
        s.latency_count::int8 AS latency_count
      FROM sums AS s
      LEFT JOIN statuses AS st USING (day, provider, model)
      ORDER BY s.day, s.provider, s.model
    `);

/** Read side of the analytics rollups (analytics_hourly). */
export const createAnalyticsQueries = (db: CommonQueryMethods) => ({
  /** Totals per UTC day × provider × model over the range, ordered by day, provider, model. */
  dailyTotals: async (range: AnalyticsRange): Promise<readonly DailyTotalsRow[]> => {
    const rows = await db.any(sql.type(DailyTotalsRowSchema.extend({ other_statuses: z.boolean() }))`
      SELECT to_char(bucket_start AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, provider, model,
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
        ${otherStatuses} AS other_statuses
      FROM ${sourceOf(range)}
      WHERE ${rangeCondition(range)}
      GROUP BY 1, 2, 3
      ORDER BY 1, 2, 3
    `);
    return rows.some((row) => row.other_statuses) ? dailyTotalsExpanded(db, range) : withoutFlag(rows);
  },

  /**
   * Model call latency over the range: exact count and mean, and p50/p95/p99 estimated
   * from the summed histogram buckets by linear interpolation within the bucket the
   * quantile falls in (error at most that bucket's width; a quantile in the open last
   * bucket is reported as its lower bound, 60 s).
   */
  latency: async (range: AnalyticsRange, filter: { provider?: string; model?: string } = {}): Promise<LatencySummary> => {
    const condition = rangeCondition(range, filter);
    const sums = await db.one(sql.type(LatencySumsRow)`
      SELECT coalesce(sum(latency_sum_ms), 0)::int8 AS sum_ms, coalesce(sum(latency_count), 0)::int8 AS count
      FROM ${sourceOf(range)} WHERE ${condition}
    `);
    const rows = await db.any(sql.type(LatencyBucketRow)`
      SELECT (e.position - 1)::int4 AS index, sum(e.value::bigint)::int8 AS count
      FROM ${sourceOf(range)} AS h
      CROSS JOIN LATERAL jsonb_array_elements_text(h.latency_buckets) WITH ORDINALITY AS e(value, position)
      WHERE ${condition}
      GROUP BY e.position
      ORDER BY e.position
    `);
    const counts = LATENCY_BOUNDS_MS.map(() => 0);
    for (const row of rows) {
      if (row.index < counts.length) counts[row.index] = row.count;
    }
    return {
      count: sums.count,
      mean_ms: sums.count === 0 ? null : sums.sum_ms / sums.count,
      p50_ms: percentileFromBuckets(counts, 0.5),
      p95_ms: percentileFromBuckets(counts, 0.95),
      p99_ms: percentileFromBuckets(counts, 0.99),
      buckets: LATENCY_BOUNDS_MS.map((bound, index) => ({
        le: bound === Number.POSITIVE_INFINITY ? null : bound,
        count: counts[index] ?? 0,
      })),
    };
  },
});

export type AnalyticsQueries = ReturnType<typeof createAnalyticsQueries>;

const LatencyHistogramRow = z.object({ provider: z.string(), model: z.string(), index: z.number().int(), count });
const LatencyHistogramSumsRow = z.object({ provider: z.string(), model: z.string(), counts: z.array(count), extra_buckets: z.boolean() });

/** hourOfDayTotals for rows with statuses outside RUN_STATUSES: every row's runs_by_status expanded. */
const hourOfDayTotalsExpanded = async (db: CommonQueryMethods, range: AnalyticsRange): Promise<readonly HourOfDayTotalsRow[]> =>
  db.any(sql.type(HourOfDayTotalsRowSchema)`
      WITH rows AS (
        SELECT extract(hour FROM bucket_start AT TIME ZONE 'UTC')::int4 AS hour, runs_by_status,
          input_tokens + cache_read_tokens + cache_write_tokens + output_tokens AS total_tokens,
          model_calls, runs_total, errors, latency_sum_ms, latency_count
        FROM ${sourceOf(range)}
        WHERE ${rangeCondition(range)}
      ),
      statuses AS (
        SELECT hour, jsonb_object_agg(key, total) AS runs_by_status
        FROM (
          SELECT r.hour, s.key, sum(s.value::bigint) AS total
          FROM rows AS r CROSS JOIN LATERAL jsonb_each_text(r.runs_by_status) AS s
          GROUP BY r.hour, s.key
        ) AS per_status
        GROUP BY hour
      ),
      sums AS (
        SELECT hour, sum(total_tokens) AS total_tokens, sum(model_calls) AS model_calls,
          sum(runs_total) AS runs_total, sum(errors) AS errors,
          sum(latency_sum_ms) AS latency_sum_ms, sum(latency_count) AS latency_count
        FROM rows
        GROUP BY hour
      )
      SELECT s.hour, s.total_tokens::int8 AS total_tokens, s.model_calls::int8 AS model_calls,
        s.runs_total::int8 AS runs_total, coalesce(st.runs_by_status, '{}'::jsonb) AS runs_by_status,
        s.errors::int8 AS errors, s.latency_sum_ms::int8 AS latency_sum_ms, s.latency_count::int8 AS latency_count
      FROM sums AS s
      LEFT JOIN statuses AS st USING (hour)
      ORDER BY s.hour
    `);

/** More read helpers over analytics_hourly, for the analytics API. */
export const createAnalyticsBreakdownQueries = (db: CommonQueryMethods) => ({
  /** Totals per hour of the day (UTC) over the range, hours without rows left out, ordered by hour. */
  hourOfDayTotals: async (range: AnalyticsRange): Promise<readonly HourOfDayTotalsRow[]> => {
    const rows = await db.any(sql.type(HourOfDayTotalsRowSchema.extend({ other_statuses: z.boolean() }))`
      SELECT extract(hour FROM bucket_start AT TIME ZONE 'UTC')::int4 AS hour,
        sum(input_tokens + cache_read_tokens + cache_write_tokens + output_tokens)::int8 AS total_tokens,
        sum(model_calls)::int8 AS model_calls,
        sum(runs_total)::int8 AS runs_total,
        ${statusSums} AS runs_by_status,
        sum(errors)::int8 AS errors,
        sum(latency_sum_ms)::int8 AS latency_sum_ms,
        sum(latency_count)::int8 AS latency_count,
        ${otherStatuses} AS other_statuses
      FROM ${sourceOf(range)}
      WHERE ${rangeCondition(range)}
      GROUP BY 1
      ORDER BY 1
    `);
    return rows.some((row) => row.other_statuses) ? hourOfDayTotalsExpanded(db, range) : withoutFlag(rows);
  },

  /**
   * The latency histogram per provider × model over the range (buckets summed
   * element-wise, exact), for percentiles by model or provider with
   * {@link percentileFromBuckets}. Ordered by provider, then model.
   */
  latencyHistograms: async (range: AnalyticsRange): Promise<readonly LatencyHistogram[]> => {
    const sums = await db.any(sql.type(LatencyHistogramSumsRow)`
      SELECT provider, model, ${bucketSums} AS counts, ${extraBuckets} AS extra_buckets
      FROM ${sourceOf(range)}
      WHERE ${rangeCondition(range)}
      GROUP BY provider, model
      ORDER BY provider, model
    `);
    if (!sums.some((row) => row.extra_buckets)) {
      return sums.map((row) => ({ provider: row.provider, model: row.model, counts: row.counts }));
    }
    // Rows with more buckets than LATENCY_BOUNDS_MS: expanded, the extra ones ignored (as always).
    const rows = await db.any(sql.type(LatencyHistogramRow)`
      SELECT h.provider, h.model, (e.position - 1)::int4 AS index, sum(e.value::bigint)::int8 AS count
      FROM ${sourceOf(range)} AS h
      CROSS JOIN LATERAL jsonb_array_elements_text(h.latency_buckets) WITH ORDINALITY AS e(value, position)
      WHERE ${rangeCondition(range)}
      GROUP BY h.provider, h.model, e.position
      ORDER BY h.provider, h.model, e.position
    `);
    const histograms = new Map<string, { provider: string; model: string; counts: number[] }>();
    for (const row of rows) {
      const key = JSON.stringify([row.provider, row.model]);
      let histogram = histograms.get(key);
      if (histogram === undefined) {
        histogram = { provider: row.provider, model: row.model, counts: LATENCY_BOUNDS_MS.map(() => 0) };
        histograms.set(key, histogram);
      }
      if (row.index < histogram.counts.length) histogram.counts[row.index] = row.count;
    }
    return [...histograms.values()];
  },
});

export type AnalyticsBreakdownQueries = ReturnType<typeof createAnalyticsBreakdownQueries>;
