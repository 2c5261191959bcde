import type { Database } from '../db/database.js';
import type { LimitStore } from './limit-store.js';
import { createMemoryLimitStore } from './memory-limit-store.js';
import { createPostgresLimitStore } from './postgres-limit-store.js';
import { createRedisLimitStore } from './redis-limit-store.js';

/**
 * The store the limits are counted in: Redis when `REDIS_URL` is set; else PostgreSQL
 * when the database is a server (every instance on it shares the counts); memory only
 * for the embedded PGlite database, which belongs to one process.
 */
export const createLimitStore = (options: {
  readonly db: Pick<Database, 'kind' | 'pool'>;
  readonly redisUrl: string | undefined;
  readonly redisKeyPrefix: string;
}): LimitStore => {
  if (options.redisUrl !== undefined) {
    return createRedisLimitStore({ url: options.redisUrl, keyPrefix: options.redisKeyPrefix });
  }
  if (options.db.kind === 'postgres') {
    return createPostgresLimitStore({ pool: options.db.pool });
  }
  return createMemoryLimitStore();
};
