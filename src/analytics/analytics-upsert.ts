import { sql, type CommonQueryMethods } from 'slonik';
import { emptyRollup, mergeRollup, rollupKey, rollupToRecord, type Rollup } from './analytics-rollup.js';

/*
 * The SQL of the hourly rollups: one statement upserts a whole batch per table (the
 * per-user rows, then their sums over users). Rows arrive as
 * one jsonb array (cost as exact decimal text); on conflict every counter is added to
 * the stored one, and the two jsonb columns are merged in SQL: runs_by_status by
 * summing per status key, latency_buckets by summing element-wise.
 */

/** Where a batch goes: per user, and summed over users (analytics_hourly_totals, migration 0004). */
const TARGETS = {
  perUser: {
    table: sql.identifier(['analytics_hourly']),
    keys: sql.fragment`bucket_start, user_id, provider, model`,
    selectKeys: sql.fragment`r.bucket_start, r.user_id, r.provider, r.model`,
  },
  allUsers: {
    table: sql.identifier(['analytics_hourly_totals']),
    keys: sql.fragment`bucket_start, provider, model`,
    selectKeys: sql.fragment`r.bucket_start, r.provider, r.model`,
  },
} as const;

const upsertRollups = (rows: readonly Rollup[], target: (typeof TARGETS)[keyof typeof TARGETS]) => sql.unsafe`
  INSERT INTO ${target.table} AS analytics_hourly (
    ${target.keys},
    input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens,
    cost, model_calls, runs_total, runs_by_status, errors,
    latency_sum_ms, latency_count, latency_buckets, updated_at
  )
  SELECT
    ${target.selectKeys},
    r.input_tokens, r.cache_read_tokens, r.cache_write_tokens, r.output_tokens, r.reasoning_tokens,
    r.cost, r.model_calls, r.runs_total, r.runs_by_status, r.errors,
    r.latency_sum_ms, r.latency_count, r.latency_buckets, now()
  FROM jsonb_to_recordset(${sql.jsonb(rows.map(rollupToRecord))}) AS r(
    bucket_start timestamptz, user_id text, provider text, model text,
    input_tokens bigint, cache_read_tokens bigint, cache_write_tokens bigint,
    output_tokens bigint, reasoning_tokens bigint,
    cost numeric, model_calls integer, runs_total integer, runs_by_status jsonb, errors integer,
    latency_sum_ms bigint, latency_count integer, latency_buckets jsonb
  )
  ON CONFLICT (${target.keys}) DO UPDATE SET
    input_tokens = analytics_hourly.input_tokens + EXCLUDED.input_tokens,
    cache_read_tokens = analytics_hourly.cache_read_tokens + EXCLUDED.cache_read_tokens,
    cache_write_tokens = analytics_hourly.cache_write_tokens + EXCLUDED.cache_write_tokens,
    output_tokens = analytics_hourly.output_tokens + EXCLUDED.output_tokens,
    reasoning_tokens = analytics_hourly.reasoning_tokens + EXCLUDED.reasoning_tokens,
    cost = analytics_hourly.cost + EXCLUDED.cost,
    model_calls = analytics_hourly.model_calls + EXCLUDED.model_calls,
    runs_total = analytics_hourly.runs_total + EXCLUDED.runs_total,
    runs_by_status = (
      SELECT coalesce(jsonb_object_agg(s.key, s.total), '{}'::jsonb)
      FROM (
        SELECT e.key, sum(e.value::bigint) AS total
        FROM (
          SELECT key, value FROM jsonb_each_text(analytics_hourly.runs_by_status)
          UNION ALL
          SELECT key, value FROM jsonb_each_text(EXCLUDED.runs_by_status)
        ) AS e
        GROUP BY e.key
      ) AS s
    ),
    errors = analytics_hourly.errors + EXCLUDED.errors,
    latency_sum_ms = analytics_hourly.latency_sum_ms + EXCLUDED.latency_sum_ms,
    latency_count = analytics_hourly.latency_count + EXCLUDED.latency_count,
    latency_buckets = (
      SELECT coalesce(jsonb_agg(s.total ORDER BY s.position), '[]'::jsonb)
      FROM (
        SELECT e.position, sum(e.value::bigint) AS total
        FROM (
          SELECT a.position, a.value
          FROM jsonb_array_elements_text(analytics_hourly.latency_buckets) WITH ORDINALITY AS a(value, position)
          UNION ALL
          SELECT b.position, b.value
          FROM jsonb_array_elements_text(EXCLUDED.latency_buckets) WITH ORDINALITY AS b(value, position)
        ) AS e
        GROUP BY e.position
      ) AS s
    ),
    updated_at = now()
`;

/**
 * Upserts `rows` inside the caller's transaction (the run-record writer's, idempotent by
 * run id, so a batch is applied exactly once).
 */
export const applyRollups = async (tx: CommonQueryMethods, rows: readonly Rollup[]): Promise<void> => {
  await tx.query(upsertRollups(rows, TARGETS.perUser));
  await tx.query(upsertRollups(sumOverUsers(rows), TARGETS.allUsers));
};

/**
 * The batch summed per (hour, provider, model), in key order: every writer locks the
 * shared rows in the same order, so concurrent batches wait for each other instead of
 * deadlocking.
 */
const sumOverUsers = (rows: readonly Rollup[]): Rollup[] => {
  const totals = new Map<string, Rollup>();
  for (const row of rows) {
    const key = rollupKey(row.bucketStart, '', row.provider, row.model);
    let total = totals.get(key);
    if (total === undefined) {
      total = emptyRollup(row.bucketStart, '', row.provider, row.model);
      totals.set(key, total);
    }
    mergeRollup(total, row);
  }
  return [...totals.values()].sort(
    (a, b) => a.bucketStart - b.bucketStart || compareText(a.provider, b.provider) || compareText(a.model, b.model),
  );
};

const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
