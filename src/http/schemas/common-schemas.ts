/**
 * JSON Schemas shared by every route, copied from the Chatter API contract
 * (`openapi-core.json`) as constants: the service reads no file outside the repository
 * at run time. Each has an `$id`; routes refer to them as `{ $ref: 'Name#' }` and the
 * OpenAPI document lists them under `#/components/schemas/Name`.
 */

/** The largest value of a PostgreSQL `integer` (int4) column. */
export const INT4_MAX = 2_147_483_647;

/**
 * The largest `bigint` (int8) a parameter may carry: JSON numbers above 2^53 − 1 lose
 * precision, and anything above int8's range is a database error (a 500) rather than a 422.
 */
export const INT8_SAFE_MAX = Number.MAX_SAFE_INTEGER;

export const ValidationErrorSchema = {
  $id: 'ValidationError',
  type: 'object',
  title: 'ValidationError',
  required: ['loc', 'msg', 'type'],
  properties: {
    loc: { type: 'array', title: 'Location', items: { anyOf: [{ type: 'string' }, { type: 'integer' }] } },
    msg: { type: 'string', title: 'Message' },
    type: { type: 'string', title: 'Error Type' },
  },
} as const;

export const HTTPValidationErrorSchema = {
  $id: 'HTTPValidationError',
  type: 'object',
  title: 'HTTPValidationError',
  properties: {
    detail: { type: 'array', title: 'Detail', items: { $ref: 'ValidationError#' } },
  },
} as const;

/** The body of every other 4xx answer (not in the contract, which lists only 422). */
export const ErrorResponseSchema = {
  $id: 'ErrorResponse',
  type: 'object',
  title: 'ErrorResponse',
  description: 'A client error: what went wrong, in words, and a stable code.',
  required: ['detail'],
  properties: {
    detail: { type: 'string', description: 'What went wrong' },
    code: { type: 'string', description: 'Stable machine-readable error code' },
  },
} as const;

/** Response entries for the errors an authenticated JSON route can answer. */
export const errorResponses = (...statuses: readonly (400 | 401 | 403 | 404 | 409 | 413 | 429)[]) => ({
  ...Object.fromEntries(statuses.map((status) => [status, { $ref: 'ErrorResponse#' }])),
  422: { $ref: 'HTTPValidationError#' },
});

/** `security` of a route that needs `Authorization: Bearer …` (the contract's scheme name). */
export const bearerSecurity = [{ CustomHTTPBearer: [] }];
