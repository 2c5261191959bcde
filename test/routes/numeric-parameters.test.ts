import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asUser, registerUser, type RegisteredUser } from '../helpers/api.js';
import { createChatApi, type ChatApi } from '../helpers/chat-api.js';

type Schema = { type?: string | string[]; minimum?: number; maximum?: number; anyOf?: Schema[] };
type Parameter = { name: string; in: string; schema: Schema };
type Document = { paths: Record<string, Record<string, { parameters?: Parameter[] }>> };

type NumericParameter = { method: string; path: string; name: string; in: string; integer: boolean; minimum?: number; maximum?: number };

const typesOf = (schema: Schema): string[] => [
  ...(schema.type === undefined ? [] : Array.isArray(schema.type) ? schema.type : [schema.type]),
  ...(schema.anyOf ?? []).flatMap(typesOf),
];

const boundsOf = (schema: Schema): Pick<NumericParameter, 'minimum' | 'maximum'> => {
  const numeric = [schema, ...(schema.anyOf ?? [])].find((part) => part.minimum !== undefined || part.maximum !== undefined) ?? schema;
  return {
    ...(numeric.minimum === undefined ? {} : { minimum: numeric.minimum }),
    ...(numeric.maximum === undefined ? {} : { maximum: numeric.maximum }),
  };
};

/** Every integer or number parameter (query string or path) of every operation in the published document. */
const numericParameters = (document: Document): NumericParameter[] =>
  Object.entries(document.paths).flatMap(([path, methods]) =>
    Object.entries(methods).flatMap(([method, operation]) =>
      (operation.parameters ?? [])
        .filter((parameter) => parameter.in === 'query' || parameter.in === 'path')
        .filter((parameter) => typesOf(parameter.schema).some((type) => type === 'integer' || type === 'number'))
        .map((parameter) => ({
          method: method.toUpperCase(),
          path,
          name: parameter.name,
          in: parameter.in,
          integer: typesOf(parameter.schema).includes('integer'),
          ...boundsOf(parameter.schema),
        })),
    ),
  );

describe('numeric query and path parameters', () => {
  let api: ChatApi;
  let user: RegisteredUser;
  let parameters: NumericParameter[];
  beforeAll(async () => {
    api = await createChatApi();
    user = await registerUser(api.app);
    // A superuser may call every route (admin ones check that first), so each reaches validation.
    await api.db.pool.query(sql.unsafe`UPDATE users SET is_superuser = true WHERE id = ${user.id}`);
    parameters = numericParameters((await api.app.inject({ method: 'GET', url: '/openapi.json' })).json<Document>());
  });
  afterAll(async () => {
    await api.close();
  });

  it('finds the paging parameters and cursors in the document', () => {
    const names = parameters.map((parameter) => `${parameter.path} ${parameter.name}`);
    expect(names).toEqual(
      expect.arrayContaining([
        '/api/v1/events/ cursor',
        '/api/v1/events/ limit',
        '/api/v1/events/stream last_event_id',
        '/api/v1/conversations/ offset',
        '/api/v1/workflows/executions offset',
      ]),
    );
  });

  it('gives every one a minimum and a maximum within a safe integer', () => {
    for (const parameter of parameters) {
      const where = `${parameter.method} ${parameter.path} ${parameter.name}`;
      expect(parameter.minimum, where).toBeGreaterThanOrEqual(-Number.MAX_SAFE_INTEGER);
      expect(parameter.maximum, where).toBeLessThanOrEqual(Number.MAX_SAFE_INTEGER);
    }
  });

  it('answers 422 naming the parameter for values out of range, fractional or not numbers at all', async () => {
    const as = asUser(api.app, user);
    const failures: string[] = [];
    for (const parameter of parameters) {
      const bad = [
        '99999999999999999999',
        '-99999999999999999999',
        '1e400',
        'NaN',
        'abc',
        ...(parameter.maximum === undefined ? [] : [String(parameter.maximum + 1)]),
        ...(parameter.minimum === undefined ? [] : [String(parameter.minimum - 1)]),
        ...(parameter.integer ? ['1.5'] : []),
      ];
      for (const value of bad) {
        // Path parameters are not numeric anywhere today; the walk covers them if one becomes so.
        const url =
          parameter.in === 'path'
            ? parameter.path.replace(`{${parameter.name}}`, encodeURIComponent(value))
            : `${parameter.path.replaceAll(/\{[^}]+\}/g, 'x')}?${new URLSearchParams({ [parameter.name]: value }).toString()}`;
        const response = await as({ method: parameter.method as 'GET', url });
        const loc = [parameter.in === 'path' ? 'params' : 'query', parameter.name];
        const detail = response.statusCode === 422 ? response.json<{ detail: { loc: unknown[] }[] }>().detail : [];
        if (response.statusCode !== 422 || !detail.some((item) => JSON.stringify(item.loc) === JSON.stringify(loc))) {
          failures.push(`${parameter.method} ${url} → ${response.statusCode} ${response.body.slice(0, 200)}`);
        }
      }
    }
    expect(failures).toEqual([]);
  });

  it('accepts the largest cursor and answers an empty page', async () => {
    const response = await asUser(api.app, user)({ method: 'GET', url: `/api/v1/events/?cursor=${Number.MAX_SAFE_INTEGER}` });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toMatchObject({ next_cursor: null });
  });
});
