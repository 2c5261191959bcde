import { Redis } from 'ioredis';
import { windowState, type LimitStore } from './limit-store.js';

/**
 * One script for all the windows of a hit: per key, drop events that left the window,
 * add this one (member: the event id, score: its time), keep the newest `keep`, renew
 * the key's TTL, and answer the scores. Scripts run atomically in Redis.
 */
const HIT = `
local at = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[1 + 2 * i])
  local keep = tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', at - window)
  redis.call('ZADD', key, at, ARGV[2])
  local n = redis.call('ZCARD', key)
  if n > keep then redis.call('ZREMRANGEBYRANK', key, 0, n - keep - 1) end
  redis.call('PEXPIRE', key, window)
  local scores = {}
  local pairs = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
  for j = 2, #pairs, 2 do scores[#scores + 1] = pairs[j] end
  out[i] = scores
end
return out`;

/** Count the live leases, take one if there is room. ARGV: now, max, lease id, until, ttl. */
const ACQUIRE = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1`;

type Scripted = Redis & {
  chatterLimitHit: (...args: (string | number)[]) => Promise<string[][]>;
  chatterLeaseAcquire: (...args: (string | number)[]) => Promise<number>;
};

/**
 * Limits counted in Redis (`REDIS_URL`): a sorted set of event times per window key, a
 * sorted set of lease expiries per stream key, every key under `keyPrefix` and with a
 * TTL, so nothing outlives its window. A command is retried once at most when Redis is
 * unreachable: a limited request then fails (503) rather than waits.
 */
export const createRedisLimitStore = (options: { url: string; keyPrefix: string }): LimitStore => {
  const redis = new Redis(options.url, {
    lazyConnect: false,
    enableOfflineQueue: true,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
  }) as Scripted;
  // Errors reach the callers of each command; the client reconnects on its own.
  redis.on('error', () => {});
  redis.defineCommand('chatterLimitHit', { lua: HIT });
  redis.defineCommand('chatterLeaseAcquire', { numberOfKeys: 1, lua: ACQUIRE });
  const prefixed = (key: string): string => `${options.keyPrefix}${key}`;
  /** The longest lease TTL seen, for the lease key's own expiry on renewal. */
  let leaseTtlMs = 60_000;

  return {
    kind: 'redis',
    hit: async (specs, event) => {
      const args = specs.flatMap((spec) => [spec.windowMs, spec.limit + 1]);
      const result = await redis.chatterLimitHit(specs.length, ...specs.map((spec) => prefixed(spec.key)), event.at, event.id, ...args);
      return specs.map((spec, index) => windowState((result[index] ?? []).map(Number), spec, event.at, true));
    },
    unhit: async (keys, event) => {
      if (keys.length === 0) return;
      const pipeline = redis.pipeline();
      for (const key of keys) pipeline.zrem(prefixed(key), event.id);
      await pipeline.exec();
    },
    peek: async (spec, at) => {
      const scores = await redis.zrangebyscore(prefixed(spec.key), `(${at - spec.windowMs}`, '+inf', 'WITHSCORES');
      return windowState(scores.filter((_, index) => index % 2 === 1).map(Number), spec, at, false);
    },
    reset: async (keys) => {
      if (keys.length === 0) return;
      await redis.del(...keys.map(prefixed));
    },
    acquireLease: async (key, lease) => {
      leaseTtlMs = Math.max(leaseTtlMs, lease.ttlMs);
      const taken = await redis.chatterLeaseAcquire(prefixed(key), lease.at, lease.max, lease.id, lease.at + lease.ttlMs, lease.ttlMs);
      return taken === 1;
    },
    renewLeases: async (leases, until) => {
      if (leases.length === 0) return;
      const pipeline = redis.pipeline();
      for (const lease of leases) {
        pipeline.zadd(prefixed(lease.key), 'XX', until, lease.id);
        pipeline.pexpire(prefixed(lease.key), leaseTtlMs);
      }
      await pipeline.exec();
    },
    releaseLease: async (key, id) => {
      await redis.zrem(prefixed(key), id);
    },
    close: async () => {
      redis.disconnect();
    },
  };
};
