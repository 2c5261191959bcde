import { randomInt } from 'node:crypto';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { sql } from 'slonik';
import { ulid } from 'ulid';
import { z } from 'zod';
import { buildApp } from '../../src/app.js';
import type { AuthServices } from '../../src/auth/auth-services.js';
import { loadConfig, type Config } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, type TestDatabase } from './database.js';

/** A fixed secret so tests can sign their own (expired, tampered) tokens. */
export const TEST_JWT_SECRET = 'test-secret-0123456789-abcdefghijklmnopqrstuvwxyz';

export type TestApi = {
  readonly app: FastifyInstance;
  readonly db: TestDatabase;
  readonly config: Config;
  readonly close: () => Promise<void>;
};

/** The real app on a fresh database, driven with `app.inject()`. */
export const createTestApi = async (
  env: Record<string, string> = {},
  options: { auth?: (config: Config, db: TestDatabase) => AuthServices } = {},
): Promise<TestApi> => {
  const db = await createTestDatabase();
  const config = loadConfig({ CHATTER_ENV: 'test', LOG_LEVEL: 'silent', JWT_SECRET: TEST_JWT_SECRET, ...env });
  const app = await buildApp({
    config,
    db,
    logger: createLogger(config),
    ...(options.auth === undefined ? {} : { auth: options.auth(config, db) }),
  });
  return {
    app,
    db,
    config,
    close: async () => {
      await app.close();
      await db.drop();
    },
  };
};

export type RegisteredUser = {
  readonly id: string;
  readonly email: string;
  readonly username: string;
  readonly password: string;
  readonly accessToken: string;
  readonly refreshToken: string;
  readonly auth: { authorization: string };
};

/** Registers a new user through the API and returns its tokens. */
export const registerUser = async (
  app: FastifyInstance,
  fields: { password?: string; username?: string } = {},
): Promise<RegisteredUser> => {
  const suffix = ulid().toLowerCase().slice(-10);
  const username = fields.username ?? `user_${suffix}`;
  const email = `${username}@example.com`;
  const password = fields.password ?? 'correct horse battery staple';
  // From an address of its own: registrations are throttled per address, and tests register many users.
  const remoteAddress = `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`;
  const response = await app.inject({
    method: 'POST',
    url: '/api/v1/auth/register',
    payload: { email, username, password },
    remoteAddress,
  });
  if (response.statusCode !== 201) {
    throw new Error(`register failed: ${response.statusCode} ${response.body}`);
  }
  const body = response.json<{ access_token: string; refresh_token: string; user: { id: string } }>();
  return {
    id: body.user.id,
    email,
    username,
    password,
    accessToken: body.access_token,
    refreshToken: body.refresh_token,
    auth: { authorization: `Bearer ${body.access_token}` },
  };
};

/** `app.inject` with a bearer token. */
export const asUser =
  (app: FastifyInstance, user: { auth: { authorization: string } }) =>
  (options: InjectOptions): Promise<LightMyRequestResponse> =>
    app.inject({ ...options, headers: { ...options.headers, ...user.auth } });

export type SecurityEventRow = {
  type: string;
  user_id: string | null;
  correlation_id: string | null;
  data: Record<string, unknown>;
};

/** The `security` events written so far, oldest first. */
export const securityEvents = async (db: TestDatabase, type?: string): Promise<SecurityEventRow[]> => {
  const rows = await db.pool.any(
    sql.type(
      z.object({
        type: z.string(),
        user_id: z.string().nullable(),
        correlation_id: z.string().nullable(),
        data: z.record(z.string(), z.unknown()),
      }),
    )`
      SELECT type, user_id, correlation_id, data FROM events
      WHERE category = 'security' ${type === undefined ? sql.fragment`` : sql.fragment`AND type = ${type}`}
      ORDER BY id`,
  );
  return [...rows];
};
