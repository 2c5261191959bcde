import { ToolMessage, type BaseMessage } from '@langchain/core/messages';
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import * as semconv from '../../otel/semconv.js';
import { asUser, registerUser, type RegisteredUser } from '../helpers/api.js';
import { createChatApi, type ChatApi } from '../helpers/chat-api.js';
import { startMcpServer, type TestMcpServer } from '../helpers/mcp-server.js';

// chat_with_tools runs that call a user's MCP tools through the whole service (HTTP,
// chat service, runtime, tools node, span pipeline, writer) with the scripted model and
// a real MCP server on loopback: the call is a tool_calls row and an execute_tool span
// like a built-in one, its result reaches the model, switched-off tools are not offered,
// and a slow or vanished server is an error message for the model, never a failed run.

let api: ChatApi;
let mcp: TestMcpServer;

beforeAll(async () => {
  api = await createChatApi({
    CHAT_RATE_LIMIT_PER_MINUTE: '1000',
    CHAT_RATE_LIMIT_PER_HOUR: '1000',
    MCP_CONNECT_TIMEOUT_MS: '1000',
    MCP_TOOL_CALL_TIMEOUT_MS: '300',
  });
  mcp = await startMcpServer();
});

afterAll(async () => {
  await api.close();
  await mcp.close();
});

type ServerBody = { id: string; tools: { id: string; name: string }[] };

const register = async (user: RegisteredUser, name: string, url: string): Promise<ServerBody> => {
  const response = await asUser(
    api.app,
    user,
  )({
    method: 'POST',
    url: '/api/v1/toolservers/servers',
    payload: { name, display_name: name, base_url: url },
  });
  expect(response.statusCode, response.body).toBe(201);
  return response.json<ServerBody>();
};

const chat = async (user: RegisteredUser, message: string) => {
  const response = await asUser(
    api.app,
    user,
  )({
    method: 'POST',
    url: '/api/v1/workflows/execute/chat',
    payload: { message, enable_tools: true },
  });
  expect(response.statusCode, response.body).toBe(200);
  return response.json<{ message: { content: string } }>();
};

const ToolCallRow = z.object({
  run_id: z.string(),
  tool: z.string(),
  arguments: z.unknown(),
  result_size: z.number().nullable(),
  duration_ms: z.number().nullable(),
  error: z.string().nullable(),
});
const RunRow = z.object({ id: z.string(), status: z.string(), tool_call_count: z.number(), model_call_count: z.number() });

const lastRun = async (user: RegisteredUser) => {
  const run = await api.db.pool.one(sql.type(RunRow)`
    SELECT id, status, tool_call_count, model_call_count FROM workflow_runs
    WHERE user_id = ${user.id} ORDER BY started_at DESC, id DESC LIMIT 1`);
  const toolCalls = await api.db.pool.any(sql.type(ToolCallRow)`
    SELECT run_id, tool, arguments, result_size, duration_ms, error FROM tool_calls WHERE run_id = ${run.id} ORDER BY sequence`);
  return { run, toolCalls };
};

const toolMessages = (messages: readonly BaseMessage[]): ToolMessage[] => messages.filter((message) => ToolMessage.isInstance(message));

