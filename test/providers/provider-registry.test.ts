import { HumanMessage } from '@langchain/core/messages';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalChatModel } from '../../src/providers/local-chat-model.js';
import { createProviderRegistry, ProviderNotConfiguredError, UnknownProviderError } from '../../src/providers/provider-registry.js';
import { sendJson, startLoopbackServer, type LoopbackServer } from './loopback-server.js';

const localOnly = () => createProviderRegistry({ defaultProvider: 'local', local: { latencyMs: 0 }, openai: {}, anthropic: {} });

describe('createProviderRegistry', () => {
  it('resolves a missing provider and model to the defaults', () => {
    expect(localOnly().resolve()).toEqual({ provider: 'local', model: 'local-echo-1' });
    expect(localOnly().resolve('openai')).toEqual({ provider: 'openai', model: 'gpt-4o-mini' });
    expect(localOnly().resolve('anthropic', 'claude-haiku-4-5')).toEqual({ provider: 'anthropic', model: 'claude-haiku-4-5' });
  });

  it('applies the configured default model to the default provider only', () => {
    const registry = createProviderRegistry({
      defaultProvider: 'openai',
      defaultModel: 'gpt-4.1-mini',
      openai: { apiKey: 'key' },
    });
    expect(registry.resolve()).toEqual({ provider: 'openai', model: 'gpt-4.1-mini' });
    expect(registry.resolve('anthropic')).toEqual({ provider: 'anthropic', model: 'claude-sonnet-4-5' });
  });

  it('rejects an unknown provider with a typed 4xx error', () => {
    expect(() => localOnly().resolve('mistral')).toThrow(UnknownProviderError);
    expect(() => localOnly().createChatModel({ provider: 'mistral' })).toThrow(
      expect.objectContaining({ statusCode: 400, code: 'UNKNOWN_PROVIDER' }),
    );
  });

  it('rejects a provider without an API key with a typed 4xx error', () => {
    expect(() => localOnly().createChatModel({ provider: 'openai' })).toThrow(ProviderNotConfiguredError);
    expect(() => localOnly().createChatModel({ provider: 'anthropic', model: 'claude-sonnet-4-5' })).toThrow(
      expect.objectContaining({ statusCode: 400, provider: 'anthropic' }),
    );
  });

  it('creates the local model with the configured latency', () => {
    const registry = createProviderRegistry({ defaultProvider: 'local', local: { latencyMs: 7 } });
    const model = registry.createChatModel({});
    expect(model).toBeInstanceOf(LocalChatModel);
    expect((model as LocalChatModel).latencyMs).toBe(7);
  });

  it('lists the providers with whether each is configured', () => {
    const registry = createProviderRegistry({ defaultProvider: 'local', anthropic: { apiKey: 'key' } });
    expect(registry.listProviders()).toEqual([
      { name: 'local', configured: true, defaultModel: 'local-echo-1', isDefault: true },
      { name: 'openai', configured: false, defaultModel: 'gpt-4o-mini', isDefault: false },
      { name: 'anthropic', configured: true, defaultModel: 'claude-sonnet-4-5', isDefault: false },
    ]);
  });

  it('rejects invalid options', () => {
    expect(() => createProviderRegistry({ defaultProvider: 'local', openai: { baseUrl: 'not a url' } })).toThrow();
    expect(() => createProviderRegistry({ defaultProvider: 'bogus' as 'local' })).toThrow();
    expect(() => createProviderRegistry({ defaultProvider: 'local', local: { latencyMs: -1 } })).toThrow();
  });

  describe('sends a profile\u2019s top_p to the providers', () => {
    let server: LoopbackServer;
    beforeAll(async () => {
      server = await startLoopbackServer((request, response) => {
        sendJson(
          response,
          200,
          request.path.endsWith('/chat/completions')
            ? {
                id: 'chatcmpl-1',
                object: 'chat.completion',
                created: 1,
                model: 'gpt-4o-mini',
                choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
                usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 },
              }
            : {
                id: 'msg_1',
                type: 'message',
                role: 'assistant',
                model: 'claude-sonnet-4-5',
                content: [{ type: 'text', text: 'ok' }],
                stop_reason: 'end_turn',
                usage: { input_tokens: 5, output_tokens: 1 },
              },
        );
      });
    });
    afterAll(async () => {
      await server.close();
    });

    it('as top_p of OpenAI and Anthropic requests, and none without it', async () => {
      const registry = createProviderRegistry({
        defaultProvider: 'local',
        local: { latencyMs: 0 },
        openai: { apiKey: 'test', baseUrl: `${server.origin}/v1` },
        anthropic: { apiKey: 'test', baseUrl: server.origin },
      });
      for (const provider of ['openai', 'anthropic']) {
        server.requests.length = 0;
        await registry.createChatModel({ provider, topP: 0.3 }).invoke([new HumanMessage('hi')]);
        await registry.createChatModel({ provider }).invoke([new HumanMessage('hi')]);
        expect(
          server.requests.map((request) => (request.body as { top_p?: number }).top_p),
          provider,
        ).toEqual([0.3, undefined]);
      }
    });
  });
});
