import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from '../http/errors.js';
import { AccessTokenError } from './access-tokens.js';
import type { AuthServices } from './auth-services.js';
import { hashToken, looksLikeApiKey } from './opaque-tokens.js';
import type { Limits } from '../limits/limits.js';
import type { SecurityEventLog } from './security-events.js';
import type { BudgetView } from '../repositories/budget-reservations-repository.js';

/** The authenticated caller, as `app.authenticate` leaves it on `request.user`. */
export type AuthUser = {
  readonly id: string;
  readonly email: string;
  readonly username: string;
  readonly isSuperuser: boolean;
  /**
   * The user's budgets, spending and reservations in flight, read in the credential
   * check's statement (a chat turn needs no second read for them).
   */
  readonly budget?: BudgetView | undefined;
};

/** How the caller proved who they are. */
export type AuthCredential =
  | {
      readonly kind: 'access_token';
      readonly tokenId: string;
      /** The session (refresh-token family) the token belongs to. */
      readonly sessionId: string;
      /** Epoch seconds. */
      readonly expiresAt: number;
    }
  | { readonly kind: 'api_key'; readonly keyId: string };

export type AuthenticateHook = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Hook (onRequest or preHandler) that accepts `Authorization: Bearer <access token
     * or API key>`, sets `request.user` and `request.credential`, or answers 401.
     */
    authenticate: AuthenticateHook;
    /** Writes `security` events (access_denied, …) for routes outside the auth plugin. */
    securityEvents: SecurityEventLog;
    /** Limits shared by every instance: chat rate limits, stream caps (src/limits). */
    limits: Limits;
  }
  interface FastifyRequest {
    /** Set by `app.authenticate`; absent (null) on routes that do not use it. */
    user: AuthUser;
    /** Set by `app.authenticate`. */
    credential: AuthCredential;
  }
}

/** The 401 every rejected credential gets: one message, whatever the reason (the reason goes to the event log). */
export const unauthorized = (reply: FastifyReply, message = 'Could not validate credentials'): HttpError => {
  void reply.header('www-authenticate', 'Bearer');
  return new HttpError(401, message, 'not_authenticated');
};

const budgetOf = (row: BudgetView): BudgetView => ({
  token_budget: row.token_budget,
  cost_budget_usd: row.cost_budget_usd,
  spent_tokens: row.spent_tokens,
  spent_cost_usd: row.spent_cost_usd,
  reserved_tokens: row.reserved_tokens,
  reserved_cost_usd: row.reserved_cost_usd,
});

const BEARER = /^Bearer +([A-Za-z0-9._~+/=-]+) *$/i;

const createAuthenticate = (services: AuthServices): AuthenticateHook => {
  const { accessTokens, users, apiKeys, securityEvents } = services;

  const reject = async (request: FastifyRequest, reply: FastifyReply, reason: string, userId?: string | null): Promise<never> => {
    await securityEvents.record(request, { type: 'token_rejected', reason, userId });
    throw unauthorized(reply);
  };

  const withApiKey = async (request: FastifyRequest, reply: FastifyReply, key: string): Promise<void> => {
    const owner = await apiKeys.findActiveOwner(hashToken(key));
    if (owner === null) {
      return reject(request, reply, 'unknown_api_key');
    }
    if (!owner.is_active) {
      return reject(request, reply, 'user_inactive', owner.id);
    }
    if (owner.last_used_at === null || Date.parse(owner.last_used_at) < Date.now() - 60_000) {
      await apiKeys.touch(owner.key_id);
    }
    request.user = { id: owner.id, email: owner.email, username: owner.username, isSuperuser: owner.is_superuser, budget: budgetOf(owner) };
    request.credential = { kind: 'api_key', keyId: owner.key_id };
  };

  const withAccessToken = async (request: FastifyRequest, reply: FastifyReply, token: string): Promise<void> => {
    let claims;
    try {
      claims = accessTokens.verify(token);
    } catch (error) {
      if (error instanceof AccessTokenError) {
        return reject(request, reply, error.reason, error.subject);
      }
      throw error;
    }
    const row = await users.findForAccessToken(claims.sub, claims.jti, claims.sid);
    if (row === null) {
      return reject(request, reply, 'unknown_user');
    }
    if (row.token_revoked) {
      return reject(request, reply, 'revoked', row.id);
    }
    // Every access token of an ended session dies with it, whichever instance issued it.
    if (row.session !== 'live') {
      return reject(request, reply, row.session === 'ended' ? 'session_ended' : `session_${row.session}`, row.id);
    }
    if (!row.is_active) {
      return reject(request, reply, 'user_inactive', row.id);
    }
    request.user = { id: row.id, email: row.email, username: row.username, isSuperuser: row.is_superuser, budget: budgetOf(row) };
    request.credential = { kind: 'access_token', tokenId: claims.jti, sessionId: claims.sid, expiresAt: claims.exp };
  };

  return async (request, reply) => {
    const header = request.headers.authorization;
    if (header === undefined || header.trim() === '') {
      throw unauthorized(reply, 'Not authenticated');
    }
    const token = BEARER.exec(header)?.[1];
    if (token === undefined) {
      return reject(request, reply, 'malformed_authorization');
    }
    return looksLikeApiKey(token) ? withApiKey(request, reply, token) : withAccessToken(request, reply, token);
  };
};

/**
 * Decorates the root instance with `authenticate`, `securityEvents` and `limits` (the plugin is
 * not encapsulated, like a `fastify-plugin` one, so every route plugin sees them).
 */
const plugin: FastifyPluginAsync<{ services: AuthServices }> = async (app, { services }) => {
  app.decorateRequest<AuthUser>('user', null as unknown as AuthUser);
  app.decorateRequest<AuthCredential>('credential', null as unknown as AuthCredential);
  app.decorate('authenticate', createAuthenticate(services));
  app.decorate('securityEvents', services.securityEvents);
  app.decorate('limits', services.limits);
  app.addHook('onClose', async () => {
    await services.limits.close();
  });
};

/** `Symbol.for('skip-override')` is what `fastify-plugin` sets: register into the parent's scope. */
export const authPlugin = Object.assign(plugin, { [Symbol.for('skip-override')]: true });
