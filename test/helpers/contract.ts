import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Ajv from 'ajv';

/**
 * The Chatter API contract (`../shared/chatter-api/openapi-core.json`), loaded in tests
 * only, with a validator for its component schemas. `$ref`s to
 * `#/components/schemas/...` resolve inside the document. Uses the ajv (draft-07) found
 * in node_modules; the contract's schemas use nothing newer.
 */
const CONTRACT_PATH = fileURLToPath(new URL('../../../shared/chatter-api/openapi-core.json', import.meta.url));

type OpenApiOperation = { operationId?: string; responses: Record<string, unknown> };
export type Contract = {
  readonly paths: Record<string, Record<string, OpenApiOperation>>;
  readonly components: { schemas: Record<string, unknown> };
};

export const contract: Contract = JSON.parse(readFileSync(CONTRACT_PATH, 'utf8')) as Contract;

const ajv = new Ajv({ allErrors: true, unknownFormats: 'ignore', format: 'full', schemaId: '$id' });
// Examples are data, not schemas (ajv would read their `id` fields as schema ids).
ajv.addSchema(JSON.parse(JSON.stringify(contract), (key, value: unknown) => (key === 'example' ? undefined : value)) as object, 'contract');

/** Validates data against a contract schema: `'ConversationResponse'` or `{ type: 'array', items: ... }`. */
export const contractErrors = (schema: string | object, data: unknown): string[] => {
  const validate =
    typeof schema === 'string'
      ? ajv.getSchema(`contract#/components/schemas/${schema}`)
      : ajv.compile(schema);
  if (validate === undefined) {
    throw new Error(`no schema ${String(schema)} in the contract`);
  }
  const valid = validate(data);
  return valid === true ? [] : (validate.errors ?? []).map((error) => `${error.dataPath} ${error.message ?? ''}`);
};

/** The 200/201 response schema of an operation, with its `$ref`s pointing into the contract. */
export const responseSchemaOf = (path: string, method: string, status: string): string | object => {
  const operation = contract.paths[path]?.[method];
  const response = operation?.responses[status] as { content?: { 'application/json'?: { schema?: Record<string, unknown> } } } | undefined;
  const schema = response?.content?.['application/json']?.schema;
  if (schema === undefined) {
    throw new Error(`the contract has no ${status} JSON response for ${method.toUpperCase()} ${path}`);
  }
  const ref = schema['$ref'];
  if (typeof ref === 'string') {
    return ref.replace('#/components/schemas/', '');
  }
  // Inline schemas (arrays of a component): point their refs at the contract document.
  return JSON.parse(JSON.stringify(schema).replaceAll('"#/components/schemas/', '"contract#/components/schemas/')) as object;
};
