import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asUser, registerUser, type RegisteredUser } from '../helpers/api.js';
import { createChatApi, sseData, type ChatApi } from '../helpers/chat-api.js';
import { fullContractErrors, fullContractMissing } from '../helpers/full-contract.js';

type Streamed = {
  id: string;
  type: string;
  data: Record<string, unknown>;
  timestamp: string;
  user_id?: string;
  metadata: { seq: number; category: string; priority: string; event_type: string; run_id: string | null; correlation_id: string | null };
};

/** An SSE stream on the listening server; `close` ends it. */
const openStream = (url: string, headers: Record<string, string>) =>
  new Promise<{ status: number; text: () => string; close: () => void }>((resolve, reject) => {
    let text = '';
    const req = httpRequest(url, { headers });
    req.on('response', (response) => {
      response.on('data', (chunk: Buffer) => (text += chunk.toString()));
      // Subscribed once the connected comment arrived.
      const ready = (): void => {
        if (text.includes(': connected') || response.statusCode !== 200) {
          resolve({ status: response.statusCode ?? 0, text: () => text, close: () => req.destroy() });
        } else {
          setTimeout(ready, 10);
        }
      };
      ready();
    });
    req.on('error', (error) => (error.message.includes('socket hang up') ? undefined : reject(error)));
    req.end();
  });

