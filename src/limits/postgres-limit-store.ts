import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { sortedUnique, windowState, type LimitStore } from './limit-store.js';

const HitsRow = z.object({ key: z.string(), hits: z.array(z.number()) });
const CountRow = z.object({ n: z.number() });

/** How often expired counters and leases are deleted (one statement per instance). */
const SWEEP_INTERVAL_MS = 60_000;

/**
 * Limits counted in PostgreSQL (`migrations/0009_shared_limits.sql`), shared by every
 * instance on the database. A hit is one statement for all its windows: an upsert per
 * key whose row lock serialises concurrent hits on that key (keys are taken in sorted
 * order, so two multi-key hits cannot deadlock). A lease is a row taken under a per-key
 * advisory lock in one short transaction.
 */
export const createPostgresLimitStore = (options: { pool: DatabasePool; now?: () => number }): LimitStore => {
  const { pool } = options;
  const now = options.now ?? Date.now;

  const sweep = setInterval(() => {
    const at = now();
    void pool
      .query(sql.unsafe`DELETE FROM limit_windows WHERE expires_at_ms < ${at}`)
      .then(() => pool.query(sql.unsafe`DELETE FROM limit_leases WHERE expires_at_ms < ${at}`))
      .catch(() => {
        // The next sweep tries again; expired rows are ignored by every read meanwhile.
      });
  }, SWEEP_INTERVAL_MS);
  sweep.unref();

  return {
    kind: 'postgres',
    hit: async (specs, event) => {
      const unique = sortedUnique(specs);
      const rows = await pool.any(sql.type(HitsRow)`
        INSERT INTO limit_windows AS w (key, hits, window_ms, keep, expires_at_ms)
        SELECT t.key, ARRAY[${event.at}::int8], t.window_ms, t.keep, ${event.at}::int8 + t.window_ms
        FROM unnest(${sql.array(
          unique.map((spec) => spec.key),
          'text',
        )}::text[],
                    ${sql.array(
                      unique.map((spec) => spec.windowMs),
                      'int8',
                    )}::int8[],
                    ${sql.array(
                      unique.map((spec) => spec.limit + 1),
                      'int4',
                    )}::int4[]) AS t(key, window_ms, keep)
        ORDER BY t.key
        ON CONFLICT (key) DO UPDATE SET
          hits = (SELECT COALESCE(array_agg(h ORDER BY h), '{}'::int8[])
                  FROM (SELECT h FROM unnest(w.hits || excluded.hits) AS u(h)
                        WHERE h > excluded.hits[1] - excluded.window_ms
                        ORDER BY h DESC LIMIT excluded.keep) kept),
          window_ms = excluded.window_ms,
          keep = excluded.keep,
          expires_at_ms = GREATEST(w.expires_at_ms, excluded.expires_at_ms)
        RETURNING key, to_json(hits) AS hits`);
      const byKey = new Map(rows.map((row) => [row.key, row.hits]));
      return specs.map((spec) => windowState(byKey.get(spec.key) ?? [event.at], spec, event.at, true));
    },

    unhit: async (keys, event) => {
      if (keys.length === 0) return;
      // Removes one occurrence of the event's time (another event may share the millisecond).
      await pool.query(sql.unsafe`
        UPDATE limit_windows
        SET hits = COALESCE((SELECT array_agg(h ORDER BY i) FROM unnest(hits) WITH ORDINALITY AS u(h, i)
                             WHERE i <> array_position(hits, ${event.at}::int8)), '{}'::int8[])
        WHERE key = ANY(${sql.array([...new Set(keys)].sort(), 'text')}) AND ${event.at}::int8 = ANY(hits)`);
    },

    peek: async (spec, at) => {
      const hits = await pool.maybeOneFirst(sql.type(z.object({ hits: z.array(z.number()) }))`
        SELECT to_json(hits) AS hits FROM limit_windows WHERE key = ${spec.key}`);
      return windowState(hits ?? [], spec, at, false);
    },

    reset: async (keys) => {
      if (keys.length === 0) return;
      await pool.query(sql.unsafe`DELETE FROM limit_windows WHERE key = ANY(${sql.array([...keys], 'text')})`);
    },

    acquireLease: async (key, lease) =>
      pool.transaction(async (tx) => {
        await tx.query(sql.unsafe`SELECT pg_advisory_xact_lock(hashtextextended(${`limit_leases:${key}`}, 0))`);
        const held = await tx.oneFirst(sql.type(CountRow)`
          SELECT count(*)::int AS n FROM limit_leases WHERE key = ${key} AND expires_at_ms > ${lease.at}`);
        if (held >= lease.max) return false;
        await tx.query(sql.unsafe`
          INSERT INTO limit_leases (id, key, expires_at_ms) VALUES (${lease.id}, ${key}, ${lease.at + lease.ttlMs})`);
        return true;
      }),

    renewLeases: async (leases, until) => {
      if (leases.length === 0) return;
      await pool.query(sql.unsafe`
        UPDATE limit_leases SET expires_at_ms = ${until}
        WHERE id = ANY(${sql.array(
          leases.map((lease) => lease.id),
          'text',
        )})`);
    },

    releaseLease: async (_key, id) => {
      await pool.query(sql.unsafe`DELETE FROM limit_leases WHERE id = ${id}`);
    },

    close: async () => {
      clearInterval(sweep);
    },
  };
};
