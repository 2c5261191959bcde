import type { ServerResponse } from 'node:http';
import { ChatAnthropic } from '@langchain/anthropic';
import type { AIMessageChunk } from '@langchain/core/messages';
import { RunnableLambda } from '@langchain/core/runnables';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { classifyProviderError } from '../../src/providers/errors.js';
import { computeCost, findPrice, loadShippedPrices } from '../../src/providers/pricing.js';
import { createProviderRegistry, type ProviderRegistry } from '../../src/providers/provider-registry.js';
import { normalizeUsage } from '../../src/providers/usage.js';
import { sendEvent, sendJson, startLoopbackServer, type LoopbackServer, type RecordedRequest } from './loopback-server.js';

/*
 * Acceptance: the registry's real `anthropic` provider (@langchain/anthropic + the
 * Anthropic SDK over HTTP) against a loopback server speaking the Messages API, JSON and
 * SSE, with usage where Anthropic puts it: input_tokens *excluding* cache, cache
 * creation/read counted separately, message_start carrying the input side and an
 * initial output_tokens, message_delta the cumulative totals.
 */

type AnthropicUsage = {
  input_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
  output_tokens: number;
};

type Behaviour =
  | { kind: 'reply'; text: string; usage: AnthropicUsage }
  | { kind: 'error'; status: number; headers: Record<string, string>; type: string; message: string };

const USAGE: AnthropicUsage = {
  input_tokens: 50,
  cache_creation_input_tokens: 2000,
  cache_read_input_tokens: 3000,
  output_tokens: 80,
};
const BUCKETS = { inputUncached: 50, cacheRead: 3000, cacheWrite: 2000, output: 80, reasoning: 0 };
// claude-sonnet-4-5: 50 × $3 + 3000 × $0.30 + 2000 × $3.75 + 80 × $15 = $9750 per 1M tokens.
const COST = 0.00975;

let behaviour: Behaviour;
let server: LoopbackServer;
let registry: ProviderRegistry;
const sonnet = findPrice(loadShippedPrices(), 'anthropic', 'claude-sonnet-4-5', new Date())!;

function respond(request: RecordedRequest, response: ServerResponse): void {
  if (request.method !== 'POST' || request.path !== '/v1/messages') {
    sendJson(response, 404, { type: 'error', error: { type: 'not_found_error', message: request.path } });
    return;
  }
  if (behaviour.kind === 'error') {
    sendJson(response, behaviour.status, { type: 'error', error: { type: behaviour.type, message: behaviour.message } }, behaviour.headers);
    return;
  }
  const body = request.body as { model: string; stream?: boolean };
  const { text, usage } = behaviour;
  const message = { id: 'msg_loopback', type: 'message', role: 'assistant', model: body.model };
  if (!body.stream) {
    sendJson(response, 200, {
      ...message,
      content: [{ type: 'text', text }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage,
    });
    return;
  }
  response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  sendEvent(
    response,
    {
      type: 'message_start',
      message: {
        ...message,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        // As the API does: the input side in full, output_tokens only so far.
        usage: { ...usage, output_tokens: 1 },
      },
    },
    'message_start',
  );
  sendEvent(response, { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }, 'content_block_start');
  sendEvent(response, { type: 'ping' }, 'ping');
  for (const word of text.split(/(?<= )/)) {
    sendEvent(response, { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: word } }, 'content_block_delta');
  }
  sendEvent(response, { type: 'content_block_stop', index: 0 }, 'content_block_stop');
  // message_delta usage is cumulative for the whole message (Anthropic's MessageDeltaUsage).
  sendEvent(response, { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage }, 'message_delta');
  sendEvent(response, { type: 'message_stop' }, 'message_stop');
  response.end();
}

async function collect(stream: AsyncIterable<AIMessageChunk>): Promise<AIMessageChunk> {
  let message: AIMessageChunk | undefined;
  for await (const chunk of stream) message = message === undefined ? chunk : message.concat(chunk);
  if (message === undefined) throw new Error('empty stream');
  return message;
}

beforeAll(async () => {
  server = await startLoopbackServer(respond);
  registry = createProviderRegistry({
    defaultProvider: 'anthropic',
    local: { latencyMs: 0 },
    openai: {},
    // With /v1, as someone copying the OpenAI convention would write it.
    anthropic: { apiKey: 'test', baseUrl: `${server.origin}/v1` },
  });
});

afterAll(async () => {
  await server.close();
});