const waitFor = async (check: () => boolean, timeoutMs = 5_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

/** What the frontend's SSE manager keeps (it drops an event without string id, type and timestamp). */
const frontendAccepts = (event: unknown): boolean => {
  const candidate = event as Partial<Record<string, unknown>>;
  return (
    typeof candidate['id'] === 'string' &&
    typeof candidate['type'] === 'string' &&
    typeof candidate['timestamp'] === 'string' &&
    typeof candidate['data'] === 'object' &&
    typeof candidate['metadata'] === 'object'
  );
};

/** The `id:` line and the parsed `data:` line of each event block. */
const eventBlocks = (text: string): { sseId: number; event: string; data: Streamed }[] =>
  text
    .split('\n\n')
    .filter((block) => block.includes('\ndata: '))
    .map((block) => {
      const line = (name: string) =>
        block
          .split('\n')
          .find((entry) => entry.startsWith(`${name}: `))
          ?.slice(name.length + 2) ?? '';
      return { sseId: Number(line('id')), event: line('event'), data: JSON.parse(line('data')) as Streamed };
    });

describe('events in the frontend’s shape, stats and test events', () => {
  let api: ChatApi;
  let base: string;
  let alice: RegisteredUser;
  let bob: RegisteredUser;
  beforeAll(async () => {
    api = await createChatApi();
    base = await api.app.listen({ host: '127.0.0.1', port: 0 });
    alice = await registerUser(api.app);
    bob = await registerUser(api.app);
  });
  afterAll(async () => {
    await api.close();
  });

  it('delivers a streamed chat’s lifecycle events to a subscriber while it runs, in the frontend’s shape', async () => {
    const alices = await openStream(`${base}/api/v1/events/stream?category=workflow`, alice.auth);
    const bobs = await openStream(`${base}/api/v1/events/stream`, bob.auth);
    expect([alices.status, bobs.status]).toEqual([200, 200]);
    api.script([
      { content: '', toolCalls: [{ name: 'calculator', args: { expression: '6*7' } }], usage: { input_tokens: 20, output_tokens: 4 } },
      { content: 'Forty-two.', latencyMs: 300, usage: { input_tokens: 30, output_tokens: 3 } },
    ]);
    const chat = fetch(`${base}/api/v1/workflows/execute/chat/streaming`, {
      method: 'POST',
      headers: { ...alice.auth, 'content-type': 'application/json', 'x-correlation-id': 'frontend-events-1' },
      body: JSON.stringify({ message: 'What is 6*7?', enable_tools: true }),
    });
    // Live: the start and the tool call reach the stream before the chat has answered.
    await waitFor(() => eventBlocks(alices.text()).some((block) => block.data.metadata.event_type === 'tool_called'));
    expect(api.services.runtime.active().some((run) => run.userId === alice.id)).toBe(true);
    const answered = await chat;
    const reply = await answered.text();
    expect(answered.status).toBe(200);
    const complete = (sseData(reply) as { type?: string; metadata?: { run_id: string } }[]).find((chunk) => chunk.type === 'complete');
    const runId = complete?.metadata?.run_id;
    expect(runId).toBeDefined();
    await waitFor(() => eventBlocks(alices.text()).some((block) => block.data.type === 'workflow.completed'));

    const blocks = eventBlocks(alices.text()).filter((block) => block.data.metadata.run_id === runId);
    expect(blocks.every((block) => frontendAccepts(block.data))).toBe(true);
    expect(blocks.map((block) => [block.event, block.data.type, block.data.metadata.event_type])).toEqual([
      ['workflow.started', 'workflow.started', 'workflow_started'],
      ['workflow.status', 'workflow.status', 'model_response'],
      ['workflow.status', 'workflow.status', 'tool_called'],
      ['workflow.status', 'workflow.status', 'model_response'],
      ['workflow.completed', 'workflow.completed', 'workflow_completed'],
    ]);
    for (const { sseId, data } of blocks) {
      // `id:` is the seq (Last-Event-ID resumes from it); the event's own id is its row's.
      expect(sseId).toBe(data.metadata.seq);
      expect(data.timestamp).toBe(new Date(Date.parse(data.timestamp)).toISOString());
      expect(data).toMatchObject({
        user_id: alice.id,
        data: { workflow_id: runId },
        metadata: { category: 'workflow', correlation_id: 'frontend-events-1', run_id: runId, source_system: 'chatter' },
      });
    }
    expect(blocks[2]?.data.data).toMatchObject({ status: 'running', current_step: 'tool_called', 'gen_ai.tool.name': 'calculator' });
    expect(blocks[4]?.data.data).toMatchObject({ status: 'completed', completed_at: blocks[4]?.data.timestamp });
    // The ids and seqs are the stored rows', and the stored types stay queryable.
    const stored = (await asUser(api.app, alice)({ method: 'GET', url: `/api/v1/events?run_id=${runId}&limit=50` }))
      .json<{ events: { id: string; seq: number; type: string; category: string }[] }>()
      .events.reverse();
    expect(stored.map((event) => [event.id, event.seq, event.type])).toEqual(
      blocks.map((block) => [block.data.id, block.data.metadata.seq, block.data.metadata.event_type]),
    );
    const byType = await asUser(
      api.app,
      alice,
    )({ method: 'GET', url: `/api/v1/events?type=workflow_completed&category=workflow&run_id=${runId}` });
    expect(byType.json<{ events: unknown[] }>().events).toHaveLength(1);
    expect(bobs.text()).not.toContain(runId);
    alices.close();
    bobs.close();
  });

  it('sends a failed run as workflow.failed with its status and reason', async () => {
    const stream = await openStream(`${base}/api/v1/events/stream?category=workflow`, alice.auth);
    api.script([{ error: { message: 'bad request', status: 400 } }]);
    const response = await asUser(api.app, alice)({ method: 'POST', url: '/api/v1/workflows/execute/chat', payload: { message: 'fail' } });
    expect(response.statusCode).toBeGreaterThanOrEqual(400);
    await waitFor(() => eventBlocks(stream.text()).some((block) => block.data.type === 'workflow.failed'));
    const failed = eventBlocks(stream.text()).find((block) => block.data.type === 'workflow.failed')!.data;
    expect(failed).toMatchObject({
      data: { status: 'failed', error_code: 'failed', failed_at: failed.timestamp, error_message: expect.any(String) },
      metadata: { event_type: 'workflow_failed', category: 'workflow' },
    });
    stream.close();
  });

  it.skipIf(fullContractMissing !== undefined)(
    'counts this instance’s streams and the caller’s events in the contract’s SSEStatsResponse',
    async () => {
      const as = asUser(api.app, alice);
      const before = (await as({ method: 'GET', url: '/api/v1/events/stats' })).json<{
        total_connections: number;
        your_connections: number;
      }>();
      const mine = [
        await openStream(`${base}/api/v1/events/stream`, alice.auth),
        await openStream(`${base}/api/v1/events/stream`, alice.auth),
      ];
      const theirs = await openStream(`${base}/api/v1/events/stream`, bob.auth);
      const response = await as({ method: 'GET', url: '/api/v1/events/stats' });
      expect(response.statusCode).toBe(200);
      const stats = response.json<{
        total_connections: number;
        your_connections: number;
        your_events: { total: number; last_24h: number; by_category: Record<string, number>; by_type: Record<string, number> };
      }>();
      expect(fullContractErrors('SSEStatsResponse', stats)).toEqual([]);
      expect(stats.total_connections).toBe(before.total_connections + 3);
      expect(stats.your_connections).toBe(before.your_connections + 2);
      // The caller's rows, counted by the database.
      const listed = (await as({ method: 'GET', url: '/api/v1/events?limit=500' })).json<{ events: { category: string; type: string }[] }>()
        .events;
      expect(stats.your_events.total).toBe(listed.length);
      expect(stats.your_events.last_24h).toBe(listed.length);
      expect(stats.your_events.by_category['workflow']).toBe(listed.filter((event) => event.category === 'workflow').length);
      expect(stats.your_events.by_type['workflow_completed']).toBe(listed.filter((event) => event.type === 'workflow_completed').length);
      for (const stream of [...mine, theirs]) stream.close();
      // Closed streams stop counting.
      let now = stats;
      const deadline = Date.now() + 5_000;
      while (now.total_connections !== before.total_connections && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        now = (await as({ method: 'GET', url: '/api/v1/events/stats' })).json<typeof stats>();
      }
      expect([now.total_connections, now.your_connections]).toEqual([before.total_connections, before.your_connections]);
      const bobStats = (await asUser(api.app, bob)({ method: 'GET', url: '/api/v1/events/stats' })).json<{
        your_events: { total: number };
      }>();
      expect(bobStats.your_events.total).toBe(0);
      expect((await api.app.inject({ method: 'GET', url: '/api/v1/events/stats' })).statusCode).toBe(401);
    },
  );

  it.skipIf(fullContractMissing !== undefined)(
    'emits a test event to the caller’s own streams only, stored as system/test_event',
    async () => {
      const alices = await openStream(`${base}/api/v1/events/stream`, alice.auth);
      const bobs = await openStream(`${base}/api/v1/events/stream`, bob.auth);
      const response = await asUser(api.app, alice)({ method: 'POST', url: '/api/v1/events/test-event' });
      expect(response.statusCode).toBe(200);
      const body = response.json<{ message: string; event_id: string; seq: number }>();
      expect(fullContractErrors('TestEventResponse', body)).toEqual([]);
      await waitFor(() => alices.text().includes(body.event_id));
      const [block] = eventBlocks(alices.text()).filter((entry) => entry.data.id === body.event_id);
      expect(block).toMatchObject({
        sseId: body.seq,
        event: 'system.alert',
        data: {
          type: 'system.alert',
          user_id: alice.id,
          data: { message: 'This is a test event', severity: 'info', test: true, triggered_by: alice.id },
          metadata: { category: 'system', event_type: 'test_event', seq: body.seq },
        },
      });
      expect(frontendAccepts(block?.data)).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(bobs.text()).not.toContain(body.event_id);
      const stored = await asUser(api.app, alice)({ method: 'GET', url: '/api/v1/events?category=system&type=test_event' });
      expect(stored.json<{ events: { id: string }[] }>().events.map((event) => event.id)).toEqual([body.event_id]);
      alices.close();
      bobs.close();
    },
  );

  it('refuses more than 10 test events a minute per user, without storing the refused one', async () => {
    const as = asUser(api.app, bob);
    const statuses: number[] = [];
    for (let index = 0; index < 11; index += 1) statuses.push((await as({ method: 'POST', url: '/api/v1/events/test-event' })).statusCode);
    expect(statuses).toEqual([...Array.from({ length: 10 }, () => 200), 429]);
    const stored = await as({ method: 'GET', url: '/api/v1/events?category=system&type=test_event&limit=50' });
    expect(stored.json<{ events: unknown[] }>().events).toHaveLength(10);
    // Alice's allowance is her own.
    expect((await asUser(api.app, alice)({ method: 'POST', url: '/api/v1/events/test-event' })).statusCode).toBe(200);
  });
});
