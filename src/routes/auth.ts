import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { unauthorized } from '../auth/auth-plugin.js';
import type { AuthServices } from '../auth/auth-services.js';
import type { LoginBlock } from '../auth/login-throttle.js';
import { generateRefreshToken, hashToken } from '../auth/opaque-tokens.js';
import { checkPassword } from '../auth/password-policy.js';
import { hashPassword, needsRehash, verifyPassword } from '../auth/passwords.js';
import { HttpError, RequestValidationError } from '../http/errors.js';
import type { PasswordChangeBody, TokenRefreshBody, UserCreateBody, UserLoginBody, UserUpdateBody } from '../http/schemas/auth-schemas.js';
import { bearerSecurity, errorResponses } from '../http/schemas/common-schemas.js';
import { UserExistsError, type UserRow } from '../repositories/users-repository.js';

export type AuthRoutesOptions = {
  readonly services: AuthServices;
  /** Send the refresh cookie only over HTTPS (production). */
  readonly secureCookies: boolean;
};

export const REFRESH_COOKIE = 'refresh_token';
/** The cookie goes only to the auth routes that read it (refresh, logout). */
const REFRESH_COOKIE_PATH = '/api/v1/auth';

const toUserResponse = (user: UserRow) => ({
  ...user,
  default_profile_id: null,
  max_file_size_mb: null,
});

/** Built once: comparing against it makes a login for an unknown user cost as much as one for a known user. */
let dummyHash: Promise<string> | undefined;
const dummyPasswordHash = (): Promise<string> => (dummyHash ??= hashPassword('not a password of anyone'));

/** Which account a login names: an email (in `email`, or in `username` when it holds an '@'), else a username. */
const loginIdentity = (body: UserLoginBody): { email: string } | { username: string } => {
  if (typeof body.email === 'string') {
    return { email: body.email };
  }
  if (typeof body.username === 'string') {
    return body.username.includes('@') ? { email: body.username } : { username: body.username };
  }
  throw new RequestValidationError([{ loc: ['body', 'email'], msg: 'email or username is required', type: 'missing' }]);
};

/** The password policy's verdict as the contract's 422, naming the rule broken. */
const enforcePasswordPolicy = (password: string, account: { username: string; email: string }, field: string): void => {
  const violation = checkPassword(password, account);
  if (violation !== null) {
    throw new RequestValidationError([{ loc: ['body', field], msg: violation.message, type: `password_policy.${violation.rule}` }]);
  }
};

/**
 * `/api/v1/auth/*`: register, login, refresh, me (read, update), change-password,
 * account (deactivate) and logout, per the Chatter contract (API keys: ./api-keys.ts).
 */
