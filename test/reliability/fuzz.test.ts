import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asUser, registerUser, type RegisteredUser } from '../helpers/api.js';
import { createChatApi, type ChatApi } from '../helpers/chat-api.js';

type Operation = { method: string; path: string; hasBody: boolean; query: string[]; params: string[] };

const operationsOf = (document: {
  paths: Record<string, Record<string, { requestBody?: unknown; parameters?: { name: string; in: string }[] }>>;
}): Operation[] =>
  Object.entries(document.paths).flatMap(([path, methods]) =>
    Object.entries(methods)
      .filter(([method]) => ['get', 'post', 'put', 'delete', 'patch'].includes(method))
      .map(([method, operation]) => ({
        method: method.toUpperCase(),
        path,
        hasBody: operation.requestBody !== undefined,
        query: (operation.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name),
        params: (operation.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name),
      })),
  );

/** Streams are exercised elsewhere (here a request must end); logout and deactivation would end the fuzzer's session. */
const EXCLUDED = new Set([
  '/api/v1/events/stream',
  '/api/v1/analytics/stream',
  '/api/v1/workflows/execute/chat/streaming',
  '/api/v1/auth/logout',
  '/api/v1/auth/account',
]);

describe('fuzzing every route from the OpenAPI document', () => {
  let api: ChatApi;
  let user: RegisteredUser;
  let operations: Operation[];
  beforeAll(async () => {
    api = await createChatApi({
      CHAT_RATE_LIMIT_PER_MINUTE: '100000',
      CHAT_RATE_LIMIT_PER_HOUR: '100000',
      LOGIN_MAX_FAILURES_PER_IP: '100000',
      LOGIN_MAX_FAILURES_PER_ACCOUNT: '100000',
    });
    user = await registerUser(api.app);
    // Every run the fuzzer manages to start answers at once.
    api.script(Array.from({ length: 2_000 }, () => ({ content: 'ok', usage: { input_tokens: 1, output_tokens: 1 } })));
    const document = (await api.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    operations = operationsOf(document).filter((operation) => !EXCLUDED.has(operation.path));
  });
  afterAll(async () => {
    await api.close();
  });

  it('covers the contract paths', () => {
    const paths = new Set(operations.map((operation) => operation.path));
    for (const path of ['/api/v1/auth/login', '/api/v1/conversations/', '/api/v1/workflows/execute/chat', '/api/v1/workflows/executions']) {
      expect(paths).toContain(path);
    }
  });

  it('never answers 5xx to random bodies, query strings, path parameters and headers', async () => {
    const as = asUser(api.app, user);
    const text = fc.oneof(
      fc.string(),
      fc.constantFrom("'; DROP TABLE users; --", '\u0000', '%00', '../../etc/passwd', '9'.repeat(400), '-1', '1e309', '{}', 'null'),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...operations),
        fc.oneof(fc.jsonValue(), fc.dictionary(fc.string(), fc.jsonValue())),
        fc.dictionary(fc.string({ maxLength: 20 }), text, { maxKeys: 4 }),
        fc.array(text, { minLength: 3, maxLength: 3 }),
        fc.record(
          {
            'x-correlation-id': text,
            'content-type': fc.constantFrom('application/json', 'text/plain', 'application/json; charset=utf-8'),
          },
          { requiredKeys: [] },
        ),
        async (operation, body, extraQuery, paramValues, headers) => {
          let path = operation.path;
          operation.params.forEach((name, index) => {
            path = path.replace(`{${name}}`, encodeURIComponent(paramValues[index] ?? 'x') || 'x');
          });
          const query = new URLSearchParams();
          for (const name of operation.query) query.set(name, paramValues[0] ?? '');
          for (const [key, value] of Object.entries(extraQuery)) query.set(key, value);
          const response = await as({
            method: operation.method as 'GET',
            url: `${path}${query.size > 0 ? `?${query.toString()}` : ''}`,
            headers,
            ...(operation.hasBody ? { payload: JSON.stringify(body) } : {}),
          });
          // The document routes answer 501 by design (this service stores no documents).
          const unsupported = response.statusCode === 501 && /"code":"documents_not_supported"/.test(response.body);
          if (response.statusCode >= 500 && !unsupported) {
            throw new Error(`${operation.method} ${path} → ${response.statusCode}: ${response.body.slice(0, 300)}`);
          }
          expect(response.body).not.toMatch(/at [\w.<>]+ \(.*:\d+:\d+\)/);
          // Framework codes and messages never reach a client (src/http/errors.ts maps them).
          if (response.statusCode >= 400 && /FST_|ERR_[A-Z]/.test(response.body)) {
            throw new Error(`${operation.method} ${path} → ${response.statusCode} leaks a framework code: ${response.body.slice(0, 300)}`);
          }
        },
      ),
      { numRuns: 600, seed: 20261122 },
    );
    const ready = await api.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    // The session survived the fuzzing: most requests were authorised, not 401s.
    expect((await as({ method: 'GET', url: '/api/v1/auth/me' })).statusCode).toBe(200);
  }, 180_000);

  it('answers 413 to an oversized body', async () => {
    const response = await asUser(
      api.app,
      user,
    )({
      method: 'POST',
      url: '/api/v1/workflows/execute/chat',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ message: 'x'.repeat(2 * 1024 * 1024) }),
    });
    expect(response.statusCode).toBe(413);
    expect(response.json()).toEqual({ detail: 'Request body is larger than the limit of 1048576 bytes', code: 'payload_too_large' });
  });
});
