import { BackendTerminatedError, BackendTerminatedUnexpectedlyError, ConnectionError } from 'slonik';
import { ConnectionAcquireTimeoutError } from '../db/database.js';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** An error whose message is safe to show the client, with its HTTP status. */
export class HttpError extends Error {
  public readonly statusCode: number;
  public readonly code: string;

  public constructor(statusCode: number, message: string, code = 'error', options?: ErrorOptions) {
    super(message, options);
    this.name = 'HttpError';
    this.statusCode = statusCode;
    this.code = code;
  }
}

export const UNAVAILABLE_MESSAGE = /connection terminated|ECONNREFUSED|ECONNRESET|Connection refused|socket hang up|pool.*end/i;

/** The database cannot be reached (as opposed to a query or data error): 503, not 500. */
export const isDatabaseUnavailable = (error: unknown): boolean => {
  for (let current: unknown = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth += 1) {
    if (
      current instanceof ConnectionAcquireTimeoutError ||
      current instanceof ConnectionError ||
      current instanceof BackendTerminatedError ||
      current instanceof BackendTerminatedUnexpectedlyError ||
      UNAVAILABLE_MESSAGE.test(current.message)
    ) {
      return true;
    }
  }
  return false;
};

export type ValidationItem = { loc: (string | number)[]; msg: string; type: string };

/** A check a JSON Schema cannot express failed: answered 422 in the same shape as schema errors. */
export class RequestValidationError extends Error {
  public readonly detail: readonly ValidationItem[];

  public constructor(detail: readonly ValidationItem[]) {
    super(detail.map((item) => item.msg).join('; '));
    this.name = 'RequestValidationError';
    this.detail = detail;
  }
}

const locationOf = (context: string | undefined, instancePath: string, missing?: string): (string | number)[] => {
  const where = context === 'querystring' ? 'query' : (context ?? 'body');
  const path = instancePath
    .split('/')
    .filter((part) => part !== '')
    .map((part) => (/^\d+$/.test(part) ? Number(part) : part));
  return missing === undefined ? [where, ...path] : [where, ...path, missing];
};

/**
 * One error handler for the whole API: schema validation → 422 in the contract's
 * `HTTPValidationError` shape, known errors → their 4xx, anything else → a 500 whose
 * body says nothing about internals (the details go to the log).
 */
export const registerErrorHandling = (app: FastifyInstance): void => {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error.validation !== undefined) {
      const detail: ValidationItem[] = error.validation.map((issue) => {
        const missing =
          issue.keyword === 'required' && typeof issue.params?.['missingProperty'] === 'string'
            ? issue.params['missingProperty']
            : undefined;
        return {
          loc: locationOf(error.validationContext, issue.instancePath, missing),
          msg: issue.message ?? 'invalid value',
          type: issue.keyword,
        };
      });
      return reply.status(422).send({ detail });
    }
    if (error instanceof RequestValidationError) {
      return reply.status(422).send({ detail: error.detail });
    }
    if (error instanceof HttpError) {
      return reply.status(error.statusCode).send({ detail: error.message, code: error.code });
    }
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      // Fastify's own client errors (body too large, bad JSON, unsupported media type).
      const code = error.code ?? 'client_error';
      const status422 = code === 'FST_ERR_CTP_INVALID_JSON_BODY' || code === 'FST_ERR_CTP_EMPTY_JSON_BODY';
      const detail =
        code === 'FST_ERR_CTP_BODY_TOO_LARGE'
          ? `Request body is larger than the limit of ${request.routeOptions.bodyLimit ?? 1024 * 1024} bytes`
          : error.message;
      return reply
        .status(status422 ? 422 : status)
        .send(
          status422
            ? { detail: [{ loc: ['body'], msg: error.message, type: 'json_invalid' }] }
            : { detail, code },
        );
    }
    if (isDatabaseUnavailable(error)) {
      request.log.warn({ err: error }, 'database unavailable');
      void reply.header('retry-after', '5');
      return reply
        .status(503)
        .send({ detail: 'The database is unavailable right now; nothing was changed, please retry shortly', code: 'database_unavailable' });
    }
    request.log.error({ err: error }, 'request failed');
    return reply.status(500).send({ detail: 'Internal server error', code: 'internal_error' });
  });

  app.setNotFoundHandler((_request, reply) => reply.status(404).send({ detail: 'Not Found' }));
};

/**
 * Errors the router raises before any route (and so before the error handler) runs:
 * answered in the same `{ detail, code }` shape as every other client error.
 * Passed as Fastify's `frameworkErrors` option.
 */
export const frameworkErrorHandler = (error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void => {
  const status = error.statusCode ?? 400;
  const detail =
    error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'A path parameter is too long' : error.code === 'FST_ERR_BAD_URL' ? 'Malformed URL' : 'Bad request';
  void reply.status(status).send({ detail, code: error.code ?? 'bad_request' });
};
