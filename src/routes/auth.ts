import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { unauthorized } from '../auth/auth-plugin.js';
import type { AuthServices } from '../auth/auth-services.js';
import type { LoginBlock } from '../auth/login-throttle.js';
import { generateRefreshToken, hashToken } from '../auth/opaque-tokens.js';
import { hashPassword, needsRehash, verifyPassword } from '../auth/passwords.js';
import { HttpError, RequestValidationError } from '../http/errors.js';
import type { TokenRefreshBody, UserCreateBody, UserLoginBody } from '../http/schemas/auth-schemas.js';
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

/** `/api/v1/auth/*`: register, login, refresh, me and logout, per the Chatter contract (API keys: ./api-keys.ts). */
export const authRoutes: FastifyPluginAsync<AuthRoutesOptions> = async (app, options) => {
  const { services, secureCookies } = options;
  const { users, sessions, accessTokens, loginThrottle, securityEvents, config } = services;

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
        response: { 201: { $ref: 'TokenResponse#' }, ...errorResponses(409, 413) },
      },
    },
    async (request, reply) => {
      const body = request.body;
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
          'Authenticates with an email or a username and the password. Failed attempts are limited per account and per client address (429 with Retry-After).',
        operationId: 'login_api_v1_auth_login_post',
        body: { $ref: 'UserLogin#' },
        response: { 200: { $ref: 'TokenResponse#' }, ...errorResponses(401, 413, 429) },
      },
    },
    async (request, reply) => {
      const ip = request.ip;
      const ipBlock = loginThrottle.checkIp(ip);
      if (ipBlock !== null) {
        throw await tooManyAttempts(request, reply, ipBlock, null);
      }
      const identity = loginIdentity(request.body);
      const credentials = await users.findCredentials(identity);
      const accountKey =
        credentials?.id ?? ('email' in identity ? `email:${identity.email.toLowerCase()}` : `username:${identity.username.toLowerCase()}`);
      const attempt = loginThrottle.begin(ip, accountKey);
      if (attempt.blocked) {
        throw await tooManyAttempts(request, reply, attempt, credentials?.id ?? null);
      }
      const passwordOk = await verifyPassword(request.body.password, credentials?.password_hash ?? (await dummyPasswordHash()));
      if (credentials === null || !passwordOk || !credentials.is_active) {
        const reason = credentials === null ? 'unknown_user' : !passwordOk ? 'bad_password' : 'user_inactive';
        await securityEvents.record(request, { type: 'login_failed', userId: credentials?.id ?? null, reason });
        throw new HttpError(401, 'Incorrect email/username or password', 'invalid_credentials');
      }
      attempt.succeeded();
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
