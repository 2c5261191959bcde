import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import type { AnalyticsRange, DailyTotalsRow, HourOfDayTotalsRow, LatencyHistogram } from './analytics-queries.js';
import { hourRangesCondition, spanRanges } from './analytics-spans.js';
import { LATENCY_BOUNDS_MS } from './latency-histogram.js';

/** What the reports read from the rollups: the three groupings of the same rows. */
export type RollupSummary = {
  readonly daily: readonly DailyTotalsRow[];
  readonly hours: readonly HourOfDayTotalsRow[];
  readonly histograms: readonly LatencyHistogram[];
};

/** The run statuses (workflow_runs.status, a CHECK constraint) and their analytics_spans columns. */
const STATUS_COLUMNS = [
  ['queued', 'runs_queued'],
  ['running', 'runs_running'],
  ['completed', 'runs_completed'],
  ['failed', 'runs_failed'],
  ['cancelled', 'runs_cancelled'],
  ['timedOut', 'runs_timed_out'],
  ['budgetExceeded', 'runs_budget_exceeded'],
  ['interrupted', 'runs_interrupted'],
] as const;

/** analytics_spans' latency bucket columns, aligned with LATENCY_BOUNDS_MS. */
const BUCKET_COLUMNS = LATENCY_BOUNDS_MS.map((bound) => `latency_le_${bound === Number.POSITIVE_INFINITY ? 'inf' : String(bound)}`);

const TOKEN_COLUMNS = ['input_tokens', 'cache_read_tokens', 'cache_write_tokens', 'output_tokens', 'reasoning_tokens'] as const;
const COUNT_COLUMNS = ['model_calls', 'runs_total'] as const;
const LATENCY_COLUMNS = ['errors', 'latency_sum_ms', 'latency_count'] as const;

const ids = (names: readonly string[]) =>
  sql.join(
    names.map((name) => sql.identifier([name])),
    sql.fragment`, `,
  );

/** An analytics_spans row's figures, in the column order every branch below selects. */
const spanColumns = sql.fragment`${ids(TOKEN_COLUMNS)}, cost, ${ids(COUNT_COLUMNS)}, ${ids(STATUS_COLUMNS.map(([, column]) => column))},
  ${ids(LATENCY_COLUMNS)}, ${ids(BUCKET_COLUMNS)}`;

/** The same figures from an analytics_hourly(_totals) row (its jsonb spelled out). */
const hourlyColumns = sql.fragment`${ids(TOKEN_COLUMNS)}, cost, ${ids(COUNT_COLUMNS)},
  ${sql.join(
    STATUS_COLUMNS.map(
      ([status, column]) => sql.fragment`coalesce((runs_by_status ->> ${status}::text)::int8, 0) AS ${sql.identifier([column])}`,
    ),
    sql.fragment`, `,
  )},
  ${ids(LATENCY_COLUMNS)},
  ${sql.join(
    BUCKET_COLUMNS.map(
      (column, index) => sql.fragment`coalesce((latency_buckets ->> ${index}::int)::int8, 0) AS ${sql.identifier([column])}`,
    ),
    sql.fragment`, `,
  )}`;

const sumsOf = (names: readonly string[]) =>
  sql.join(
    names.map((name) => sql.fragment`sum(${sql.identifier([name])})::int8 AS ${sql.identifier([name])}`),
    sql.fragment`, `,
  );

const statusSums = sumsOf(STATUS_COLUMNS.map(([, column]) => column));

const count = z.number().int().nonnegative();
const StatusCounts = z.object(
  Object.fromEntries(STATUS_COLUMNS.map(([, column]) => [column, count])) as Record<(typeof STATUS_COLUMNS)[number][1], typeof count>,
);
const SummaryRow = StatusCounts.extend({
  /** 0: day × provider × model; 2: provider × model. */
  grouping_set: z.number().int(),
  day: z.string().nullable(),
  provider: z.string(),
  model: z.string(),
  input_tokens: count,
  cache_read_tokens: count,
  cache_write_tokens: count,
  output_tokens: count,
  reasoning_tokens: count,
  cost: z.number(),
  model_calls: count,
  runs_total: count,
  errors: count,
  latency_sum_ms: count,
  latency_count: count,
  counts: z.array(count),
});
const HourRow = StatusCounts.extend({
  hour: z.number().int().min(0).max(23),
  total_tokens: count,
  model_calls: count,
  runs_total: count,
  errors: count,
  latency_sum_ms: count,
  latency_count: count,
});

/** runs_by_status from the status columns: statuses without runs left out. */
const statusesOf = (row: z.infer<typeof StatusCounts>): Record<string, number> =>
  Object.fromEntries(STATUS_COLUMNS.flatMap(([status, column]) => (row[column] > 0 ? [[status, row[column]] as const] : [])));

/** The run and latency figures every grouping reports. */
const runFigures = (row: z.infer<typeof HourRow> | z.infer<typeof SummaryRow>) => ({
  model_calls: row.model_calls,
  runs_total: row.runs_total,
  runs_by_status: statusesOf(row),
  errors: row.errors,
  latency_sum_ms: row.latency_sum_ms,
  latency_count: row.latency_count,
});

