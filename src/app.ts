import cookie from '@fastify/cookie';
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import { FastifyOtelInstrumentation } from '@fastify/otel';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { authPlugin } from './auth/auth-plugin.js';
import { createAuthServices, type AuthServices } from './auth/auth-services.js';
import type { Config } from './config.js';
import type { Database } from './db/database.js';
import { createNotifier, type Notifier } from './db/notifications.js';
import { createLimitStore } from './limits/create-limit-store.js';
import { registerApiDocs } from './http/api-docs.js';
import { correlationIdOf, tagRequest } from './http/correlation.js';
import { registerBodyGuard, registerStrictJsonParser } from './http/body-guard.js';
import { logCompletedRequest, logIncomingRequest } from './http/request-logging.js';
import { clientConnectionErrorHandler, frameworkErrorHandler, registerErrorHandling } from './http/errors.js';
import { registerContractSchemas } from './http/schemas/contract-schemas.js';
import { AJV_OPTIONS, createValidatorFactory } from './http/validation.js';
import { adminPriceRoutes } from './routes/admin-prices.js';
import { apiKeyRoutes } from './routes/api-keys.js';
import { authRoutes } from './routes/auth.js';
import { budgetRoutes } from './routes/budgets.js';
import { conversationRoutes } from './routes/conversations.js';
import { analyticsRoutes } from './routes/analytics.js';
import { chatRoutes } from './routes/chat.js';
import { eventRoutes } from './routes/events.js';
import { executionRoutes } from './routes/executions.js';
import { monitoringRoutes } from './routes/monitoring.js';
import { healthRoutes, type ReadinessCheck } from './routes/health.js';
import { metricsRoutes } from './routes/metrics.js';
import { toolServerRoutes } from './routes/tool-servers.js';
import { profileRoutes } from './routes/profiles.js';
import { promptRoutes } from './routes/prompts.js';
import { documentRoutes } from './routes/documents.js';
import { messageRatingRoutes } from './routes/message-ratings.js';
import { providerCatalogRoutes } from './routes/provider-catalog.js';
import { workflowDefinitionRoutes } from './routes/workflow-definitions.js';
import { workflowTemplateRoutes } from './routes/workflow-templates.js';
import type { Services } from './services.js';
import { SERVICE_NAME, SERVICE_VERSION } from './version.js';

declare module 'fastify' {
  interface FastifyInstance {
    db: Database;
    /** LISTEN/NOTIFY between instances (the services' notifier when there are services). */
    notifier: Notifier;
  }
}

export type AppDependencies = {
  readonly config: Config;
  readonly db: Database;
  readonly logger: Logger;
  /** Replaces the auth services built from `config` (tests: a simulated clock). */
  readonly auth?: AuthServices;
  /** The runtime and telemetry; without them the app serves health, auth and conversations only. */
  readonly services?: Services;
};

/**
 * The run-record writer's backlog: records waiting in memory or in the spool. It does
 * not make the instance unready (runs still complete and are kept), it says `degraded`.
 */
const runRecordsCheck =
  (services: Services): ReadinessCheck =>
  async () => {
    const stats = services.writer.stats();
    const backlog = stats.queued + stats.spooled + stats.unsaved;
    return {
      name: 'run_records',
      // Records that neither the database nor the spool took: new chats would answer 503.
      healthy: stats.unsaved === 0,
      details: {
        status: backlog > 0 || stats.lastError !== null || stats.spoolError !== null ? 'degraded' : 'healthy',
        queued: stats.queued,
        spooled: stats.spooled,
        unsaved: stats.unsaved,
        committed: stats.committed,
        dead_lettered: stats.deadLettered,
        last_error: stats.lastError === null ? null : 'database write failed',
        spool_error: stats.spoolError === null ? null : 'spool not writable',
        active_runs: services.runtime.activeCount(),
      },
    };
  };

/** The largest request body accepted; larger ones answer 413. */
export const BODY_LIMIT_BYTES = 1024 * 1024;

/**
 * Builds the Fastify application: plugins, then routes. It does not listen, so tests
 * drive it with `app.inject()` or listen on port 0 themselves.
 */
