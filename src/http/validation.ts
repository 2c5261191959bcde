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
    const build = buildFromPool as unknown as (schemas: unknown, opts: unknown) => (route: { httpPart?: string }) => unknown;
    const coercing = build(externalSchemas, options);
    const strict = build(externalSchemas, { ...options, customOptions: { ...options.customOptions, coerceTypes: false } });
    return (route: { httpPart?: string }) => (route.httpPart === 'body' ? strict(route) : coercing(route));
  }) as unknown as ValidatorFactory;
};
