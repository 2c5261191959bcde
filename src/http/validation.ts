import { createRequire } from 'node:module';
import type { FastifyServerOptions } from 'fastify';

type CompilersFactory = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>;
type ValidatorFactory = NonNullable<CompilersFactory['buildValidator']>;

/** The validator compiler factory Fastify itself uses (its own dependency, whatever npm hoisted). */
const loadFastifyAjvCompiler = (): (() => ValidatorFactory) => {
  const fastifyEntry = createRequire(import.meta.url).resolve('fastify');
  const module = createRequire(fastifyEntry)('@fastify/ajv-compiler') as { default: () => ValidatorFactory };
  return module.default;
};

/**
 * Ajv options for the whole API: every failing field reported (the 422 body lists them
 * all), unknown fields left alone (handlers read only the fields they know, so extra
 * ones are ignored, never stored), and types coerced where HTTP only has strings.
 */
export const AJV_OPTIONS = { allErrors: true, removeAdditional: false, coerceTypes: 'array' } as const;

/**
 * One Ajv that coerces (querystring, params, headers: `?limit=10` is the string "10")
 * and one that does not, for JSON bodies: there a number sent for a string, or `null`
 * for a required string, is a client error to report, not something to turn into
 * "123" or "".
 */
export const createValidatorFactory = (): ValidatorFactory => {
  const buildFromPool = loadFastifyAjvCompiler()();
  return ((externalSchemas: unknown, options: { customOptions?: Record<string, unknown> }) => {
    const build = buildFromPool as unknown as (schemas: unknown, opts: unknown) => (route: { httpPart?: string }) => AjvValidate;
    const coercing = build(externalSchemas, options);
    const strict = build(externalSchemas, { ...options, customOptions: { ...options.customOptions, coerceTypes: false } });
    return (route: { httpPart?: string }) => (route.httpPart === 'body' ? strict(route) : refusingInfinity(coercing(route)));
  }) as unknown as ValidatorFactory;
};

type AjvError = { instancePath: string; schemaPath: string; keyword: string; params: Record<string, unknown>; message: string };
type AjvValidate = ((data: unknown, context?: unknown) => unknown) & { errors?: AjvError[] | null; schemaEnv?: unknown };

/** The path of the first non-finite number in coerced request data (query strings and params are flat). */
const nonFiniteAt = (data: unknown): string | null => {
  if (typeof data === 'number') {
    return Number.isFinite(data) ? null : '';
  }
  if (data !== null && typeof data === 'object') {
    for (const [key, value] of Object.entries(data)) {
      for (const item of Array.isArray(value) ? value : [value]) {
        if (typeof item === 'number' && !Number.isFinite(item)) {
          return `/${key}`;
        }
      }
    }
  }
  return null;
};

/**
 * Ajv's type coercion turns a string like `1e400` into `Infinity` and then skips
 * `minimum`/`maximum` (they only test finite numbers), so an unbounded value would
 * reach SQL. A coerced non-finite number is refused like any other bad value.
 */
const refusingInfinity = (validate: AjvValidate): AjvValidate => {
  const wrapped: AjvValidate = (data, context) => {
    const valid = validate(data, context);
    wrapped.errors = validate.errors ?? null;
    if (valid !== true) {
      return valid;
    }
    const at = nonFiniteAt(data);
    if (at === null) {
      return true;
    }
    wrapped.errors = [{ instancePath: at, schemaPath: '#/type', keyword: 'type', params: {}, message: 'must be a finite number' }];
    return false;
  };
  if (validate.schemaEnv !== undefined) {
    wrapped.schemaEnv = validate.schemaEnv;
  }
  return wrapped;
};
