import type { ServerResponse } from 'node:http';
import type { AIMessageChunk } from '@langchain/core/messages';
import { RunnableLambda } from '@langchain/core/runnables';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { classifyProviderError } from '../../src/providers/errors.js';
import { computeCost, findPrice, loadShippedPrices } from '../../src/providers/pricing.js';
import { createProviderRegistry, type ProviderRegistry } from '../../src/providers/provider-registry.js';
import { normalizeUsage } from '../../src/providers/usage.js';
import { sendEvent, sendJson, startLoopbackServer, type LoopbackServer, type RecordedRequest } from './loopback-server.js';

/*
 * Acceptance: the registry's real `openai` provider (ChatOpenAICompletions + the OpenAI
 * SDK over HTTP) against a loopback server speaking the Chat Completions wire format.
 * Usage buckets and cost are asserted exactly as the rest of the service will see them.
 */

type OpenAIUsage = {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details?: { cached_tokens: number; audio_tokens: number };
  completion_tokens_details?: { reasoning_tokens: number; audio_tokens: number };
};

type Behaviour =
  | { kind: 'reply'; text: string; usage: OpenAIUsage }
  | { kind: 'error'; status: number; headers: Record<string, string>; body: unknown }
  | { kind: 'cut'; text: string };

const CACHED_USAGE: OpenAIUsage = {
  prompt_tokens: 1200,
  completion_tokens: 300,
  total_tokens: 1500,
  prompt_tokens_details: { cached_tokens: 1024, audio_tokens: 0 },
  completion_tokens_details: { reasoning_tokens: 64, audio_tokens: 0 },
};
// 176 uncached × $0.15 + 1024 cached × $0.075 + 300 output × $0.60 = $283.2 per 1M tokens.
const CACHED_COST = 0.0002832;
const CACHED_BUCKETS = { inputUncached: 176, cacheRead: 1024, cacheWrite: 0, output: 300, reasoning: 64 };

const PLAIN_USAGE: OpenAIUsage = { prompt_tokens: 50, completion_tokens: 10, total_tokens: 60 };
// 50 × $0.15 + 10 × $0.60 = $13.5 per 1M tokens.
const PLAIN_COST = 0.0000135;

let behaviour: Behaviour;
let server: LoopbackServer;
let registry: ProviderRegistry;
const prices = loadShippedPrices();
const gpt4oMini = findPrice(prices, 'openai', 'gpt-4o-mini', new Date())!;

function completionChunk(model: string, delta: object, finishReason: string | null = null): object {
  return {
    id: 'chatcmpl-loopback',
    object: 'chat.completion.chunk',
    created: 1_767_225_600,
    model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
  };
}

async function respond(request: RecordedRequest, response: ServerResponse): Promise<void> {
  if (request.method !== 'POST' || request.path !== '/v1/chat/completions') {
    sendJson(response, 404, { error: { message: `no route ${request.path}`, type: 'invalid_request_error' } });
    return;
  }
  const body = request.body as { model: string; stream?: boolean; stream_options?: { include_usage?: boolean } };
  if (behaviour.kind === 'error') {
    sendJson(response, behaviour.status, behaviour.body, behaviour.headers);
    return;
  }
  const text = behaviour.text;
  if (!body.stream) {
    if (behaviour.kind !== 'reply') throw new Error('cut only applies to streams');
    sendJson(response, 200, {
      id: 'chatcmpl-loopback',
      object: 'chat.completion',
      created: 1_767_225_600,
      model: `${body.model}-2024-07-18`,
      choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null }, logprobs: null, finish_reason: 'stop' }],
      usage: behaviour.usage,
    });
    return;
  }
  response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const model = `${body.model}-2024-07-18`;
  sendEvent(response, completionChunk(model, { role: 'assistant', content: '' }));
  for (const word of text.split(/(?<= )/)) sendEvent(response, completionChunk(model, { content: word }));
  if (behaviour.kind === 'cut') {
    // The connection drops mid-stream, after the client has read the first chunks: no
    // finish chunk, no usage, no [DONE].
    await new Promise((resolve) => setTimeout(resolve, 50));
    response.socket?.destroy();
    return;
  }
  sendEvent(response, completionChunk(model, {}, 'stop'));
  if (body.stream_options?.include_usage) {
    sendEvent(response, {
      id: 'chatcmpl-loopback',
      object: 'chat.completion.chunk',
      created: 1_767_225_600,
      model,
      choices: [],
      usage: behaviour.usage,
    });
  }
  sendEvent(response, '[DONE]');
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
    defaultProvider: 'local',
    local: { latencyMs: 0 },
    openai: { apiKey: 'test', baseUrl: `${server.origin}/v1` },
    anthropic: {},
  });
});

afterAll(async () => {
  await server.close();
});

beforeEach(() => {
  server.requests.length = 0;
});

