import type { FastifyPluginAsync } from 'fastify';
import { sql } from 'slonik';
import { z } from 'zod';

const HealthBody = {
  type: 'object',
  required: ['status', 'service', 'version', 'environment'],
  properties: {
    status: { type: 'string', enum: ['healthy', 'alive', 'unhealthy'] },
    service: { type: 'string' },
    version: { type: 'string' },
    environment: { type: 'string' },
  },
} as const;

const ReadinessBody = {
  type: 'object',
  required: ['status', 'service', 'version', 'environment', 'checks'],
  properties: {
    status: { type: 'string', enum: ['ready', 'not_ready'] },
    service: { type: 'string' },
    version: { type: 'string' },
    environment: { type: 'string' },
    checks: { type: 'object', additionalProperties: true },
  },
} as const;

/** How long /readyz waits for the database: it answers within 2 s, whatever the database does. */
export const DATABASE_CHECK_TIMEOUT_MS = 1_500;

export type ReadinessCheck = () => Promise<{ name: string; healthy: boolean; details: Record<string, unknown> }>;

export type HealthRoutesOptions = {
  readonly service: string;
  readonly version: string;
  readonly environment: string;
  /** Extra readiness checks (e.g. the telemetry writer's backlog). */
  readonly readinessChecks?: readonly ReadinessCheck[];
};

/** `/healthz`, `/live` (process only) and `/readyz` (database and other dependencies). */
export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (app, options) => {
  const identity = { service: options.service, version: options.version, environment: options.environment };

  app.get('/healthz', { schema: { tags: ['Health'], response: { 200: HealthBody } } }, async () => ({ status: 'healthy', ...identity }));

  app.get('/live', { schema: { tags: ['Health'], response: { 200: HealthBody } } }, async () => ({ status: 'alive', ...identity }));

  const databaseCheck: ReadinessCheck = async () => {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      // A database behind a silent partition never answers: the check gives up in time
      // for /readyz to answer (503) well within a load balancer's probe timeout.
      const timedOut = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${DATABASE_CHECK_TIMEOUT_MS} ms`)), DATABASE_CHECK_TIMEOUT_MS);
      });
      await Promise.race([app.db.pool.oneFirst(sql.type(z.object({ ok: z.number() }))`SELECT 1 AS ok`), timedOut]);
      return {
        name: 'database',
        healthy: true,
        details: { status: 'healthy', kind: app.db.kind, latency_ms: Math.round(performance.now() - started) },
      };
    } catch (error) {
      app.log.warn({ err: error }, 'readiness: database check failed');
      return {
        name: 'database',
        healthy: false,
        details: { status: 'unhealthy', kind: app.db.kind, error: 'database unreachable' },
      };
    } finally {
      clearTimeout(timer);
    }
  };

  app.get('/readyz', { schema: { tags: ['Health'], response: { 200: ReadinessBody, 503: ReadinessBody } } }, async (_request, reply) => {
    const results = await Promise.all([databaseCheck, ...(options.readinessChecks ?? [])].map((check) => check()));
    const ready = results.every((result) => result.healthy);
    const checks = Object.fromEntries(results.map((result) => [result.name, result.details]));
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', ...identity, checks });
  });
};
