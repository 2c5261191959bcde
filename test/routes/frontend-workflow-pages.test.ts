import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerUser, type RegisteredUser } from '../helpers/api.js';
import { createChatApi, type ChatApi } from '../helpers/chat-api.js';
import { fullContractMissing, fullContractPathOf, fullContractResponseErrors } from '../helpers/full-contract.js';
import { toolLoopGraph } from '../helpers/workflow-graphs.js';

/**
 * Walks every call of the frontend's workflow pages (`../shared/chatter-api/frontend-calls.md`,
 * "Workflow pages") on a listening server and a real database, and validates each JSON body
 * against `openapi-full.json`'s response schema for that path, method and status.
 */

const CALLS_PATH = new URL('../../../shared/chatter-api/frontend-calls.md', import.meta.url);

/** `METHOD /path` lines of one section of frontend-calls.md. */
const section = (title: string): string[] => {
  const text = readFileSync(CALLS_PATH, 'utf8');
  const start = text.indexOf(`### ${title}`);
  const end = text.indexOf('\n#', start + 4);
  return [...text.slice(start, end === -1 ? undefined : end).matchAll(/^- `([A-Z]+ \/[^`]+)`/gm)].map((match) => match[1]!);
};

type Ids = { definition: string; template: string };
type Call = { body?: unknown; query?: string; after?: (json: Record<string, unknown>, ids: Ids) => void };

describe.skipIf(fullContractMissing !== undefined)('the frontend\u2019s workflow pages, call by call', () => {
  let api: ChatApi;
  let user: RegisteredUser;
  let base: string;
  beforeAll(async () => {
    api = await createChatApi({ CHAT_RATE_LIMIT_PER_MINUTE: '1000', CHAT_RATE_LIMIT_PER_HOUR: '1000' });
    api.script(Array.from({ length: 20 }, () => ({ content: 'Workflow answer.', usage: { input_tokens: 8, output_tokens: 3 } })));
    base = await api.app.listen({ host: '127.0.0.1', port: 0 });
    user = await registerUser(api.app);
  });
  afterAll(async () => {
    await api.close();
  });

  const graph = toolLoopGraph(['calculator']);
  /** One call per line of the section, in an order where each finds what it needs (deletes last). */
  const calls: [string, Call][] = [
    ['GET /api/v1/workflows/defaults', {}],
    ['POST /api/v1/workflows/definitions/validate', { body: { name: 'Check', ...graph } }],
    [
      'POST /api/v1/workflows/definitions',
      { body: { name: 'Walked', description: 'walked', ...graph }, after: (json, ids) => void (ids.definition = json['id'] as string) },
    ],
    ['GET /api/v1/workflows/definitions', {}],
    ['GET /api/v1/workflows/definitions/{id}', {}],
    ['PUT /api/v1/workflows/definitions/{id}', { body: { name: 'Walked again' } }],
    ['POST /api/v1/workflows/definitions/from-template', { body: { template_id: 'chat' } }],
    ['POST /api/v1/workflows/definitions/{id}/execute', { body: { definition_id: '{definition}', input_data: { message: 'hello' } } }],
    ['POST /api/v1/workflows/definitions/custom/execute', { query: '?message=hi', body: graph }],
    ['GET /api/v1/workflows/definitions/{id}/executions', {}],
    ['GET /api/v1/workflows/definitions/{id}/analytics', {}],
    ['GET /api/v1/workflows/executions', { query: '?limit=5&offset=0' }],
    ['GET /api/v1/workflows/templates', {}],
    [
      'POST /api/v1/workflows/templates',
      {
        body: { name: 'T', description: 'from the walk', workflow_definition_id: '{definition}' },
        after: (json, ids) => void (ids.template = json['id'] as string),
      },
    ],
    ['PUT /api/v1/workflows/templates/{id}', { body: { description: 'changed' } }],
    ['GET /api/v1/workflows/templates/{id}/export', {}],
    ['POST /api/v1/workflows/templates/import', { body: { template: { name: 'Imported', description: 'imported', ...graph } } }],
    ['POST /api/v1/workflows/templates/validate', { body: { template: { name: 'V', description: 'v', ...graph } } }],
    ['POST /api/v1/workflows/templates/{id}/execute', { body: { input_data: { message: 'run the template' } } }],
    ['DELETE /api/v1/workflows/templates/{id}', {}],
    ['DELETE /api/v1/workflows/definitions/{id}', {}],
  ];

  it('answers every call of the workflow pages with a body that matches the contract', async () => {
    const listed = section('Workflow pages');
    expect(listed.length).toBeGreaterThan(0);
    expect(calls.map(([line]) => line).sort()).toEqual([...listed].sort());
    // The check bites: a list without its required keys is refused.
    expect(fullContractResponseErrors('/api/v1/workflows/definitions', 'GET', 200, { definitions: [{}] })).not.toEqual([]);

    const ids: Ids = { definition: '', template: '' };
    const problems: string[] = [];
    for (const [line, call] of calls) {
      const [method, path] = line.split(' ') as [string, string];
      const contractPath = fullContractPathOf(path, method);
      expect(contractPath, line).toBeDefined();
      const id = path.includes('/templates/') ? ids.template : ids.definition;
      const url = `${base}${path.replace('{id}', id)}${call.query ?? ''}`;
      const body = call.body === undefined ? undefined : JSON.stringify(call.body).replaceAll('{definition}', ids.definition);
      const response = await fetch(url, {
        method,
        headers: { authorization: `Bearer ${user.accessToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body }),
      });
      const text = await response.text();
      if (response.status !== 200) {
        problems.push(`${line}: ${response.status} ${text.slice(0, 300)}`);
        continue;
      }
      const json = JSON.parse(text) as Record<string, unknown>;
      call.after?.(json, ids);
      const errors = fullContractResponseErrors(contractPath!, method, 200, json);
      if (errors.length > 0) problems.push(`${line}: ${errors.join('; ')}`);
    }
    expect(problems).toEqual([]);
  }, 120_000);

  it('serves every workflow path the frontend calls in /openapi.json with the contract\u2019s operationId', async () => {
    const contract = JSON.parse(readFileSync(new URL('../../../shared/chatter-api/openapi-full.json', import.meta.url), 'utf8')) as {
      paths: Record<string, Record<string, { operationId: string }>>;
    };
    const served = (await api.app.inject({ method: 'GET', url: '/openapi.json' })).json<typeof contract>();
    for (const line of section('Workflow pages')) {
      const [method, path] = line.split(' ') as [string, string];
      const contractPath = fullContractPathOf(path, method)!;
      const operation = method.toLowerCase();
      expect(served.paths[contractPath]?.[operation]?.operationId, line).toBe(contract.paths[contractPath]?.[operation]?.operationId);
    }
  });
});