describe('openai provider against a loopback Chat Completions server', () => {
  it('normalises invoke usage with cached and reasoning tokens and costs it exactly', async () => {
    behaviour = { kind: 'reply', text: 'Hello from the loopback.', usage: CACHED_USAGE };
    const model = registry.createChatModel({ provider: 'openai', model: 'gpt-4o-mini' });

    const reply = await model.invoke('hi');

    expect(reply.content).toBe('Hello from the loopback.');
    const usage = normalizeUsage(reply.usage_metadata);
    expect(usage).toEqual(CACHED_BUCKETS);
    expect(computeCost(usage!, gpt4oMini)).toBe(CACHED_COST);
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]).toMatchObject({ path: '/v1/chat/completions', body: { model: 'gpt-4o-mini' } });
    expect(server.requests[0]?.headers.authorization).toBe('Bearer test');
  });

  it('normalises the usage of a .stream() call, asking the server for it', async () => {
    behaviour = { kind: 'reply', text: 'Streaming from the loopback works.', usage: CACHED_USAGE };
    const model = registry.createChatModel({ provider: 'openai', model: 'gpt-4o-mini' });

    const message = await collect(await model.stream('hi'));

    expect(message.content).toBe('Streaming from the loopback works.');
    expect(server.requests[0]?.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    const usage = normalizeUsage(message.usage_metadata);
    expect(usage).toEqual(CACHED_BUCKETS);
    expect(computeCost(usage!, gpt4oMini)).toBe(CACHED_COST);
    expect(message.response_metadata).toMatchObject({ finish_reason: 'stop', model_name: 'gpt-4o-mini-2024-07-18' });
  });

  it('costs usage without cache details at the plain input price', async () => {
    behaviour = { kind: 'reply', text: 'Short.', usage: PLAIN_USAGE };
    const model = registry.createChatModel({ provider: 'openai', model: 'gpt-4o-mini' });

    const invoked = normalizeUsage((await model.invoke('hi')).usage_metadata);
    const streamed = normalizeUsage((await collect(await model.stream('hi'))).usage_metadata);

    expect(invoked).toEqual({ inputUncached: 50, cacheRead: 0, cacheWrite: 0, output: 10, reasoning: 0 });
    expect(streamed).toEqual(invoked);
    expect(computeCost(invoked!, gpt4oMini)).toBe(PLAIN_COST);
  });

  it('delivers the usage to on_chat_model_end when invoked inside a streamed chain', async () => {
    behaviour = { kind: 'reply', text: 'Evented.', usage: CACHED_USAGE };
    const model = registry.createChatModel({ provider: 'openai', model: 'gpt-4o-mini' });
    const node = RunnableLambda.from(async (input: string, config) => model.invoke(input, config));

    let endUsage: AIMessageChunk['usage_metadata'];
    for await (const event of node.streamEvents('hi', { version: 'v2' })) {
      if (event.event === 'on_chat_model_end') endUsage = (event.data.output as AIMessageChunk).usage_metadata;
    }

    expect(normalizeUsage(endUsage)).toEqual(CACHED_BUCKETS);
  });

  it('uses Chat Completions even for models LangChain would send to /v1/responses', async () => {
    behaviour = { kind: 'reply', text: 'Still chat completions.', usage: PLAIN_USAGE };
    const model = registry.createChatModel({ provider: 'openai', model: 'gpt-5-codex' });

    await collect(await model.stream('hi'));
    await model.invoke('hi');

    expect(server.requests.map((request) => request.path)).toEqual(['/v1/chat/completions', '/v1/chat/completions']);
  });

  it('classifies a 429 with Retry-After as transient, without retrying inside the client', async () => {
    behaviour = {
      kind: 'error',
      status: 429,
      headers: { 'retry-after': '3' },
      body: { error: { message: 'Rate limit reached for gpt-4o-mini', type: 'requests', code: 'rate_limit_exceeded' } },
    };
    const model = registry.createChatModel({ provider: 'openai', model: 'gpt-4o-mini' });

    const invokeError = await model.invoke('hi').catch((error: unknown) => error);
    const streamError = await (async () => collect(await model.stream('hi')))().catch((error: unknown) => error);

    for (const error of [invokeError, streamError]) {
      expect(classifyProviderError(error)).toMatchObject({ transient: true, status: 429, retryAfterMs: 3_000 });
    }
    // maxRetries: 0 — one request per call; the runtime owns retries.
    expect(server.requests).toHaveLength(2);
  });

  it('classifies a 401 as permanent', async () => {
    behaviour = {
      kind: 'error',
      status: 401,
      headers: {},
      body: { error: { message: 'Incorrect API key', type: 'invalid_request_error' } },
    };
    const model = registry.createChatModel({ provider: 'openai', model: 'gpt-4o-mini' });

    const error = await model.invoke('hi').catch((caught: unknown) => caught);

    expect(classifyProviderError(error)).toMatchObject({ transient: false, status: 401 });
  });

  it('classifies a stream cut mid-way as transient', async () => {
    behaviour = { kind: 'cut', text: 'This reply never finishes because' };
    const model = registry.createChatModel({ provider: 'openai', model: 'gpt-4o-mini' });

    let received = '';
    const error = await (async () => {
      for await (const chunk of await model.stream('hi')) received += String(chunk.content);
    })().catch((caught: unknown) => caught);

    expect(received).not.toBe('');
    expect(error).toMatchObject({ message: 'terminated' });
    expect(classifyProviderError(error).transient).toBe(true);
  });
});
