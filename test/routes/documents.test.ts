import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asUser, createTestApi, registerUser, type RegisteredUser, type TestApi } from '../helpers/api.js';
import { fullContractErrors, fullContractMissing } from '../helpers/full-contract.js';

describe.skipIf(fullContractMissing !== undefined)('documents (/api/v1/documents): none stored', () => {
  let api: TestApi;
  let user: RegisteredUser;
  beforeAll(async () => {
    api = await createTestApi();
    user = await registerUser(api.app);
  });
  afterAll(async () => {
    await api.close();
  });

  it('lists an empty page in the contract shape, echoing the pagination asked for', async () => {
    const as = asUser(api.app, user);
    const defaults = await as({ method: 'GET', url: '/api/v1/documents' });
    expect(defaults.statusCode).toBe(200);
    expect(defaults.json()).toEqual({ documents: [], total_count: 0, limit: 10, offset: 0 });
    const paged = await as({ method: 'GET', url: '/api/v1/documents?limit=25&offset=50' });
    expect(paged.json()).toEqual({ documents: [], total_count: 0, limit: 25, offset: 50 });
    expect(fullContractErrors('DocumentListResponse', paged.json())).toEqual([]);
    const bad = await as({ method: 'GET', url: '/api/v1/documents?limit=abc' });
    expect(bad.statusCode).toBe(422);
    expect(fullContractErrors('HTTPValidationError', bad.json())).toEqual([]);
  });

  it.each([
    ['POST', '/api/v1/documents/upload'],
    ['POST', '/api/v1/documents/list'],
    ['POST', '/api/v1/documents/search'],
    ['GET', '/api/v1/documents/stats/user'],
    ['GET', '/api/v1/documents/doc-1'],
    ['DELETE', '/api/v1/documents/doc-1'],
    ['POST', '/api/v1/documents/doc-1/reprocess'],
    ['GET', '/api/v1/documents/doc-1/chunks'],
    ['GET', '/api/v1/documents/doc-1/download'],
  ] as const)('answers %s %s with 501 documents_not_supported', async (method, url) => {
    const response = await asUser(api.app, user)({ method, url, ...(method === 'POST' ? { payload: { query: 'x' } } : {}) });
    expect(response.statusCode).toBe(501);
    expect(response.json()).toEqual({ detail: expect.stringMatching(/not supported/), code: 'documents_not_supported' });
    expect((await api.app.inject({ method, url })).statusCode).toBe(401);
  });

  it('refuses a multipart upload with the same 501, not a 415', async () => {
    const boundary = 'chatter-test-boundary';
    const payload = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--${boundary}--\r\n`;
    const response = await asUser(api.app, user)({
      method: 'POST',
      url: '/api/v1/documents/upload',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      payload,
    });
    expect(response.statusCode).toBe(501);
    expect(response.json<{ code: string }>().code).toBe('documents_not_supported');
  });

  it('puts every document route in /openapi.json', async () => {
    const document = (await api.app.inject({ method: 'GET', url: '/openapi.json' })).json<{ paths: Record<string, Record<string, unknown>> }>();
    for (const path of ['/api/v1/documents', '/api/v1/documents/upload', '/api/v1/documents/{document_id}', '/api/v1/documents/{document_id}/chunks']) {
      expect(Object.keys(document.paths).map((served) => served.replace(/\/$/, ''))).toContain(path);
    }
  });
});
