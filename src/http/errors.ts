import type { FastifyError, FastifyInstance } from 'fastify';

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

type ValidationItem = { loc: (string | number)[]; msg: string; type: string };

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
    if (error instanceof HttpError) {
      return reply.status(error.statusCode).send({ detail: error.message, code: error.code });
    }
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      // Fastify's own client errors (body too large, bad JSON, unsupported media type).
      const code = error.code ?? 'client_error';
      const status422 = code === 'FST_ERR_CTP_INVALID_JSON_BODY' || code === 'FST_ERR_CTP_EMPTY_JSON_BODY';
      return reply
        .status(status422 ? 422 : status)
        .send(
          status422
            ? { detail: [{ loc: ['body'], msg: error.message, type: 'json_invalid' }] }
            : { detail: error.message, code },
        );
    }
    request.log.error({ err: error }, 'request failed');
    return reply.status(500).send({ detail: 'Internal server error', code: 'internal_error' });
  });

  app.setNotFoundHandler((_request, reply) => reply.status(404).send({ detail: 'Not Found' }));
};
