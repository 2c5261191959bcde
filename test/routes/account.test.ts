import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { asUser, createTestApi, registerUser, securityEvents, type RegisteredUser, type TestApi } from '../helpers/api.js';
import { fullContractErrors, fullContractMissing } from '../helpers/full-contract.js';

type Tokens = { access_token: string; refresh_token: string };

describe.skipIf(fullContractMissing !== undefined)('account routes (PUT /me, change-password, DELETE /account)', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await createTestApi();
  });
  afterAll(async () => {
    await api.close();
  });

  const me = (token: string) => api.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization: `Bearer ${token}` } });
  const login = (user: { username: string }, password: string) =>
    api.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { username: user.username, password },
      remoteAddress: '10.77.0.1',
    });
  const secondSession = async (user: RegisteredUser): Promise<Tokens> => (await login(user, user.password)).json<Tokens>();

  it('updates the fields given, clears those sent as null, and answers the contract UserResponse', async () => {
    const user = await registerUser(api.app);
    const put = asUser(api.app, user);
    const first = await put({
      method: 'PUT',
      url: '/api/v1/auth/me',
      payload: { full_name: 'Ada Lovelace', bio: 'Engines', default_llm_provider: 'openai' },
    });
    expect(first.statusCode).toBe(200);
    expect(fullContractErrors('UserResponse', first.json())).toEqual([]);
    expect(first.json()).toMatchObject({ full_name: 'Ada Lovelace', bio: 'Engines', default_llm_provider: 'openai', email: user.email });
    const second = await put({ method: 'PUT', url: '/api/v1/auth/me', payload: { bio: null, email: `new_${user.email}` } });
    expect(second.json()).toMatchObject({ full_name: 'Ada Lovelace', bio: null, email: `new_${user.email}` });
    expect((await me(user.accessToken)).json()).toMatchObject({ bio: null, email: `new_${user.email}` });
  });

  it('answers 422 for bad fields and 409 for a taken email, changing nothing', async () => {
    const user = await registerUser(api.app);
    const other = await registerUser(api.app);
    const put = asUser(api.app, user);
    for (const payload of [
      { email: 'not-an-email' },
      { full_name: 'x'.repeat(256) },
      { bio: 42 },
      { email: null },
      { default_llm_provider: 'nope' },
    ]) {
      const response = await put({ method: 'PUT', url: '/api/v1/auth/me', payload });
      expect(response.statusCode, JSON.stringify(payload)).toBe(422);
      expect(fullContractErrors('HTTPValidationError', response.json())).toEqual([]);
    }
    expect((await put({ method: 'PUT', url: '/api/v1/auth/me', payload: { email: other.email.toUpperCase() } })).statusCode).toBe(409);
    expect((await me(user.accessToken)).json()).toMatchObject({ email: user.email, full_name: null });
  });

  it('changes the password: checks the current one, applies the policy, ends the other sessions only', async () => {
    const user = await registerUser(api.app);
    const other = await secondSession(user);
    const change = asUser(api.app, user);
    const wrong = await change({
      method: 'POST',
      url: '/api/v1/auth/change-password',
      payload: { current_password: 'not it at all', new_password: 'a brand new phrase' },
    });
    expect(wrong.statusCode).toBe(400);
    const weak = await change({
      method: 'POST',
      url: '/api/v1/auth/change-password',
      payload: { current_password: user.password, new_password: 'password123' },
    });
    expect(weak.statusCode).toBe(422);
    expect(weak.json()).toEqual({
      detail: [{ loc: ['body', 'new_password'], msg: expect.stringMatching(/too common/), type: 'password_policy.common_password' }],
    });
    expect((await me(other.access_token)).statusCode).toBe(200);

    const ok = await change({
      method: 'POST',
      url: '/api/v1/auth/change-password',
      payload: { current_password: user.password, new_password: 'a brand new phrase' },
    });
    expect(ok.statusCode).toBe(200);
    expect(fullContractErrors('PasswordChangeResponse', ok.json())).toEqual([]);
    // The caller's session lives on; the other one (access and refresh token) is over.
    expect((await me(user.accessToken)).statusCode).toBe(200);
    expect((await me(other.access_token)).statusCode).toBe(401);
    expect(
      (await api.app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refresh_token: other.refresh_token } })).statusCode,
    ).toBe(401);
    expect((await login(user, user.password)).statusCode).toBe(401);
    expect((await login(user, 'a brand new phrase')).statusCode).toBe(200);
    expect(await securityEvents(api.db, 'password_changed')).toContainEqual(expect.objectContaining({ user_id: user.id }));
  });

  it('deactivates the account: every session and key stops working, the data stays', async () => {
    const user = await registerUser(api.app);
    const other = await secondSession(user);
    const key = (await asUser(api.app, user)({ method: 'POST', url: '/api/v1/auth/api-key', payload: { name: 'k' } })).json<{
      api_key: string;
    }>();
    const conversation = await asUser(api.app, user)({ method: 'POST', url: '/api/v1/conversations/', payload: { title: 'kept' } });
    expect(conversation.statusCode).toBe(201);

    const response = await asUser(api.app, user)({ method: 'DELETE', url: '/api/v1/auth/account' });
    expect(response.statusCode).toBe(200);
    expect(fullContractErrors('AccountDeactivateResponse', response.json())).toEqual([]);
    expect((await me(user.accessToken)).statusCode).toBe(401);
    expect((await me(other.access_token)).statusCode).toBe(401);
    expect((await me(key.api_key)).statusCode).toBe(401);
    expect(
      (await api.app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refresh_token: other.refresh_token } })).statusCode,
    ).toBe(401);
    expect((await login(user, user.password)).statusCode).toBe(401);
    const kept = await api.db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`
      SELECT count(*)::int AS n FROM conversations WHERE user_id = ${user.id}`);
    expect(kept).toBe(1);
    expect(await securityEvents(api.db, 'account_deactivated')).toContainEqual(expect.objectContaining({ user_id: user.id }));
  });

  it('refuses the three routes without a token', async () => {
    expect((await api.app.inject({ method: 'PUT', url: '/api/v1/auth/me', payload: {} })).statusCode).toBe(401);
    expect(
      (await api.app.inject({ method: 'POST', url: '/api/v1/auth/change-password', payload: { current_password: 'a', new_password: 'b' } }))
        .statusCode,
    ).toBe(401);
    expect((await api.app.inject({ method: 'DELETE', url: '/api/v1/auth/account' })).statusCode).toBe(401);
  });
});
