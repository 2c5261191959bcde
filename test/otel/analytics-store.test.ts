import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAnalyticsStore, type AnalyticsDelta, type AnalyticsStore } from '../../src/analytics/analytics-store.js';
import { openDatabase, type Database } from '../../src/db/database.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { insertUsers, readAnalyticsRows } from './helpers/analytics-rows.js';
import { createTcpProxy, targetOf, type TcpProxy } from './helpers/tcp-proxy.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
  await insertUsers(db.pool, ['user-a', 'user-b']);
});
afterAll(async () => {
  await db?.drop();
});
beforeEach(async () => {
  await db.pool.query(sql.unsafe`DELETE FROM analytics_hourly`);
});

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const track = (store: AnalyticsStore): AnalyticsStore => {
  cleanups.push(async () => {
    await store.shutdown();
  });
  return store;
};

const HOUR_10 = Date.parse('2026-03-02T10:15:00.000Z');
const HOUR_11 = Date.parse('2026-03-02T11:45:00.000Z');

const delta = (overrides: Partial<AnalyticsDelta> = {}): AnalyticsDelta => ({
  at: HOUR_10,
  userId: 'user-a',
  provider: 'openai',
  model: 'gpt-4o-mini',
  tokens: { inputUncached: 100, cacheRead: 20, cacheWrite: 5, output: 50, reasoning: 10 },
  costUsd: 0.0001234567,
  modelCalls: 1,
  latencyMs: 300,
  ...overrides,
});

const openThroughProxy = async (): Promise<{ proxy: TcpProxy; through: Database }> => {
  const proxy = await createTcpProxy(targetOf(db.url));
  const through = await openDatabase({ url: proxy.urlThrough(db.url), dataDir: 'memory://', poolSize: 2 });
  cleanups.push(async () => {
    await through.close();
    await proxy.close();
  });
  return { proxy, through };
};

const waitFor = async <T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> => {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!done(value) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    value = await read();
  }
  return value;
};

const costText = async (pool: DatabasePool, userId: string): Promise<string[]> => [
  ...(await pool.anyFirst(sql.type(z.object({ cost: z.string() }))`
    SELECT cost::text AS cost FROM analytics_hourly WHERE user_id = ${userId} ORDER BY bucket_start
  `)),
];