const userCondition = (range: AnalyticsRange) => sql.fragment`user_id = ${range.userId ?? ''}`;

/**
 * dailyTotals, hourOfDayTotals and latencyHistograms of a range (the figures of
 * analytics-queries.ts) in two reads of at most a few thousand rows whatever the range:
 * the whole days from the day rows of analytics_spans (plain columns, per provider ×
 * model), the partial days at the ends from the hourly rollups, and the hours of the day
 * from the hour rows of analytics_spans summed over models. All three kept in the
 * transactions that write the hourly rollups (migration 0014), so the sums are the same.
 */
export const readRollupSummary = async (db: CommonQueryMethods, range: AnalyticsRange): Promise<RollupSummary> => {
  const ranges = spanRanges(range);
  const hourly = sql.identifier([range.userId === null ? 'analytics_hourly_totals' : 'analytics_hourly']);
  const parts = [
    ...(ranges.days === null
      ? []
      : [
          sql.fragment`SELECT bucket_start, provider, model, ${spanColumns} FROM analytics_spans
            WHERE ${userCondition(range)} AND span_hours = 24
              AND bucket_start >= ${ranges.days.from.toISOString()}::timestamptz AND bucket_start < ${ranges.days.to.toISOString()}::timestamptz`,
        ]),
    ...(ranges.hours.length === 0
      ? []
      : [
          sql.fragment`SELECT bucket_start, provider, model, ${hourlyColumns} FROM ${hourly}
            WHERE ${range.userId === null ? sql.fragment`true` : sql.fragment`user_id = ${range.userId}`} AND ${hourRangesCondition(ranges)}`,
        ]),
  ];
  const rows =
    parts.length === 0
      ? []
      : await db.any(sql.type(SummaryRow)`
    SELECT CASE WHEN grouping(r.day) = 0 THEN 0 ELSE 2 END AS grouping_set,
      to_char(r.day, 'YYYY-MM-DD') AS day, r.provider, r.model,
      ${sumsOf(TOKEN_COLUMNS)}, sum(r.cost) AS cost, ${sumsOf(COUNT_COLUMNS)}, ${statusSums}, ${sumsOf(LATENCY_COLUMNS)},
      ARRAY[${sql.join(
        BUCKET_COLUMNS.map((column) => sql.fragment`sum(${sql.identifier(['r', column])})`),
        sql.fragment`, `,
      )}]::int8[] AS counts
    FROM (
      SELECT (p.bucket_start AT TIME ZONE 'UTC')::date AS day, p.*
      FROM (${sql.join(parts, sql.fragment` UNION ALL `)}) AS p
    ) AS r
    GROUP BY GROUPING SETS ((r.day, r.provider, r.model), (r.provider, r.model))
    -- Rows emptied by deletes (a user's rows leaving) are no rows.
    HAVING sum(r.model_calls) <> 0 OR sum(r.runs_total) <> 0
    ORDER BY 1, r.day, r.provider, r.model
  `);
  const hourRows = await db.any(sql.type(HourRow)`
    SELECT extract(hour FROM bucket_start AT TIME ZONE 'UTC')::int4 AS hour,
      sum(input_tokens + cache_read_tokens + cache_write_tokens + output_tokens)::int8 AS total_tokens,
      ${sumsOf(COUNT_COLUMNS)}, ${statusSums}, ${sumsOf(LATENCY_COLUMNS)}
    FROM analytics_spans
    WHERE ${userCondition(range)} AND span_hours = 1 AND provider = '' AND model = ''
      AND bucket_start >= ${range.from.toISOString()}::timestamptz AND bucket_start < ${range.to.toISOString()}::timestamptz
    GROUP BY 1
    HAVING sum(model_calls) <> 0 OR sum(runs_total) <> 0
    ORDER BY 1
  `);
  const daily: DailyTotalsRow[] = [];
  const histograms: LatencyHistogram[] = [];
  for (const row of rows) {
    if (row.grouping_set === 2) {
      histograms.push({ provider: row.provider, model: row.model, counts: row.counts });
    } else if (row.day !== null) {
      const prompt = row.input_tokens + row.cache_read_tokens + row.cache_write_tokens;
      daily.push({
        day: row.day,
        provider: row.provider,
        model: row.model,
        input_tokens: row.input_tokens,
        cache_read_tokens: row.cache_read_tokens,
        cache_write_tokens: row.cache_write_tokens,
        output_tokens: row.output_tokens,
        reasoning_tokens: row.reasoning_tokens,
        prompt_tokens: prompt,
        total_tokens: prompt + row.output_tokens,
        cost: row.cost,
        ...runFigures(row),
      });
    }
  }
  const hours = hourRows.map((row) => ({ hour: row.hour, total_tokens: row.total_tokens, ...runFigures(row) }));
  return { daily, hours, histograms };
};
