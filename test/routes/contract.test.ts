import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { registerUser, type RegisteredUser } from '../helpers/api.js';
import { createChatApi, type ChatApi } from '../helpers/chat-api.js';
import { describeWithContract, loadContract } from '../helpers/contract.js';
import type { OpenApiValidator } from '../helpers/openapi-validator.js';

type Call = { method: string; url: string; body?: unknown; status: number; auth: 'user' | 'none' | 'fresh' };

/**
 * Walks every path of the contract (`../shared/chatter-api/openapi-core.json`) against
 * the real app on a listening server and a real database, and validates each JSON
 * response body against the contract's schema for that path and status: the
 * conformance of the service to the original contract (it lives outside the repository,
 * so this is skipped without it locally and required in CI).
 */
describeWithContract('the Chatter contract, path by path', () => {
  let contract: OpenApiValidator;
  let api: ChatApi;
  let user: RegisteredUser;
  let base: string;
  let conversationId = '';
  beforeAll(async () => {
    contract = loadContract();
    api = await createChatApi();
    api.script(Array.from({ length: 50 }, () => ({ content: 'Contract answer.', usage: { input_tokens: 7, output_tokens: 3 } })));
    base = await api.app.listen({ host: '127.0.0.1', port: 0 });
    user = await registerUser(api.app);
  });
  afterAll(async () => {
    await api.close();
  });

  const send = async (call: Call, token: string | undefined) => {
    const response = await fetch(`${base}${call.url}`, {
      method: call.method,
      headers: {
        ...(call.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      },
      ...(call.body === undefined ? {} : { body: JSON.stringify(call.body) }),
    });
    const text = await response.text();
    return { status: response.status, contentType: response.headers.get('content-type') ?? '', text };
  };

  /** One call per contract operation, in an order where each finds what it needs. */
  const calls = (): [string, string, Call][] => [
    ['/healthz', 'get', { method: 'GET', url: '/healthz', status: 200, auth: 'none' }],
    ['/readyz', 'get', { method: 'GET', url: '/readyz', status: 200, auth: 'none' }],
    ['/live', 'get', { method: 'GET', url: '/live', status: 200, auth: 'none' }],
    [
      '/api/v1/auth/register',
      'post',
      {
        method: 'POST',
        url: '/api/v1/auth/register',
        status: 201,
        auth: 'none',
        body: { email: 'contract@example.com', username: 'contract_user', password: 'correct horse battery staple' },
      },
    ],
    [
      '/api/v1/auth/login',
      'post',
      {
        method: 'POST',
        url: '/api/v1/auth/login',
        status: 200,
        auth: 'none',
        body: { username: 'contract_user', password: 'correct horse battery staple' },
      },
    ],
    ['/api/v1/auth/me', 'get', { method: 'GET', url: '/api/v1/auth/me', status: 200, auth: 'user' }],
    [
      '/api/v1/auth/api-key',
      'post',
      { method: 'POST', url: '/api/v1/auth/api-key', status: 200, auth: 'user', body: { name: 'contract key' } },
    ],
    ['/api/v1/auth/api-keys', 'get', { method: 'GET', url: '/api/v1/auth/api-keys', status: 200, auth: 'user' }],
    [
      '/api/v1/conversations/',
      'post',
      { method: 'POST', url: '/api/v1/conversations/', status: 201, auth: 'user', body: { title: 'Contract walk' } },
    ],
    ['/api/v1/conversations/', 'get', { method: 'GET', url: '/api/v1/conversations/?limit=5', status: 200, auth: 'user' }],
    [
      '/api/v1/workflows/execute/chat',
      'post',
      { method: 'POST', url: '/api/v1/workflows/execute/chat', status: 200, auth: 'user', body: { message: 'hello' } },
    ],
    [
      '/api/v1/conversations/{conversation_id}',
      'get',
      { method: 'GET', url: '/api/v1/conversations/{conversation_id}', status: 200, auth: 'user' },
    ],
    [
      '/api/v1/conversations/{conversation_id}',
      'put',
      { method: 'PUT', url: '/api/v1/conversations/{conversation_id}', status: 200, auth: 'user', body: { title: 'Renamed' } },
    ],
    [
      '/api/v1/conversations/{conversation_id}/messages',
      'get',
      { method: 'GET', url: '/api/v1/conversations/{conversation_id}/messages', status: 200, auth: 'user' },
    ],
    [
      '/api/v1/workflows/execute/chat/streaming',
      'post',
      { method: 'POST', url: '/api/v1/workflows/execute/chat/streaming', status: 200, auth: 'user', body: { message: 'stream it' } },
    ],
    [
      '/api/v1/workflows/executions',
      'get',
      { method: 'GET', url: '/api/v1/workflows/executions?limit=5&offset=0', status: 200, auth: 'user' },
    ],
    ['/api/v1/analytics/usage', 'get', { method: 'GET', url: '/api/v1/analytics/usage?period=24h', status: 200, auth: 'user' }],
    ['/api/v1/analytics/performance', 'get', { method: 'GET', url: '/api/v1/analytics/performance?period=7d', status: 200, auth: 'user' }],
    [
      '/api/v1/analytics/conversations',
      'get',
      { method: 'GET', url: '/api/v1/analytics/conversations?period=30d', status: 200, auth: 'user' },
    ],
    ['/api/v1/analytics/dashboard', 'get', { method: 'GET', url: '/api/v1/analytics/dashboard?period=24h', status: 200, auth: 'user' }],
    [
      '/api/v1/conversations/{conversation_id}',
      'delete',
      { method: 'DELETE', url: '/api/v1/conversations/{conversation_id}', status: 200, auth: 'user' },
    ],
    ['/api/v1/auth/api-key', 'delete', { method: 'DELETE', url: '/api/v1/auth/api-key', status: 200, auth: 'user' }],
    ['/api/v1/auth/refresh', 'post', { method: 'POST', url: '/api/v1/auth/refresh', status: 200, auth: 'fresh' }],
    ['/api/v1/auth/logout', 'post', { method: 'POST', url: '/api/v1/auth/logout', status: 200, auth: 'fresh' }],
  ];

  it('answers every contract operation with a body that matches its schema', async () => {
    const listed = calls();
    const covered = new Set(listed.map(([path, method]) => `${method} ${path}`));
    const inContract = Object.entries(contract.document.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method} ${path}`),
    );
    // The events stream is walked below (it never ends by itself).
    expect(inContract.filter((operation) => !covered.has(operation))).toEqual(['get /api/v1/events/stream']);

    const problems: string[] = [];
    for (const [path, method, call] of listed) {
      const url = call.url.replace('{conversation_id}', conversationId);
      let token: string | undefined = call.auth === 'user' ? user.accessToken : undefined;
      let body = call.body;
      if (call.auth === 'fresh') {
        const fresh = await registerUser(api.app);
        token = fresh.accessToken;
        body = { refresh_token: fresh.refreshToken };
      }
      const response = await send({ ...call, url, body }, token);
      if (response.status !== call.status) {
        problems.push(`${method.toUpperCase()} ${path}: ${response.status} (expected ${call.status}) ${response.text.slice(0, 200)}`);
        continue;
      }
      if (path.endsWith('/streaming')) {
        expect(response.contentType).toContain('text/event-stream');
        expect(response.text.trim().endsWith('data: [DONE]')).toBe(true);
        continue;
      }
      const json = JSON.parse(response.text) as Record<string, unknown>;
      if (path === '/api/v1/workflows/execute/chat') {
        conversationId = json['conversation_id'] as string;
      }
      const errors = contract.errors(contract.responseSchemaOf(path, method, String(call.status)), json);
      if (errors.length > 0) {
        problems.push(`${method.toUpperCase()} ${path}: ${errors.join('; ')}`);
      }
    }
    expect(problems).toEqual([]);
  }, 120_000);

  it('streams events at the contract path', async () => {
    const text = await new Promise<string>((resolve, reject) => {
      let received = '';
      const req = httpRequest(`${base}/api/v1/events/stream`, { headers: { authorization: `Bearer ${user.accessToken}` } });
      req.on('response', (response) => {
        expect(response.statusCode).toBe(200);
        expect(response.headers['content-type']).toContain('text/event-stream');
        response.on('data', (chunk: Buffer) => {
          received += chunk.toString();
          if (received.includes('connected')) {
            req.destroy();
            resolve(received);
          }
        });
      });
      req.on('error', (error) => (received.includes('connected') ? resolve(received) : reject(error)));
      req.end();
    });
    expect(text).toContain(': connected');
  });
});