export const authRoutes: FastifyPluginAsync<AuthRoutesOptions> = async (app, options) => {
  const { services, secureCookies } = options;
  const { users, sessions, accessTokens, loginThrottle, registerThrottle, securityEvents, config } = services;

  const setRefreshCookie = (reply: FastifyReply, token: string): void => {
    void reply.setCookie(REFRESH_COOKIE, token, {
      path: REFRESH_COOKIE_PATH,
      httpOnly: true,
      sameSite: 'strict',
      secure: secureCookies,
      maxAge: config.refreshTokenTtlSeconds,
    });
  };
  const clearRefreshCookie = (reply: FastifyReply): void => {
    void reply.clearCookie(REFRESH_COOKIE, { path: REFRESH_COOKIE_PATH, httpOnly: true, sameSite: 'strict', secure: secureCookies });
  };

  /** A new session: a refresh token (new family) and an access token bound to it. */
  const startSession = async (reply: FastifyReply, userId: string) => {
    const refreshToken = generateRefreshToken();
    const familyId = await sessions.issueRefreshToken({
      userId,
      tokenHash: hashToken(refreshToken),
      ttlSeconds: config.refreshTokenTtlSeconds,
    });
    setRefreshCookie(reply, refreshToken);
    const { token } = accessTokens.sign({ userId, sessionId: familyId });
    return { access_token: token, refresh_token: refreshToken, token_type: 'bearer', expires_in: accessTokens.ttlSeconds };
  };

  const tooManyAttempts = async (request: FastifyRequest, reply: FastifyReply, block: LoginBlock, userId: string | null) => {
    const seconds = Math.ceil(block.retryAfterMs / 1000);
    await securityEvents.record(request, {
      type: 'rate_limited',
      userId,
      reason: block.scope === 'ip' ? 'login_failures_per_ip' : 'login_failures_per_account',
      details: { retry_after_seconds: seconds },
    });
    void reply.header('retry-after', String(seconds));
    return new HttpError(429, `Too many failed login attempts; try again in ${seconds} seconds`, 'rate_limited');
  };

  app.post<{ Body: UserCreateBody }>(
    '/register',
    {
      schema: {
        tags: ['Authentication'],
        summary: 'Register',
        description: 'Registers a user and logs them in (tokens in the body, refresh token also as an HttpOnly cookie).',
        operationId: 'register_api_v1_auth_register_post',
        body: { $ref: 'UserCreate#' },
        response: { 201: { $ref: 'TokenResponse#' }, ...errorResponses(409, 413, 429) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      // Before anything else: probing which emails are taken (409) is throttled like a login.
      const throttle = await registerThrottle.attempt(request.ip, body.email);
      if (throttle.blocked) {
        const seconds = Math.ceil(throttle.retryAfterMs / 1000);
        await securityEvents.record(request, {
          type: 'rate_limited',
          reason: throttle.scope === 'ip' ? 'register_per_ip' : 'register_per_email',
          details: { retry_after_seconds: seconds },
        });
        void reply.header('retry-after', String(seconds));
        throw new HttpError(429, `Too many registration attempts; try again in ${seconds} seconds`, 'rate_limited');
      }
      enforcePasswordPolicy(body.password, body, 'password');
      let user: UserRow;
      try {
        user = await users.create({
          email: body.email,
          username: body.username,
          passwordHash: await hashPassword(body.password),
          fullName: body.full_name,
          bio: body.bio,
          avatarUrl: body.avatar_url,
          phoneNumber: body.phone_number,
        });
      } catch (error) {
        if (error instanceof UserExistsError) {
          throw new HttpError(409, 'A user with this email or username already exists', 'user_exists');
        }
        throw error;
      }
      const tokens = await startSession(reply, user.id);
      return reply.status(201).send({ ...tokens, user: toUserResponse(user) });
    },
  );

  app.post<{ Body: UserLoginBody }>(
    '/login',
    {
      schema: {
        tags: ['Authentication'],
        summary: 'Login',
        description:
          'Authenticates with an email or a username and the password. Failed attempts are limited per client address, and slowed down per account for the addresses that failed on it (429 with Retry-After); a new address is never refused because of others’ failures.',
        operationId: 'login_api_v1_auth_login_post',
        body: { $ref: 'UserLogin#' },
        response: { 200: { $ref: 'TokenResponse#' }, ...errorResponses(401, 413, 429) },
      },
    },
    async (request, reply) => {
      const ip = request.ip;
      const ipBlock = await loginThrottle.checkIp(ip);
      if (ipBlock !== null) {
        throw await tooManyAttempts(request, reply, ipBlock, null);
      }
      const identity = loginIdentity(request.body);
      const credentials = await users.findCredentials(identity);
      const accountKey =
        credentials?.id ?? ('email' in identity ? `email:${identity.email.toLowerCase()}` : `username:${identity.username.toLowerCase()}`);
      const attempt = await loginThrottle.begin(ip, accountKey);
      if (attempt.blocked) {
        throw await tooManyAttempts(request, reply, attempt, credentials?.id ?? null);
      }
      const passwordOk = await verifyPassword(request.body.password, credentials?.password_hash ?? (await dummyPasswordHash()));
      if (credentials === null || !passwordOk || !credentials.is_active) {
        const reason = credentials === null ? 'unknown_user' : !passwordOk ? 'bad_password' : 'user_inactive';
        await securityEvents.record(request, { type: 'login_failed', userId: credentials?.id ?? null, reason });
        throw new HttpError(401, 'Incorrect email/username or password', 'invalid_credentials');
      }
      await attempt.succeeded();
      await users.recordLogin(
        credentials.id,
        needsRehash(credentials.password_hash) ? await hashPassword(request.body.password) : undefined,
      );
      const tokens = await startSession(reply, credentials.id);
      await securityEvents.record(request, { type: 'login_success', userId: credentials.id });
      const user = await users.findById(credentials.id);
      if (user === null) {
        throw new HttpError(401, 'Incorrect email/username or password', 'invalid_credentials');
      }
      return { ...tokens, user: toUserResponse(user) };
    },
  );

  app.post<{ Body: TokenRefreshBody }>(
    '/refresh',
    {
      schema: {
        tags: ['Authentication'],
        summary: 'Refresh Token',
        description:
          'Exchanges a refresh token (the `refresh_token` HttpOnly cookie, or `refresh_token` in the body) for a new access token and a new refresh token; the one sent stops working. Presenting an already-used refresh token ends its whole session.',
        operationId: 'refresh_token_api_v1_auth_refresh_post',
        body: { anyOf: [{ $ref: 'TokenRefreshRequest#' }, { type: 'null' }] },
        response: { 200: { $ref: 'TokenRefreshResponse#' }, ...errorResponses(401) },
      },
    },
    async (request, reply) => {
      const presented = request.body?.refresh_token ?? request.cookies[REFRESH_COOKIE];
      if (presented === undefined || presented === '') {
        throw unauthorized(reply, 'Refresh token missing');
      }
      const next = generateRefreshToken();
      const result = await sessions.rotateRefreshToken({
        tokenHash: hashToken(presented),
        newTokenHash: hashToken(next),
        ttlSeconds: config.refreshTokenTtlSeconds,
      });
      if (!result.ok) {
        await securityEvents.record(request, { type: 'token_rejected', userId: result.userId, reason: `refresh_${result.reason}` });
        clearRefreshCookie(reply);
        throw unauthorized(reply, 'Invalid or expired refresh token');
      }
      setRefreshCookie(reply, next);
      const { token } = accessTokens.sign({ userId: result.userId, sessionId: result.familyId });
      return { access_token: token, refresh_token: next, token_type: 'bearer', expires_in: accessTokens.ttlSeconds };
    },
  );

  app.get(
    '/me',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['Authentication'],
        summary: 'Get Current User Info',
        operationId: 'get_current_user_info_api_v1_auth_me_get',
        security: bearerSecurity,
        response: { 200: { $ref: 'UserResponse#' }, ...errorResponses(401) },
      },
    },
    async (request, reply) => {
      const user = await users.findById(request.user.id);
      if (user === null) {
        throw unauthorized(reply);
      }
      return toUserResponse(user);
    },
  );

  app.put<{ Body: UserUpdateBody }>(
    '/me',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['Authentication'],
        summary: 'Update Profile',
        description: 'Updates the fields given (null clears one); answers the updated user. 409 when the email is taken.',
        operationId: 'update_profile_api_v1_auth_me_put',
        security: bearerSecurity,
        body: { $ref: 'UserUpdate#' },
        response: { 200: { $ref: 'UserResponse#' }, ...errorResponses(401, 409, 413) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      if (body.email === null) {
        throw new RequestValidationError([{ loc: ['body', 'email'], msg: 'email cannot be cleared', type: 'value_error' }]);
      }
      let user: UserRow | null;
      try {
        user = await users.updateProfile(request.user.id, {
          email: body.email,
          fullName: body.full_name,
          bio: body.bio,
          avatarUrl: body.avatar_url,
          phoneNumber: body.phone_number,
          defaultLlmProvider: body.default_llm_provider,
        });
      } catch (error) {
        if (error instanceof UserExistsError) {
          throw new HttpError(409, 'A user with this email already exists', 'user_exists');
        }
        throw error;
      }
      if (user === null) {
        throw unauthorized(reply);
      }
      return { ...toUserResponse(user), default_profile_id: body.default_profile_id ?? null };
    },
  );

  app.post<{ Body: PasswordChangeBody }>(
    '/change-password',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['Authentication'],
        summary: 'Change Password',
        description:
          'Checks the current password, applies the password policy to the new one (422 naming the rule), stores it and ends every other session of the user (their access and refresh tokens stop working); the session making the call stays. 400 when the current password is wrong.',
        operationId: 'change_password_api_v1_auth_change_password_post',
        security: bearerSecurity,
        body: { $ref: 'PasswordChange#' },
        response: { 200: { $ref: 'PasswordChangeResponse#' }, ...errorResponses(400, 401, 413, 429) },
      },
    },
    async (request, reply) => {
      const { user, credential } = request;
      // Guessing the current password here is throttled like a login (a stolen token must not brute-force it).
      const attempt = await loginThrottle.begin(request.ip, user.id);
      if (attempt.blocked) {
        throw await tooManyAttempts(request, reply, attempt, user.id);
      }
      const stored = await users.passwordHashOf(user.id);
      if (stored === null) {
        throw unauthorized(reply);
      }
      if (!(await verifyPassword(request.body.current_password, stored))) {
        await securityEvents.record(request, { type: 'login_failed', userId: user.id, reason: 'change_password_bad_current' });
        throw new HttpError(400, 'The current password is incorrect', 'invalid_password');
      }
      await attempt.succeeded();
      enforcePasswordPolicy(request.body.new_password, user, 'new_password');
      await users.setPasswordHash(user.id, await hashPassword(request.body.new_password));
      const ended = await sessions.revokeAllFamilies(user.id, credential.kind === 'access_token' ? credential.sessionId : undefined);
      await securityEvents.record(request, { type: 'password_changed', userId: user.id, details: { refresh_tokens_revoked: ended } });
      return { message: 'Password changed; your other sessions were ended' };
    },
  );

  app.delete(
    '/account',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['Authentication'],
        summary: 'Deactivate Account',
        description:
          'Deactivates the account: every session, access token and API key stops working and logins are refused; conversations, messages and usage records stay (accounting needs them).',
        operationId: 'deactivate_account_api_v1_auth_account_delete',
        security: bearerSecurity,
        response: { 200: { $ref: 'AccountDeactivateResponse#' }, ...errorResponses(401) },
      },
    },
    async (request, reply) => {
      const { user } = request;
      await users.deactivate(user.id);
      const ended = await sessions.revokeAllFamilies(user.id);
      clearRefreshCookie(reply);
      await securityEvents.record(request, { type: 'account_deactivated', userId: user.id, details: { refresh_tokens_revoked: ended } });
      return { message: 'Account deactivated' };
    },
  );

  app.post(
    '/logout',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['Authentication'],
        summary: 'Logout',
        description:
          'Ends the session: its refresh tokens (and the one in the cookie, if any) and the access token used for this call stop working.',
        operationId: 'logout_api_v1_auth_logout_post',
        security: bearerSecurity,
        response: { 200: { $ref: 'LogoutResponse#' }, ...errorResponses(401) },
      },
    },
    async (request, reply) => {
      const { user, credential } = request;
      const families: string[] = [];
      if (credential.kind === 'access_token') {
        families.push(credential.sessionId);
        await sessions.revokeAccessToken({ tokenId: credential.tokenId, userId: user.id, expiresAtEpochSeconds: credential.expiresAt });
      }
      const cookieToken = request.cookies[REFRESH_COOKIE];
      if (cookieToken !== undefined && cookieToken !== '') {
        const family = await sessions.familyOfRefreshToken(user.id, hashToken(cookieToken));
        if (family !== null) {
          families.push(family);
        }
      }
      const revoked = await sessions.revokeFamilies(user.id, [...new Set(families)]);
      clearRefreshCookie(reply);
      await securityEvents.record(request, {
        type: 'logout',
        userId: user.id,
        details: { credential: credential.kind, refresh_tokens_revoked: revoked },
      });
      return { message: 'Successfully logged out' };
    },
  );
};
