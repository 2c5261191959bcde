import { type AIMessageChunk, HumanMessage, SystemMessage } from '@langchain/core/messages';
import { RunnableLambda } from '@langchain/core/runnables';
import { describe, expect, it } from 'vitest';
import { classifyProviderError } from '../../src/providers/errors.js';
import { ScriptedChatModel, ScriptExhaustedError, type ProviderUsageReport } from './scripted-chat-model.js';
import { normalizeUsage } from '../../src/providers/usage.js';

const usage: ProviderUsageReport = {
  input_tokens: 120,
  output_tokens: 40,
  total_tokens: 160,
  input_token_details: { cache_read: 100 },
  output_token_details: { reasoning: 12 },
};

async function collect(stream: AsyncIterable<AIMessageChunk>): Promise<{ chunks: number; message: AIMessageChunk }> {
  let message: AIMessageChunk | undefined;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks += 1;
    message = message === undefined ? chunk : message.concat(chunk);
  }
  if (message === undefined) throw new Error('empty stream');
  return { chunks, message };
}

describe('ScriptedChatModel', () => {
  it('reports the same content, tool calls and usage through invoke and stream', async () => {
    const turn = {
      content: 'Let me compute that for you.',
      toolCalls: [{ name: 'calculator', args: { expression: '12*(3+4)' }, id: 'call_1' }],
      usage,
    };
    const model = new ScriptedChatModel({ turns: [turn, turn], model: 'gpt-test' });

    const invoked = await model.invoke('what is 12*(3+4)?');
    const { chunks, message: streamed } = await collect(await model.stream('what is 12*(3+4)?'));

    expect(chunks).toBeGreaterThan(2);
    expect(invoked.content).toBe('Let me compute that for you.');
    expect(streamed.content).toBe(invoked.content);
    expect(invoked.tool_calls).toEqual([{ name: 'calculator', args: { expression: '12*(3+4)' }, id: 'call_1', type: 'tool_call' }]);
    expect(streamed.tool_calls).toEqual(invoked.tool_calls);
    expect(invoked.usage_metadata).toMatchObject(usage);
    expect(normalizeUsage(streamed.usage_metadata)).toEqual(normalizeUsage(invoked.usage_metadata));
    expect(normalizeUsage(invoked.usage_metadata)).toEqual({
      inputUncached: 20,
      cacheRead: 100,
      cacheWrite: 0,
      output: 40,
      reasoning: 12,
    });
    expect(invoked.response_metadata).toMatchObject({ model_name: 'gpt-test', finish_reason: 'tool_calls' });
    expect(streamed.response_metadata).toMatchObject({ model_name: 'gpt-test', finish_reason: 'tool_calls' });
  });

  it('shows the usage on on_chat_model_end and in a streamed chunk under streamEvents', async () => {
    const model = new ScriptedChatModel({ turns: [{ content: 'one two three', usage }] });

    let endUsage: unknown;
    const streamedUsage: unknown[] = [];
    for await (const event of model.streamEvents('hi', { version: 'v2' })) {
      if (event.event === 'on_chat_model_stream') {
        const chunk = event.data.chunk as AIMessageChunk;
        if (chunk.usage_metadata) streamedUsage.push(chunk.usage_metadata);
      }
      if (event.event === 'on_chat_model_end') endUsage = (event.data.output as AIMessageChunk).usage_metadata;
    }

    expect(endUsage).toMatchObject(usage);
    expect(streamedUsage).toHaveLength(1);
  });

  it('streams the usage chunk through the callbacks when invoked inside a streamed chain', async () => {
    // LangGraph nodes call model.invoke() while the graph is streamed: LangChain then
    // drives _streamResponseChunks through the callbacks, the path the pitfall is about.
    const model = new ScriptedChatModel({ turns: [{ content: 'one two three', usage }] });
    // The config is passed on explicitly, as LangGraph does for its nodes.
    const node = RunnableLambda.from(async (input: string, config) => model.invoke(input, config));

    const ends: unknown[] = [];
    const streamedUsage: unknown[] = [];
    let tokens = '';
    for await (const event of node.streamEvents('hi', { version: 'v2' })) {
      if (event.event === 'on_chat_model_stream') {
        // On this path the stream events come from handleLLMNewToken only.
        const chunk = event.data.chunk as AIMessageChunk;
        tokens += String(chunk.content);
        if (chunk.usage_metadata) streamedUsage.push(chunk.usage_metadata);
      }
      if (event.event === 'on_chat_model_end') ends.push((event.data.output as AIMessageChunk).usage_metadata);
    }

    expect(tokens).toBe('one two three');
    expect(streamedUsage).toEqual([expect.objectContaining(usage)]);
    expect(ends).toHaveLength(1);
    expect(ends[0]).toMatchObject(usage);
  });

  it('reports no usage_metadata when the turn has usage: null', async () => {
    const model = new ScriptedChatModel({
      turns: [
        { content: 'hi', usage: null },
        { content: 'hi', usage: null },
      ],
    });

    const invoked = await model.invoke('hello');
    const { message: streamed } = await collect(await model.stream('hello'));

    expect(invoked.usage_metadata).toBeUndefined();
    expect(streamed.usage_metadata).toBeUndefined();
    expect(normalizeUsage(invoked.usage_metadata)).toBeNull();
  });

  it('throws an AbortError promptly when aborted mid-stream', async () => {
    const model = new ScriptedChatModel({ turns: [{ content: 'a b c d e f g h', chunkDelayMs: 5_000 }] });
    const controller = new AbortController();

    const stream = await model.stream('go', { signal: controller.signal });
    const iterator = stream[Symbol.asyncIterator]();
    const first = await iterator.next();
    expect(first.done).toBe(false);

    const started = performance.now();
    setTimeout(() => controller.abort(), 20);
    const error = await iterator.next().then(
      () => undefined,
      (caught: unknown) => caught,
    );
    const elapsed = performance.now() - started;

    expect(error).toBeInstanceOf(Error);
    expect(elapsed).toBeLessThan(1_000);
    expect(classifyProviderError(error)).toMatchObject({ transient: false, aborted: true });
  });

  it('rejects invoke promptly when aborted during the latency', async () => {
    const model = new ScriptedChatModel({ turns: [{ content: 'late', latencyMs: 5_000 }] });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 20);

    const started = performance.now();
    await expect(model.invoke('go', { signal: controller.signal })).rejects.toThrow();
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('throws scripted errors carrying the status and retry-after that classifyProviderError reads', async () => {
    const model = new ScriptedChatModel({
      turns: [
        { error: { message: 'Rate limit reached', status: 429, retryAfterMs: 1_500, code: 'rate_limit_exceeded' } },
        { error: { message: 'Invalid model', status: 404 } },
        { content: 'recovered' },
      ],
    });

    const rateLimited = await model.invoke('x').catch((error: unknown) => error);
    expect(rateLimited).toMatchObject({ status: 429, code: 'rate_limit_exceeded' });
    expect(classifyProviderError(rateLimited)).toEqual({
      transient: true,
      status: 429,
      retryAfterMs: 1_500,
      message: '429 Rate limit reached',
    });

    const notFound = await (async () => collect(await model.stream('x')))().catch((error: unknown) => error);
    expect(classifyProviderError(notFound)).toMatchObject({ transient: false, status: 404 });

    expect((await model.invoke('x')).content).toBe('recovered');
  });

  it('throws once the script is exhausted', async () => {
    const model = new ScriptedChatModel({ turns: [{ content: 'only one' }] });
    await model.invoke('1');
    await expect(model.invoke('2')).rejects.toBeInstanceOf(ScriptExhaustedError);
  });

  it('follows the same script through bindTools and records every call', async () => {
    const model = new ScriptedChatModel({ turns: [{ content: 'first' }, { content: 'second' }] });
    const bound = model.bindTools([
      { type: 'function', function: { name: 'calculator', description: 'math', parameters: { type: 'object' } } },
    ]);

    expect((await bound.invoke([new SystemMessage('be brief'), new HumanMessage('hi')])).content).toBe('first');
    expect((await model.invoke('again')).content).toBe('second');

    expect(model.calls).toHaveLength(2);
    expect(model.calls[0]?.tools).toEqual(['calculator']);
    expect(model.calls[0]?.messages.map((message) => message.content)).toEqual(['be brief', 'hi']);
    expect(model.calls[1]?.tools).toEqual([]);
    expect(model.remainingTurns).toBe(0);
  });

  it('estimates usage deterministically when a turn does not script it', async () => {
    const model = new ScriptedChatModel({ turns: [{ content: 'three word reply' }] });
    const reply = await model.invoke([new HumanMessage('five words in this prompt')]);
    expect(reply.usage_metadata).toMatchObject({ input_tokens: 5, output_tokens: 3, total_tokens: 8 });
  });

  it('rejects a malformed script at construction', () => {
    expect(() => new ScriptedChatModel({ turns: [{ content: 'x', latencyMs: -1 }] })).toThrow();
  });
});
