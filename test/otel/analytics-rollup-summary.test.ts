import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAnalyticsBreakdownQueries, createAnalyticsQueries, type AnalyticsRange } from '../../src/analytics/analytics-queries.js';
import { readRollupSummary } from '../../src/analytics/analytics-rollup-summary.js';
import { createAnalyticsStore, type AnalyticsDelta } from '../../src/analytics/analytics-store.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { insertUsers } from './helpers/analytics-rows.js';

describe('readRollupSummary', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
    await insertUsers(db.pool, ['user-a', 'user-b']);
    const store = createAnalyticsStore({ pool: db.pool, flushIntervalMs: 60_000 });
    const models = [['openai', 'gpt-4o-mini'], ['openai', 'gpt-4.1'], ['anthropic', 'claude-haiku-4-5']] as const;
    for (let index = 0; index < 120; index += 1) {
      const [provider, model] = models[index % 3] ?? models[0];
      const delta: AnalyticsDelta = {
        at: Date.parse('2026-03-01T00:00:00Z') + index * 1_700_000,
        userId: index % 4 === 0 ? 'user-b' : 'user-a',
        provider,
        model,
        ...(index % 7 === 0 ? {} : { tokens: { inputUncached: index, cacheRead: index % 5, cacheWrite: index % 3, output: 2 * index, reasoning: index % 2 } }),
        ...(index % 6 === 0 ? {} : { costUsd: index / 1e7 }),
        modelCalls: 1,
        errors: index % 9 === 0 ? 1 : 0,
        latencyMs: (index * 1234) % 70_000,
        ...(index % 2 === 0 ? { runStatus: ['completed', 'failed', 'cancelled', 'timedOut'][index % 4] ?? 'completed' } : {}),
      };
      store.add(delta);
    }
    expect(await store.shutdown()).toMatchObject({ pending: 0, inDoubt: 0 });
  });
  afterAll(async () => {
    await db?.drop();
  });

  const separately = async (range: AnalyticsRange) => ({
    daily: await createAnalyticsQueries(db.pool).dailyTotals(range),
    hours: await createAnalyticsBreakdownQueries(db.pool).hourOfDayTotals(range),
    histograms: await createAnalyticsBreakdownQueries(db.pool).latencyHistograms(range),
  });

  it('reads in one query what the three rollup queries read, for one user and for everyone', async () => {
    for (const userId of ['user-a', 'user-b', null, 'nobody']) {
      const range = { from: new Date('2026-03-01T05:00:00Z'), to: new Date('2026-03-02T17:00:00Z'), userId };
      const summary = await readRollupSummary(db.pool, range);
      expect(summary).toEqual(await separately(range));
      if (userId !== 'nobody') expect(summary.daily.length).toBeGreaterThan(2);
    }
  });

  it('falls back to the generic queries for statuses it does not know', async () => {
    await db.pool.query(sql.unsafe`
      INSERT INTO analytics_hourly (bucket_start, user_id, provider, model, runs_total, runs_by_status, latency_buckets)
      VALUES ('2026-03-01T06:00:00Z', 'user-b', 'local', 'local-echo', 2, '{"paused": 2}', '[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]')`);
    const range = { from: new Date('2026-03-01T00:00:00Z'), to: new Date('2026-03-03T00:00:00Z'), userId: 'user-b' };
    const summary = await readRollupSummary(db.pool, range);
    expect(summary).toEqual(await separately(range));
    expect(summary.daily.find((row) => row.model === 'local-echo')?.runs_by_status).toEqual({ paused: 2 });
  });
});
