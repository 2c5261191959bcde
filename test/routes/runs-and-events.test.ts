import { request as httpRequest, type IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asUser, registerUser, type RegisteredUser } from '../helpers/api.js';
import { createChatApi, sseData, type ChatApi } from '../helpers/chat-api.js';
import { fullContractErrors, fullContractMissing } from '../helpers/full-contract.js';
import { waitUntil } from '../helpers/wait.js';

const usage = (input: number, output: number) => ({ input_tokens: input, output_tokens: output });

type Chat = { conversation_id: string; run_id: string; correlation_id: string };

/** Opens an SSE stream on a listening server; collects raw text until closed. */
const openStream = (url: string, headers: Record<string, string>) =>
  new Promise<{ response: IncomingMessage; text: () => string; close: () => void }>((resolve, reject) => {
    let text = '';
    const req = httpRequest(url, { headers });
    req.on('response', (response) => {
      response.on('data', (chunk: Buffer) => (text += chunk.toString()));
      resolve({ response, text: () => text, close: () => req.destroy() });
    });
    req.on('error', (error) => (error.message.includes('socket hang up') ? undefined : reject(error)));
    req.end();
  });

describe('executions, events and monitoring', () => {
  let api: ChatApi;
  let alice: RegisteredUser;
  let bob: RegisteredUser;
  let toolRun: Chat;
  beforeAll(async () => {
    api = await createChatApi();
    alice = await registerUser(api.app);
    bob = await registerUser(api.app);
    api.script([
      { content: '', toolCalls: [{ name: 'calculator', args: { expression: '5*5' } }], usage: usage(30, 4) },
      { content: 'Twenty-five.', usage: usage(45, 3) },
    ]);
    const response = await asUser(
      api.app,
      alice,
    )({
      method: 'POST',
      url: '/api/v1/workflows/execute/chat',
      headers: { 'x-correlation-id': 'exec-test-1' },
      payload: { message: 'What is 5*5?', enable_tools: true },
    });
    toolRun = response.json<Chat>();
  });
  afterAll(async () => {
    await api.close();
  });

  it('lists executions and shows one with tokens by bucket, calls, events and ids', async () => {
    const as = asUser(api.app, alice);
    const list = await as({ method: 'GET', url: '/api/v1/workflows/executions?limit=5' });
    expect(list.statusCode).toBe(200);
    const listed = list.json<{ items: Record<string, unknown>[]; total: number; offset: number; limit: number }>();
    expect(listed).toMatchObject({ total: 1, offset: 0, limit: 5 });
    expect(listed.items.map((run) => run['id'])).toEqual([toolRun.run_id]);
    // The run in the contract's WorkflowExecutionResponse, its figures from the run row.
    expect(listed.items[0]).toMatchObject({
      id: toolRun.run_id,
      definition_id: 'chat_with_tools',
      owner_id: alice.id,
      status: 'completed',
      run_status: 'completed',
      tokens_used: 82,
      prompt_tokens: 75,
      completion_tokens: 7,
      error_message: null,
      model_call_count: 2,
      tool_call_count: 1,
      correlation_id: 'exec-test-1',
      input_data: { conversation_id: toolRun.conversation_id, workflow: 'chat_with_tools' },
    });
    const item = listed.items[0]!;
    const detail = await as({ method: 'GET', url: `/api/v1/workflows/executions/${toolRun.run_id}` });
    expect(detail.statusCode).toBe(200);
    const body = detail.json<Record<string, unknown> & { model_calls: unknown[]; tool_calls: unknown[]; events: { type: string }[] }>();
    expect(body).toMatchObject({
      status: 'completed',
      terminal_reason: 'completed',
      tokens: { input: 75, output: 7, total: 82, cache_read: 0 },
      correlation_id: 'exec-test-1',
      trace_id: expect.stringMatching(/^[0-9a-f]{32}$/),
    });
    expect(body.model_calls).toHaveLength(2);
    expect(item['cost']).toBe(body['cost'] ?? 0);
    expect(item['cost_unknown']).toBe(body['cost_unknown']);
    expect([item['started_at'], item['completed_at'], item['execution_time_ms']]).toEqual([
      body['started_at'],
      body['finished_at'],
      body['duration_ms'],
    ]);
    expect(body.tool_calls).toHaveLength(1);
    expect(body.events.map((event) => event.type)).toEqual(
      expect.arrayContaining(['workflow_started', 'model_response', 'tool_called', 'workflow_completed']),
    );
  });

  it.skipIf(fullContractMissing !== undefined)(
    'answers the executions page with items in the contract schema, offset and limit applied',
    async () => {
      const as = asUser(api.app, alice);
      api.script([{ content: 'second', usage: usage(3, 1) }]);
      const second = (await as({ method: 'POST', url: '/api/v1/workflows/execute/chat', payload: { message: 'again' } })).json<Chat>();
      const page = (await as({ method: 'GET', url: '/api/v1/workflows/executions?limit=1&offset=1' })).json<{
        items: { id: string }[];
        total: number;
      }>();
      expect(page.total).toBeGreaterThanOrEqual(2);
      const all = (await as({ method: 'GET', url: '/api/v1/workflows/executions?limit=100' })).json<{ items: { id: string }[] }>();
      expect(all.items.map((item) => item.id).slice(0, 1)).toEqual([second.run_id]);
      expect(page.items.map((item) => item.id)).toEqual([all.items[1]!.id]);
      for (const item of all.items) expect(fullContractErrors('WorkflowExecutionResponse', item)).toEqual([]);
      expect((await as({ method: 'GET', url: '/api/v1/workflows/executions?limit=0' })).statusCode).toBe(422);
      expect((await as({ method: 'GET', url: '/api/v1/workflows/executions?offset=-1' })).statusCode).toBe(422);
    },
  );

  it("answers 404 for another user's execution and hides it from their list", async () => {
    const as = asUser(api.app, bob);
    expect((await as({ method: 'GET', url: `/api/v1/workflows/executions/${toolRun.run_id}` })).statusCode).toBe(404);
    expect((await as({ method: 'POST', url: `/api/v1/workflows/executions/${toolRun.run_id}/cancel` })).statusCode).toBe(404);
    const list = await as({ method: 'GET', url: '/api/v1/workflows/executions' });
    expect(list.json()).toEqual({ items: [], total: 0, offset: 0, limit: 20 });
    expect((await as({ method: 'GET', url: '/api/v1/workflows/executions?all_users=true' })).statusCode).toBe(403);
  });

  it('shows a live run as active and cancels it, keeping its usage', async () => {
    const as = asUser(api.app, alice);
    api.script([
      { content: '', toolCalls: [{ name: 'calculator', args: { expression: '1+1' } }], usage: usage(10, 2) },
      { content: 'never finished', latencyMs: 5_000, usage: usage(1, 1) },
    ]);
    const pending = as({ method: 'POST', url: '/api/v1/workflows/execute/chat', payload: { message: 'slow', enable_tools: true } });
    let runId = '';
    await waitUntil(() => {
      const [run] = api.services.runtime.active().filter((r) => r.userId === alice.id);
      runId = run?.runId ?? '';
      return run !== undefined && run.modelCalls >= 1;
    });
    const active = await as({ method: 'GET', url: '/api/v1/workflows/executions/active' });
    expect(active.json<{ active: { id: string; state: string }[] }>().active).toEqual([
      expect.objectContaining({ id: runId, state: expect.stringContaining('running') }),
    ]);
    expect((await asUser(api.app, bob)({ method: 'GET', url: '/api/v1/workflows/executions/active' })).json()).toMatchObject({
      active: [],
    });
    const cancel = await as({ method: 'POST', url: `/api/v1/workflows/executions/${runId}/cancel` });
    expect(cancel.statusCode).toBe(202);
    const answer = await pending;
    expect(answer.json<{ run_status: string }>().run_status).toBe('cancelled');
    const detail = (await as({ method: 'GET', url: `/api/v1/workflows/executions/${runId}` })).json<{
      status: string;
      tokens: { total: number };
    }>();
    expect(detail.status).toBe('cancelled');
    expect(detail.tokens.total).toBeGreaterThanOrEqual(12);
    expect((await as({ method: 'POST', url: `/api/v1/workflows/executions/${runId}/cancel` })).statusCode).toBe(409);
  });

  it('lists events by filter with cursor pagination and keeps users apart', async () => {
    const as = asUser(api.app, alice);
    const byRun = await as({ method: 'GET', url: `/api/v1/events?run_id=${toolRun.run_id}&limit=2` });
    expect(byRun.statusCode).toBe(200);
    const first = byRun.json<{ events: { seq: number; run_id: string }[]; next_cursor: number | null }>();
    expect(first.events).toHaveLength(2);
    expect(first.next_cursor).not.toBeNull();
    const seen = [...first.events];
    let cursor = first.next_cursor;
    while (cursor !== null) {
      const page = (await as({ method: 'GET', url: `/api/v1/events?run_id=${toolRun.run_id}&limit=2&cursor=${cursor}` })).json<
        typeof first
      >();
      seen.push(...page.events);
      cursor = page.next_cursor;
    }
    expect(new Set(seen.map((event) => event.seq)).size).toBe(seen.length);
    expect(seen.every((event) => event.run_id === toolRun.run_id)).toBe(true);
    expect(seen.length).toBe(5);
    const completed = await as({ method: 'GET', url: '/api/v1/events?type=workflow_completed&correlation_id=exec-test-1' });
    expect(completed.json<{ events: unknown[] }>().events).toHaveLength(1);
    const bobs = await asUser(api.app, bob)({ method: 'GET', url: `/api/v1/events?run_id=${toolRun.run_id}` });
    expect(bobs.json<{ events: unknown[] }>().events).toEqual([]);
    expect((await asUser(api.app, bob)({ method: 'GET', url: `/api/v1/events?user_id=${alice.id}` })).statusCode).toBe(403);
    expect((await as({ method: 'GET', url: '/api/v1/events?since=yesterday' })).statusCode).toBe(422);
  });

  it('streams new events over SSE, resumes from Last-Event-ID and caps streams per user', async () => {
    const address = await api.app.listen({ host: '127.0.0.1', port: 0 });
    const stream = await openStream(`${address}/api/v1/events/stream?category=workflow`, alice.auth);
    expect(stream.response.headers['content-type']).toContain('text/event-stream');
    api.script([{ content: 'streamed events', usage: usage(5, 2) }]);
    const chat = (
      await asUser(api.app, alice)({ method: 'POST', url: '/api/v1/workflows/execute/chat', payload: { message: 'hi' } })
    ).json<Chat>();
    // This run's completion, not an earlier run's (a new stream may be handed recent events).
    type Streamed = { type: string; metadata: { run_id: string | null; event_type: string } };
    const ofChat = () => (sseData(stream.text()) as Streamed[]).filter((event) => event.metadata.run_id === chat.run_id);
    await waitUntil(() => ofChat().some((event) => event.type === 'workflow.completed'));
    const ids = [...stream.text().matchAll(/^id: (\d+)$/gm)].map((match) => Number(match[1]));
    expect(ofChat().map((event) => event.metadata.event_type)).toEqual(
      expect.arrayContaining(['workflow_started', 'model_response', 'workflow_completed']),
    );
    stream.close();

    // Resume after the first of those events: everything after it, nothing before.
    const resumed = await openStream(`${address}/api/v1/events/stream?run_id=${chat.run_id}`, {
      ...alice.auth,
      'last-event-id': String(ids[0]),
    });
    await waitUntil(() => resumed.text().includes('workflow.completed'));
    const resumedIds = [...resumed.text().matchAll(/^id: (\d+)$/gm)].map((match) => Number(match[1]));
    expect(Math.min(...resumedIds)).toBeGreaterThan(ids[0]!);
    resumed.close();

    const bobStream = await openStream(`${address}/api/v1/events/stream`, bob.auth);
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(bobStream.text()).not.toContain(chat.run_id);
    const extra = await Promise.all([1, 2, 3, 4].map(() => openStream(`${address}/api/v1/events/stream`, bob.auth)));
    const refused = await openStream(`${address}/api/v1/events/stream`, bob.auth);
    expect(refused.response.statusCode).toBe(429);
    for (const open of [bobStream, ...extra, refused]) open.close();
  });

  it('reports the run-record backlog on /readyz', async () => {
    const ready = await api.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({
      status: 'ready',
      checks: { database: { status: 'healthy' }, run_records: { status: 'healthy', queued: 0, spooled: 0 } },
    });
  });

  it('reports monitoring figures and everything under a correlation id', async () => {
    const as = asUser(api.app, alice);
    const monitoring = await as({ method: 'GET', url: '/api/v1/monitoring/workflows?window=1h' });
    expect(monitoring.statusCode).toBe(200);
    const body = monitoring.json<{ runs_by_status: Record<string, number>; by_provider: unknown[]; error_rate: number }>();
    expect(body.runs_by_status['completed']).toBeGreaterThanOrEqual(1);
    expect(body.by_provider.length).toBeGreaterThan(0);
    const trace = await as({ method: 'GET', url: '/api/v1/monitoring/trace/exec-test-1' });
    expect(trace.statusCode).toBe(200);
    const traced = trace.json<{ runs: { id: string }[]; messages: unknown[]; events: unknown[]; trace_ids: string[] }>();
    expect(traced.runs.map((run) => run.id)).toEqual([toolRun.run_id]);
    expect(traced.messages).toHaveLength(2);
    expect(traced.events.length).toBeGreaterThanOrEqual(5);
    expect(traced.trace_ids).toHaveLength(1);
    expect((await asUser(api.app, bob)({ method: 'GET', url: '/api/v1/monitoring/trace/exec-test-1' })).statusCode).toBe(404);
  });
});
