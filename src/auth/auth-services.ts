import type { DatabasePool } from 'slonik';
import type { Config } from '../config.js';
import { createApiKeysRepository, type ApiKeysRepository } from '../repositories/api-keys-repository.js';
import { createSessionsRepository, type SessionsRepository } from '../repositories/sessions-repository.js';
import { createUsersRepository, type UsersRepository } from '../repositories/users-repository.js';
import { createAccessTokens, type AccessTokens } from './access-tokens.js';
import { LoginThrottle } from './login-throttle.js';
import { createSecurityEventLog, type SecurityEventLog } from './security-events.js';

export type AuthServices = {
  readonly config: Config['auth'];
  readonly accessTokens: AccessTokens;
  readonly users: UsersRepository;
  readonly apiKeys: ApiKeysRepository;
  readonly sessions: SessionsRepository;
  readonly loginThrottle: LoginThrottle;
  readonly securityEvents: SecurityEventLog;
};

/**
 * Everything authentication needs, built once per app: token signer, repositories,
 * the failed-login throttle (in memory, so per process) and the security event log.
 */
export const createAuthServices = (options: {
  readonly config: Config['auth'];
  readonly pool: DatabasePool;
  /** Epoch milliseconds; tests move time forward. */
  readonly now?: () => number;
}): AuthServices => {
  const { config, pool } = options;
  const clock = options.now === undefined ? {} : { now: options.now };
  return {
    config,
    accessTokens: createAccessTokens({ secret: config.jwtSecret, ttlSeconds: config.accessTokenTtlSeconds, ...clock }),
    users: createUsersRepository(pool),
    apiKeys: createApiKeysRepository(pool),
    sessions: createSessionsRepository(pool),
    loginThrottle: new LoginThrottle({
      maxFailuresPerAccount: config.loginMaxFailuresPerAccount,
      maxFailuresPerIp: config.loginMaxFailuresPerIp,
      windowMs: config.loginFailureWindowSeconds * 1000,
      ...clock,
    }),
    securityEvents: createSecurityEventLog(pool),
  };
};
