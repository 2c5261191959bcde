import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccessTokens } from '../../src/auth/access-tokens.js';
import { createTestApi, registerUser, securityEvents, TEST_JWT_SECRET, type RegisteredUser, type TestApi } from '../helpers/api.js';

type Tokens = { access_token: string; refresh_token: string };

/**
 * Every access token of a session ends with it (logout, refresh-token replay, password
 * change, deactivation): the token's `sid` is checked against the session store on
 * each request, not only the one token presented.
 */
describe('sessions end every access token issued for them', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await createTestApi();
  });
  afterAll(async () => {
    await api.close();
  });

  const me = (token: string) => api.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization: `Bearer ${token}` } });
  const refresh = async (refreshToken: string): Promise<Tokens> => {
    const response = await api.app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refresh_token: refreshToken } });
    expect(response.statusCode).toBe(200);
    return response.json<Tokens>();
  };
  const login = async (user: RegisteredUser): Promise<Tokens> => {
    const response = await api.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { username: user.username, password: user.password },
    });
    expect(response.statusCode).toBe(200);
    return response.json<Tokens>();
  };
  const rejectionReasons = async (userId: string) =>
    (await securityEvents(api.db, 'token_rejected')).filter((event) => event.user_id === userId).map((event) => event.data['reason']);

  it('logout refuses the session’s other access tokens, issued before it (refreshes of one session)', async () => {
    const user = await registerUser(api.app);
    const second = await refresh(user.refreshToken);
    const third = await refresh(second.refresh_token);
    const otherSession = await login(user);
    for (const token of [user.accessToken, second.access_token, third.access_token]) expect((await me(token)).statusCode).toBe(200);

    // Logged out with the newest token; the two earlier ones of the same session die too.
    const logout = await api.app.inject({
      method: 'POST',
      url: '/api/v1/auth/logout',
      headers: { authorization: `Bearer ${third.access_token}` },
    });
    expect(logout.statusCode).toBe(200);
    expect((await me(user.accessToken)).statusCode).toBe(401);
    expect((await me(second.access_token)).statusCode).toBe(401);
    expect((await me(third.access_token)).statusCode).toBe(401);
    expect(await rejectionReasons(user.id)).toContain('session_ended');
    // Another session of the same user is not touched.
    expect((await me(otherSession.access_token)).statusCode).toBe(200);
  });

  it('a replayed refresh token (theft) ends the session: every access token of it is refused', async () => {
    const user = await registerUser(api.app);
    const rotated = await refresh(user.refreshToken);
    expect((await me(rotated.access_token)).statusCode).toBe(200);
    const replay = await api.app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refresh_token: user.refreshToken } });
    expect(replay.statusCode).toBe(401);
    expect((await me(user.accessToken)).statusCode).toBe(401);
    expect((await me(rotated.access_token)).statusCode).toBe(401);
    // And the thief's (or owner's) newest refresh token is dead too.
    expect(
      (await api.app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refresh_token: rotated.refresh_token } })).statusCode,
    ).toBe(401);
  });

  it('refuses a validly signed token whose session belongs to another user, or does not exist', async () => {
    const alice = await registerUser(api.app);
    const bob = await registerUser(api.app);
    const tokens = createAccessTokens({ secret: TEST_JWT_SECRET, ttlSeconds: 1800 });
    const bobSession = JSON.parse(Buffer.from(bob.accessToken.split('.')[1] ?? '', 'base64url').toString()) as { sid: string };
    const foreign = tokens.sign({ userId: alice.id, sessionId: bobSession.sid }).token;
    expect((await me(foreign)).statusCode).toBe(401);
    const unknown = tokens.sign({ userId: alice.id, sessionId: 'no-such-session' }).token;
    expect((await me(unknown)).statusCode).toBe(401);
    expect(await rejectionReasons(alice.id)).toEqual(expect.arrayContaining(['session_foreign', 'session_unknown']));
    // Bob's own token with that session still works.
    expect((await me(bob.accessToken)).statusCode).toBe(200);
  });
});