describe('MCP tools in chat_with_tools', () => {
  it('offers the user\u2019s MCP tools and runs one like a built-in: tool_calls row, execute_tool span, result to the model', async () => {
    const user = await registerUser(api.app);
    await register(user, 'local', mcp.url);
    const model = api.script([{ content: '', toolCalls: [{ name: 'local__add', args: { a: 19, b: 23 } }] }, { content: 'The sum is 42.' }]);
    const body = await chat(user, 'What is 19 + 23?');
    expect(body.message.content).toBe('The sum is 42.');
    expect(model.calls[0]?.tools).toEqual(['calculator', 'current_time', 'local__add', 'local__echo', 'local__fail', 'local__slow']);
    const [result] = toolMessages(model.calls[1]!.messages);
    expect(result?.content).toBe('42');
    expect(result?.status).toBe('success');
    expect(mcp.toolCalls).toContain('add({"a":19,"b":23})');

    const { run, toolCalls } = await lastRun(user);
    expect(run).toMatchObject({ status: 'completed', tool_call_count: 1, model_call_count: 2 });
    expect(toolCalls).toEqual([
      { run_id: run.id, tool: 'local__add', arguments: { a: 19, b: 23 }, result_size: 2, duration_ms: expect.any(Number), error: null },
    ]);
    await api.services.tracerProvider.forceFlush();
    const spans = api.exporter.getFinishedSpans().filter((span) => span.name === `${semconv.SPAN_EXECUTE_TOOL} local__add`);
    expect(spans).toHaveLength(1);
    expect(spans[0]?.attributes).toMatchObject({
      [semconv.ATTR_GEN_AI_TOOL_NAME]: 'local__add',
      [semconv.ATTR_TOOL_OK]: true,
      [semconv.ATTR_TOOL_RESULT_SIZE]: 2,
    });

    // The call shows on the Tools page, from the tool_calls records.
    const tools = await asUser(api.app, user)({ method: 'GET', url: '/api/v1/toolservers/tools/all' });
    expect(
      tools.json<{ function_name: string; total_calls: number }[]>().find((tool) => tool.function_name === 'local__add'),
    ).toMatchObject({
      total_calls: 1,
      total_errors: 0,
    });
  });

  it('gives the model a failing tool\u2019s error, recorded on its row', async () => {
    const user = await registerUser(api.app);
    await register(user, 'local', mcp.url);
    const model = api.script([{ content: '', toolCalls: [{ name: 'local__fail', args: {} }] }, { content: 'It failed.' }]);
    await chat(user, 'Try the failing tool');
    const [result] = toolMessages(model.calls[1]!.messages);
    expect(result?.status).toBe('error');
    expect(result?.content).toContain('the fail tool failed on purpose');
    const { run, toolCalls } = await lastRun(user);
    expect(run.status).toBe('completed');
    expect(toolCalls[0]?.error).toContain('the fail tool failed on purpose');
  });

  it('does not offer a disabled tool, a disabled server or a switched-off built-in', async () => {
    const user = await registerUser(api.app);
    const server = await register(user, 'local', mcp.url);
    const echo = server.tools.find((tool) => tool.name === 'echo')!;
    const as = asUser(api.app, user);
    await as({ method: 'POST', url: `/api/v1/toolservers/tools/${echo.id}/disable` });
    await as({ method: 'POST', url: '/api/v1/toolservers/tools/builtin-current_time/disable' });
    let model = api.script([{ content: 'no tools needed' }]);
    await chat(user, 'hello');
    expect(model.calls[0]?.tools).toEqual(['calculator', 'local__add', 'local__fail', 'local__slow']);

    await as({ method: 'POST', url: `/api/v1/toolservers/servers/${server.id}/disable` });
    model = api.script([{ content: 'no tools needed' }]);
    await chat(user, 'hello again');
    expect(model.calls[0]?.tools).toEqual(['calculator']);

    // With no tool left the run is a plain chat (a tools node needs a tool).
    await as({ method: 'POST', url: '/api/v1/toolservers/tools/builtin-calculator/disable' });
    model = api.script([{ content: 'plain chat' }]);
    await chat(user, 'and now');
    expect(model.calls[0]?.tools).toEqual([]);
    const { run } = await lastRun(user);
    expect(run.status).toBe('completed');
  });

  it('answers a tool that outlives MCP_TOOL_CALL_TIMEOUT_MS with an error message, and the run completes', async () => {
    const user = await registerUser(api.app);
    await register(user, 'local', mcp.url);
    const model = api.script([
      { content: '', toolCalls: [{ name: 'local__slow', args: { ms: 3_000 } }] },
      { content: 'It took too long.' },
    ]);
    const body = await chat(user, 'Run the slow tool');
    expect(body.message.content).toBe('It took too long.');
    const [result] = toolMessages(model.calls[1]!.messages);
    expect(result?.status).toBe('error');
    expect(result?.content).toBe('Error: MCP server "local" did not answer tools/call "slow" within 300 ms');
    const { run, toolCalls } = await lastRun(user);
    expect(run).toMatchObject({ status: 'completed', tool_call_count: 1 });
    expect(toolCalls[0]).toMatchObject({ tool: 'local__slow', error: 'MCP server "local" did not answer tools/call "slow" within 300 ms' });
    expect(toolCalls[0]?.duration_ms).toBeGreaterThanOrEqual(290);
  });

  it('answers with an error message when the server has gone away, and the run completes', async () => {
    const user = await registerUser(api.app);
    const doomed = await startMcpServer();
    await register(user, 'doomed', doomed.url);
    api.script([{ content: '', toolCalls: [{ name: 'doomed__echo', args: { text: 'one' } }] }, { content: 'fine' }]);
    await chat(user, 'echo one');
    await doomed.close();

    const model = api.script([
      { content: '', toolCalls: [{ name: 'doomed__echo', args: { text: 'two' } }] },
      { content: 'The server is gone.' },
    ]);
    const body = await chat(user, 'echo two');
    expect(body.message.content).toBe('The server is gone.');
    const [result] = toolMessages(model.calls[1]!.messages);
    expect(result?.status).toBe('error');
    expect(result?.content).toMatch(/^Error: MCP server "doomed" (is unreachable|failed during tools\/call "echo"): fetch failed/);
    const { run, toolCalls } = await lastRun(user);
    expect(run.status).toBe('completed');
    expect(toolCalls[0]?.error).toMatch(/MCP server "doomed"/);
  });

  it('shares one tool registry, and so one compiled graph, among users with the same tool set', async () => {
    const before = api.services.toolServers.toolSets.size();
    const first = await registerUser(api.app);
    const second = await registerUser(api.app);
    api.script([{ content: 'a' }]);
    await chat(first, 'hi');
    api.script([{ content: 'b' }]);
    await chat(second, 'hi');
    // Both hold only the built-ins: the registry of that set (made by an earlier test or now) serves both.
    expect(api.services.toolServers.toolSets.size() - before).toBeLessThanOrEqual(1);
    const a = await api.services.toolServers.toolSets.forUser(first.id);
    const b = await api.services.toolServers.toolSets.forUser(second.id);
    expect(a).toBe(b);
    await register(second, 'local', mcp.url);
    const c = await api.services.toolServers.toolSets.forUser(second.id);
    expect(c).not.toBe(a);
    expect(await api.services.toolServers.toolSets.forUser(second.id)).toBe(c);
  });
});
