import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createOpenApiValidator, type OpenApiDocument, type OpenApiValidator } from './openapi-validator.js';
import { fileExists, requireOrSkip } from './requires.js';

/**
 * The original Chatter API contract (`../shared/chatter-api/openapi-core.json`), which
 * lives beside the repository, not in it. Only the conformance tests read it; they run
 * inside `describeWithContract`, skipped (locally) or failed (CI) when it is missing.
 */
export const CONTRACT_PATH = fileURLToPath(new URL('../../../shared/chatter-api/openapi-core.json', import.meta.url));

export type Contract = OpenApiDocument;

/** `describe` for tests that compare the service with the original contract. */
export const describeWithContract = requireOrSkip(
  'the original API contract',
  fileExists(CONTRACT_PATH, 'the `shared/` folder beside the repository; only the conformance tests read it'),
);

let loaded: OpenApiValidator | undefined;

/**
 * The contract and a validator for its schemas, read on first use.
 *
 * @throws Error when the contract file is missing (call it inside `describeWithContract`).
 */
export const loadContract = (): OpenApiValidator => {
  loaded ??= createOpenApiValidator(JSON.parse(readFileSync(CONTRACT_PATH, 'utf8')) as Contract, 'contract');
  return loaded;
};
