import { createHmac } from 'node:crypto';
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createAccessTokens } from '../../src/auth/access-tokens.js';
import { createTestApi, registerUser, securityEvents, TEST_JWT_SECRET, type RegisteredUser, type TestApi } from '../helpers/api.js';

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Flips one character of the signature (not the last, whose low bits base64url may ignore). */
const tamperSignature = (token: string): string => {
  const [header, payload, signature] = token.split('.') as [string, string, string];
  const index = 5;
  const flipped = signature[index] === 'A' ? 'B' : 'A';
  return `${header}.${payload}.${signature.slice(0, index)}${flipped}${signature.slice(index + 1)}`;
};

describe('app.authenticate', () => {
  let api: TestApi;
  let user: RegisteredUser;
  beforeAll(async () => {
    api = await createTestApi();
    user = await registerUser(api.app);
  });
  afterAll(async () => {
    await api.close();
  });

  const me = (authorization: string, headers: Record<string, string> = {}) =>
    api.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization, ...headers } });

  /** The newest token_rejected event. */
  const lastRejection = async () => (await securityEvents(api.db, 'token_rejected')).at(-1);

  it('accepts the access token the API issued', async () => {
    const response = await me(`Bearer ${user.accessToken}`);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ id: user.id });
  });

  it('refuses a token with one signature character flipped, and records token_rejected', async () => {
    const response = await me(`Bearer ${tamperSignature(user.accessToken)}`, { 'x-correlation-id': 'corr-tampered' });
    expect(response.statusCode).toBe(401);
    expect(response.json()).toEqual({ detail: 'Could not validate credentials', code: 'not_authenticated' });
    expect(await lastRejection()).toMatchObject({
      correlation_id: 'corr-tampered',
      // An unverified token names nobody: no user id is trusted from it.
      user_id: null,
      data: expect.objectContaining({ reason: 'bad_signature', ip: expect.any(String) }),
    });
  });

  it('refuses a token whose payload was changed to another user', async () => {
    const other = await registerUser(api.app);
    const [header, , signature] = user.accessToken.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(user.accessToken.split('.')[1] ?? '', 'base64url').toString()) as Record<string, unknown>;
    const forged = `${header}.${b64({ ...claims, sub: other.id })}.${signature}`;
    expect((await me(`Bearer ${forged}`)).statusCode).toBe(401);
    expect(await lastRejection()).toMatchObject({ data: expect.objectContaining({ reason: 'bad_signature' }) });
  });

  it('refuses an expired token signed with the right secret, naming its user in the event', async () => {
    const past = createAccessTokens({ secret: TEST_JWT_SECRET, ttlSeconds: 1800, now: () => Date.now() - 3600_000 });
    const { token } = past.sign({ userId: user.id, sessionId: 'some-session' });
    const response = await me(`Bearer ${token}`);
    expect(response.statusCode).toBe(401);
    expect(await lastRejection()).toMatchObject({ user_id: user.id, data: expect.objectContaining({ reason: 'expired' }) });
  });

  it('refuses a token signed with another secret', async () => {
    const foreign = createAccessTokens({ secret: 'another-secret-0123456789-abcdefghijklmnop', ttlSeconds: 1800 });
    expect((await me(`Bearer ${foreign.sign({ userId: user.id, sessionId: 's' }).token}`)).statusCode).toBe(401);
  });

  it('refuses alg=none and HS256 tokens with another header', async () => {
    const claims = user.accessToken.split('.')[1] ?? '';
    expect((await me(`Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${claims}.`)).statusCode).toBe(401);
    const header = b64({ typ: 'JWT', alg: 'HS256', kid: 'x' });
    const signature = createHmac('sha256', TEST_JWT_SECRET).update(`${header}.${claims}`).digest('base64url');
    expect((await me(`Bearer ${header}.${claims}.${signature}`)).statusCode).toBe(401);
  });

  it('refuses an unknown API key and records token_rejected', async () => {
    const response = await me('Bearer chk_thisKeyWasNeverIssuedToAnyoneAtAll0123456789');
    expect(response.statusCode).toBe(401);
    expect(await lastRejection()).toMatchObject({ user_id: null, data: expect.objectContaining({ reason: 'unknown_api_key' }) });
  });

  it('refuses other schemes and garbage', async () => {
    for (const authorization of ['Basic dXNlcjpwYXNz', 'Bearer', 'Bearer a b', 'Token abc', `bearer  ${'x'.repeat(20)}`]) {
      expect((await me(authorization)).statusCode, authorization).toBe(401);
    }
  });

  it('refuses the tokens of a deactivated user', async () => {
    const victim = await registerUser(api.app);
    await api.db.pool.query(sql.unsafe`UPDATE users SET is_active = false WHERE id = ${victim.id}`);
    expect((await me(victim.auth.authorization)).statusCode).toBe(401);
    expect(await lastRejection()).toMatchObject({ user_id: victim.id, data: expect.objectContaining({ reason: 'user_inactive' }) });
    const refresh = await api.app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refresh_token: victim.refreshToken } });
    expect(refresh.statusCode).toBe(401);
    const login = await api.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { username: victim.username, password: victim.password },
    });
    expect(login.statusCode).toBe(401);
  });

  it('writes each rejection to the events table as a security event', async () => {
    const count = await api.db.pool.oneFirst(
      sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM events WHERE category = 'security' AND type = 'token_rejected'`,
    );
    expect(count).toBeGreaterThanOrEqual(8);
  });
});
