import { ulid } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LimitStore } from '../../src/limits/limit-store.js';
import { createMemoryLimitStore } from '../../src/limits/memory-limit-store.js';
import { createPostgresLimitStore } from '../../src/limits/postgres-limit-store.js';
import { createRedisLimitStore } from '../../src/limits/redis-limit-store.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { redisAvailability } from '../helpers/redis.js';

const redis = await redisAvailability();

/** The same behaviour from each store: memory, PostgreSQL (or PGlite, the same SQL) and Redis. */
const stores: { name: string; skip?: string; make: (db: TestDatabase) => LimitStore }[] = [
  { name: 'memory', make: () => createMemoryLimitStore() },
  { name: 'postgres', make: (db) => createPostgresLimitStore({ pool: db.pool }) },
  {
    name: 'redis',
    ...(redis.url === undefined ? { skip: redis.reason } : {}),
    make: () => createRedisLimitStore({ url: redis.url ?? '', keyPrefix: `test:${ulid()}:` }),
  },
];

describe.each(stores)('$name limit store', ({ make, skip }) => {
  let db: TestDatabase;
  let store: LimitStore;
  beforeAll(async () => {
    if (skip !== undefined) return;
    db = await createTestDatabase();
    store = make(db);
  });
  afterAll(async () => {
    await store?.close();
    await db?.drop();
  });

  const event = (at: number) => ({ id: ulid(), at });
  const t0 = 1_800_000_000_000;

  it.skipIf(skip !== undefined)('counts events in a sliding window and says when the next one fits', async () => {
    const spec = { key: `w:${ulid()}`, windowMs: 60_000, limit: 3 };
    for (let index = 0; index < 3; index += 1) {
      const [state] = await store.hit([spec], event(t0 + index * 1000));
      expect(state).toMatchObject({ count: index + 1, retryAfterMs: 0, previousAt: index === 0 ? null : t0 + (index - 1) * 1000 });
    }
    const [over] = await store.hit([spec], event(t0 + 10_000));
    expect(over?.count).toBe(4);
    // The oldest (t0) leaves the window at t0 + 60 s.
    expect(over?.retryAfterMs).toBe(50_000);
    // Four in the window now: the next fits once two have left (t0 + 1 s leaves at t0 + 61 s).
    expect(await store.peek(spec, t0 + 10_000)).toMatchObject({ count: 4, retryAfterMs: 51_000 });
    // A minute after the first: it has left the window.
    expect((await store.peek(spec, t0 + 60_001)).count).toBe(3);
  });

  it.skipIf(skip !== undefined)('takes an event back, and resets a key', async () => {
    const spec = { key: `u:${ulid()}`, windowMs: 60_000, limit: 5 };
    const first = event(t0);
    const second = event(t0);
    await store.hit([spec], first);
    await store.hit([spec], second);
    await store.unhit([spec.key], second);
    expect((await store.peek(spec, t0 + 1)).count).toBe(1);
    await store.reset([spec.key]);
    expect((await store.peek(spec, t0 + 1)).count).toBe(0);
  });

  it.skipIf(skip !== undefined)('counts one event in several windows at once, and never more than limit + 1 per key', async () => {
    const minute = { key: `m:${ulid()}`, windowMs: 60_000, limit: 2 };
    const hour = { key: `h:${ulid()}`, windowMs: 3_600_000, limit: 100 };
    for (let index = 0; index < 5; index += 1) await store.hit([minute, hour], event(t0 + index));
    expect((await store.peek(minute, t0 + 10)).count).toBe(3);
    expect((await store.peek(hour, t0 + 10)).count).toBe(5);
  });

  it.skipIf(skip !== undefined)('sees every concurrent hit on one key', async () => {
    const spec = { key: `c:${ulid()}`, windowMs: 60_000, limit: 50 };
    const states = await Promise.all(Array.from({ length: 20 }, (_, index) => store.hit([spec], event(t0 + index))));
    expect(states.map((state) => state[0]?.count).sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it.skipIf(skip !== undefined)('grants at most max leases, frees released and lapsed ones', async () => {
    const key = `l:${ulid()}`;
    const lease = (id: string, at: number) => ({ id, max: 2, ttlMs: 30_000, at });
    const results = await Promise.all(['a', 'b', 'c', 'd'].map((id) => store.acquireLease(key, lease(`${key}:${id}`, t0))));
    expect(results.filter(Boolean)).toHaveLength(2);
    const holders = ['a', 'b', 'c', 'd'].filter((_, index) => results[index]);
    await store.releaseLease(key, `${key}:${holders[0]}`);
    expect(await store.acquireLease(key, lease(`${key}:e`, t0 + 1))).toBe(true);
    expect(await store.acquireLease(key, lease(`${key}:f`, t0 + 2))).toBe(false);
    // Renewed ones stay; the others lapse after their TTL.
    await store.renewLeases([{ key, id: `${key}:e` }], t0 + 90_000);
    expect(await store.acquireLease(key, lease(`${key}:g`, t0 + 60_000))).toBe(true);
    expect(await store.acquireLease(key, lease(`${key}:h`, t0 + 60_001))).toBe(false);
  });
});
