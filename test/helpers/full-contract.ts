import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Ajv from 'ajv';

/**
 * The original API's whole published document (`../shared/chatter-api/openapi-full.json`),
 * for routes outside the core contract: validates a body against a component schema.
 * The file lives outside this repository: tests using it are skipped with this reason
 * when it is missing locally, and fail in CI (`CI=true`).
 */
const FULL_PATH = fileURLToPath(new URL('../../../shared/chatter-api/openapi-full.json', import.meta.url));

export const fullContractMissing: string | undefined = existsSync(FULL_PATH)
  ? undefined
  : `needs ${FULL_PATH} (the original API contract beside the repository)`;
if (fullContractMissing !== undefined && process.env['CI'] === 'true') {
  throw new Error(`CI=true: ${fullContractMissing}`);
}

let ajv: Ajv.Ajv | undefined;
const validator = (): Ajv.Ajv => {
  if (ajv === undefined) {
    ajv = new Ajv({ allErrors: true, unknownFormats: 'ignore', format: 'full', schemaId: '$id' });
    const document = JSON.parse(readFileSync(FULL_PATH, 'utf8'), (key, value: unknown) =>
      key === 'example' ? undefined : value,
    ) as object;
    ajv.addSchema(document, 'full');
  }
  return ajv;
};

/** Errors of `data` against `#/components/schemas/<name>` of the full contract; [] when valid. */
export const fullContractErrors = (name: string, data: unknown): string[] => {
  const validate = validator().getSchema(`full#/components/schemas/${name}`);
  if (validate === undefined) throw new Error(`no schema ${name} in openapi-full.json`);
  return validate(data) === true ? [] : (validate.errors ?? []).map((error) => `${error.dataPath} ${error.message ?? ''}`);
};

/** The full contract's path (`/x/{workflow_id}`) a frontend-calls.md path (`/x/{id}`) names, or undefined. */
export const fullContractPathOf = (path: string, method: string): string | undefined => {
  const document = validator().getSchema('full')?.schema as { paths: Record<string, Record<string, unknown>> } | undefined;
  return Object.keys(document?.paths ?? {}).find(
    (candidate) => candidate.replace(/\{[^}]+\}/g, '{id}') === path && document?.paths[candidate]?.[method.toLowerCase()] !== undefined,
  );
};

/** Errors of `data` against the full contract's JSON response schema of `path` (a contract path), `method` and `status`; [] when valid. */
export const fullContractResponseErrors = (path: string, method: string, status: number, data: unknown): string[] => {
  const pointer = ['paths', path, method.toLowerCase(), 'responses', String(status), 'content', 'application/json', 'schema']
    .map((part) => encodeURIComponent(part.replace(/~/g, '~0').replace(/\//g, '~1')))
    .join('/');
  const validate = validator().getSchema(`full#/${pointer}`);
  if (validate === undefined) throw new Error(`no ${status} JSON response for ${method} ${path} in openapi-full.json`);
  return validate(data) === true ? [] : (validate.errors ?? []).map((error) => `${error.dataPath} ${error.message ?? ''}`);
};
