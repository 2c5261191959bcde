import type { FastifyRequest } from 'fastify';
import { sql, type DatabasePool } from 'slonik';
import { ulid } from '../ids.js';

export type SecurityEventType =
  | 'login_success'
  | 'login_failed'
  | 'token_rejected'
  | 'access_denied'
  | 'rate_limited'
  | 'api_key_created'
  | 'api_key_revoked'
  | 'logout'
  | 'password_changed'
  | 'account_deactivated';

const PRIORITY: Record<SecurityEventType, 'low' | 'normal' | 'high'> = {
  login_success: 'low',
  login_failed: 'normal',
  token_rejected: 'normal',
  access_denied: 'high',
  rate_limited: 'high',
  api_key_created: 'normal',
  api_key_revoked: 'normal',
  logout: 'low',
  password_changed: 'normal',
  account_deactivated: 'normal',
};

const MAX_USER_AGENT = 512;
/** The request's correlation id (its request id: the client's, validated, or a new ULID). */
const correlationIdOf = (request: FastifyRequest): string => request.id;

export type SecurityEvent = {
  readonly type: SecurityEventType;
  /** The user concerned, when known. */
  readonly userId?: string | null | undefined;
  /** Why (for rejections); a short machine-readable word. */
  readonly reason?: string | undefined;
  /** Anything else worth keeping. Never a password, token or key. */
  readonly details?: Readonly<Record<string, string | number | boolean | null>> | undefined;
};

/** A resource the caller asked for and may not see (another user's, or none at all). */
export type HiddenTarget = {
  /** What kind of resource: `conversation`, `run`, … */
  readonly resource: string;
  readonly id: string;
  /** Whether it exists (for operators only; the caller's event never says). */
  readonly exists: boolean;
};

export type SecurityEventLog = {
  /** Records the event with the request's address, user agent and correlation id. Never throws. */
  readonly record: (request: FastifyRequest, event: SecurityEvent) => Promise<void>;
  /**
   * A denied access that must not reveal whether its target exists (the caller got
   * 404): the caller's own event says only what kind of resource was refused, the
   * same whether the target is missing or another user's; a second event, attributed
   * to no user (so only superusers' `all_users` listings show it), names the target,
   * whether it exists and who asked. Both rows in one statement. Never throws.
   */
  readonly recordHidden: (request: FastifyRequest, target: HiddenTarget) => Promise<void>;
};

/**
 * Writes security events to the `events` table (category `security`). A failed write
 * is logged and swallowed: losing an audit row must not turn a login into a 500.
 */
/** What every security event keeps about the request (the route's pattern, never its ids). */
const requestData = (request: FastifyRequest) => {
  const userAgent = request.headers['user-agent'];
  return {
    ip: request.ip,
    user_agent: typeof userAgent === 'string' ? userAgent.slice(0, MAX_USER_AGENT) : null,
    method: request.method,
    path: request.routeOptions.url ?? null,
  };
};

export const createSecurityEventLog = (pool: DatabasePool): SecurityEventLog => ({
  recordHidden: async (request, target) => {
    const base = requestData(request);
    const callerData = { ...base, reason: 'not_found', resource: target.resource };
    const operatorData = {
      ...base,
      reason: target.exists ? 'not_owner' : 'not_found',
      resource: target.resource,
      target_id: target.id,
      target_exists: target.exists,
      actor_user_id: request.user.id,
      audience: 'operators',
    };
    try {
      await pool.query(sql.unsafe`
        INSERT INTO events (id, category, type, priority, user_id, correlation_id, data)
        VALUES (${ulid()}, 'security', 'access_denied', ${PRIORITY.access_denied}, ${request.user.id}, ${correlationIdOf(request)},
                ${sql.jsonb(callerData)}),
               (${ulid()}, 'security', 'access_denied', ${PRIORITY.access_denied}, NULL, ${correlationIdOf(request)},
                ${sql.jsonb(operatorData)})`);
    } catch (error) {
      request.log.error({ err: error, event: 'access_denied' }, 'security event not recorded');
    }
    request.log.info({ securityEvent: 'access_denied', userId: request.user.id, resource: target.resource }, 'security event');
  },
  record: async (request, event) => {
    const data = {
      ...event.details,
      ...requestData(request),
      ...(event.reason === undefined ? {} : { reason: event.reason }),
    };
    try {
      // The user may not exist (a token naming a deleted user): then no user_id, not a foreign-key error.
      await pool.query(sql.unsafe`
        INSERT INTO events (id, category, type, priority, user_id, correlation_id, data)
        VALUES (${ulid()}, 'security', ${event.type}, ${PRIORITY[event.type]},
                (SELECT id FROM users WHERE id = ${event.userId ?? null}), ${correlationIdOf(request)},
                ${sql.jsonb(data)})`);
    } catch (error) {
      request.log.error({ err: error, event: event.type }, 'security event not recorded');
    }
    request.log.info({ securityEvent: event.type, userId: event.userId ?? undefined, reason: event.reason }, 'security event');
  },
});
