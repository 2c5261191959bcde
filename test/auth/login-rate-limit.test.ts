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

  it('never refuses the right password from a new address, however many failures others made', async () => {
    const user = await registerUser(api.app);
    for (let attempt = 0; attempt < 15; attempt += 1) {
      // A stranger spreading guesses over addresses: each address's first guess is a plain 401.
      expect((await login({ username: user.username, password: 'wrong-guess' }, `10.0.1.${attempt}`)).statusCode).toBe(401);
    }
    expect((await login({ username: user.username, password: user.password }, '10.0.1.99')).statusCode).toBe(200);
    expect((await login({ email: user.email, password: user.password }, '10.0.1.98')).statusCode).toBe(200);
  });

  it('slows an address that keeps failing on an account with an exponential back-off, with Retry-After', async () => {
    const user = await registerUser(api.app);
    const ip = '10.0.5.1';
    for (let attempt = 0; attempt < 5; attempt += 1) {
      expect((await login({ username: user.username, password: 'wrong-guess' }, ip)).statusCode).toBe(401);
    }
    // 5 failures on the account: this address now waits 1 s, then 2 s, 4 s, … after its last failure.
    const delays: number[] = [];
    for (let step = 0; step < 4; step += 1) {
      const refused = await login({ username: user.username, password: user.password }, ip);
      expect(refused.statusCode).toBe(429);
      expect(refused.json()).toMatchObject({ detail: expect.stringContaining('Too many failed login attempts'), code: 'rate_limited' });
      const retryAfter = Number(refused.headers['retry-after']);
      delays.push(retryAfter);
      now += retryAfter * 1000;
      expect((await login({ username: user.username, password: 'wrong-again' }, ip)).statusCode).toBe(401);
    }
    expect(delays).toEqual([1, 2, 4, 8]);
    expect(await securityEvents(api.db, 'rate_limited')).toContainEqual(
      expect.objectContaining({
        user_id: user.id,
        data: expect.objectContaining({ reason: 'login_failures_per_account', ip, retry_after_seconds: 1 }),
      }),
    );
    // Another address with the right password is not held back at all.
    expect((await login({ username: user.username, password: user.password }, '10.0.5.2')).statusCode).toBe(200);
  });

  it('clears an account’s failures on a successful login', async () => {
    const user = await registerUser(api.app);
    for (let round = 0; round < 2; round += 1) {
      for (let attempt = 0; attempt < 5; attempt += 1) {
        expect((await login({ username: user.username, password: 'wrong-guess' }, '10.0.2.1')).statusCode).toBe(401);
      }
      now += 1000;
      expect((await login({ username: user.username, password: user.password }, '10.0.2.1')).statusCode).toBe(200);
    }
  });

  it('blocks an address after 20 failures across accounts, and only that address', async () => {
    const user = await registerUser(api.app);
    for (let attempt = 0; attempt < 20; attempt += 1) {
      expect((await login({ username: `nobody_${attempt}`, password: 'guess' }, '10.0.3.7')).statusCode).toBe(401);
    }
    const blocked = await login({ username: user.username, password: user.password }, '10.0.3.7');
    expect(blocked.statusCode).toBe(429);
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(800);
    expect(await securityEvents(api.db, 'rate_limited')).toContainEqual(
      expect.objectContaining({ user_id: null, data: expect.objectContaining({ reason: 'login_failures_per_ip', ip: '10.0.3.7' }) }),
    );
    expect((await login({ username: user.username, password: user.password }, '10.0.3.8')).statusCode).toBe(200);
    now += 15 * 60 * 1000 + 1000;
    expect((await login({ username: user.username, password: user.password }, '10.0.3.7')).statusCode).toBe(200);
  });

  it('counts concurrent guesses: a burst from one address cannot slip past the account limit', async () => {
    const user = await registerUser(api.app);
    const responses = await Promise.all(
      Array.from({ length: 12 }, (_, index) => login({ username: user.username, password: `guess-${index}` }, '10.0.4.1')),
    );
    const statuses = responses.map((response) => response.statusCode);
    expect(statuses.filter((status) => status === 401)).toHaveLength(5);
    expect(statuses.filter((status) => status === 429)).toHaveLength(7);
  });
});

describe('registration limits', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await createTestApi({ REGISTER_MAX_PER_IP: '6', REGISTER_MAX_PER_EMAIL: '3' });
  });
  afterAll(async () => {
    await api.close();
  });

  const register = (email: string, username: string, ip: string) =>
    api.app.inject({
      method: 'POST',
      url: '/api/v1/auth/register',
      payload: { email, username, password: 'a fine pass phrase' },
      remoteAddress: ip,
    });

  it('throttles attempts on one email (a taken one included) from any address: 409s turn into 429', async () => {
    const taken = await registerUser(api.app);
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 5; attempt += 1) {
      statuses.push((await register(taken.email, `probe_${attempt}`, `10.9.0.${attempt}`)).statusCode);
    }
    expect(statuses).toEqual([409, 409, 429, 429, 429]);
    expect(await securityEvents(api.db, 'rate_limited')).toContainEqual(
      expect.objectContaining({ data: expect.objectContaining({ reason: 'register_per_email' }) }),
    );
  });

  it('throttles registrations per address', async () => {
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 8; attempt += 1) {
      statuses.push((await register(`ip_${attempt}@example.com`, `ip_user_${attempt}`, '10.9.1.1')).statusCode);
    }
    expect(statuses).toEqual([201, 201, 201, 201, 201, 201, 429, 429]);
    const refused = await register('ip_last@example.com', 'ip_last', '10.9.1.1');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(3000);
    expect((await register('ip_other@example.com', 'ip_other', '10.9.1.2')).statusCode).toBe(201);
  });
});
