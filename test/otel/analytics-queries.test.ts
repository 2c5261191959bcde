import { sql } from 'slonik';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAnalyticsQueries } from '../helpers/hourly-rollup-queries.js';
import { LATENCY_BOUNDS_MS, latencyBucketIndex, percentileFromBuckets } from '../../src/analytics/latency-histogram.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { insertUsers } from './helpers/analytics-rows.js';
import { createRecordPath, type RecordPath, type RunPlan } from './helpers/record-path.js';

const histogramOf = (latencies: readonly number[]): number[] => {
  const counts = LATENCY_BOUNDS_MS.map(() => 0);
  for (const latency of latencies) {
    const index = latencyBucketIndex(latency);
    counts[index] = (counts[index] ?? 0) + 1;
  }
  return counts;
};
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, index) => from + index);

describe('percentileFromBuckets', () => {
  it('recovers the exact percentiles of a uniform distribution by linear interpolation', () => {
    const counts = histogramOf(range(1, 1000)); // 1…1000 ms
    expect(percentileFromBuckets(counts, 0.5)).toBe(500);
    expect(percentileFromBuckets(counts, 0.95)).toBe(950);
    expect(percentileFromBuckets(counts, 0.99)).toBe(990);
    expect(percentileFromBuckets(counts, 1)).toBe(1000);
    const wide = histogramOf(range(1, 10_000));
    expect(percentileFromBuckets(wide, 0.5)).toBe(5000);
    expect(percentileFromBuckets(wide, 0.95)).toBe(9500);
    expect(percentileFromBuckets(wide, 0.99)).toBe(9900);
  });

  it('interpolates inside the bucket the rank falls in', () => {
    // 50 calls in (100, 250], 40 in (250, 500], 10 in (500, 1000].
    const counts = [0, 50, 40, 10, 0, 0, 0, 0, 0, 0];
    expect(percentileFromBuckets(counts, 0.5)).toBe(250);
    expect(percentileFromBuckets(counts, 0.7)).toBe(250 + (250 * 20) / 40);
    expect(percentileFromBuckets(counts, 0.95)).toBe(500 + (500 * 5) / 10);
  });

  it('reports a quantile in the open last bucket as its lower bound, and nothing for no data', () => {
    const counts = histogramOf([...Array.from({ length: 99 }, () => 50), 70_000]);
    expect(percentileFromBuckets(counts, 0.99)).toBe(100);
    expect(percentileFromBuckets(counts, 1)).toBe(60_000);
    expect(
      percentileFromBuckets(
        LATENCY_BOUNDS_MS.map(() => 0),
        0.5,
      ),
    ).toBeNull();
    expect(() => percentileFromBuckets(counts, 1.5)).toThrow(RangeError);
  });
});

