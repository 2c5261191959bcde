import { sql, type DatabasePool } from 'slonik';
import { ulid } from '../ids.js';
import { z } from 'zod';

/**
 * Sessions: refresh tokens (stored as SHA-256, grouped in families that rotation
 * keeps together) and the list of access tokens revoked before their expiry.
 */

const RotatedRow = z.object({ user_id: z.string(), family_id: z.string() });

const RefreshTokenStateRow = z.object({
  user_id: z.string(),
  family_id: z.string(),
  revoked_at: z.string().nullable(),
  replaced_by: z.string().nullable(),
  expired: z.boolean(),
  user_active: z.boolean(),
});

export type RotationResult =
  | { readonly ok: true; readonly userId: string; readonly familyId: string }
  | {
      readonly ok: false;
      /** `reused`: a rotated-out token came back, so its whole family was revoked. */
      readonly reason: 'unknown' | 'expired' | 'revoked' | 'reused' | 'user_inactive';
      readonly userId: string | null;
    };

export type SessionsRepository = ReturnType<typeof createSessionsRepository>;

export const createSessionsRepository = (pool: DatabasePool) => ({
  /** Stores a new refresh token; a new session when `familyId` is omitted. Returns the family id. */
  issueRefreshToken: async (input: { userId: string; tokenHash: string; ttlSeconds: number; familyId?: string }): Promise<string> => {
    const id = ulid();
    const familyId = input.familyId ?? id;
    await pool.query(sql.unsafe`
      INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at)
      VALUES (${id}, ${input.userId}, ${familyId}, ${input.tokenHash},
              now() + make_interval(secs => ${input.ttlSeconds}))`);
    return familyId;
  },

  /**
   * Exchanges a refresh token for a new one in the same family, atomically: of two
   * concurrent uses of one token, one wins and the other counts as reuse.
   */
  rotateRefreshToken: async (input: { tokenHash: string; newTokenHash: string; ttlSeconds: number }): Promise<RotationResult> =>
    pool.transaction(async (tx) => {
      const newId = ulid();
      const rotated = await tx.maybeOne(sql.type(RotatedRow)`
        UPDATE refresh_tokens t SET revoked_at = now(), replaced_by = ${newId}
        FROM users u
        WHERE t.token_hash = ${input.tokenHash} AND t.revoked_at IS NULL AND t.expires_at > now()
          AND u.id = t.user_id AND u.is_active
        RETURNING t.user_id, t.family_id`);
      if (rotated !== null) {
        await tx.query(sql.unsafe`
          INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at)
          VALUES (${newId}, ${rotated.user_id}, ${rotated.family_id}, ${input.newTokenHash},
                  now() + make_interval(secs => ${input.ttlSeconds}))`);
        return { ok: true, userId: rotated.user_id, familyId: rotated.family_id } as const;
      }
      const state = await tx.maybeOne(sql.type(RefreshTokenStateRow)`
        SELECT t.user_id, t.family_id, t.revoked_at, t.replaced_by, t.expires_at <= now() AS expired, u.is_active AS user_active
        FROM refresh_tokens t JOIN users u ON u.id = t.user_id
        WHERE t.token_hash = ${input.tokenHash}`);
      if (state === null) {
        return { ok: false, reason: 'unknown', userId: null } as const;
      }
      if (state.revoked_at !== null && state.replaced_by !== null) {
        await tx.query(sql.unsafe`
          UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = ${state.family_id} AND revoked_at IS NULL`);
        return { ok: false, reason: 'reused', userId: state.user_id } as const;
      }
      const reason = state.revoked_at !== null ? 'revoked' : state.expired ? 'expired' : 'user_inactive';
      return { ok: false, reason, userId: state.user_id } as const;
    }),

  /** Revokes every live refresh token of the given families that belong to the user. */
  revokeFamilies: async (userId: string, familyIds: readonly string[]): Promise<number> => {
    if (familyIds.length === 0) {
      return 0;
    }
    const result = await pool.query(sql.unsafe`
      UPDATE refresh_tokens SET revoked_at = now()
      WHERE user_id = ${userId} AND revoked_at IS NULL AND family_id = ANY(${sql.array(familyIds, 'text')})`);
    return result.rowCount;
  },

  /**
   * Ends every session of the user but `keepFamilyId` (a password change keeps the
   * caller's own; deactivation keeps none). Their access tokens are refused from then on.
   */
  revokeAllFamilies: async (userId: string, keepFamilyId?: string): Promise<number> => {
    const result = await pool.query(sql.unsafe`
      UPDATE refresh_tokens SET revoked_at = now()
      WHERE user_id = ${userId} AND revoked_at IS NULL
        ${keepFamilyId === undefined ? sql.fragment`` : sql.fragment`AND family_id <> ${keepFamilyId}`}`);
    return result.rowCount;
  },

  /** The family of a refresh token, if the token is the user's. */
  familyOfRefreshToken: async (userId: string, tokenHash: string): Promise<string | null> =>
    pool.maybeOneFirst(sql.type(z.object({ family_id: z.string() }))`
      SELECT family_id FROM refresh_tokens WHERE token_hash = ${tokenHash} AND user_id = ${userId}`),

  /** Lists an access token as revoked until it expires, and forgets entries already expired. */
  revokeAccessToken: async (input: { tokenId: string; userId: string; expiresAtEpochSeconds: number }): Promise<void> => {
    await pool.query(sql.unsafe`
      INSERT INTO revoked_access_tokens (jti, user_id, expires_at)
      VALUES (${input.tokenId}, ${input.userId}, to_timestamp(${input.expiresAtEpochSeconds}))
      ON CONFLICT (jti) DO NOTHING`);
    await pool.query(sql.unsafe`DELETE FROM revoked_access_tokens WHERE expires_at < now() - interval '5 minutes'`);
  },
});
