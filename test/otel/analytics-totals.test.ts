import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createAnalyticsBreakdownQueries, createAnalyticsQueries } from '../helpers/hourly-rollup-queries.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { insertUsers } from './helpers/analytics-rows.js';
import { createRecordPath, type RecordPath, type RunPlan } from './helpers/record-path.js';

const TotalsRow = z.object({
  bucket_start: z.string(),
  provider: z.string(),
  model: z.string(),
  input_tokens: z.number(),
  cache_read_tokens: z.number(),
  cache_write_tokens: z.number(),
  output_tokens: z.number(),
  reasoning_tokens: z.number(),
  cost: z.string(),
  model_calls: z.number(),
  runs_total: z.number(),
  runs_by_status: z.record(z.string(), z.number()),
  errors: z.number(),
  latency_sum_ms: z.number(),
  latency_count: z.number(),
  latency_buckets: z.array(z.number()),
});

const COLUMNS = sql.fragment`
  input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost::text AS cost,
  model_calls, runs_total, runs_by_status, errors, latency_sum_ms, latency_count, latency_buckets`;

/** analytics_hourly_totals as stored, in key order. */
const storedTotals = async (db: TestDatabase) =>
  db.pool.any(sql.type(TotalsRow)`
    SELECT bucket_start, provider, model, ${COLUMNS} FROM analytics_hourly_totals ORDER BY bucket_start, provider, model`);

/** analytics_hourly summed over users in SQL (jsonb merged per key / element), in key order. */
const summedPerUserRows = async (db: TestDatabase) =>
  db.pool.any(sql.type(TotalsRow)`
    SELECT s.bucket_start, s.provider, s.model, s.input_tokens, s.cache_read_tokens, s.cache_write_tokens, s.output_tokens,
      s.reasoning_tokens, s.cost, s.model_calls, s.runs_total, coalesce(st.runs_by_status, '{}'::jsonb) AS runs_by_status,
      s.errors, s.latency_sum_ms, s.latency_count, lb.latency_buckets
    FROM (
      SELECT bucket_start, provider, model, sum(input_tokens)::int8 AS input_tokens, sum(cache_read_tokens)::int8 AS cache_read_tokens,
        sum(cache_write_tokens)::int8 AS cache_write_tokens, sum(output_tokens)::int8 AS output_tokens,
        sum(reasoning_tokens)::int8 AS reasoning_tokens, sum(cost)::numeric(20, 10)::text AS cost,
        sum(model_calls)::int8 AS model_calls, sum(runs_total)::int8 AS runs_total, sum(errors)::int8 AS errors,
        sum(latency_sum_ms)::int8 AS latency_sum_ms, sum(latency_count)::int8 AS latency_count
      FROM analytics_hourly GROUP BY 1, 2, 3
    ) AS s
    LEFT JOIN (
      SELECT bucket_start, provider, model, jsonb_object_agg(key, n) AS runs_by_status
      FROM (SELECT h.bucket_start, h.provider, h.model, e.key, sum(e.value::int8) AS n
            FROM analytics_hourly h CROSS JOIN LATERAL jsonb_each_text(h.runs_by_status) e GROUP BY 1, 2, 3, 4) AS x
      GROUP BY 1, 2, 3
    ) AS st USING (bucket_start, provider, model)
    JOIN (
      SELECT bucket_start, provider, model, jsonb_agg(n ORDER BY position) AS latency_buckets
      FROM (SELECT h.bucket_start, h.provider, h.model, e.position, sum(e.value::int8) AS n
            FROM analytics_hourly h CROSS JOIN LATERAL jsonb_array_elements_text(h.latency_buckets) WITH ORDINALITY e(value, position)
            GROUP BY 1, 2, 3, 4) AS y
      GROUP BY 1, 2, 3
    ) AS lb USING (bucket_start, provider, model)
    ORDER BY s.bucket_start, s.provider, s.model`);

