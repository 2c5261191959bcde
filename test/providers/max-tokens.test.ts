import { HumanMessage, type AIMessage } from '@langchain/core/messages';
import { tool } from '@langchain/core/tools';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AnthropicChatModel } from '../../src/providers/anthropic-chat-model.js';
import { LocalChatModel } from '../../src/providers/local-chat-model.js';
import { OpenAIChatModel } from '../../src/providers/openai-chat-model.js';
import { ScriptedChatModel } from '../helpers/scripted-chat-model.js';
import { createTokenCounter } from '../../src/providers/token-counter.js';
import { sendJson, startLoopbackServer, type LoopbackServer } from './loopback-server.js';

// `maxTokens` as a call option (what a budget's reservation caps each call to): every
// model honours it per call, as a provider does, cutting the reply and reporting usage.

const tokens = createTokenCounter();
const question = [new HumanMessage('Please tell me something about the weather in Lisbon in spring.')];
type Options = { maxTokens?: number };

describe('maxTokens per call', () => {
  it('cuts the local model\u2019s reply at maxTokens, with usage to match and finish_reason length', async () => {
    const model = new LocalChatModel();
    const full = (await model.invoke(question)) as AIMessage;
    expect(full.response_metadata['finish_reason']).toBe('stop');
    expect(full.usage_metadata?.output_tokens).toBeGreaterThan(8);
    for (const streaming of [false, true]) {
      const message = streaming
        ? await (async () => {
            let merged: AIMessage | undefined;
            for await (const chunk of await model.stream(question, { maxTokens: 8 } as Options)) {
              merged = merged === undefined ? chunk : (merged as never as { concat: (c: unknown) => AIMessage }).concat(chunk);
            }
            return merged!;
          })()
        : ((await model.invoke(question, { maxTokens: 8 } as Options)) as AIMessage);
      const text = String(message.content);
      expect(tokens.count(text)).toBeLessThanOrEqual(8);
      expect(message.usage_metadata?.output_tokens).toBe(tokens.count(text));
      expect(message.usage_metadata?.input_tokens).toBe(full.usage_metadata?.input_tokens);
      expect(String(full.content).startsWith(text)).toBe(true);
      expect(message.response_metadata['finish_reason']).toBe('length');
    }
  });

  it('drops a local tool call that does not fit whole', async () => {
    const calculator = tool(async ({ expression }: { expression: string }) => expression, {
      name: 'calculator',
      description: 'Evaluates arithmetic',
      schema: z.object({ expression: z.string() }),
    });
    const model = new LocalChatModel().bindTools([calculator]);
    const ask = [new HumanMessage('What is 12*(3+4)?')];
    const whole = (await model.invoke(ask)) as AIMessage;
    expect(whole.tool_calls).toHaveLength(1);
    const cut = (await model.invoke(ask, { maxTokens: 2 } as Options)) as AIMessage;
    expect(cut.tool_calls).toHaveLength(0);
    expect(cut.usage_metadata?.output_tokens).toBe(0);
    expect(cut.response_metadata['finish_reason']).toBe('length');
  });

  it('cuts a scripted reply at maxTokens and records the cap of each call', async () => {
    const model = new ScriptedChatModel({
      turns: [
        { content: 'one two three four five six seven eight', usage: { input_tokens: 12, output_tokens: 8 } },
        { content: 'short reply', toolCalls: [{ name: 'calculator', args: { expression: '1+1' } }] },
      ],
    });
    const first = (await model.invoke(question, { maxTokens: 3 } as Options)) as AIMessage;
    expect(first.content).toBe('one two three ');
    expect(first.usage_metadata).toMatchObject({ input_tokens: 12, output_tokens: 3, total_tokens: 15 });
    expect(first.response_metadata['finish_reason']).toBe('length');
    const second = (await model.invoke(question, { maxTokens: 3 } as Options)) as AIMessage;
    // Two words and one tool call are three tokens in this model's count: it fits.
    expect(second.tool_calls).toHaveLength(1);
    expect(second.response_metadata['finish_reason']).toBe('tool_calls');
    expect(model.calls.map((call) => call.maxTokens)).toEqual([3, 3]);
  });

  describe('OpenAI and Anthropic send it as the request\u2019s max_tokens', () => {
    let server: LoopbackServer;

    beforeAll(async () => {
      server = await startLoopbackServer((request, response) => {
        if (request.path.endsWith('/chat/completions')) {
          sendJson(response, 200, {
            id: 'chatcmpl-1',
            object: 'chat.completion',
            created: 1,
            model: 'gpt-4o-mini',
            choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'length' }],
            usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 },
          });
        } else {
          sendJson(response, 200, {
            id: 'msg_1',
            type: 'message',
            role: 'assistant',
            model: 'claude-sonnet-4-5',
            content: [{ type: 'text', text: 'ok' }],
            stop_reason: 'max_tokens',
            usage: { input_tokens: 5, output_tokens: 1 },
          });
        }
      });
    });

    afterAll(async () => {
      await server.close();
    });

    it('caps an OpenAI call, below the model\u2019s own max_tokens and without one', async () => {
      for (const maxTokens of [undefined, 500]) {
        server.requests.length = 0;
        const model = new OpenAIChatModel({
          model: 'gpt-4o-mini',
          apiKey: 'test',
          configuration: { baseURL: `${server.origin}/v1` },
          maxRetries: 0,
          ...(maxTokens === undefined ? {} : { maxTokens }),
        });
        await model.invoke(question, { maxTokens: 42 } as Options as never);
        expect(server.requests[0]?.body).toMatchObject({ max_tokens: 42 });
        await model.invoke(question);
        expect((server.requests[1]?.body as { max_tokens?: number }).max_tokens).toBe(maxTokens);
      }
    });

    it('caps an Anthropic call', async () => {
      server.requests.length = 0;
      const model = new AnthropicChatModel({
        model: 'claude-sonnet-4-5',
        apiKey: 'test',
        anthropicApiUrl: server.origin,
        maxRetries: 0,
      });
      await model.invoke(question, { maxTokens: 17 } as Options as never);
      expect(server.requests[0]?.body).toMatchObject({ max_tokens: 17 });
      await model.invoke(question);
      expect((server.requests[1]?.body as { max_tokens: number }).max_tokens).toBeGreaterThan(17);
    });
  });
});
