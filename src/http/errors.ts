import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { BackendTerminatedError, BackendTerminatedUnexpectedlyError, ConnectionError } from 'slonik';
import { ConnectionAcquireTimeoutError, StatementNoAnswerError } from '../db/database.js';
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
      current instanceof StatementNoAnswerError ||
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

const DEFAULT_BODY_LIMIT = 1024 * 1024;

type ClientErrorAnswer = { status: number; body: { detail: string; code: string } | { detail: ValidationItem[] } };

/** The status, code and words of each framework (Fastify) client error a request can cause. */
const FRAMEWORK_ERRORS: Record<string, (bodyLimit: number) => ClientErrorAnswer> = {
  FST_ERR_CTP_BODY_TOO_LARGE: (bodyLimit) => ({
    status: 413,
    body: { detail: `Request body is larger than the limit of ${bodyLimit} bytes`, code: 'payload_too_large' },
  }),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: () => ({
    status: 415,
    body: { detail: 'Unsupported media type: send the body as application/json', code: 'unsupported_media_type' },
  }),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () => ({
    status: 400,
    body: { detail: 'The request body does not match its Content-Length', code: 'bad_request' },
  }),
  FST_ERR_CTP_INVALID_JSON_BODY: () => ({
    status: 422,
    body: { detail: [{ loc: ['body'], msg: 'The body is not valid JSON', type: 'json_invalid' }] },
  }),
  FST_ERR_CTP_EMPTY_JSON_BODY: () => ({
    status: 422,
    body: { detail: [{ loc: ['body'], msg: 'The body is empty but its content type is application/json', type: 'json_invalid' }] },
  }),
  FST_ERR_MAX_PARAM_LENGTH: () => ({ status: 414, body: { detail: 'A path parameter is too long', code: 'uri_too_long' } }),
  FST_ERR_BAD_URL: () => ({ status: 400, body: { detail: 'Malformed URL', code: 'bad_request' } }),
};

/** Words and codes by status, for a client error nothing more specific describes. */
const GENERIC_CLIENT_ERRORS: Record<number, { detail: string; code: string }> = {
  400: { detail: 'Bad request', code: 'bad_request' },
  401: { detail: 'Not authenticated', code: 'unauthorized' },
  403: { detail: 'Forbidden', code: 'forbidden' },
  404: { detail: 'Not Found', code: 'not_found' },
  405: { detail: 'Method not allowed', code: 'method_not_allowed' },
  406: { detail: 'Not acceptable', code: 'not_acceptable' },
  408: { detail: 'Request timeout', code: 'request_timeout' },
  411: { detail: 'Length required', code: 'length_required' },
  413: { detail: 'Request body is too large', code: 'payload_too_large' },
  414: { detail: 'Request URI is too long', code: 'uri_too_long' },
  415: { detail: 'Unsupported media type', code: 'unsupported_media_type' },
  429: { detail: 'Too many requests', code: 'rate_limited' },
  431: { detail: 'Request headers are too large', code: 'headers_too_large' },
};

/**
 * The answer to a client error raised by the framework, a plugin or a library: a
 * framework code (`FST_…`) or message never reaches the client. Errors of our own
 * with a status (e.g. UnknownProviderError) keep their words, written for users,
 * with their code in the API's snake_case.
 */
const clientErrorOf = (error: FastifyError, bodyLimit: number): ClientErrorAnswer => {
  const code = error.code ?? '';
  const known = FRAMEWORK_ERRORS[code];
  if (known !== undefined) {
    return known(bodyLimit);
  }
  const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 400;
  const generic = GENERIC_CLIENT_ERRORS[status] ?? { detail: 'Bad request', code: 'bad_request' };
  // Framework (FST_), Node (ERR_) and unnamed errors say nothing a client should read.
  if (code.startsWith('FST_') || code.startsWith('ERR_') || !/^[A-Z][A-Z0-9_]*$/.test(code)) {
    return { status, body: generic };
  }
  return { status, body: { detail: error.message, code: code.toLowerCase() } };
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
      const answer = clientErrorOf(error, request.routeOptions.bodyLimit ?? DEFAULT_BODY_LIMIT);
      // The framework's own code stays in the log, for operators.
      request.log.debug({ code: error.code, status: answer.status }, 'client error');
      return reply.status(answer.status).send(answer.body);
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
  const answer = clientErrorOf(error, DEFAULT_BODY_LIMIT);
  void reply.status(answer.status).send(answer.body);
};

/**
 * Errors Node's HTTP parser raises on a connection before Fastify sees a request
 * (malformed request line or headers, headers too large, a body cut short, a timeout):
 * answered in the API's `{ detail, code }` shape instead of Fastify's default body.
 * Passed as Fastify's `clientErrorHandler` option.
 */
export const clientConnectionErrorHandler = (error: Error & { code?: string }, socket: Duplex): void => {
  if (error.code === 'ECONNRESET' || socket.destroyed) {
    return;
  }
  const status = error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : error.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
  const body = JSON.stringify(GENERIC_CLIENT_ERRORS[status]);
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Bad Request'}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
};
