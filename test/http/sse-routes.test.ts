import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerUser, type RegisteredUser } from '../helpers/api.js';
import { createChatApi, type ChatApi } from '../helpers/chat-api.js';

type Wire = { status: number; headers: [string, string][]; body: string };

const EVENT_STREAM_HEADERS: [string, string][] = [
  ['content-type', 'text/event-stream; charset=utf-8'],
  ['cache-control', 'no-cache, no-transform'],
  ['connection', 'keep-alive'],
  ['x-accel-buffering', 'no'],
];

/** The bytes every SSE route puts on the wire: the head as sent (names in order) and the body. */
describe('SSE routes on the wire', () => {
  let api: ChatApi;
  let alice: RegisteredUser;
  let address: string;
  beforeAll(async () => {
    api = await createChatApi({ DEFAULT_PROVIDER: 'openai', OPENAI_API_KEY: 'sk-test' });
    alice = await registerUser(api.app);
    address = await api.app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await api.close();
  });

  /** Sends a request; resolves with what arrived once the server ended (or after `cutAfterMs`, the client hangs up). */
  const exchange = (method: string, path: string, body?: unknown, cutAfterMs?: number) =>
    new Promise<Wire>((resolve, reject) => {
      const req = httpRequest(`${address}${path}`, {
        method,
        headers: { ...alice.auth, 'content-type': 'application/json', 'x-correlation-id': 'wire-1' },
      });
      req.on('response', (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        const headers: [string, string][] = [];
        for (let index = 0; index < response.rawHeaders.length; index += 2) {
          headers.push([response.rawHeaders[index]!, response.rawHeaders[index + 1]!]);
        }
        response.on('close', () => resolve({ status: response.statusCode ?? 0, headers, body: text }));
        if (cutAfterMs !== undefined) setTimeout(() => req.destroy(), cutAfterMs);
      });
      req.on('error', (error) => (error.message.includes('hang up') ? undefined : reject(error)));
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });

  /** The event-stream headers follow the app's (correlation id, CORS, limits), then Node's own. */
  const expectStreamHead = (wire: Wire) => {
    expect(wire.status).toBe(200);
    const names = wire.headers.map(([name]) => name);
    const at = names.indexOf('content-type');
    expect(wire.headers.slice(at, at + 4)).toEqual(EVENT_STREAM_HEADERS);
    expect(names.slice(at + 4)).toEqual(['Date', 'Transfer-Encoding']);
    expect(wire.headers).toContainEqual(['x-correlation-id', 'wire-1']);
  };

  it('streams a chat turn as bare data lines ending with [DONE], nothing else', async () => {
    api.script([{ content: 'Hi there.', usage: { input_tokens: 3, output_tokens: 2 } }]);
    const wire = await exchange('POST', '/api/v1/workflows/execute/chat/streaming', { message: 'hello' });
    expectStreamHead(wire);
    expect(wire.headers.map(([name]) => name)).toContain('x-ratelimit-remaining-minute');
    const start = /^data: (\{.*?\})\n\n/.exec(wire.body);
    const ids = JSON.parse(start![1]!) as { conversation_id: string; message_id: string };
    const tail = `"conversation_id":"${ids.conversation_id}","message_id":"${ids.message_id}","correlation_id":"wire-1"}`;
    const complete = /"metadata":(\{[^}]*\})/.exec(wire.body);
    const metadata = JSON.parse(complete![1]!) as { response_time_ms: number; run_id: string };
    expect(wire.body).toBe(
      `data: {"type":"start",${tail}\n\n` +
        `data: {"type":"token","content":"Hi ",${tail}\n\n` +
        `data: {"type":"token","content":"there.",${tail}\n\n` +
        `data: {"type":"complete","content":"Hi there.","metadata":{"total_tokens":5,"prompt_tokens":3,"completion_tokens":2,` +
        `"cached_input_tokens":0,"reasoning_tokens":0,"cost":0.00000165,"model_used":"gpt-4o-mini-2024-07-18","provider_used":"openai",` +
        `"response_time_ms":${metadata.response_time_ms},"finish_reason":"stop","run_id":"${metadata.run_id}","run_status":"completed"},${tail}\n\n` +
        'data: [DONE]\n\n',
    );
  });

  // The first test's turn wrote these three events.
  it('streams events as a connected comment then event, id and data blocks', async () => {
    const wire = await exchange('GET', '/api/v1/events/stream?category=workflow&last_event_id=0', undefined, 800);
    expectStreamHead(wire);
    const blocks = wire.body.split('\n\n').filter((block) => block !== '');
    expect(blocks[0]).toBe(': connected');
    expect(blocks.slice(1).map((block) => block.split('\n').map((line) => line.split(': ')[0]))).toEqual(
      blocks.slice(1).map(() => ['event', 'id', 'data']),
    );
    expect(blocks.slice(1).map((block) => block.split('\n').slice(0, 2).join(' '))).toEqual([
      'event: workflow.started id: 1',
      'event: workflow.status id: 2',
      'event: workflow.completed id: 3',
    ]);
    // One data line per event, in the frontend's shape, its type the same as the `event:` line.
    const data = blocks.slice(1).map((block) => JSON.parse(block.split('\n')[2]!.slice('data: '.length)) as Record<string, unknown>);
    expect(data.map((event) => Object.keys(event).sort())).toEqual(
      data.map(() => ['data', 'id', 'metadata', 'timestamp', 'type', 'user_id']),
    );
    expect(data.map((event) => (event['metadata'] as { event_type: string }).event_type)).toEqual([
      'workflow_started',
      'model_response',
      'workflow_completed',
    ]);
  });

  it('opens the analytics feed with a connected comment', async () => {
    const wire = await exchange('GET', '/api/v1/analytics/stream', undefined, 300);
    expectStreamHead(wire);
    expect(wire.body).toBe(': connected\n\n');
  });

  it('ends open event streams when the server closes, instead of waiting for their clients', async () => {
    const ended = exchange('GET', '/api/v1/events/stream');
    await new Promise((resolve) => setTimeout(resolve, 200));
    await api.app.close(); // times out while a stream holds its connection
    expect((await ended).body.startsWith(': connected\n\n')).toBe(true);
  });
});
