import type { BaseChatModel } from '@langchain/core/language_models/chat_models';
import { z } from 'zod';
import { AnthropicChatModel } from './anthropic-chat-model.js';
import { LOCAL_DEFAULT_MODEL, LocalChatModel } from './local-chat-model.js';
import { OpenAIChatModel } from './openai-chat-model.js';

/** The providers this service can call. */
export const PROVIDERS = ['local', 'openai', 'anthropic'] as const;

/** A provider name. */
export type ProviderName = (typeof PROVIDERS)[number];

/** Model used when a request names a provider but no model. */
export const DEFAULT_MODELS: Readonly<Record<ProviderName, string>> = Object.freeze({
  local: LOCAL_DEFAULT_MODEL,
  openai: 'gpt-4o-mini',
  anthropic: 'claude-sonnet-4-5',
});

// Explicit public endpoints: left undefined, the LangChain integrations and SDKs would
// fall back to OPENAI_BASE_URL / ANTHROPIC_BASE_URL or a LangSmith gateway from the
// environment, and config must come only from src/config.ts.
const OPENAI_DEFAULT_BASE_URL = 'https://api.openai.com/v1';
const ANTHROPIC_DEFAULT_BASE_URL = 'https://api.anthropic.com';

const credentials = z.object({ apiKey: z.string().min(1).optional(), baseUrl: z.url().optional() }).default({});

/** Validates {@link ProviderRegistryOptions}. */
export const ProviderRegistryOptionsSchema = z.object({
  defaultProvider: z.enum(PROVIDERS),
  defaultModel: z.string().min(1).optional(),
  local: z.object({ latencyMs: z.number().min(0) }).default({ latencyMs: 0 }),
  openai: credentials,
  anthropic: credentials,
});

/** Options of {@link createProviderRegistry}: the providers' slice of the config. */
export type ProviderRegistryOptions = z.input<typeof ProviderRegistryOptionsSchema>;

/** A provider and model, resolved from a request's (possibly absent) choice. */
export type ResolvedModel = { provider: ProviderName; model: string };

/** What {@link ProviderRegistry.createChatModel} needs. */
export type ChatModelRequest = {
  provider?: string;
  model?: string;
  temperature?: number;
  maxTokens?: number;
  /** Nucleus sampling (a profile's top_p); both remote providers take it. */
  topP?: number;
};

/** A provider as listed to clients. */
export type ProviderInfo = { name: ProviderName; configured: boolean; defaultModel: string; isDefault: boolean };

/** Creates chat models for the configured providers. */
export type ProviderRegistry = {
  /**
   * Fills in the defaults: no provider → the default provider; no model → the
   * configured default model for the default provider, else that provider's default.
   * @throws UnknownProviderError
   */
  resolve(provider?: string, model?: string): ResolvedModel;
  /**
   * A LangChain chat model for the request. Retries are off in every client: the run
   * runtime owns retries (and records each attempt).
   * @throws UnknownProviderError, ProviderNotConfiguredError
   */
  createChatModel(request: ChatModelRequest): BaseChatModel;
  listProviders(): ProviderInfo[];
};

/** A request named a provider this service does not know. Maps to 400. */
export class UnknownProviderError extends Error {
  override readonly name = 'UnknownProviderError';
  readonly code = 'UNKNOWN_PROVIDER';
  readonly statusCode = 400;
  constructor(readonly provider: string) {
    super(`Unknown provider "${provider}"; known providers: ${PROVIDERS.join(', ')}`);
  }
}

/** A request named a provider that has no API key configured. Maps to 400. */
export class ProviderNotConfiguredError extends Error {
  override readonly name = 'ProviderNotConfiguredError';
  readonly code = 'PROVIDER_NOT_CONFIGURED';
  readonly statusCode = 400;
  constructor(readonly provider: ProviderName) {
    super(`Provider "${provider}" is not configured on this server (no API key)`);
  }
}

function isProvider(name: string): name is ProviderName {
  return (PROVIDERS as readonly string[]).includes(name);
}

/**
 * Creates the provider registry.
 *
 * - `local`: {@link LocalChatModel}, always available.
 * - `openai`: {@link OpenAIChatModel} (`ChatOpenAICompletions` with JSON usage read
 *   exactly as sent), i.e. always the Chat Completions API. `ChatOpenAI`
 *   would switch some models (`*codex*`, `gpt-5.x-pro`) or call options to
 *   /v1/responses whatever `useResponsesApi` says; that API reports usage differently
 *   and OpenAI-compatible servers rarely implement it. `streamUsage` makes streamed
 *   calls send `stream_options.include_usage`, so streaming reports usage too.
 * - `anthropic`: {@link AnthropicChatModel} (ChatAnthropic with streamed usage
 *   corrected). Its `baseUrl` is the API root as the Anthropic SDK expects
 *   (`https://api.anthropic.com`); a trailing `/v1` is dropped.
 *
 * @throws ZodError when the options are invalid (e.g. a malformed base URL).
 */
export function createProviderRegistry(options: ProviderRegistryOptions): ProviderRegistry {
  const config = ProviderRegistryOptionsSchema.parse(options);

  const isConfigured = (provider: ProviderName): boolean => provider === 'local' || config[provider].apiKey !== undefined;

  const resolve = (provider?: string, model?: string): ResolvedModel => {
    const name = provider === undefined || provider === '' ? config.defaultProvider : provider;
    if (!isProvider(name)) throw new UnknownProviderError(name);
    if (model !== undefined && model !== '') return { provider: name, model };
    // The configured default model belongs to the default provider only: a request for
    // another provider must not inherit, say, an OpenAI model name.
    const fallback = name === config.defaultProvider ? config.defaultModel : undefined;
    return { provider: name, model: fallback ?? DEFAULT_MODELS[name] };
  };

  const createChatModel = (request: ChatModelRequest): BaseChatModel => {
    const { provider, model } = resolve(request.provider, request.model);
    const tuning = {
      ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
      ...(request.maxTokens === undefined ? {} : { maxTokens: request.maxTokens }),
      ...(request.topP === undefined ? {} : { topP: request.topP }),
    };
    switch (provider) {
      case 'local':
        return new LocalChatModel({ model, latencyMs: config.local.latencyMs });
      case 'openai': {
        const { apiKey, baseUrl } = config.openai;
        if (apiKey === undefined) throw new ProviderNotConfiguredError(provider);
        return new OpenAIChatModel({
          model,
          apiKey,
          configuration: { baseURL: baseUrl ?? OPENAI_DEFAULT_BASE_URL },
          maxRetries: 0,
          streamUsage: true,
          ...tuning,
        });
      }
      case 'anthropic': {
        const { apiKey, baseUrl } = config.anthropic;
        if (apiKey === undefined) throw new ProviderNotConfiguredError(provider);
        return new AnthropicChatModel({
          model,
          apiKey,
          anthropicApiUrl: (baseUrl ?? ANTHROPIC_DEFAULT_BASE_URL).replace(/\/v1\/?$/, ''),
          maxRetries: 0,
          streamUsage: true,
          ...tuning,
        });
      }
    }
  };

  const listProviders = (): ProviderInfo[] =>
    PROVIDERS.map((name) => ({
      name,
      configured: isConfigured(name),
      defaultModel: resolve(name).model,
      isDefault: name === config.defaultProvider,
    }));

  return { resolve, createChatModel, listProviders };
}
