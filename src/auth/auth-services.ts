import type { DatabasePool } from 'slonik';
import type { Config } from '../config.js';
import { createApiKeysRepository, type ApiKeysRepository } from '../repositories/api-keys-repository.js';
import { createSessionsRepository, type SessionsRepository } from '../repositories/sessions-repository.js';
import { createUsersRepository, type UsersRepository } from '../repositories/users-repository.js';
import type { LimitStore } from '../limits/limit-store.js';
import { createLimits, type Limits } from '../limits/limits.js';
import { createMemoryLimitStore } from '../limits/memory-limit-store.js';
import { createAccessTokens, type AccessTokens } from './access-tokens.js';
import { LoginThrottle, RegisterThrottle } from './login-throttle.js';
import { createSecurityEventLog, type SecurityEventLog } from './security-events.js';

export type AuthServices = {
  readonly config: Config['auth'];
  readonly accessTokens: AccessTokens;
  readonly users: UsersRepository;
  readonly apiKeys: ApiKeysRepository;
  readonly sessions: SessionsRepository;
  readonly loginThrottle: LoginThrottle;
  readonly registerThrottle: RegisterThrottle;
  /** The shared limits (throttles above, chat rate limits, stream caps); `app.limits`. */
  readonly limits: Limits;
  readonly securityEvents: SecurityEventLog;
};

/**
 * Everything authentication needs, built once per app: token signer, repositories,
 * the login and register throttles and the other limits (counted in `limitStore`:
 * PostgreSQL or Redis when several instances share them, see src/limits; memory when
 * omitted, for one process) and the security event log.
 */
export const createAuthServices = (options: {
  readonly config: Config['auth'];
  readonly pool: DatabasePool;
  /** Where limits are counted; memory (this process only) when omitted. */
  readonly limitStore?: LimitStore;
  /** How long a stream's lease outlives its instance's last heartbeat. */
  readonly streamLeaseTtlMs?: number;
  /** Epoch milliseconds; tests move time forward. */
  readonly now?: () => number;
}): AuthServices => {
  const { config, pool } = options;
  const clock = options.now === undefined ? {} : { now: options.now };
  const store = options.limitStore ?? createMemoryLimitStore();
  return {
    config,
    accessTokens: createAccessTokens({ secret: config.jwtSecret, ttlSeconds: config.accessTokenTtlSeconds, ...clock }),
    users: createUsersRepository(pool),
    apiKeys: createApiKeysRepository(pool),
    sessions: createSessionsRepository(pool),
    loginThrottle: new LoginThrottle({
      store,
      maxFailuresPerAccount: config.loginMaxFailuresPerAccount,
      maxFailuresPerIp: config.loginMaxFailuresPerIp,
      windowMs: config.loginFailureWindowSeconds * 1000,
      ...clock,
    }),
    registerThrottle: new RegisterThrottle({
      store,
      maxPerIp: config.registerMaxPerIp,
      maxPerEmail: config.registerMaxPerEmail,
      windowMs: config.registerWindowSeconds * 1000,
      ...clock,
    }),
    limits: createLimits({ store, ...clock, ...(options.streamLeaseTtlMs === undefined ? {} : { leaseTtlMs: options.streamLeaseTtlMs }) }),
    securityEvents: createSecurityEventLog(pool),
  };
};
