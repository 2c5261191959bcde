import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import type { Database } from './db/database.js';
import { registerErrorHandling } from './http/errors.js';
import { healthRoutes } from './routes/health.js';
import { SERVICE_NAME, SERVICE_VERSION } from './version.js';

declare module 'fastify' {
  interface FastifyInstance {
    db: Database;
  }
}

export type AppDependencies = {
  readonly config: Config;
  readonly db: Database;
  readonly logger: Logger;
};

/**
 * Builds the Fastify application: plugins, then routes. It does not listen, so tests
 * drive it with `app.inject()` or listen on port 0 themselves.
 */
export const buildApp = async (dependencies: AppDependencies): Promise<FastifyInstance> => {
  const { config, db, logger } = dependencies;
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    bodyLimit: 1024 * 1024,
    // Validation errors name every failing field, as the contract's 422 body does.
    ajv: { customOptions: { allErrors: true, removeAdditional: false, coerceTypes: 'array' } },
    disableRequestLogging: config.environment === 'test',
  });
  app.decorate('db', db);
  registerErrorHandling(app);
  await app.register(healthRoutes, {
    service: SERVICE_NAME,
    version: SERVICE_VERSION,
    environment: config.environment,
  });
  return app;
};