describe('createAnalyticsQueries', () => {
  let db: TestDatabase;
  let path: RecordPath;
  beforeAll(async () => {
    db = await createTestDatabase();
    await insertUsers(db.pool, ['user-a', 'user-b']);
    path = createRecordPath(db.pool);
  });
  afterAll(async () => {
    await path?.shutdown();
    await db?.drop();
  });
  beforeEach(async () => {
    await db.pool.query(sql.unsafe`DELETE FROM analytics_hourly`);
  });

  const GAP_MS = 5;
  const USAGE = { inputUncached: 100, cacheRead: 10, cacheWrite: 0, output: 40, reasoning: 5 };
  type Call = { readonly endAt: number; readonly latencyMs?: number; readonly costUsd?: number | null; readonly requestModel?: string };
  /**
   * A run of one user whose model calls end at the given times (one after another, each
   * `latencyMs` long, the default 400 ms); the run ends GAP_MS after its last call.
   */
  const run = (calls: readonly Call[], options: Partial<RunPlan> = {}): RunPlan[] => {
    const first = calls[0];
    const startAt = first === undefined ? (options.startAt ?? 0) : first.endAt - (first.latencyMs ?? 400) - GAP_MS;
    return [
      {
        userId: 'user-a',
        provider: 'openai',
        model: 'gpt-4o-mini',
        status: 'completed',
        gapMs: GAP_MS,
        ...options,
        startAt,
        steps: calls.map((call) => ({
          chat: {
            usage: USAGE,
            costUsd: call.costUsd === undefined ? 0.0001 : call.costUsd,
            latencyMs: call.latencyMs ?? 400,
            ...(call.requestModel === undefined ? {} : { requestModel: call.requestModel }),
          },
        })),
      },
    ];
  };
  const at = (iso: string) => Date.parse(iso);
  const MARCH = { from: new Date('2026-03-01T00:00:00Z'), to: new Date('2026-03-03T00:00:00Z') };

  it('totals a user’s usage per day, provider and model over a time range', async () => {
    await path.seed([
      ...run([{ endAt: at('2026-03-01T10:05:00Z') }]),
      ...run([{ endAt: at('2026-03-01T23:59:58Z') }]),
      // A run that failed before any model call: a run and an error, no tokens.
      ...run([], { startAt: at('2026-03-01T11:00:00Z'), status: 'failed' }),
      // No price known for this model: tokens counted, no cost.
      ...run([{ endAt: at('2026-03-01T12:00:00Z'), costUsd: null }], { provider: 'anthropic', model: 'claude-sonnet-4-5' }),
      // Its call ends at midnight: the next day (the run too).
      ...run([{ endAt: at('2026-03-02T00:00:00Z') }]),
      ...run([{ endAt: at('2026-03-01T10:30:00Z'), costUsd: 0.5 }], { userId: 'user-b' }),
      ...run([{ endAt: at('2026-03-03T00:00:00Z') }]), // outside the range
    ]);
    const queries = createAnalyticsQueries(db.pool);
    const mine = await queries.dailyTotals({ ...MARCH, userId: 'user-a' });
    expect(mine).toEqual([
      {
        day: '2026-03-01',
        provider: 'anthropic',
        model: 'claude-sonnet-4-5',
        input_tokens: 100,
        cache_read_tokens: 10,
        cache_write_tokens: 0,
        output_tokens: 40,
        reasoning_tokens: 5,
        prompt_tokens: 110,
        total_tokens: 150,
        cost: 0,
        model_calls: 1,
        runs_total: 1,
        runs_by_status: { completed: 1 },
        errors: 0,
        latency_sum_ms: 400,
        latency_count: 1,
      },
      {
        day: '2026-03-01',
        provider: 'openai',
        model: 'gpt-4o-mini',
        input_tokens: 200,
        cache_read_tokens: 20,
        cache_write_tokens: 0,
        output_tokens: 80,
        reasoning_tokens: 10,
        prompt_tokens: 220,
        total_tokens: 300,
        cost: 0.0002,
        model_calls: 2,
        runs_total: 3,
        runs_by_status: { completed: 2, failed: 1 },
        errors: 1,
        latency_sum_ms: 800,
        latency_count: 2,
      },
      {
        day: '2026-03-02',
        provider: 'openai',
        model: 'gpt-4o-mini',
        input_tokens: 100,
        cache_read_tokens: 10,
        cache_write_tokens: 0,
        output_tokens: 40,
        reasoning_tokens: 5,
        prompt_tokens: 110,
        total_tokens: 150,
        cost: 0.0001,
        model_calls: 1,
        runs_total: 1,
        runs_by_status: { completed: 1 },
        errors: 0,
        latency_sum_ms: 400,
        latency_count: 1,
      },
    ]);

    const everyone = await queries.dailyTotals({ ...MARCH, userId: null });
    const openaiDay1 = everyone.find((row) => row.day === '2026-03-01' && row.model === 'gpt-4o-mini');
    expect(openaiDay1).toMatchObject({ input_tokens: 300, model_calls: 3, cost: 0.5002 });
    expect(await queries.dailyTotals({ ...MARCH, userId: 'nobody' })).toEqual([]);
  });

  it('estimates latency percentiles from the summed buckets of the selected rows', async () => {
    const hours = ['2026-03-01T08:00:00Z', '2026-03-01T09:00:00Z', '2026-03-02T17:00:00Z'];
    // One run per call is slow to seed; consecutive calls of one run end one after another.
    const callsFrom = (startAt: number, latencies: readonly number[]): Call[] => {
      let cursor = startAt + GAP_MS;
      return latencies.map((latencyMs) => {
        cursor += latencyMs;
        const call = { endAt: cursor, latencyMs };
        cursor += GAP_MS;
        return call;
      });
    };
    await path.seed([
      // user-a: 1…1000 ms spread over three hours (three rows to sum).
      ...hours.flatMap((hour, offset) =>
        run(
          callsFrom(
            at(hour),
            range(1, 1000).filter((_, index) => index % 3 === offset),
          ),
        ),
      ),
      // user-b: 1000 calls between 10 and 11 s.
      ...run(callsFrom(at('2026-03-01T08:30:00Z'), range(10_001, 11_000)), { userId: 'user-b' }),
    ]);
    const queries = createAnalyticsQueries(db.pool);

    const mine = await queries.latency({ ...MARCH, userId: 'user-a' });
    expect(mine).toMatchObject({ count: 1000, mean_ms: 500.5, p50_ms: 500, p95_ms: 950, p99_ms: 990 });
    expect(mine.buckets.map((bucket) => bucket.count)).toEqual([100, 150, 250, 500, 0, 0, 0, 0, 0, 0]);
    expect(mine.buckets.at(-1)).toEqual({ le: null, count: 0 });

    const everyone = await queries.latency({ ...MARCH, userId: null });
    // Rank 1900 of 2000 falls 900/1000 into (10 s, 30 s].
    expect(everyone).toMatchObject({ count: 2000, p50_ms: 1000, p95_ms: 28_000 });

    expect(await queries.latency({ ...MARCH, userId: 'user-a' }, { model: 'other' })).toMatchObject({
      count: 0,
      mean_ms: null,
      p50_ms: null,
    });
  });
});
