import { sql, type DatabasePool } from 'slonik';
import { ulid } from '../ids.js';
import { z } from 'zod';
import { BudgetViewRow, userBudgetColumns, userBudgetJoin } from './budget-reservations-repository.js';

export const ApiKeyRow = z.object({
  id: z.string(),
  user_id: z.string(),
  name: z.string(),
  key_prefix: z.string(),
  created_at: z.string(),
  last_used_at: z.string().nullable(),
  revoked_at: z.string().nullable(),
});
export type ApiKeyRow = z.infer<typeof ApiKeyRow>;

const ApiKeyOwnerRow = z.object({
  key_id: z.string(),
  last_used_at: z.string().nullable(),
  id: z.string(),
  email: z.string(),
  username: z.string(),
  is_superuser: z.boolean(),
  is_active: z.boolean(),
  ...BudgetViewRow.shape,
});
export type ApiKeyOwnerRow = z.infer<typeof ApiKeyOwnerRow>;

/** The user already holds the maximum number of active keys. */
export class TooManyApiKeysError extends Error {
  public constructor(limit: number) {
    super(`at most ${limit} active API keys per user`);
    this.name = 'TooManyApiKeysError';
  }
}

/** `last_used_at` is written at most this often per key, not on every request. */
const LAST_USED_RESOLUTION = sql.fragment`interval '1 minute'`;

export type ApiKeysRepository = ReturnType<typeof createApiKeysRepository>;

/** API keys, stored as a SHA-256 of the key and a short prefix (see src/auth/opaque-tokens.ts). */
export const createApiKeysRepository = (pool: DatabasePool, options: { maxActivePerUser?: number } = {}) => {
  const maxActive = options.maxActivePerUser ?? 25;
  return {
    /** @throws TooManyApiKeysError */
    create: async (key: { userId: string; name: string; hash: string; prefix: string }): Promise<ApiKeyRow> =>
      pool.transaction(async (tx) => {
        // Serialises concurrent creations for one user so the limit holds.
        await tx.query(sql.unsafe`SELECT id FROM users WHERE id = ${key.userId} FOR UPDATE`);
        const active = await tx.oneFirst(sql.type(z.object({ n: z.number() }))`
          SELECT count(*)::int AS n FROM api_keys WHERE user_id = ${key.userId} AND revoked_at IS NULL`);
        if (active >= maxActive) {
          throw new TooManyApiKeysError(maxActive);
        }
        return tx.one(sql.type(ApiKeyRow)`
          INSERT INTO api_keys (id, user_id, name, key_hash, key_prefix)
          VALUES (${ulid()}, ${key.userId}, ${key.name}, ${key.hash}, ${key.prefix})
          RETURNING id, user_id, name, key_prefix, created_at, last_used_at, revoked_at`);
      }),

    /** The user's active keys, newest first. */
    listActive: async (userId: string): Promise<readonly ApiKeyRow[]> =>
      pool.any(sql.type(ApiKeyRow)`
        SELECT id, user_id, name, key_prefix, created_at, last_used_at, revoked_at
        FROM api_keys WHERE user_id = ${userId} AND revoked_at IS NULL
        ORDER BY created_at DESC, id DESC`),

    /** The owner of an active key with this hash. */
    findActiveOwner: async (keyHash: string): Promise<ApiKeyOwnerRow | null> =>
      pool.maybeOne(sql.type(ApiKeyOwnerRow)`
        SELECT k.id AS key_id, k.last_used_at, u.id, u.email, u.username, u.is_superuser, u.is_active, ${userBudgetColumns}
        FROM api_keys k JOIN users u ON u.id = k.user_id ${userBudgetJoin}
        WHERE k.key_hash = ${keyHash} AND k.revoked_at IS NULL`),

    touch: async (keyId: string): Promise<void> => {
      await pool.query(sql.unsafe`
        UPDATE api_keys SET last_used_at = now()
        WHERE id = ${keyId} AND (last_used_at IS NULL OR last_used_at < now() - ${LAST_USED_RESOLUTION})`);
    },

    /** Revokes one of the user's keys, or all of them; returns the revoked rows. */
    revoke: async (userId: string, keyId?: string): Promise<readonly ApiKeyRow[]> =>
      pool.any(sql.type(ApiKeyRow)`
        UPDATE api_keys SET revoked_at = now()
        WHERE user_id = ${userId} AND revoked_at IS NULL ${keyId === undefined ? sql.fragment`` : sql.fragment`AND id = ${keyId}`}
        RETURNING id, user_id, name, key_prefix, created_at, last_used_at, revoked_at`),
  };
};