describe('analytics_hourly_totals', () => {
  let db: TestDatabase;
  let path: RecordPath;
  beforeAll(async () => {
    db = await createTestDatabase();
    await insertUsers(db.pool, ['user-a', 'user-b', 'user-c']);
    path = createRecordPath(db.pool);
  });
  afterAll(async () => {
    await path?.shutdown();
    await db?.drop();
  });

  const at = (iso: string) => Date.parse(iso);
  const USAGE = { inputUncached: 100, cacheRead: 10, cacheWrite: 3, output: 40, reasoning: 5 };
  const MARCH = { from: new Date('2026-03-01T00:00:00Z'), to: new Date('2026-03-03T00:00:00Z') };

  it('holds the sums over users of analytics_hourly, batch after batch, and the all-users reports read it', async () => {
    const users = ['user-a', 'user-b', 'user-c'];
    const plans: RunPlan[] = [];
    for (let index = 0; index < 60; index += 1) {
      const model = index % 4 === 0 ? 'gpt-4.1' : 'gpt-4o-mini';
      plans.push({
        startAt: at('2026-03-01T08:00:00Z') + index * 1_500_000,
        userId: users[index % 3] ?? 'user-a',
        provider: 'openai',
        model,
        status: index % 10 === 0 ? 'failed' : index % 5 === 0 ? 'cancelled' : 'completed',
        steps: [{ chat: { usage: USAGE, costUsd: 0.0001234567, latencyMs: (index * 977) % 70_000 } }],
      });
    }
    // Three records per transaction, as a writer under load commits them.
    await path.seed(plans, 3);
    await path.seed(plans.slice(0, 20), 3); // new runs of the same shape: upserts onto existing rows
    const totals = await storedTotals(db);
    expect(totals.length).toBeGreaterThan(10);
    expect(totals).toEqual(await summedPerUserRows(db));

    // The all-users reads (totals table) equal the per-user reads added up.
    const queries = createAnalyticsQueries(db.pool);
    const everyone = await queries.dailyTotals({ ...MARCH, userId: null });
    const perUser = (await Promise.all(users.map((userId) => queries.dailyTotals({ ...MARCH, userId })))).flat();
    for (const row of everyone) {
      const parts = perUser.filter((part) => part.day === row.day && part.model === row.model && part.provider === row.provider);
      expect(row.total_tokens).toBe(parts.reduce((sum, part) => sum + part.total_tokens, 0));
      expect(row.runs_total).toBe(parts.reduce((sum, part) => sum + part.runs_total, 0));
      expect(Math.round(row.cost * 1e10)).toBe(parts.reduce((sum, part) => sum + Math.round(part.cost * 1e10), 0));
    }
    expect(everyone.reduce((sum, row) => sum + row.runs_total, 0)).toBe(80);
    const breakdowns = createAnalyticsBreakdownQueries(db.pool);
    const histograms = await breakdowns.latencyHistograms({ ...MARCH, userId: null });
    const histogramsA = await breakdowns.latencyHistograms({ ...MARCH, userId: 'user-a' });
    expect(histograms.map((h) => h.counts.reduce((sum, n) => sum + n, 0)).reduce((sum, n) => sum + n, 0)).toBe(80);
    expect(histogramsA.map((h) => h.counts.reduce((sum, n) => sum + n, 0)).reduce((sum, n) => sum + n, 0)).toBe(27);
  });

  it('loses the rows deleted from analytics_hourly (a deleted user), and drops totals rows left empty', async () => {
    await db.pool.query(sql.unsafe`DELETE FROM users WHERE id = 'user-b'`); // cascades to their rollups
    expect(await storedTotals(db)).toEqual(await summedPerUserRows(db));
    await db.pool.query(sql.unsafe`DELETE FROM analytics_hourly WHERE model = 'gpt-4.1'`);
    const totals = await storedTotals(db);
    expect(totals.some((row) => row.model === 'gpt-4.1')).toBe(false);
    expect(totals).toEqual(await summedPerUserRows(db));
    await db.pool.query(sql.unsafe`DELETE FROM analytics_hourly`);
    expect(await storedTotals(db)).toEqual([]);
  });

  it('counts run statuses and histogram buckets it does not know by expanding the rows', async () => {
    await db.pool.query(sql.unsafe`
      INSERT INTO analytics_hourly (bucket_start, user_id, provider, model, model_calls, runs_total, runs_by_status,
        latency_sum_ms, latency_count, latency_buckets)
      VALUES ('2026-03-01T05:00:00Z', 'user-a', 'openai', 'gpt-4o-mini', 1, 3, '{"completed": 1, "paused": 2}',
        50, 1, '[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7]')`);
    const daily = await createAnalyticsQueries(db.pool).dailyTotals({ ...MARCH, userId: 'user-a' });
    expect(daily.map((row) => row.runs_by_status)).toEqual([{ completed: 1, paused: 2 }]);
    const hours = await createAnalyticsBreakdownQueries(db.pool).hourOfDayTotals({ ...MARCH, userId: 'user-a' });
    expect(hours.map((row) => row.runs_by_status)).toEqual([{ completed: 1, paused: 2 }]);
    const histograms = await createAnalyticsBreakdownQueries(db.pool).latencyHistograms({ ...MARCH, userId: 'user-a' });
    expect(histograms).toEqual([{ provider: 'openai', model: 'gpt-4o-mini', counts: [1, 0, 0, 0, 0, 0, 0, 0, 0, 0] }]);
  });
});
