import type { FastifyPluginAsync } from 'fastify';
import type { Metrics } from '../../otel/metrics.js';

/** `GET /metrics`: the Prometheus exposition of the service's OTel metrics, on the API port. */
export const metricsRoutes: FastifyPluginAsync<{ metrics: Metrics }> = async (app, { metrics }) => {
  app.get('/metrics', { schema: { hide: true }, config: { otel: false } }, (request, reply) => {
    reply.hijack();
    metrics.metricsHandler(request.raw, reply.raw);
  });
};
