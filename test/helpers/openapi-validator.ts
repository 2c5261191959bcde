import type { FastifyInstance } from 'fastify';
import Ajv from 'ajv';

type OpenApiOperation = {
  operationId?: string;
  responses: Record<string, unknown>;
  parameters?: { name: string; in: string }[];
  security?: unknown[];
};

/** The parts of an OpenAPI 3.1 document the tests read. */
export type OpenApiDocument = {
  readonly openapi?: string;
  readonly paths: Record<string, Record<string, OpenApiOperation>>;
  readonly components: { schemas: Record<string, unknown> };
};

export type OpenApiValidator = {
  readonly document: OpenApiDocument;
  /** Validates data against a component schema (`'ConversationResponse'`) or an inline schema whose `$ref`s point into the document. */
  readonly errors: (schema: string | object, data: unknown) => string[];
  /**
   * The JSON response schema of an operation and status, as a component name or an
   * inline schema (its `$ref`s pointing into the document).
   *
   * @throws Error when the document has no such response.
   */
  readonly responseSchemaOf: (path: string, method: string, status: string) => string | object;
};

/**
 * A validator for an OpenAPI document's schemas: this service's own `/openapi.json`, or
 * the original Chatter contract. Uses the ajv (draft-07) found in node_modules; the
 * documents' schemas use nothing newer.
 */
export const createOpenApiValidator = (document: OpenApiDocument, id = 'document'): OpenApiValidator => {
  const ajv = new Ajv({ allErrors: true, unknownFormats: 'ignore', format: 'full', schemaId: '$id' });
  // Examples are data, not schemas (ajv would read their `id` fields as schema ids), and
  // the service's own `$id`s are already resolved into `#/components/schemas/…` refs.
  ajv.addSchema(
    JSON.parse(JSON.stringify(document), (key, value: unknown) =>
      key === 'example' || key === 'examples' || key === '$id' ? undefined : value,
    ) as object,
    id,
  );
  const pointIntoDocument = (schema: object): object =>
    JSON.parse(JSON.stringify(schema).replaceAll('"#/components/schemas/', `"${id}#/components/schemas/`)) as object;
  return {
    document,
    errors: (schema, data) => {
      const validate =
        typeof schema === 'string' ? ajv.getSchema(`${id}#/components/schemas/${schema}`) : ajv.compile(pointIntoDocument(schema));
      if (validate === undefined) {
        throw new Error(`no schema ${String(schema)} in ${id}`);
      }
      const valid = validate(data);
      return valid === true ? [] : (validate.errors ?? []).map((error) => `${error.dataPath} ${error.message ?? ''}`);
    },
    responseSchemaOf: (path, method, status) => {
      const operation = document.paths[path]?.[method];
      const response = operation?.responses[status] as
        { content?: { 'application/json'?: { schema?: Record<string, unknown> } } } | undefined;
      const schema = response?.content?.['application/json']?.schema;
      if (schema === undefined) {
        throw new Error(`${id} has no ${status} JSON response for ${method.toUpperCase()} ${path}`);
      }
      const ref = schema['$ref'];
      if (typeof ref === 'string' && ref.startsWith('#/components/schemas/')) {
        return ref.replace('#/components/schemas/', '');
      }
      return schema;
    },
  };
};

/** This service's published OpenAPI document (`GET /openapi.json`, generated from the route schemas). */
export const publishedDocument = async (app: FastifyInstance): Promise<OpenApiDocument> => {
  const response = await app.inject({ method: 'GET', url: '/openapi.json' });
  if (response.statusCode !== 200) {
    throw new Error(`/openapi.json answered ${response.statusCode}`);
  }
  return response.json<OpenApiDocument>();
};

/** A validator for the published document of `app`: route tests check their answers against it. */
export const publishedApi = async (app: FastifyInstance): Promise<OpenApiValidator> =>
  createOpenApiValidator(await publishedDocument(app), 'published');
