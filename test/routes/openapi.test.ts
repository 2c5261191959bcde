import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApi, type TestApi } from '../helpers/api.js';
import { createChatApi, type ChatApi } from '../helpers/chat-api.js';
import { describeWithContract, loadContract, type Contract } from '../helpers/contract.js';

type Document = {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, { operationId?: string; security?: unknown[] }>>;
  components: {
    schemas: Record<string, { required?: string[]; properties?: Record<string, unknown> }>;
    securitySchemes: Record<string, unknown>;
  };
};

describe('OpenAPI document and docs UI', () => {
  let api: TestApi;
  let document: Document;
  beforeAll(async () => {
    api = await createTestApi();
    const response = await api.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(response.statusCode).toBe(200);
    document = response.json<Document>();
  });
  afterAll(async () => {
    await api.close();
  });

  it('is OpenAPI 3.1 with the service name and version', () => {
    expect(document.openapi).toBe('3.1.0');
    expect(document.info).toMatchObject({ title: 'Chatter API', version: expect.stringMatching(/^\d+\.\d+\.\d+/) });
    expect(document.components.securitySchemes).toEqual({ CustomHTTPBearer: { type: 'http', scheme: 'bearer' } });
  });

  it('serves Swagger UI at /docs with its own content security policy', async () => {
    const page = await api.app.inject({ method: 'GET', url: '/docs/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.headers['content-security-policy']).toMatch(/script-src 'self'/);
    expect(page.headers['content-security-policy']).not.toMatch(/upgrade-insecure-requests/);
    const script = await api.app.inject({ method: 'GET', url: '/docs/static/swagger-initializer.js' });
    expect(script.statusCode).toBe(200);
    const spec = await api.app.inject({ method: 'GET', url: '/docs/json' });
    expect(spec.json<Document>().paths).toHaveProperty('/api/v1/conversations/');
  });

  it('sends security headers on API answers', async () => {
    const response = await api.app.inject({ method: 'GET', url: '/healthz' });
    expect(response.headers).toMatchObject({
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'SAMEORIGIN',
      'referrer-policy': 'no-referrer',
      'strict-transport-security': expect.stringContaining('max-age='),
    });
    expect(response.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
  });
});

/**
 * The conformance of the published document to the original Chatter contract
 * (`../shared/chatter-api/openapi-core.json`, outside the repository): skipped without it
 * locally, required in CI. Route tests validate against the published document itself.
 */
describeWithContract('the published OpenAPI document against the original contract', () => {
  let api: ChatApi;
  let document: Document;
  let contract: Contract;
  beforeAll(async () => {
    contract = loadContract().document;
    api = await createChatApi();
    document = (await api.app.inject({ method: 'GET', url: '/openapi.json' })).json<Document>();
  });
  afterAll(async () => {
    await api.close();
  });

  it('holds every contract path and method, with the contract operationId and security', () => {
    const expected = Object.entries(contract.paths);
    expect(expected.length).toBeGreaterThanOrEqual(20);
    for (const [path, operations] of expected) {
      for (const [method, operation] of Object.entries(operations)) {
        const served = document.paths[path]?.[method];
        expect(served, `${method.toUpperCase()} ${path}`).toBeDefined();
        if (path.startsWith('/api/')) {
          expect(served?.operationId, `${method.toUpperCase()} ${path}`).toBe(operation.operationId);
          const secured = (operation as { security?: unknown }).security !== undefined;
          expect(served?.security !== undefined, `${method.toUpperCase()} ${path} security`).toBe(secured);
        }
      }
    }
  });

  it('lists the contract component schemas with at least their properties and required fields', () => {
    const names = Object.keys(document.components.schemas).filter((name) => name in contract.components.schemas);
    expect(names).toEqual(
      expect.arrayContaining(['UserResponse', 'TokenResponse', 'ConversationResponse', 'MessageResponse', 'HTTPValidationError']),
    );
    for (const name of names) {
      const theirs = contract.components.schemas[name] as { required?: string[]; properties?: Record<string, unknown> };
      const ours = document.components.schemas[name];
      expect(Object.keys(ours?.properties ?? {}), name).toEqual(expect.arrayContaining(Object.keys(theirs.properties ?? {})));
      // Response schemas promise at least the contract's required fields.
      if (name.endsWith('Response') || name === 'ConversationWithMessages') {
        expect(ours?.required ?? [], name).toEqual(expect.arrayContaining(theirs.required ?? []));
      }
    }
  });
});

describe('CORS', () => {
  const preflight = (api: TestApi, origin: string) =>
    api.app.inject({
      method: 'OPTIONS',
      url: '/api/v1/auth/login',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,authorization' },
    });

  it('allows the configured origins with credentials, and no others', async () => {
    const api = await createTestApi({ CORS_ORIGINS: 'https://app.example.com, https://admin.example.com' });
    try {
      const allowed = await preflight(api, 'https://app.example.com');
      expect(allowed.headers['access-control-allow-origin']).toBe('https://app.example.com');
      expect(allowed.headers['access-control-allow-credentials']).toBe('true');
      expect(String(allowed.headers['access-control-allow-headers'])).toMatch(/authorization/);
      const other = await preflight(api, 'https://evil.example.net');
      expect(other.headers['access-control-allow-origin']).toBeUndefined();
    } finally {
      await api.close();
    }
  });

  it('allows the local dev servers by default in development, and nothing by default in production', async () => {
    const development = await createTestApi({ CHATTER_ENV: 'development' });
    try {
      expect((await preflight(development, 'http://localhost:5173')).headers['access-control-allow-origin']).toBe('http://localhost:5173');
      expect((await preflight(development, 'https://example.com')).headers['access-control-allow-origin']).toBeUndefined();
    } finally {
      await development.close();
    }
    const production = await createTestApi({ CHATTER_ENV: 'production' });
    try {
      expect((await preflight(production, 'http://localhost:5173')).headers['access-control-allow-origin']).toBeUndefined();
    } finally {
      await production.close();
    }
  });
});
