import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuthServices } from '../../src/auth/auth-services.js';
import { createTestApi, registerUser, securityEvents, type TestApi } from '../helpers/api.js';

describe('failed-login limits', () => {
  let api: TestApi;
  let now = Date.now();
  beforeAll(async () => {
    api = await createTestApi({}, { auth: (config, db) => createAuthServices({ config: config.auth, pool: db.pool, now: () => now }) });
  });
  afterAll(async () => {
    await api.close();
  });

  const login = (payload: Record<string, string>, ip: string) =>
    api.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload, remoteAddress: ip });

  it('locks an account after 5 failures in 15 minutes, even for the right password, with Retry-After', async () => {
    const user = await registerUser(api.app);
    for (let attempt = 0; attempt < 5; attempt += 1) {
      // Each from another address: the account limit does not depend on where guesses come from.
      expect((await login({ username: user.username, password: 'wrong-guess' }, `10.0.1.${attempt}`)).statusCode).toBe(401);
    }
    const locked = await login({ username: user.username, password: user.password }, '10.0.1.99');
    expect(locked.statusCode).toBe(429);
    expect(locked.json()).toMatchObject({ detail: expect.stringContaining('Too many failed login attempts'), code: 'rate_limited' });
    const retryAfter = Number(locked.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(800);
    expect(retryAfter).toBeLessThanOrEqual(900);
    // By email too: the limit is on the account, not on the name used.
    expect((await login({ email: user.email, password: user.password }, '10.0.1.98')).statusCode).toBe(429);

    expect(await securityEvents(api.db, 'rate_limited')).toContainEqual(
      expect.objectContaining({
        user_id: user.id,
        data: expect.objectContaining({ reason: 'login_failures_per_account', ip: '10.0.1.99', retry_after_seconds: retryAfter }),
      }),
    );

    now += 15 * 60 * 1000 + 1000;
    expect((await login({ username: user.username, password: user.password }, '10.0.1.99')).statusCode).toBe(200);
  });

  it('clears an account’s failures on a successful login', async () => {
    const user = await registerUser(api.app);
    for (let attempt = 0; attempt < 4; attempt += 1) {
      expect((await login({ username: user.username, password: 'wrong-guess' }, '10.0.2.1')).statusCode).toBe(401);
    }
    expect((await login({ username: user.username, password: user.password }, '10.0.2.1')).statusCode).toBe(200);
    for (let attempt = 0; attempt < 4; attempt += 1) {
      expect((await login({ username: user.username, password: 'wrong-guess' }, '10.0.2.1')).statusCode).toBe(401);
    }
    expect((await login({ username: user.username, password: user.password }, '10.0.2.1')).statusCode).toBe(200);
  });

  it('blocks an address after 20 failures across accounts, and only that address', async () => {
    const user = await registerUser(api.app);
    for (let attempt = 0; attempt < 20; attempt += 1) {
      expect((await login({ username: `nobody_${attempt}`, password: 'guess' }, '10.0.3.7')).statusCode).toBe(401);
    }
    const blocked = await login({ username: user.username, password: user.password }, '10.0.3.7');
    expect(blocked.statusCode).toBe(429);
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    expect(await securityEvents(api.db, 'rate_limited')).toContainEqual(
      expect.objectContaining({ user_id: null, data: expect.objectContaining({ reason: 'login_failures_per_ip', ip: '10.0.3.7' }) }),
    );
    expect((await login({ username: user.username, password: user.password }, '10.0.3.8')).statusCode).toBe(200);
  });

  it('counts concurrent guesses: a burst cannot slip past the account limit', async () => {
    const user = await registerUser(api.app);
    const responses = await Promise.all(
      Array.from({ length: 12 }, (_, index) => login({ username: user.username, password: `guess-${index}` }, `10.0.4.${index}`)),
    );
    const statuses = responses.map((response) => response.statusCode);
    expect(statuses.filter((status) => status === 401)).toHaveLength(5);
    expect(statuses.filter((status) => status === 429)).toHaveLength(7);
  });
});
