import { sql, UniqueIntegrityConstraintViolationError, type DatabasePool } from 'slonik';
import { ulid } from '../ids.js';
import { z } from 'zod';
import { BudgetViewRow, userBudgetColumns, userBudgetJoin } from './budget-reservations-repository.js';

/** A user as the API shows it (never the password hash). */
export const UserRow = z.object({
  id: z.string(),
  email: z.string(),
  username: z.string(),
  full_name: z.string().nullable(),
  bio: z.string().nullable(),
  avatar_url: z.string().nullable(),
  phone_number: z.string().nullable(),
  is_active: z.boolean(),
  is_verified: z.boolean(),
  is_superuser: z.boolean(),
  default_llm_provider: z.string().nullable(),
  daily_message_limit: z.number().int().nullable(),
  monthly_message_limit: z.number().int().nullable(),
  /** The name of the user's newest active API key, if any. */
  api_key_name: z.string().nullable(),
  last_login_at: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type UserRow = z.infer<typeof UserRow>;

const UserCredentialsRow = z.object({
  id: z.string(),
  password_hash: z.string(),
  is_active: z.boolean(),
});
export type UserCredentialsRow = z.infer<typeof UserCredentialsRow>;

const TokenUserRow = z.object({
  id: z.string(),
  email: z.string(),
  username: z.string(),
  is_superuser: z.boolean(),
  is_active: z.boolean(),
  token_revoked: z.boolean(),
  /**
   * The token's session (refresh-token family): `live` while it has an unrevoked,
   * unexpired refresh token; `ended` after logout, replay detection, a password change or
   * deactivation; `foreign` when the family belongs to another user; `unknown` when none.
   */
  session: z.enum(['live', 'ended', 'foreign', 'unknown']),
  ...BudgetViewRow.shape,
});
export type TokenUserRow = z.infer<typeof TokenUserRow>;

export type NewUser = {
  readonly email: string;
  readonly username: string;
  readonly passwordHash: string;
  readonly fullName?: string | null | undefined;
  readonly bio?: string | null | undefined;
  readonly avatarUrl?: string | null | undefined;
  readonly phoneNumber?: string | null | undefined;
};

/** The email or the username is already taken (compared case-insensitively). */
export class UserExistsError extends Error {
  public constructor(options?: ErrorOptions) {
    super('a user with this email or username already exists', options);
    this.name = 'UserExistsError';
  }
}

const userColumns = sql.fragment`
  u.id, u.email, u.username, u.full_name, u.bio, u.avatar_url, u.phone_number, u.is_active, u.is_verified,
  u.is_superuser, u.default_llm_provider, u.daily_message_limit, u.monthly_message_limit,
  (SELECT k.name FROM api_keys k WHERE k.user_id = u.id AND k.revoked_at IS NULL
    ORDER BY k.created_at DESC, k.id DESC LIMIT 1) AS api_key_name,
  u.last_login_at, u.created_at, u.updated_at`;

export type UsersRepository = ReturnType<typeof createUsersRepository>;

/** Users: registration, login lookups and the per-request check of an access token. */
export const createUsersRepository = (pool: DatabasePool) => ({
  /** @throws UserExistsError when the email or username is taken. */
  create: async (user: NewUser): Promise<UserRow> => {
    const id = ulid();
    try {
      await pool.query(sql.unsafe`
        INSERT INTO users (id, email, username, password_hash, full_name, bio, avatar_url, phone_number)
        VALUES (${id}, ${user.email}, ${user.username}, ${user.passwordHash}, ${user.fullName ?? null},
                ${user.bio ?? null}, ${user.avatarUrl ?? null}, ${user.phoneNumber ?? null})`);
    } catch (error) {
      if (error instanceof UniqueIntegrityConstraintViolationError) {
        throw new UserExistsError({ cause: error });
      }
      throw error;
    }
    return pool.one(sql.type(UserRow)`SELECT ${userColumns} FROM users u WHERE u.id = ${id}`);
  },

  findById: async (id: string): Promise<UserRow | null> =>
    pool.maybeOne(sql.type(UserRow)`SELECT ${userColumns} FROM users u WHERE u.id = ${id}`),

  /** The credentials of the user with this email or username (case-insensitive). */
  findCredentials: async (by: { email: string } | { username: string }): Promise<UserCredentialsRow | null> =>
    'email' in by
      ? pool.maybeOne(sql.type(UserCredentialsRow)`
          SELECT id, password_hash, is_active FROM users WHERE lower(email) = lower(${by.email})`)
      : pool.maybeOne(sql.type(UserCredentialsRow)`
          SELECT id, password_hash, is_active FROM users WHERE lower(username) = lower(${by.username})`),

  /** Stamps a successful login; replaces the hash when it was rehashed with stronger parameters. */
  recordLogin: async (id: string, newPasswordHash?: string): Promise<void> => {
    await pool.query(sql.unsafe`
      UPDATE users
      SET last_login_at = now(), password_hash = COALESCE(${newPasswordHash ?? null}, password_hash)
      WHERE id = ${id}`);
  },

  /**
   * The user an access token names, whether that token was revoked and whether its
   * session still lives, in one query (run on every request: no cache, so an ended
   * session is refused by every instance at once).
   */
  findForAccessToken: async (userId: string, tokenId: string, sessionId: string): Promise<TokenUserRow | null> =>
    pool.maybeOne(sql.type(TokenUserRow)`
      SELECT u.id, u.email, u.username, u.is_superuser, u.is_active,
             EXISTS (SELECT 1 FROM revoked_access_tokens r WHERE r.jti = ${tokenId}) AS token_revoked,
             (SELECT CASE
                       WHEN count(*) = 0 THEN 'unknown'
                       WHEN bool_or(t.user_id <> u.id) THEN 'foreign'
                       WHEN bool_or(t.revoked_at IS NULL AND t.expires_at > now()) THEN 'live'
                       ELSE 'ended'
                     END
              FROM refresh_tokens t WHERE t.family_id = ${sessionId}) AS session
             , ${userBudgetColumns}
      FROM users u ${userBudgetJoin} WHERE u.id = ${userId}`),

  /** Updates the profile fields given (undefined: unchanged; null: cleared). @throws UserExistsError for a taken email. */
  updateProfile: async (
    id: string,
    fields: {
      readonly email?: string | undefined;
      readonly fullName?: string | null | undefined;
      readonly bio?: string | null | undefined;
      readonly avatarUrl?: string | null | undefined;
      readonly phoneNumber?: string | null | undefined;
      readonly defaultLlmProvider?: string | null | undefined;
    },
  ): Promise<UserRow | null> => {
    const sets = [
      fields.email === undefined ? null : sql.fragment`email = ${fields.email}`,
      fields.fullName === undefined ? null : sql.fragment`full_name = ${fields.fullName}`,
      fields.bio === undefined ? null : sql.fragment`bio = ${fields.bio}`,
      fields.avatarUrl === undefined ? null : sql.fragment`avatar_url = ${fields.avatarUrl}`,
      fields.phoneNumber === undefined ? null : sql.fragment`phone_number = ${fields.phoneNumber}`,
      fields.defaultLlmProvider === undefined ? null : sql.fragment`default_llm_provider = ${fields.defaultLlmProvider}`,
    ].filter((set) => set !== null);
    try {
      await pool.query(sql.unsafe`
        UPDATE users SET ${sql.join([...sets, sql.fragment`updated_at = now()`], sql.fragment`, `)} WHERE id = ${id}`);
    } catch (error) {
      if (error instanceof UniqueIntegrityConstraintViolationError) {
        throw new UserExistsError({ cause: error });
      }
      throw error;
    }
    return pool.maybeOne(sql.type(UserRow)`SELECT ${userColumns} FROM users u WHERE u.id = ${id}`);
  },

  /** The stored password hash of an active user. */
  passwordHashOf: async (id: string): Promise<string | null> =>
    pool.maybeOneFirst(sql.type(z.object({ password_hash: z.string() }))`
      SELECT password_hash FROM users WHERE id = ${id} AND is_active`),

  setPasswordHash: async (id: string, passwordHash: string): Promise<void> => {
    await pool.query(sql.unsafe`UPDATE users SET password_hash = ${passwordHash}, updated_at = now() WHERE id = ${id}`);
  },

  /** Deactivates the user (their data stays); true when the user was active. */
  deactivate: async (id: string): Promise<boolean> =>
    (await pool.query(sql.unsafe`UPDATE users SET is_active = false, updated_at = now() WHERE id = ${id} AND is_active`)).rowCount === 1,
});
