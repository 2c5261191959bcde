import { request as httpRequest } from 'node:http';
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import * as semconv from '../../otel/semconv.js';
import { asUser, registerUser, type RegisteredUser } from '../helpers/api.js';
import { createChatApi, sseData, type ChatApi } from '../helpers/chat-api.js';
import { publishedApi, type OpenApiValidator } from '../helpers/openapi-validator.js';

const usage = (input: number, output: number, cacheRead = 0) => ({
  input_tokens: input,
  output_tokens: output,
  input_token_details: { cache_read: cacheRead },
});

const Totals = z.object({
  message_count: z.number(),
  total_tokens: z.number(),
  total_cost: z.number(),
  n: z.number(),
  tokens: z.number(),
  cost: z.number(),
});

describe('chat routes', () => {
  /** This service's own OpenAPI document: answers are checked against what it publishes. */
  let published: OpenApiValidator;
  let api: ChatApi;
  let alice: RegisteredUser;
  beforeAll(async () => {
    api = await createChatApi({ CHAT_RATE_LIMIT_PER_MINUTE: '50', DEFAULT_PROVIDER: 'openai', OPENAI_API_KEY: 'sk-test' });
    published = await publishedApi(api.app);
    alice = await registerUser(api.app);
  });
  afterAll(async () => {
    await api.close();
  });

  const totals = (conversationId: string) =>
    api.db.pool.one(sql.type(Totals)`
      SELECT c.message_count, c.total_tokens, c.total_cost,
             (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) AS n,
             (SELECT COALESCE(sum(total_tokens), 0) FROM messages m WHERE m.conversation_id = c.id) AS tokens,
             (SELECT COALESCE(sum(cost), 0) FROM messages m WHERE m.conversation_id = c.id) AS cost
      FROM conversations c WHERE c.id = ${conversationId}`);

  it('leaves message_count 6 and totals equal to the message sums after three turns, one streaming', async () => {
    const as = asUser(api.app, alice);
    api.script([{ content: 'First answer.', usage: usage(20, 5) }]);
    const first = await as({ method: 'POST', url: '/api/v1/workflows/execute/chat', payload: { message: 'Hello' } });
    expect(first.statusCode).toBe(200);
    const body = first.json<{ conversation_id: string; message: Record<string, unknown>; conversation: Record<string, unknown> }>();
    expect(published.errors('ChatResponse', body)).toEqual([]);
    expect(body.message).toMatchObject({
      role: 'assistant',
      content: 'First answer.',
      prompt_tokens: 20,
      completion_tokens: 5,
      total_tokens: 25,
      provider_used: 'openai',
      finish_reason: 'stop',
    });
    expect(body.message['cost']).toBeCloseTo((20 * 0.15 + 5 * 0.6) / 1e6, 10);
    const conversationId = body.conversation_id;

    api.script([
      { content: '', toolCalls: [{ name: 'calculator', args: { expression: '6*7' } }], usage: usage(40, 6, 10) },
      { content: 'It is 42.', usage: usage(60, 4) },
    ]);
    const second = await as({
      method: 'POST',
      url: '/api/v1/workflows/execute/chat',
      payload: { message: 'What is 6*7?', conversation_id: conversationId, enable_tools: true },
    });
    expect(second.statusCode).toBe(200);
    expect(second.json<{ message: { total_tokens: number } }>().message.total_tokens).toBe(110);

    api.script([{ content: 'A streamed third answer.', usage: usage(90, 7) }]);
    const third = await as({
      method: 'POST',
      url: '/api/v1/workflows/execute/chat/streaming',
      payload: { message: 'And a third?', conversation_id: conversationId },
    });
    expect(third.statusCode).toBe(200);
    expect(third.headers['content-type']).toContain('text/event-stream');
    const chunks = sseData(third.body) as (Record<string, unknown> | string)[];
    expect((chunks[0] as Record<string, unknown>)['type']).toBe('start');
    expect(chunks.at(-1)).toBe('[DONE]');
    const tokens = chunks.filter((chunk) => typeof chunk === 'object' && chunk['type'] === 'token') as { content: string }[];
    expect(tokens.map((chunk) => chunk.content).join('')).toBe('A streamed third answer.');
    const complete = chunks.find((chunk) => typeof chunk === 'object' && chunk['type'] === 'complete') as {
      message_id: string;
      conversation_id: string;
      correlation_id: string;
      metadata: Record<string, unknown>;
    };
    expect(complete.conversation_id).toBe(conversationId);
    const stored = await api.db.pool.one(sql.type(
      z.object({
        total_tokens: z.number(),
        prompt_tokens: z.number(),
        completion_tokens: z.number(),
        cost: z.number(),
        model_used: z.string(),
        provider_used: z.string(),
        response_time_ms: z.number(),
      }),
    )`SELECT total_tokens, prompt_tokens, completion_tokens, cost, model_used, provider_used, response_time_ms
      FROM messages WHERE id = ${complete.message_id}`);
    expect(complete.metadata).toMatchObject(stored);

    const t = await totals(conversationId);
    expect(t.message_count).toBe(6);
    expect(t.n).toBe(6);
    expect(t.total_tokens).toBe(t.tokens);
    expect(t.total_tokens).toBe(25 + 110 + 97);
    expect(Math.round(t.total_cost * 1e10)).toBe(Math.round(t.cost * 1e10));

    const listed = await as({ method: 'GET', url: `/api/v1/conversations/${conversationId}/messages` });
    expect(listed.json<unknown[]>()).toHaveLength(6);
  });

  it('echoes the correlation id and makes the run span a child of the request span', async () => {
    api.script([{ content: 'Traced.', usage: usage(3, 1) }]);
    const response = await asUser(
      api.app,
      alice,
    )({
      method: 'POST',
      url: '/api/v1/workflows/execute/chat',
      headers: { 'x-correlation-id': 'trace-me-123' },
      payload: { message: 'trace this' },
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers['x-correlation-id']).toBe('trace-me-123');
    await api.services.tracerProvider.forceFlush();
    const spans = api.exporter.getFinishedSpans();
    const run = spans.find(
      (span) => span.name.startsWith('invoke_workflow') && span.attributes[semconv.ATTR_CORRELATION_ID] === 'trace-me-123',
    );
    expect(run).toBeDefined();
    const parent = spans.find((span) => span.spanContext().spanId === run!.parentSpanContext?.spanId);
    expect(parent).toBeDefined();
    expect(parent!.spanContext().traceId).toBe(run!.spanContext().traceId);
    // The request span chain ends at the HTTP request span, tagged with the same id.
    let top = parent!;
    for (;;) {
      const up = spans.find((span) => span.spanContext().spanId === top.parentSpanContext?.spanId);
      if (up === undefined) break;
      top = up;
    }
    expect(top.attributes[semconv.ATTR_CORRELATION_ID]).toBe('trace-me-123');
    const rows = await api.db.pool.anyFirst(sql.type(z.object({ correlation_id: z.string() }))`
      SELECT correlation_id FROM workflow_runs WHERE correlation_id = 'trace-me-123'
      UNION ALL SELECT correlation_id FROM messages WHERE correlation_id = 'trace-me-123'
      UNION ALL SELECT correlation_id FROM events WHERE correlation_id = 'trace-me-123'`);
    expect(rows.length).toBeGreaterThanOrEqual(4);
  });

  it('refuses bad input with 4xx and saves nothing', async () => {
    const as = asUser(api.app, alice);
    const count = () => api.db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*) AS n FROM messages`);
    const before = await count();
    const missing = await as({ method: 'POST', url: '/api/v1/workflows/execute/chat', payload: {} });
    expect(missing.statusCode).toBe(422);
    expect(missing.json()).toMatchObject({ detail: [{ loc: ['body', 'message'], type: 'required' }] });
    const unknown = await as({ method: 'POST', url: '/api/v1/workflows/execute/chat', payload: { message: 'x', provider: 'nope' } });
    expect(unknown.statusCode).toBe(400);
    const unconfigured = await as({
      method: 'POST',
      url: '/api/v1/workflows/execute/chat',
      payload: { message: 'x', provider: 'anthropic' },
    });
    expect(unconfigured.statusCode).toBe(400);
    const template = await as({
      method: 'POST',
      url: '/api/v1/workflows/execute/chat',
      payload: { message: 'x', workflow_template_name: 'no_such_template' },
    });
    expect(template.statusCode).toBe(400);
    const bob = await registerUser(api.app);
    api.script([{ content: 'Bob owns this.', usage: usage(1, 1) }]);
    const bobs = await asUser(api.app, bob)({ method: 'POST', url: '/api/v1/workflows/execute/chat', payload: { message: 'mine' } });
    const afterBob = await count();
    const foreign = await as({
      method: 'POST',
      url: '/api/v1/workflows/execute/chat',
      payload: { message: 'x', conversation_id: bobs.json<{ conversation_id: string }>().conversation_id },
    });
    expect(foreign.statusCode).toBe(404);
    expect(afterBob - before).toBe(2);
    expect(await count()).toBe(afterBob);
    for (const response of [missing, unknown, unconfigured, template, foreign]) {
      expect(response.body).not.toMatch(/\.ts:\d+|at [A-Za-z]+ \(/);
    }
  });

  it('answers 409 to a second turn while the first is running, and saves nothing for it', async () => {
    const as = asUser(api.app, alice);
    api.script([{ content: 'seed', usage: usage(1, 1) }]);
    const seed = await as({ method: 'POST', url: '/api/v1/workflows/execute/chat', payload: { message: 'seed' } });
    const conversationId = seed.json<{ conversation_id: string }>().conversation_id;
    api.script([{ content: 'slow', latencyMs: 300, usage: usage(2, 2) }]);
    const slow = as({
      method: 'POST',
      url: '/api/v1/workflows/execute/chat',
      payload: { message: 'slow', conversation_id: conversationId },
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const second = await as({
      method: 'POST',
      url: '/api/v1/workflows/execute/chat',
      payload: { message: 'too soon', conversation_id: conversationId },
    });
    expect(second.statusCode).toBe(409);
    expect((await slow).statusCode).toBe(200);
    const t = await totals(conversationId);
    expect(t.message_count).toBe(4);
    expect(t.n).toBe(4);
  });

  it('cancels the run when a streaming client disconnects, and still accounts its usage', async () => {
    const address = await api.app.listen({ host: '127.0.0.1', port: 0 });
    api.script([{ content: 'one two three four five six seven eight nine ten eleven twelve', chunkDelayMs: 50, usage: usage(30, 12) }]);
    const conversationId = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(`${address}/api/v1/workflows/execute/chat/streaming`, {
        method: 'POST',
        headers: { ...alice.auth, 'content-type': 'application/json' },
      });
      req.on('response', (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => {
          text += chunk.toString();
          const tokens = sseData(text).filter((c) => typeof c === 'object' && (c as { type: string }).type === 'token');
          if (tokens.length >= 2) {
            const start = sseData(text)[0] as { conversation_id: string };
            req.destroy();
            resolve(start.conversation_id);
          }
        });
      });
      req.on('error', () => {});
      setTimeout(() => reject(new Error('no tokens')), 5_000);
      req.end(JSON.stringify({ message: 'count to twelve' }));
    });
    const deadline = Date.now() + 5_000;
    let status = 'running';
    while (Date.now() < deadline) {
      status = await api.db.pool.oneFirst(sql.type(z.object({ status: z.string() }))`
        SELECT status FROM workflow_runs WHERE conversation_id = ${conversationId}`);
      if (status !== 'running') break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(status).toBe('cancelled');
    const message = await api.db.pool.one(sql.type(z.object({ total_tokens: z.number(), content: z.string() }))`
      SELECT total_tokens, content FROM messages WHERE conversation_id = ${conversationId} AND role = 'assistant'`);
    expect(message.total_tokens).toBeGreaterThan(0);
    expect(message.content.length).toBeGreaterThan(0);
    const t = await totals(conversationId);
    expect(t.total_tokens).toBe(t.tokens);
  });

  it('limits chat requests per user with the contract headers', async () => {
    const limited = await createChatApi({ CHAT_RATE_LIMIT_PER_MINUTE: '2' });
    try {
      const carol = await registerUser(limited.app);
      const as = asUser(limited.app, carol);
      limited.script([
        { content: 'a', usage: usage(1, 1) },
        { content: 'b', usage: usage(1, 1) },
      ]);
      const first = await as({ method: 'POST', url: '/api/v1/workflows/execute/chat', payload: { message: '1' } });
      expect(first.headers['x-ratelimit-limit-minute']).toBe('2');
      expect(first.headers['x-ratelimit-remaining-minute']).toBe('1');
      await as({ method: 'POST', url: '/api/v1/workflows/execute/chat', payload: { message: '2' } });
      const third = await as({ method: 'POST', url: '/api/v1/workflows/execute/chat', payload: { message: '3' } });
      expect(third.statusCode).toBe(429);
      expect(Number(third.headers['retry-after'])).toBeGreaterThan(0);
    } finally {
      await limited.close();
    }
  });

  it('says null, not 0, for the figures of a streamed run that left no message', async () => {
    api.script([{ error: { message: 'invalid request', status: 400 } }]);
    const response = await asUser(
      api.app,
      alice,
    )({
      method: 'POST',
      url: '/api/v1/workflows/execute/chat/streaming',
      payload: { message: 'This one fails' },
    });
    expect(response.statusCode).toBe(200);
    const chunks = sseData(response.body) as (Record<string, unknown> | string)[];
    const failed = chunks.find((chunk) => typeof chunk === 'object' && chunk['type'] === 'error') as {
      message_id: string;
      metadata: Record<string, unknown>;
    };
    expect(failed.metadata).toMatchObject({
      total_tokens: null,
      prompt_tokens: null,
      completion_tokens: null,
      cached_input_tokens: null,
      reasoning_tokens: null,
      cost: null,
      run_status: 'failed',
    });
    const messages = await api.db.pool.anyFirst(
      sql.type(z.object({ id: z.string() }))`SELECT id FROM messages WHERE id = ${failed.message_id}`,
    );
    expect(messages).toEqual([]);
  });
});