describe('createAnalyticsStore', () => {
  it('merges deltas per hour, user, provider and model into one upsert per flush', async () => {
    const store = track(createAnalyticsStore({ pool: db.pool, flushIntervalMs: 60_000 }));
    store.add(delta());
    store.add(delta({ latencyMs: 2600, runStatus: 'completed', errors: 1 }));
    store.add(delta({ at: HOUR_11, tokens: undefined, costUsd: undefined, modelCalls: 0, latencyMs: undefined, runStatus: 'failed', errors: 1 }));
    store.add(delta({ userId: 'user-b', model: 'gpt-4.1', latencyMs: 70_000 }));
    expect(store.stats()).toMatchObject({ pending: 3 });

    expect(await store.flush()).toEqual({ applied: 3, pending: 0, inDoubt: 0 });
    const rows = await readAnalyticsRows(db.pool);
    expect(rows).toEqual([
      {
        bucket_start: '2026-03-02T10:00:00.000Z', user_id: 'user-a', provider: 'openai', model: 'gpt-4o-mini',
        input_tokens: 200, cache_read_tokens: 40, cache_write_tokens: 10, output_tokens: 100, reasoning_tokens: 20,
        cost: 0.0002469134, model_calls: 2, runs_total: 1, runs_by_status: { completed: 1 }, errors: 1,
        latency_sum_ms: 2900, latency_count: 2, latency_buckets: [0, 0, 1, 0, 0, 1, 0, 0, 0, 0],
      },
      {
        bucket_start: '2026-03-02T10:00:00.000Z', user_id: 'user-b', provider: 'openai', model: 'gpt-4.1',
        input_tokens: 100, cache_read_tokens: 20, cache_write_tokens: 5, output_tokens: 50, reasoning_tokens: 10,
        cost: 0.0001234567, model_calls: 1, runs_total: 0, runs_by_status: {}, errors: 0,
        latency_sum_ms: 70_000, latency_count: 1, latency_buckets: [0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
      },
      {
        bucket_start: '2026-03-02T11:00:00.000Z', user_id: 'user-a', provider: 'openai', model: 'gpt-4o-mini',
        input_tokens: 0, cache_read_tokens: 0, cache_write_tokens: 0, output_tokens: 0, reasoning_tokens: 0,
        cost: 0, model_calls: 0, runs_total: 1, runs_by_status: { failed: 1 }, errors: 1,
        latency_sum_ms: 0, latency_count: 0, latency_buckets: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
      },
    ]);
    expect(await store.flush()).toEqual({ applied: 0, pending: 0, inDoubt: 0 });
    expect(await readAnalyticsRows(db.pool)).toEqual(rows);
  });

  it('sums costs exactly at numeric(20, 10) scale, where floating point would drift', async () => {
    const store = track(createAnalyticsStore({ pool: db.pool, flushIntervalMs: 60_000 }));
    store.add(delta({ costUsd: 1_000_000 }));
    for (let index = 0; index < 3; index += 1) store.add(delta({ costUsd: 0.0000000001 }));
    await store.flush();
    store.add(delta({ costUsd: 0.0000000001 }));
    await store.flush();
    expect(await costText(db.pool, 'user-a')).toEqual(['1000000.0000000004']);
  });

  it('keeps the deltas while the database is unreachable and applies them once after it returns', async () => {
    const { proxy, through } = await openThroughProxy();
    const store = track(createAnalyticsStore({ pool: through.pool, flushIntervalMs: 60_000 }));
    store.add(delta());
    store.add(delta({ userId: 'user-b' }));

    proxy.setDown(true); // open connections cut, new ones refused
    const failed = await store.flush();
    expect(failed.error).toBeDefined();
    expect(failed).toMatchObject({ applied: 0, pending: 2, inDoubt: 0 });
    store.add(delta({ runStatus: 'completed' })); // merges with the put-back row
    expect(await store.flush()).toMatchObject({ applied: 0, pending: 2 });
    expect(await readAnalyticsRows(db.pool)).toEqual([]);

    proxy.setDown(false);
    expect(await store.flush()).toEqual({ applied: 2, pending: 0, inDoubt: 0 });
    expect(await store.flush()).toEqual({ applied: 0, pending: 0, inDoubt: 0 });
    const rows = await readAnalyticsRows(db.pool);
    expect(rows.map((row) => [row.user_id, row.model_calls, row.input_tokens, row.runs_total, row.latency_count])).toEqual([
      ['user-a', 2, 200, 1, 2],
      ['user-b', 1, 100, 0, 1],
    ]);
    expect(await costText(db.pool, 'user-a')).toEqual(['0.0002469134']);
    expect(store.stats()).toMatchObject({ dropped: 0, pending: 0 });
  });

  it('retries a failed flush on the next interval by itself', async () => {
    const { proxy, through } = await openThroughProxy();
    const store = track(createAnalyticsStore({ pool: through.pool, flushIntervalMs: 25 }));
    proxy.setDown(true);
    store.add(delta());
    expect((await store.flush()).error).toBeDefined();
    proxy.setDown(false);
    const rows = await waitFor(() => readAnalyticsRows(db.pool), (found) => found.length > 0);
    expect(rows.map((row) => row.model_calls)).toEqual([1]);
  });

  it('takes the pool from a function at every flush, so a closed pool can be replaced', async () => {
    const replaced = await openDatabase({ url: db.url, dataDir: 'memory://', poolSize: 1 });
    await replaced.close();
    let current: DatabasePool = replaced.pool;
    const store = track(createAnalyticsStore({ pool: () => current, flushIntervalMs: 60_000 }));
    store.add(delta());
    const failed = await store.flush();
    expect(failed.error).toBeDefined();
    expect(failed.pending).toBe(1);
    current = db.pool;
    expect(await store.flush()).toEqual({ applied: 1, pending: 0, inDoubt: 0 });
    expect((await readAnalyticsRows(db.pool)).map((row) => row.model_calls)).toEqual([1]);
  });

  it('confirms a batch whose COMMIT reply was lost and never applies it twice', async () => {
    const { proxy, through } = await openThroughProxy();
    const store = track(createAnalyticsStore({ pool: through.pool, flushIntervalMs: 60_000 }));
    store.add(delta());
    store.add(delta({ userId: 'user-b', runStatus: 'completed' }));

    const cut = proxy.cutAfterNextCommit();
    const lost = await store.flush();
    await cut;
    expect(lost.error).toBeDefined();
    expect(lost).toMatchObject({ applied: 0, pending: 0, inDoubt: 2 });
    // The server did commit it: only the reply was lost.
    const committed = await readAnalyticsRows(db.pool);
    expect(committed.map((row) => [row.user_id, row.model_calls, row.runs_total])).toEqual([
      ['user-a', 1, 0],
      ['user-b', 1, 1],
    ]);

    store.add(delta()); // new work while the batch is in doubt
    expect(await store.flush()).toEqual({ applied: 3, pending: 0, inDoubt: 0 });
    const rows = await readAnalyticsRows(db.pool);
    expect(rows.map((row) => [row.user_id, row.model_calls, row.runs_total, row.input_tokens])).toEqual([
      ['user-a', 2, 0, 200],
      ['user-b', 1, 1, 100],
    ]);
  });

  it('retries a batch whose COMMIT the server refused, once it accepts it', async () => {
    // A deferred constraint trigger fails at COMMIT, after every statement succeeded.
    await db.pool.query(sql.unsafe`CREATE TABLE commit_gate (closed boolean NOT NULL)`);
    await db.pool.query(sql.unsafe`INSERT INTO commit_gate VALUES (true)`);
    await db.pool.query(sql.unsafe`
      CREATE FUNCTION commit_gate_check() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF EXISTS (SELECT 1 FROM commit_gate WHERE closed) THEN RAISE EXCEPTION 'commit refused'; END IF;
        RETURN NULL;
      END $$
    `);
    await db.pool.query(sql.unsafe`
      CREATE CONSTRAINT TRIGGER commit_gate AFTER INSERT OR UPDATE ON analytics_hourly
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION commit_gate_check()
    `);
    cleanups.push(async () => {
      await db.pool.query(sql.unsafe`DROP TRIGGER commit_gate ON analytics_hourly`);
      await db.pool.query(sql.unsafe`DROP FUNCTION commit_gate_check()`);
      await db.pool.query(sql.unsafe`DROP TABLE commit_gate`);
    });

    const store = track(createAnalyticsStore({ pool: db.pool, flushIntervalMs: 60_000 }));
    store.add(delta());
    const refused = await store.flush();
    expect(refused.error).toBeDefined();
    expect(refused).toMatchObject({ applied: 0, inDoubt: 1 });
    store.add(delta({ runStatus: 'completed' }));
    const refusedAgain = await store.flush();
    expect(refusedAgain.error).toBeDefined();
    expect(await readAnalyticsRows(db.pool)).toEqual([]);

    await db.pool.query(sql.unsafe`UPDATE commit_gate SET closed = false`);
    expect(await store.flush()).toEqual({ applied: 1, pending: 0, inDoubt: 0 });
    const rows = await readAnalyticsRows(db.pool);
    expect(rows.map((row) => [row.user_id, row.model_calls, row.runs_total])).toEqual([['user-a', 2, 1]]);
  });

  it('drops only the rows the database rejects for good, and counts them', async () => {
    const store = track(createAnalyticsStore({ pool: db.pool, flushIntervalMs: 60_000 }));
    store.add(delta());
    store.add(delta({ userId: 'deleted-user' }));
    store.add(delta({ userId: 'user-b' }));
    expect(await store.flush()).toEqual({ applied: 2, pending: 0, inDoubt: 0 });
    expect(store.stats()).toMatchObject({ dropped: 1, pending: 0 });
    expect((await readAnalyticsRows(db.pool)).map((row) => row.user_id)).toEqual(['user-a', 'user-b']);
  });

  it('caps the rows it holds and counts what it drops beyond the cap', async () => {
    const store = track(createAnalyticsStore({ pool: db.pool, flushIntervalMs: 60_000, maxPendingRows: 2 }));
    store.add(delta());
    store.add(delta({ userId: 'user-b' }));
    store.add(delta({ model: 'gpt-4.1' })); // a third row: dropped
    store.add(delta()); // merges into a held row: kept
    store.add(delta({ tokens: { inputUncached: -1, cacheRead: 0, cacheWrite: 0, output: 0, reasoning: 0 } })); // invalid
    expect(store.stats()).toMatchObject({ pending: 2, dropped: 2 });
  });

  it('flushes early once maxPending rows are waiting', async () => {
    const store = track(createAnalyticsStore({ pool: db.pool, flushIntervalMs: 60_000, maxPending: 2 }));
    store.add(delta());
    store.add(delta({ userId: 'user-b' }));
    const rows = await waitFor(() => readAnalyticsRows(db.pool), (found) => found.length === 2);
    expect(rows.map((row) => row.user_id)).toEqual(['user-a', 'user-b']);
  });

  it('includes deltas added during a running flush in the next one, exactly once', async () => {
    const store = track(createAnalyticsStore({ pool: db.pool, flushIntervalMs: 60_000 }));
    store.add(delta());
    const first = store.flush();
    store.add(delta());
    const second = store.flush();
    const third = store.flush(); // shares the not-yet-started second flush
    expect(third).toBe(second);
    expect(await first).toMatchObject({ applied: 1 });
    expect(await second).toMatchObject({ applied: 1, pending: 0 });
    expect((await readAnalyticsRows(db.pool)).map((row) => row.model_calls)).toEqual([2]);
  });
});
