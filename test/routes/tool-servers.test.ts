import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { asUser, registerUser, type RegisteredUser } from '../helpers/api.js';
import { createChatApi, type ChatApi } from '../helpers/chat-api.js';
import { fullContractErrors, fullContractMissing } from '../helpers/full-contract.js';
import { startMcpServer, type TestMcpServer } from '../helpers/mcp-server.js';

// /api/v1/toolservers through the whole service, against a real MCP server on loopback:
// the built-in server, registering a remote one, its tools, switches, health, ownership
// and bad input. Every JSON body is checked against the original contract's schema.

let api: ChatApi;
let mcp: TestMcpServer;
let sseOnly: TestMcpServer;

beforeAll(async () => {
  api = await createChatApi({ MCP_CONNECT_TIMEOUT_MS: '2000', MCP_TOOL_CALL_TIMEOUT_MS: '2000' });
  mcp = await startMcpServer();
  sseOnly = await startMcpServer({ transport: 'sse' });
});

afterAll(async () => {
  await api.close();
  await mcp.close();
  await sseOnly.close();
});

type Tool = {
  id: string;
  name: string;
  server_id: string;
  status: string;
  is_available: boolean;
  function_name: string;
  total_calls: number;
};
type Server = {
  id: string;
  name: string;
  status: string;
  is_builtin: boolean;
  headers: Record<string, string> | null;
  tools: Tool[];
  tools_count: number;
  last_health_check: string | null;
  last_startup_error: string | null;
  consecutive_failures: number;
  health: { status: string; latency_ms: number | null; error: string | null };
};

/** Asserts a body matches the contract's schema `name` (skipped without ../shared locally). */
const conforms = (name: string, body: unknown): void => {
  if (fullContractMissing !== undefined) return;
  expect(fullContractErrors(name, body), name).toEqual([]);
};

const call = (user: RegisteredUser) => asUser(api.app, user);

const register = async (user: RegisteredUser, fields: Record<string, unknown> = {}) => {
  const response = await call(user)({
    method: 'POST',
    url: '/api/v1/toolservers/servers',
    payload: { name: 'local', display_name: 'Local MCP', base_url: mcp.url, ...fields },
  });
  expect(response.statusCode, response.body).toBe(201);
  const server = response.json<Server>();
  conforms('ToolServerResponse', server);
  return server;
};

const servers = async (user: RegisteredUser, query = ''): Promise<Server[]> => {
  const response = await call(user)({ method: 'GET', url: `/api/v1/toolservers/servers${query}` });
  expect(response.statusCode).toBe(200);
  const body = response.json<Server[]>();
  for (const server of body) conforms('ToolServerResponse', server);
  return body;
};

const allTools = async (user: RegisteredUser): Promise<Tool[]> => {
  const response = await call(user)({ method: 'GET', url: '/api/v1/toolservers/tools/all' });
  expect(response.statusCode).toBe(200);
  const body = response.json<Tool[]>();
  for (const tool of body) conforms('ServerToolResponse', tool);
  return body;
};