export const buildApp = async (dependencies: AppDependencies): Promise<FastifyInstance> => {
  const { config, db, logger, services } = dependencies;
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    trustProxy: config.http.trustProxy,
    // Longer path parameters than any schema allows (ids are ≤ 128) are a 414 from the router.
    routerOptions: { maxParamLength: 256 },
    frameworkErrors: frameworkErrorHandler,
    clientErrorHandler: clientConnectionErrorHandler,
    // Validation errors name every failing field, as the contract's 422 body does;
    // JSON bodies are validated without type coercion (see src/http/validation.ts).
    ajv: { customOptions: AJV_OPTIONS },
    schemaController: { compilersFactory: { buildValidator: createValidatorFactory() } },
    logController: new LogController({
      // Logged by the hooks below instead, so the lines carry the request's trace ids.
      disableRequestLogging: true,
      // The correlation id is the request id: every log line of the request carries it.
      requestIdLogLabel: 'correlation_id',
    }),
    genReqId: correlationIdOf,
  });
  app.decorate('db', db);
  if (services === undefined) {
    const notifier = createNotifier(db, logger.child({ component: 'notifier' }));
    app.decorate('notifier', notifier);
    app.addHook('onClose', () => notifier.close());
  } else {
    app.decorate('notifier', services.notifier);
  }
  if (services !== undefined) {
    // First, so that the request span is the parent of everything the request does.
    const instrumentation = new FastifyOtelInstrumentation({ registerOnInitialization: false });
    instrumentation.setTracerProvider(services.tracerProvider);
    await app.register(instrumentation.plugin());
  }
  const logRequests = config.environment !== 'test';
  app.addHook('onRequest', async (request, reply) => {
    void reply.header('x-correlation-id', request.id);
    const ids = tagRequest(request);
    if (ids !== undefined) {
      request.log = request.log.child(ids);
    }
    if (logRequests) {
      logIncomingRequest(request);
    }
  });
  if (logRequests) {
    app.addHook('onResponse', async (request, reply) => {
      logCompletedRequest(request, reply);
    });
  }
  registerErrorHandling(app);
  registerContractSchemas(app);

  await app.register(helmet, {
    // Swagger UI sets its own script/style hashes on /docs (staticCSP); the API answers JSON only.
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        styleSrc: ["'self'", "'unsafe-inline'"],
        scriptSrc: ["'self'"],
        frameAncestors: ["'none'"],
        // Only where the service is served over HTTPS.
        upgradeInsecureRequests: config.environment === 'production' ? [] : null,
      },
    },
  });
  await app.register(cors, {
    origin: config.http.corsOrigins.length === 0 ? false : [...config.http.corsOrigins],
    // The refresh token travels as an HttpOnly cookie, so cross-origin calls carry credentials.
    credentials: true,
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
    allowedHeaders: ['authorization', 'content-type', 'x-correlation-id'],
    exposedHeaders: ['x-correlation-id', 'retry-after'],
    maxAge: 600,
  });
  await app.register(cookie);
  registerStrictJsonParser(app);
  registerBodyGuard(app);
  await registerApiDocs(app, { upgradeInsecureRequests: config.environment === 'production' });

  const auth =
    dependencies.auth ??
    createAuthServices({
      config: config.auth,
      pool: db.pool,
      limitStore: createLimitStore({ db, redisUrl: config.limits.redisUrl, redisKeyPrefix: config.limits.redisKeyPrefix }),
      streamLeaseTtlMs: config.limits.streamLeaseTtlSeconds * 1000,
    });
  if (config.auth.jwtSecretGenerated && config.environment !== 'test') {
    logger.warn('JWT_SECRET is not set: using a random secret, so tokens will not survive a restart');
  }
  await app.register(authPlugin, { services: auth });

  await app.register(healthRoutes, {
    service: SERVICE_NAME,
    version: SERVICE_VERSION,
    environment: config.environment,
    readinessChecks: services === undefined ? [] : [runRecordsCheck(services)],
  });
  await app.register(authRoutes, {
    prefix: '/api/v1/auth',
    services: auth,
    secureCookies: config.environment === 'production',
  });
  await app.register(apiKeyRoutes, { prefix: '/api/v1/auth', services: auth });
  await app.register(conversationRoutes, { prefix: '/api/v1/conversations' });
  await app.register(budgetRoutes, { prefix: '/api/v1' });
  await app.register(profileRoutes, { prefix: '/api/v1/profiles' });
  await app.register(promptRoutes, { prefix: '/api/v1/prompts' });
  await app.register(messageRatingRoutes, { prefix: '/api/v1/conversations' });
  await app.register(documentRoutes, { prefix: '/api/v1/documents' });
  if (services !== undefined) {
    await app.register(metricsRoutes, { metrics: services.metrics });
    await app.register(chatRoutes, { prefix: '/api/v1/workflows', services, limits: config.chatLimits });
    await app.register(executionRoutes, { prefix: '/api/v1/workflows', services });
    const workflowOptions = {
      prefix: '/api/v1/workflows',
      services,
      limits: config.chatLimits,
      toolCallLimit: config.runtime.toolCallLimit,
    };
    await app.register(workflowDefinitionRoutes, workflowOptions);
    await app.register(workflowTemplateRoutes, workflowOptions);
    await app.register(monitoringRoutes, { prefix: '/api/v1/monitoring', services });
    await app.register(analyticsRoutes, { prefix: '/api/v1/analytics', services });
    await app.register(adminPriceRoutes, { prefix: '/api/v1/admin/prices', services });
    await app.register(toolServerRoutes, { prefix: '/api/v1/toolservers', services });
    await app.register(providerCatalogRoutes, { prefix: '/api/v1/profiles', services });
  }
  await app.register(eventRoutes, { prefix: '/api/v1/events' });
  return app;
};