beforeEach(() => {
  server.requests.length = 0;
  behaviour = { kind: 'reply', text: 'Hello from the loopback Claude.', usage: USAGE };
});

describe('anthropic provider against a loopback Messages API server', () => {
  it('normalises invoke usage: cache read and write split out of input, costed exactly', async () => {
    const model = registry.createChatModel({});

    const reply = await model.invoke('hi');

    expect(reply.content).toBe('Hello from the loopback Claude.');
    // What @langchain/anthropic reports: input_tokens includes both cache buckets.
    expect(reply.usage_metadata).toMatchObject({
      input_tokens: 5050,
      output_tokens: 80,
      input_token_details: { cache_creation: 2000, cache_read: 3000 },
    });
    const usage = normalizeUsage(reply.usage_metadata);
    expect(usage).toEqual(BUCKETS);
    expect(computeCost(usage!, sonnet)).toBe(COST);
    expect(server.requests[0]).toMatchObject({ path: '/v1/messages', body: { model: 'claude-sonnet-4-5' } });
    expect(server.requests[0]?.headers['x-api-key']).toBe('test');
  });

  it('reports the same usage for a .stream() call as for invoke', async () => {
    const model = registry.createChatModel({ provider: 'anthropic', model: 'claude-sonnet-4-5' });

    const message = await collect(await model.stream('hi'));

    expect(message.content).toBe('Hello from the loopback Claude.');
    expect(server.requests[0]?.body).toMatchObject({ stream: true });
    const usage = normalizeUsage(message.usage_metadata);
    expect(usage).toEqual(BUCKETS);
    expect(computeCost(usage!, sonnet)).toBe(COST);
  });

  it('reports the same usage when invoked inside a streamed chain', async () => {
    const model = registry.createChatModel({});
    const node = RunnableLambda.from(async (input: string, config) => model.invoke(input, config));

    let endUsage: AIMessageChunk['usage_metadata'];
    for await (const event of node.streamEvents('hi', { version: 'v2' })) {
      if (event.event === 'on_chat_model_end') endUsage = (event.data.output as AIMessageChunk).usage_metadata;
    }

    expect(server.requests[0]?.body).toMatchObject({ stream: true });
    expect(normalizeUsage(endUsage)).toEqual(BUCKETS);
  });

  it('reports the same usage through the content-block event stream', async () => {
    const model = registry.createChatModel({});

    const message = await model.streamEvents('hi');

    expect(normalizeUsage(message.usage_metadata)).toEqual(BUCKETS);
  });

  it('documents the upstream over-count that AnthropicChatModel corrects', async () => {
    // Plain ChatAnthropic sums message_start's output_tokens (1) with message_delta's
    // cumulative count (80). When this starts failing, the installed @langchain/anthropic
    // fixed it and anthropic-chat-model.ts can go.
    const plain = new ChatAnthropic({
      model: 'claude-sonnet-4-5',
      apiKey: 'test',
      anthropicApiUrl: server.origin,
      maxRetries: 0,
    });

    const message = await collect(await plain.stream('hi'));

    expect(message.usage_metadata?.output_tokens).toBe(81);
  });

  it('classifies a 429 with Retry-After as transient, without retrying inside the client', async () => {
    behaviour = { kind: 'error', status: 429, headers: { 'retry-after': '7' }, type: 'rate_limit_error', message: 'Rate limited' };
    const model = registry.createChatModel({});

    const invokeError = await model.invoke('hi').catch((error: unknown) => error);
    const streamError = await (async () => collect(await model.stream('hi')))().catch((error: unknown) => error);

    for (const error of [invokeError, streamError]) {
      expect(classifyProviderError(error)).toMatchObject({ transient: true, status: 429, retryAfterMs: 7_000 });
    }
    expect(server.requests).toHaveLength(2);
  });

  it('classifies 529 overloaded as transient and 400 as permanent', async () => {
    behaviour = { kind: 'error', status: 529, headers: {}, type: 'overloaded_error', message: 'Overloaded' };
    const overloaded = await registry
      .createChatModel({})
      .invoke('hi')
      .catch((error: unknown) => error);
    expect(classifyProviderError(overloaded)).toMatchObject({ transient: true, status: 529 });

    behaviour = { kind: 'error', status: 400, headers: {}, type: 'invalid_request_error', message: 'max_tokens: too large' };
    const invalid = await registry
      .createChatModel({})
      .invoke('hi')
      .catch((error: unknown) => error);
    expect(classifyProviderError(invalid)).toMatchObject({ transient: false, status: 400 });
  });
});
