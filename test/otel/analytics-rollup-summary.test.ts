import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnalyticsRange } from '../../src/analytics/analytics-queries.js';
import { createAnalyticsBreakdownQueries, createAnalyticsQueries } from '../helpers/hourly-rollup-queries.js';
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
    const models = [
      ['openai', 'gpt-4o-mini'],
      ['openai', 'gpt-4.1'],
      ['anthropic', 'claude-haiku-4-5'],
    ] as const;
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
              usage:
                index % 7 === 0
                  ? null
                  : { inputUncached: index, cacheRead: index % 5, cacheWrite: index % 3, output: 2 * index, reasoning: index % 2 },
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

  it('reads whole days from the day rows and the partial days at the ends from the hours, to the same sums', async () => {
    // 120 runs every 1,700,000 ms from 2026-03-01: about 2.4 days, so these ranges hold whole days and partial ends.
    const ranges = [
      { from: new Date('2026-03-01T05:00:00Z'), to: new Date('2026-03-03T17:00:00Z') },
      { from: new Date('2026-03-01T00:00:00Z'), to: new Date('2026-03-03T00:00:00Z') },
      { from: new Date('2026-02-27T00:00:00Z'), to: new Date('2026-03-05T13:00:00Z') },
      { from: new Date('2026-03-02T23:00:00Z'), to: new Date('2026-03-03T01:00:00Z') },
    ];
    for (const userId of ['user-a', 'user-b', null]) {
      for (const window of ranges) {
        const range = { ...window, userId };
        const summary = await readRollupSummary(db.pool, range);
        expect(summary).toEqual(await separately(range));
      }
    }
  });

  it('follows the hourly rows when they change or leave (a cost recompute, a deleted user)', async () => {
    const range = { from: new Date('2026-02-28T00:00:00Z'), to: new Date('2026-03-04T00:00:00Z') };
    await db.pool.query(
      sql.unsafe`UPDATE analytics_hourly SET cost = cost + 0.0000000007, output_tokens = output_tokens + 3 WHERE user_id = 'user-b'`,
    );
    await db.pool.query(sql.unsafe`UPDATE analytics_hourly_totals SET cost = cost + 0.0000000007 * 2, output_tokens = output_tokens + 6`);
    await db.pool.query(sql.unsafe`DELETE FROM analytics_hourly WHERE user_id = 'user-a' AND bucket_start < '2026-03-02T07:00:00Z'`);
    for (const userId of ['user-a', 'user-b', null]) {
      expect(await readRollupSummary(db.pool, { ...range, userId })).toEqual(await separately({ ...range, userId }));
    }
  });
});
