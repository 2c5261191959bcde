import { describe, expect, it } from 'vitest';
import { LocalChatModel } from '../../src/providers/local-chat-model.js';
import {
  createProviderRegistry,
  ProviderNotConfiguredError,
  UnknownProviderError,
} from '../../src/providers/provider-registry.js';

const localOnly = () =>
  createProviderRegistry({ defaultProvider: 'local', local: { latencyMs: 0 }, openai: {}, anthropic: {} });

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
});
