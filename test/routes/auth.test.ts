import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { verifyPassword } from '../../src/auth/passwords.js';
import { asUser, createTestApi, registerUser, securityEvents, type TestApi } from '../helpers/api.js';
import { publishedApi, type OpenApiValidator } from '../helpers/openapi-validator.js';

type TokenBody = { access_token: string; refresh_token: string; token_type: string; expires_in: number; user: { id: string } };

describe('auth routes', () => {
  /** This service's own OpenAPI document: answers are checked against what it publishes. */
  let published: OpenApiValidator;
  let api: TestApi;
  beforeAll(async () => {
    api = await createTestApi();
    published = await publishedApi(api.app);
  });
  afterAll(async () => {
    await api.close();
  });

  const countUsers = async (): Promise<number> =>
    api.db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM users`);

  it('registers a user and answers 201 with the contract TokenResponse and a refresh cookie', async () => {
    const response = await api.app.inject({
      method: 'POST',
      url: '/api/v1/auth/register',
      payload: { email: 'Ada@Example.com', username: 'ada_l', password: 'analytical-engine', full_name: 'Ada Lovelace' },
    });
    expect(response.statusCode).toBe(201);
    const body = response.json<TokenBody & { user: Record<string, unknown> }>();
    expect(published.errors(published.responseSchemaOf('/api/v1/auth/register', 'post', '201'), body)).toEqual([]);
    expect(body).toMatchObject({
      token_type: 'bearer',
      expires_in: 1800,
      user: { username: 'ada_l', full_name: 'Ada Lovelace', is_superuser: false },
    });
    expect(body.user).not.toHaveProperty('password_hash');
    const cookie = response.cookies.find((c) => c.name === 'refresh_token');
    expect(cookie).toMatchObject({ value: body.refresh_token, httpOnly: true, sameSite: 'Strict', path: '/api/v1/auth' });
  });

  it('stores the password as a versioned scrypt hash that verifies, never in clear', async () => {
    const user = await registerUser(api.app, { password: 'my secret pass phrase' });
    const stored = await api.db.pool.oneFirst(
      sql.type(z.object({ password_hash: z.string() }))`SELECT password_hash FROM users WHERE id = ${user.id}`,
    );
    expect(stored).toMatch(/^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(stored).not.toContain('my secret pass phrase');
    expect(await verifyPassword('my secret pass phrase', stored)).toBe(true);
    expect(await verifyPassword('my secret pass phrasE', stored)).toBe(false);
  });

  it('refuses a taken email or username, compared case-insensitively, and stores nothing', async () => {
    const before = await countUsers();
    const sameEmail = await api.app.inject({
      method: 'POST',
      url: '/api/v1/auth/register',
      payload: { email: 'ada@example.COM', username: 'someone_else', password: 'a fine pass phrase' },
    });
    const sameUsername = await api.app.inject({
      method: 'POST',
      url: '/api/v1/auth/register',
      payload: { email: 'other@example.com', username: 'ADA_L', password: 'a fine pass phrase' },
    });
    expect(sameEmail.statusCode).toBe(409);
    expect(sameUsername.statusCode).toBe(409);
    expect(sameEmail.json()).toMatchObject({ detail: expect.any(String) });
    expect(await countUsers()).toBe(before);
  });

  it('logs in with the email, the username, or an email given as the username', async () => {
    const user = await registerUser(api.app);
    for (const credentials of [{ email: user.email.toUpperCase() }, { username: user.username }, { username: user.email }]) {
      const response = await api.app.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        payload: { ...credentials, password: user.password },
      });
      expect(response.statusCode, JSON.stringify(credentials)).toBe(200);
      const body = response.json<TokenBody>();
      expect(published.errors(published.responseSchemaOf('/api/v1/auth/login', 'post', '200'), body)).toEqual([]);
      expect(body.user.id).toBe(user.id);
      const me = await api.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization: `Bearer ${body.access_token}` } });
      expect(me.statusCode).toBe(200);
    }
    const me = await asUser(api.app, user)({ method: 'GET', url: '/api/v1/auth/me' });
    expect(me.json()).toMatchObject({ id: user.id, last_login_at: expect.any(String) });
  });

  it('records login_success with the address, user agent and correlation id, and never the password', async () => {
    const user = await registerUser(api.app, { password: 'do-not-log-me-please' });
    const response = await api.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      headers: { 'user-agent': 'auth-test/1.0', 'x-correlation-id': 'corr-login-1' },
      remoteAddress: '10.1.2.3',
      payload: { username: user.username, password: user.password },
    });
    expect(response.statusCode).toBe(200);
    const events = (await securityEvents(api.db, 'login_success')).filter((event) => event.user_id === user.id);
    expect(events).toEqual([
      {
        type: 'login_success',
        user_id: user.id,
        correlation_id: 'corr-login-1',
        data: expect.objectContaining({ ip: '10.1.2.3', user_agent: 'auth-test/1.0' }),
      },
    ]);
    const all = JSON.stringify(await securityEvents(api.db));
    expect(all).not.toContain('do-not-log-me-please');
    expect(all).not.toContain(response.json<TokenBody>().access_token);
  });

  it('answers a wrong password and an unknown user with the same 401 and records login_failed', async () => {
    const user = await registerUser(api.app);
    const wrong = await api.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { username: user.username, password: 'nope-nope' },
    });
    const unknown = await api.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { username: 'nobody_here', password: 'nope-nope' },
    });
    expect(wrong.statusCode).toBe(401);
    expect(unknown.statusCode).toBe(401);
    expect(wrong.json()).toEqual(unknown.json());
    expect(wrong.json()).toMatchObject({ detail: expect.any(String) });
    const failed = await securityEvents(api.db, 'login_failed');
    expect(failed).toContainEqual(expect.objectContaining({ user_id: user.id, data: expect.objectContaining({ reason: 'bad_password' }) }));
    expect(failed).toContainEqual(expect.objectContaining({ user_id: null, data: expect.objectContaining({ reason: 'unknown_user' }) }));
  });

  it('answers a login naming neither email nor username with 422', async () => {
    const response = await api.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { password: 'x' } });
    expect(response.statusCode).toBe(422);
    expect(response.json()).toEqual({ detail: [{ loc: ['body', 'email'], msg: expect.any(String), type: 'missing' }] });
  });

  it('answers /me with the contract UserResponse and 401 without a token', async () => {
    const user = await registerUser(api.app);
    const me = await asUser(api.app, user)({ method: 'GET', url: '/api/v1/auth/me' });
    expect(me.statusCode).toBe(200);
    expect(published.errors(published.responseSchemaOf('/api/v1/auth/me', 'get', '200'), me.json())).toEqual([]);
    expect(me.json()).toMatchObject({ id: user.id, email: user.email, username: user.username, is_active: true });
    const anonymous = await api.app.inject({ method: 'GET', url: '/api/v1/auth/me' });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers['www-authenticate']).toBe('Bearer');
    expect(anonymous.json()).toMatchObject({ detail: 'Not authenticated' });
  });

  it('refreshes with the cookie, rotates the token, and refuses the old one afterwards', async () => {
    const user = await registerUser(api.app);
    const first = await api.app.inject({ method: 'POST', url: '/api/v1/auth/refresh', cookies: { refresh_token: user.refreshToken } });
    expect(first.statusCode).toBe(200);
    const body = first.json<TokenBody>();
    expect(published.errors(published.responseSchemaOf('/api/v1/auth/refresh', 'post', '200'), body)).toEqual([]);
    expect(body.refresh_token).not.toBe(user.refreshToken);
    expect(first.cookies.find((c) => c.name === 'refresh_token')?.value).toBe(body.refresh_token);
    const me = await api.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization: `Bearer ${body.access_token}` } });
    expect(me.json()).toMatchObject({ id: user.id });

    const replay = await api.app.inject({ method: 'POST', url: '/api/v1/auth/refresh', cookies: { refresh_token: user.refreshToken } });
    expect(replay.statusCode).toBe(401);
    expect(await securityEvents(api.db, 'token_rejected')).toContainEqual(
      expect.objectContaining({ user_id: user.id, data: expect.objectContaining({ reason: 'refresh_reused' }) }),
    );
    // A replayed token means it leaked: the whole session ends, the newest token included.
    const next = await api.app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refresh_token: body.refresh_token } });
    expect(next.statusCode).toBe(401);
  });

  it('refreshes with the token in the body, and refuses a missing or unknown one', async () => {
    const user = await registerUser(api.app);
    const ok = await api.app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refresh_token: user.refreshToken } });
    expect(ok.statusCode).toBe(200);
    const again = await api.app.inject({
      method: 'POST',
      url: '/api/v1/auth/refresh',
      payload: { refresh_token: ok.json<TokenBody>().refresh_token },
    });
    expect(again.statusCode).toBe(200);
    const missing = await api.app.inject({ method: 'POST', url: '/api/v1/auth/refresh' });
    expect(missing.statusCode).toBe(401);
    const unknown = await api.app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refresh_token: 'chr_not-a-token' } });
    expect(unknown.statusCode).toBe(401);
  });

  it('stores refresh tokens only as hashes', async () => {
    const user = await registerUser(api.app);
    const hashes = await api.db.pool.anyFirst(
      sql.type(z.object({ token_hash: z.string() }))`SELECT token_hash FROM refresh_tokens WHERE user_id = ${user.id}`,
    );
    expect(hashes).toHaveLength(1);
    expect(hashes[0]).toMatch(/^[0-9a-f]{64}$/);
    expect(hashes).not.toContain(user.refreshToken);
  });

  it('logs out: the refresh token and the access token are refused afterwards, other sessions live on', async () => {
    const user = await registerUser(api.app);
    const otherSession = await api.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { username: user.username, password: user.password },
    });
    const other = otherSession.json<TokenBody>();

    const logout = await api.app.inject({
      method: 'POST',
      url: '/api/v1/auth/logout',
      headers: user.auth,
      cookies: { refresh_token: user.refreshToken },
    });
    expect(logout.statusCode).toBe(200);
    expect(published.errors(published.responseSchemaOf('/api/v1/auth/logout', 'post', '200'), logout.json())).toEqual([]);
    expect(logout.cookies.find((c) => c.name === 'refresh_token')?.value).toBe('');

    const me = await asUser(api.app, user)({ method: 'GET', url: '/api/v1/auth/me' });
    expect(me.statusCode).toBe(401);
    const refresh = await api.app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refresh_token: user.refreshToken } });
    expect(refresh.statusCode).toBe(401);
    expect(await securityEvents(api.db, 'logout')).toContainEqual(expect.objectContaining({ user_id: user.id }));
    expect(await securityEvents(api.db, 'token_rejected')).toContainEqual(
      expect.objectContaining({ user_id: user.id, data: expect.objectContaining({ reason: 'revoked' }) }),
    );

    const otherMe = await api.app.inject({
      method: 'GET',
      url: '/api/v1/auth/me',
      headers: { authorization: `Bearer ${other.access_token}` },
    });
    expect(otherMe.statusCode).toBe(200);
    const otherRefresh = await api.app.inject({
      method: 'POST',
      url: '/api/v1/auth/refresh',
      payload: { refresh_token: other.refresh_token },
    });
    expect(otherRefresh.statusCode).toBe(200);
  });

  it('refuses a logout without a token', async () => {
    const response = await api.app.inject({ method: 'POST', url: '/api/v1/auth/logout' });
    expect(response.statusCode).toBe(401);
  });
});
