import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ulid } from 'ulid';
import { openDatabase } from '../src/db/database.js';
import { loadMigrations, migrate } from '../src/db/migrations.js';
import { createChatRateLimiter } from '../src/limits/chat-rate-limit.js';
import type { LimitStore } from '../src/limits/limit-store.js';
import { createMemoryLimitStore } from '../src/limits/memory-limit-store.js';
import { createPostgresLimitStore } from '../src/limits/postgres-limit-store.js';
import { createRedisLimitStore } from '../src/limits/redis-limit-store.js';
import { StreamLeases } from '../src/limits/stream-leases.js';
import {
  createBenchDatabase,
  DEFAULT_ADMIN_URL,
  describeMachine,
  log,
  onCleanup,
  percentile,
  positiveInt,
  round,
  runMain,
} from './http-support.js';

/**
 * What a shared limit costs per request: the chat rate limiter (two windows, one round
 * trip) and a stream lease (acquire + release), timed call by call against each store:
 * memory, PostgreSQL (a fresh database on --database-url) and Redis (--redis-url).
 * Sequential calls give the latency one request pays; --concurrency calls in flight give
 * the throughput an instance can limit. Target: the limiter's median below 2 ms on
 * PostgreSQL and Redis, sequential (p99 is reported; on a shared machine it is noise).
 */
const { values: flags } = parseArgs({
  options: {
    'database-url': { type: 'string' },
    'redis-url': { type: 'string', default: 'redis://127.0.0.1:6379' },
    requests: { type: 'string', default: '500' },
    concurrency: { type: 'string', default: '20' },
    quick: { type: 'boolean', default: false },
  },
});
const requests = flags.quick ? 100 : positiveInt('requests', flags.requests);
const concurrency = positiveInt('concurrency', flags.concurrency);
const TARGET_P50_MS = 2;

type Figures = { p50_ms: number; p99_ms: number; mean_ms: number };
const figures = (samples: number[]): Figures => ({
  p50_ms: round(percentile(samples, 50), 3),
  p99_ms: round(percentile(samples, 99), 3),
  mean_ms: round(samples.reduce((sum, value) => sum + value, 0) / samples.length, 3),
});

const measure = async (store: LimitStore) => {
  // The defaults (30 per minute, 600 per hour) over 50 users, none of them refused.
  const typical = createChatRateLimiter({ store, limits: { chatPerMinute: 30, streamingPerMinute: 20, perHour: 600 } });
  const run = ulid();
  for (let index = 0; index < 20; index += 1) await typical.take(`warm-${run}-${index}`, false);
  const sequential: number[] = [];
  for (let index = 0; index < requests; index += 1) {
    const start = performance.now();
    const verdict = await typical.take(`bench-${run}-${index % 50}`, index % 2 === 0);
    sequential.push(performance.now() - start);
    if (!verdict.allowed) throw new Error('limiter refused a request under its limit');
  }
  // One user with a full hour window: every hit rewrites up to `requests` event times.
  const heavy = createChatRateLimiter({ store, limits: { chatPerMinute: 1e9, streamingPerMinute: 1e9, perHour: requests + 50 } });
  const user = `heavy-${run}`;
  const heavySamples: number[] = [];
  for (let index = 0; index < requests; index += 1) {
    const start = performance.now();
    await heavy.take(user, false);
    heavySamples.push(performance.now() - start);
  }
  // Many users at once, as a busy instance sees them.
  const concurrentStart = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (next < requests) {
        next += 1;
        await typical.take(`conc-${run}-${worker}-${next % 50}`, false);
      }
    }),
  );
  const concurrentSeconds = (performance.now() - concurrentStart) / 1000;

  const leases = new StreamLeases({ store });
  const leaseSamples: number[] = [];
  for (let index = 0; index < Math.min(requests, 200); index += 1) {
    const start = performance.now();
    const lease = await leases.acquire(`bench-stream-${user}`, 5);
    await lease?.release();
    leaseSamples.push(performance.now() - start);
  }
  await leases.close();
  return {
    chat_limiter_sequential: figures(sequential),
    chat_limiter_full_hour_window: figures(heavySamples),
    chat_limiter_concurrent_per_s: round(requests / concurrentSeconds, 0),
    stream_lease_open_close: figures(leaseSamples),
  };
};

runMain(async () => {
  const adminUrl = flags['database-url'] ?? DEFAULT_ADMIN_URL;
  const bench = await createBenchDatabase(adminUrl, 'limits');
  await migrate(bench.db.pool, await loadMigrations());
  const db = await openDatabase({ url: bench.url, dataDir: 'memory://', poolSize: 10 });
  onCleanup(() => db.close());

  const results: Record<string, unknown> = {};
  log(`memory: ${requests} limiter calls`);
  results['memory'] = await measure(createMemoryLimitStore());
  log(`postgres (${bench.version.split(' ').slice(0, 2).join(' ')}): ${requests} limiter calls`);
  const postgres = createPostgresLimitStore({ pool: db.pool });
  results['postgres'] = await measure(postgres);
  await postgres.close();
  const redisUrl = flags['redis-url'] ?? '';
  try {
    const redis = createRedisLimitStore({ url: redisUrl, keyPrefix: `bench:${ulid()}:` });
    onCleanup(() => redis.close());
    log(`redis (${redisUrl}): ${requests} limiter calls`);
    results['redis'] = await measure(redis);
  } catch (error) {
    log(`redis skipped: ${error instanceof Error ? error.message : String(error)}`);
    results['redis'] = null;
  }
  const p50s = ['postgres', 'redis']
    .map((name) => (results[name] as { chat_limiter_sequential: Figures } | null)?.chat_limiter_sequential.p50_ms)
    .filter((value): value is number => value !== undefined);
  const met = p50s.every((p50) => p50 < TARGET_P50_MS);
  for (const [name, value] of Object.entries(results)) log(`${name}: ${JSON.stringify(value)}`);
  log(`target: chat limiter median < ${TARGET_P50_MS} ms on postgres and redis: ${met ? 'met' : 'MISSED'}`);
  return {
    met,
    summary: {
      benchmark: 'limits',
      requests,
      concurrency,
      target_p50_ms: TARGET_P50_MS,
      met,
      machine: describeMachine(bench.version),
      ...results,
    },
  };
});
