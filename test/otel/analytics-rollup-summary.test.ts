import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAnalyticsBreakdownQueries, createAnalyticsQueries, type AnalyticsRange } from '../../src/analytics/analytics-queries.js';
import { readRollupSummary } from '../../src/analytics/analytics-rollup-summary.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { insertUsers } from './helpers/analytics-rows.js';
import { createRecordPath, type RecordPath, type RunPlan } from './helpers/record-path.js';

describe('readRollupSummary', () => {
  let db: TestDatabase;
  let path: RecordPath;
  beforeAll(async () => {
    db = await createTestDatabase();
    await insertUsers(db.pool, ['user-a', 'user-b']);
    path = createRecordPath(db.pool);
    const models = [['openai', 'gpt-4o-mini'], ['openai', 'gpt-4.1'], ['anthropic', 'claude-haiku-4-5']] as const;
    const statuses = ['completed', 'failed', 'cancelled', 'timedOut'] as const;
    const plans: RunPlan[] = [];
    for (let index = 0; index < 120; index += 1) {
      const [provider, model] = models[index % 3] ?? models[0];
      plans.push({
        startAt: Date.parse('2026-03-01T00:00:00Z') + index * 1_700_000,
        userId: index % 4 === 0 ? 'user-b' : 'user-a',
        provider,
        model,
        status: statuses[index % 4] ?? 'completed',
        steps: [
          {
            chat: {
              // Some calls report no usage, some have no known price, some fail.
              usage: index % 7 === 0 ? null : { inputUncached: index, cacheRead: index % 5, cacheWrite: index % 3, output: 2 * index, reasoning: index % 2 },
              costUsd: index % 6 === 0 ? null : index / 1e7,
              latencyMs: (index * 1234) % 70_000,
              ...(index % 9 === 0 ? { errorType: 'RateLimitError' } : {}),
            },
          },
        ],
      });
    }
    await path.seed(plans);
  });
  afterAll(async () => {
    await path?.shutdown();
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
