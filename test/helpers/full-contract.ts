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
    const document = JSON.parse(readFileSync(FULL_PATH, 'utf8'), (key, value: unknown) => (key === 'example' ? undefined : value)) as object;
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