describe('tool servers API', () => {
  it('lists the built-in tools as one read-only built-in server', async () => {
    const user = await registerUser(api.app);
    const [builtin, ...rest] = await servers(user);
    expect(rest).toEqual([]);
    expect(builtin).toMatchObject({ id: 'builtin', is_builtin: true, status: 'enabled', base_url: null, tools_count: 2 });
    expect(builtin!.tools.map((tool) => tool.name)).toEqual(['calculator', 'current_time']);
    const tools = await allTools(user);
    expect(tools.map((tool) => [tool.id, tool.server_id, tool.status])).toEqual([
      ['builtin-calculator', 'builtin', 'enabled'],
      ['builtin-current_time', 'builtin', 'enabled'],
    ]);
    expect(await servers(user, '?include_builtin=false')).toEqual([]);
    for (const [method, url] of [
      ['PUT', '/api/v1/toolservers/servers/builtin'],
      ['DELETE', '/api/v1/toolservers/servers/builtin'],
      ['POST', '/api/v1/toolservers/servers/builtin/disable'],
    ] as const) {
      const response = await call(user)({ method, url, ...(method === 'PUT' ? { payload: { display_name: 'mine' } } : {}) });
      expect(response.statusCode, `${method} ${url}`).toBe(403);
      expect(response.json()).toMatchObject({ code: 'builtin_server_read_only' });
    }
  });

  it('registers an MCP server, lists its tools through tools/list and records its health', async () => {
    const user = await registerUser(api.app);
    const server = await register(user, { headers: { Authorization: 'Bearer very-secret' } });
    expect(server).toMatchObject({ name: 'local', status: 'enabled', is_builtin: false, tools_count: 4, consecutive_failures: 0 });
    expect(server.tools.map((tool) => [tool.name, tool.function_name, tool.status, tool.is_available])).toEqual([
      ['add', 'local__add', 'enabled', true],
      ['echo', 'local__echo', 'enabled', true],
      ['fail', 'local__fail', 'enabled', true],
      ['slow', 'local__slow', 'enabled', true],
    ]);
    expect(server.last_health_check).not.toBeNull();
    expect(server.health.status).toBe('ok');
    expect(server.health.latency_ms).toBeGreaterThanOrEqual(0);
    // The secret went to the server and never comes back.
    expect(mcp.authorizations).toContain('Bearer very-secret');
    expect(server.headers).toEqual({ Authorization: '********' });
    const listed = await servers(user);
    expect(listed.map((entry) => entry.name)).toEqual(['builtin', 'local']);
    expect(JSON.stringify(listed)).not.toContain('very-secret');
    expect(JSON.stringify(await allTools(user))).not.toContain('very-secret');
    const one = await call(user)({ method: 'GET', url: `/api/v1/toolservers/servers/${server.id}` });
    conforms('ToolServerResponse', one.json());
    expect(one.body).not.toContain('very-secret');

    const refreshed = await call(user)({ method: 'POST', url: `/api/v1/toolservers/servers/${server.id}/refresh-tools` });
    expect(refreshed.statusCode).toBe(200);
    expect(refreshed.json()).toMatchObject({ success: true, tools_count: 4 });
    const health = await call(user)({ method: 'GET', url: `/api/v1/toolservers/servers/${server.id}/health` });
    expect(health.statusCode).toBe(200);
    conforms('ToolServerHealthCheck', health.json());
    expect(health.json()).toMatchObject({ server_id: server.id, is_responsive: true, tools_count: 4, error_message: null });
    const page = await call(user)({ method: 'GET', url: `/api/v1/toolservers/servers/${server.id}/tools?limit=2&offset=1` });
    conforms('ServerToolsResponse', page.json());
    expect(page.json()).toMatchObject({ total_count: 4, limit: 2, offset: 1, tools: [{ name: 'echo' }, { name: 'fail' }] });
  });

  it('registers an HTTP+SSE-only server through the fallback', async () => {
    const user = await registerUser(api.app);
    const server = await register(user, { name: 'legacy', base_url: sseOnly.url });
    expect(server.tools_count).toBe(4);
    expect(server.health.status).toBe('ok');
  });

  it('keeps a header value sent back redacted, and replaces one sent anew', async () => {
    const user = await registerUser(api.app);
    const server = await register(user, { name: 'hdr', headers: { Authorization: 'Bearer one', 'X-Team': 'a' } });
    const update = await call(user)({
      method: 'PUT',
      url: `/api/v1/toolservers/servers/${server.id}`,
      payload: { display_name: 'Renamed', headers: { Authorization: '********', 'X-Team': 'b' } },
    });
    expect(update.statusCode, update.body).toBe(200);
    conforms('ToolServerResponse', update.json());
    expect(update.json()).toMatchObject({ display_name: 'Renamed', headers: { Authorization: '********', 'X-Team': '********' } });
    const stored = await api.db.pool.oneFirst(sql.type(z.object({ headers: z.record(z.string(), z.string()) }))`
      SELECT headers FROM tool_servers WHERE id = ${server.id}`);
    expect(stored).toEqual({ Authorization: 'Bearer one', 'X-Team': 'b' });
  });

  it('switches servers and tools, built-in ones too, per user', async () => {
    const user = await registerUser(api.app);
    const other = await registerUser(api.app);
    const server = await register(user);
    const echo = server.tools.find((tool) => tool.name === 'echo')!;
    const off = await call(user)({ method: 'POST', url: `/api/v1/toolservers/tools/${echo.id}/disable` });
    expect(off.statusCode).toBe(200);
    conforms('ToolOperationResponse', off.json());
    const calc = await call(user)({ method: 'POST', url: '/api/v1/toolservers/tools/builtin-calculator/disable' });
    expect(calc.statusCode).toBe(200);
    let tools = await allTools(user);
    expect(tools.find((tool) => tool.id === echo.id)).toMatchObject({ status: 'disabled', is_available: false });
    expect(tools.find((tool) => tool.id === 'builtin-calculator')).toMatchObject({ status: 'disabled', is_available: false });
    // Only the caller's switch.
    expect((await allTools(other)).find((tool) => tool.id === 'builtin-calculator')).toMatchObject({ status: 'enabled' });

    const disabled = await call(user)({ method: 'POST', url: `/api/v1/toolservers/servers/${server.id}/disable` });
    conforms('ToolServerOperationResponse', disabled.json());
    expect((await servers(user)).find((entry) => entry.id === server.id)).toMatchObject({ status: 'disabled' });
    tools = await allTools(user);
    expect(tools.filter((tool) => tool.server_id === server.id).every((tool) => !tool.is_available)).toBe(true);
    const enabled = await call(user)({ method: 'POST', url: `/api/v1/toolservers/servers/${server.id}/enable` });
    expect(enabled.json()).toMatchObject({ success: true, message: 'Tool server local enabled' });
    tools = await allTools(user);
    expect(tools.find((tool) => tool.name === 'add' && tool.server_id === server.id)).toMatchObject({ is_available: true });
    expect(tools.find((tool) => tool.id === echo.id)).toMatchObject({ status: 'disabled' });
  });

  it('registers an unreachable server with its error as health, and refreshing it answers 502', async () => {
    const user = await registerUser(api.app);
    const gone = await startMcpServer();
    await gone.close();
    const server = await register(user, { name: 'gone', base_url: gone.url });
    expect(server).toMatchObject({ status: 'error', tools_count: 0, consecutive_failures: 1 });
    expect(server.last_startup_error).toMatch(/^fetch failed \(ECONNREFUSED/);
    expect(server.health).toMatchObject({ status: 'error' });
    const refresh = await call(user)({ method: 'POST', url: `/api/v1/toolservers/servers/${server.id}/refresh-tools` });
    expect(refresh.statusCode).toBe(502);
    expect(refresh.json()).toMatchObject({ code: 'tool_server_unreachable' });
    expect((await servers(user)).find((entry) => entry.id === server.id)).toMatchObject({ consecutive_failures: 2, status: 'error' });
  });

  it("answers 404 for another user's server or tool, and changes nothing", async () => {
    const owner = await registerUser(api.app);
    const stranger = await registerUser(api.app);
    const server = await register(owner);
    const tool = server.tools[0]!;
    for (const [method, url] of [
      ['GET', `/api/v1/toolservers/servers/${server.id}`],
      ['PUT', `/api/v1/toolservers/servers/${server.id}`],
      ['DELETE', `/api/v1/toolservers/servers/${server.id}`],
      ['POST', `/api/v1/toolservers/servers/${server.id}/enable`],
      ['POST', `/api/v1/toolservers/servers/${server.id}/disable`],
      ['POST', `/api/v1/toolservers/servers/${server.id}/refresh-tools`],
      ['GET', `/api/v1/toolservers/servers/${server.id}/tools`],
      ['GET', `/api/v1/toolservers/servers/${server.id}/health`],
      ['POST', `/api/v1/toolservers/tools/${tool.id}/enable`],
      ['POST', `/api/v1/toolservers/tools/${tool.id}/disable`],
      ['POST', '/api/v1/toolservers/tools/no-such-tool/disable'],
    ] as const) {
      const response = await call(stranger)({ method, url, ...(method === 'PUT' ? { payload: { display_name: 'x' } } : {}) });
      expect(response.statusCode, `${method} ${url}`).toBe(404);
    }
    expect(await servers(stranger)).toHaveLength(1);
    const mine = await servers(owner);
    expect(mine.find((entry) => entry.id === server.id)).toMatchObject({ status: 'enabled', display_name: 'Local MCP' });
    expect(mine.find((entry) => entry.id === server.id)!.tools.every((entry) => entry.status === 'enabled')).toBe(true);
  });

  it('deletes a server with its tools', async () => {
    const user = await registerUser(api.app);
    const server = await register(user);
    const deleted = await call(user)({ method: 'DELETE', url: `/api/v1/toolservers/servers/${server.id}` });
    expect(deleted.statusCode).toBe(200);
    conforms('ToolServerDeleteResponse', deleted.json());
    expect((await servers(user)).map((entry) => entry.id)).toEqual(['builtin']);
    const again = await call(user)({ method: 'DELETE', url: `/api/v1/toolservers/servers/${server.id}` });
    expect(again.statusCode).toBe(404);
  });

  it('answers 422 for bad input, 409 for a name taken, and stores nothing', async () => {
    const user = await registerUser(api.app);
    const bad: [Record<string, unknown>, (string | number)[]][] = [
      [{ base_url: 'ftp://example.com/mcp' }, ['body', 'base_url']],
      [{ base_url: 'not a url' }, ['body', 'base_url']],
      [{ base_url: 'http://user:pw@example.com/mcp' }, ['body', 'base_url']],
      [{ base_url: null }, ['body', 'base_url']],
      [{ transport_type: 'stdio' }, ['body', 'transport_type']],
      [{ transport_type: 'carrier-pigeon' }, ['body', 'transport_type']],
      [{ oauth_config: { client_id: 'a', client_secret: 'b', token_url: 'https://auth.example.com/token' } }, ['body', 'oauth_config']],
      [{ headers: { 'Bad Header': 'x' } }, ['body', 'headers', 'Bad Header']],
      [{ headers: { 'Mcp-Session-Id': 'x' } }, ['body', 'headers', 'Mcp-Session-Id']],
      [{ headers: { 'X-A': 'a\r\nInjected: 1' } }, ['body', 'headers', 'X-A']],
      [{ timeout: 1 }, ['body', 'timeout']],
      [{ name: 'has spaces' }, ['body', 'name']],
      [{ name: 'builtin' }, ['body', 'name']],
      [{ name: '' }, ['body', 'name']],
    ];
    for (const [fields, loc] of bad) {
      const response = await call(user)({
        method: 'POST',
        url: '/api/v1/toolservers/servers',
        payload: { name: 'ok', display_name: 'Ok', base_url: mcp.url, ...fields },
      });
      expect(response.statusCode, JSON.stringify(fields)).toBe(422);
      conforms('HTTPValidationError', response.json());
      expect(
        response.json<{ detail: { loc: unknown[] }[] }>().detail.map((item) => item.loc),
        JSON.stringify(fields),
      ).toContainEqual(loc);
    }
    expect(await servers(user)).toHaveLength(1);
    const server = await register(user, { name: 'taken' });
    const duplicate = await call(user)({
      method: 'POST',
      url: '/api/v1/toolservers/servers',
      payload: { name: 'taken', display_name: 'Again', base_url: mcp.url },
    });
    expect(duplicate.statusCode).toBe(409);
    const update = await call(user)({
      method: 'PUT',
      url: `/api/v1/toolservers/servers/${server.id}`,
      payload: { base_url: 'javascript:alert(1)' },
    });
    expect(update.statusCode).toBe(422);
    expect((await servers(user)).find((entry) => entry.id === server.id)).toMatchObject({ base_url: mcp.url });
  });

  it('lists every Tools page route in /openapi.json with the contract operation id', async () => {
    const document = (await api.app.inject({ method: 'GET', url: '/openapi.json' })).json<{
      paths: Record<string, Record<string, { operationId?: string; security?: unknown }>>;
    }>();
    const expected: [string, string, string][] = [
      ['get', '/api/v1/toolservers/tools/all', 'list_all_tools_api_v1_toolservers_tools_all_get'],
      ['get', '/api/v1/toolservers/servers', 'list_tool_servers_api_v1_toolservers_servers_get'],
      ['post', '/api/v1/toolservers/servers', 'create_tool_server_api_v1_toolservers_servers_post'],
      ['put', '/api/v1/toolservers/servers/{server_id}', 'update_tool_server_api_v1_toolservers_servers__server_id__put'],
      ['delete', '/api/v1/toolservers/servers/{server_id}', 'delete_tool_server_api_v1_toolservers_servers__server_id__delete'],
      ['post', '/api/v1/toolservers/servers/{server_id}/enable', 'enable_tool_server_api_v1_toolservers_servers__server_id__enable_post'],
      [
        'post',
        '/api/v1/toolservers/servers/{server_id}/disable',
        'disable_tool_server_api_v1_toolservers_servers__server_id__disable_post',
      ],
      [
        'post',
        '/api/v1/toolservers/servers/{server_id}/refresh-tools',
        'refresh_server_tools_api_v1_toolservers_servers__server_id__refresh_tools_post',
      ],
      ['post', '/api/v1/toolservers/tools/{tool_id}/enable', 'enable_tool_api_v1_toolservers_tools__tool_id__enable_post'],
      ['post', '/api/v1/toolservers/tools/{tool_id}/disable', 'disable_tool_api_v1_toolservers_tools__tool_id__disable_post'],
    ];
    for (const [method, path, operationId] of expected) {
      expect(document.paths[path]?.[method], `${method} ${path}`).toMatchObject({ operationId, security: [{ CustomHTTPBearer: [] }] });
    }
  });

  it('needs authentication', async () => {
    const response = await api.app.inject({ method: 'GET', url: '/api/v1/toolservers/servers' });
    expect(response.statusCode).toBe(401);
  });
});
