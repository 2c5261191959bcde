import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * Routes that orchestrators and Prometheus call every few seconds: their lines would
 * bury everything else at `info`, so they are logged at `debug` only, whatever the answer
 * (a failing readiness check is visible in `/readyz` itself and in the database errors).
 */
const PROBE_ROUTES: ReadonlySet<string> = new Set(['/healthz', '/live', '/readyz', '/metrics']);

export type RequestLogLevel = 'debug' | 'info' | 'error';

const isProbe = (request: FastifyRequest): boolean => PROBE_ROUTES.has(request.routeOptions.url ?? '');

/** The level of a request's `incoming request` line: `debug` (the completion line says it all). */
export const incomingLogLevel = (): RequestLogLevel => 'debug';

/**
 * The level of a request's `request completed` line: `debug` for health, readiness and
 * metrics probes; `error` for a 5xx; `info` for everything else (4xx included: a 401,
 * 404 or 422 is the client's business, recorded once, not an alarm).
 */
export const completionLogLevel = (request: FastifyRequest, reply: FastifyReply): RequestLogLevel => {
  if (isProbe(request)) {
    return 'debug';
  }
  return reply.statusCode >= 500 ? 'error' : 'info';
};

/** Logs the request's arrival; call after the request's logger carries its ids. */
export const logIncomingRequest = (request: FastifyRequest): void => {
  request.log[incomingLogLevel()]({ req: request }, 'incoming request');
};

/** Logs the request's end with its method, route, status and time: the one `info` line of a request. */
export const logCompletedRequest = (request: FastifyRequest, reply: FastifyReply): void => {
  request.log[completionLogLevel(request, reply)]({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed');
};
