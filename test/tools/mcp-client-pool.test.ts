import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { McpClientPool, McpUnavailableError, type McpHealth, type McpServerTarget } from '../../src/tools/mcp-client-pool.js';
import { resultText } from '../../src/tools/mcp-tools.js';
import { startMcpServer, type TestMcpServer } from '../helpers/mcp-server.js';

// The pool against real MCP servers from the SDK on loopback: Streamable HTTP, the
// HTTP+SSE fallback, reuse of one connection, timeouts and a server that goes away.

const logger = pino({ level: 'silent' });
const started: TestMcpServer[] = [];
const pools: McpClientPool[] = [];

const start = async (options: Parameters<typeof startMcpServer>[0] = {}) => {
  const server = await startMcpServer(options);
  started.push(server);
  return server;
};

const poolWith = (options: { callTimeoutMs?: number; health?: McpHealth[] } = {}) => {
  const pool = new McpClientPool({
    connectTimeoutMs: 2_000,
    callTimeoutMs: options.callTimeoutMs ?? 5_000,
    logger,
    onHealth: (health) => options.health?.push(health),
  });
  pools.push(pool);
  return pool;
};

const target = (server: TestMcpServer, fields: Partial<McpServerTarget> = {}): McpServerTarget => ({
  id: `srv-${server.port}`,
  name: 'local',
  url: server.url,
  transport: 'http',
  headers: {},
  timeoutMs: 30_000,
  version: 'v1',
  ...fields,
});

afterEach(async () => {
  await Promise.all(pools.splice(0).map((pool) => pool.close()));
  await Promise.all(started.splice(0).map((server) => server.close()));
});

describe('McpClientPool', () => {
  it('lists and calls tools over Streamable HTTP on one reused connection, sending the configured headers', async () => {
    const server = await start();
    const health: McpHealth[] = [];
    const pool = poolWith({ health });
    const srv = target(server, { headers: { Authorization: 'Bearer secret-1' } });
    const tools = await pool.listTools(srv);
    expect(tools.map((tool) => tool.name).sort()).toEqual(['add', 'echo', 'fail', 'slow']);
    expect(resultText(await pool.callTool(srv, 'add', { a: 2, b: 40 }))).toBe('42');
    expect(resultText(await pool.callTool(srv, 'echo', { text: 'hi' }))).toBe('hi');
    expect(server.initializations()).toBe(1);
    expect(server.toolCalls).toEqual(['add({"a":2,"b":40})', 'echo({"text":"hi"})']);
    expect(new Set(server.authorizations)).toEqual(new Set(['Bearer secret-1']));
    expect(health).toHaveLength(1);
    expect(health[0]).toMatchObject({ serverId: srv.id, ok: true, error: null });
  });

  it('falls back to HTTP+SSE when the server answers the Streamable HTTP request with a 4xx', async () => {
    const server = await start({ transport: 'sse' });
    const pool = poolWith();
    const srv = target(server);
    expect((await pool.listTools(srv)).map((tool) => tool.name)).toContain('echo');
    expect(resultText(await pool.callTool(srv, 'echo', { text: 'over sse' }))).toBe('over sse');
    expect(server.initializations()).toBe(1);
  });

  it('speaks HTTP+SSE directly for a server registered as sse', async () => {
    const server = await start({ transport: 'sse' });
    const pool = poolWith();
    expect(resultText(await pool.callTool(target(server, { transport: 'sse' }), 'add', { a: 1, b: 2 }))).toBe('3');
  });

  it('returns a failed tool as an isError result, keeping the connection', async () => {
    const server = await start();
    const pool = poolWith();
    const result = await pool.callTool(target(server), 'fail', {});
    expect(result.isError).toBe(true);
    expect(resultText(result)).toContain('the fail tool failed on purpose');
    await pool.callTool(target(server), 'echo', { text: 'still here' });
    expect(server.initializations()).toBe(1);
  });

  it('gives up on a call after the smaller of the pool and server timeouts', async () => {
    const server = await start();
    const pool = poolWith({ callTimeoutMs: 200 });
    const error = await pool.callTool(target(server), 'slow', { ms: 5_000 }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(McpUnavailableError);
    expect((error as Error).message).toBe('MCP server "local" did not answer tools/call "slow" within 200 ms');
    // A slow tool is not a broken connection.
    expect(resultText(await pool.callTool(target(server), 'echo', { text: 'after' }))).toBe('after');
    expect(server.initializations()).toBe(1);
  });

  it('reports an unreachable server, and reconnects once it is back', async () => {
    const server = await start();
    const health: McpHealth[] = [];
    const pool = poolWith({ health });
    const srv = target(server);
    await pool.callTool(srv, 'echo', { text: 'one' });
    await server.close();
    started.splice(started.indexOf(server), 1);
    // The first call may find the old socket cut (its request could have reached the
    // server, so it is not sent again); the connection is dropped either way.
    const first = await pool.callTool(srv, 'echo', { text: 'two' }).catch((caught: unknown) => caught);
    expect(first).toBeInstanceOf(McpUnavailableError);
    expect((first as Error).message).toMatch(/^MCP server "local" (is unreachable|failed during tools\/call "echo"): fetch failed/);
    const second = await pool.callTool(srv, 'echo', { text: 'two' }).catch((caught: unknown) => caught);
    expect((second as Error).message).toMatch(/^MCP server "local" is unreachable: fetch failed \(ECONNREFUSED/);
    expect(health.at(-1)).toMatchObject({ ok: false });

    // A new server on the same port: a new session, made by the next call.
    const back = await start({ port: server.port });
    expect(resultText(await pool.callTool(srv, 'echo', { text: 'three' }))).toBe('three');
    expect(back.initializations()).toBe(1);
    expect(health.at(-1)).toMatchObject({ ok: true });
  });

  it('makes a new connection when the server was changed', async () => {
    const server = await start();
    const pool = poolWith();
    await pool.callTool(target(server), 'echo', { text: 'a' });
    await pool.callTool(target(server, { version: 'v2' }), 'echo', { text: 'b' });
    expect(server.initializations()).toBe(2);
    expect(pool.size()).toBe(1);
  });

  it('checks health with a ping and reports its round trip', async () => {
    const server = await start();
    const pool = poolWith();
    const health = await pool.check(target(server));
    expect(health.ok).toBe(true);
    expect(health.latencyMs).toBeGreaterThanOrEqual(0);
    await server.close();
    started.splice(started.indexOf(server), 1);
    await pool.release(target(server).id);
    const down = await pool.check(target(server));
    expect(down).toMatchObject({ ok: false });
    expect(down.error).toMatch(/fetch failed \((ECONNREFUSED|UND_ERR_SOCKET)/);
  });
});
