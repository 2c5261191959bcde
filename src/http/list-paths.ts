/**
 * Where a plugin's list route is registered: at the prefix itself, as the contract names
 * it (`GET /api/v1/profiles`), and with a trailing slash (`…/profiles/`, the path of the
 * same resource's POST), hidden from the OpenAPI document.
 */
export const LIST_PATHS = [
  ['', false],
  ['/', true],
] as const;
