import type { FieldSpec } from '../repositories/record-fields.js';
import { PROVIDERS } from '../providers/provider-registry.js';

export const PROFILE_TYPES = ['conversational', 'analytical', 'creative', 'technical', 'custom'] as const;
export type ProfileType = (typeof PROFILE_TYPES)[number];

/** `default` (or null) means the service's default provider, as the contract says. */
export const PROFILE_PROVIDERS = [...PROVIDERS, 'default'] as const;

const text = (maxLength: number) => ({ type: 'string', maxLength });
const strings = (maxItems: number, maxLength = 200) => ({ type: 'array', items: { type: 'string', maxLength }, maxItems });
const jsonObject = { type: 'object', additionalProperties: true };

/**
 * The editable columns of a profile, with the contract's bounds (ProfileCreate). The
 * update body takes the same bounds. Ids, owner and usage figures are not editable.
 */
export const PROFILE_FIELDS: readonly FieldSpec[] = [
  { name: 'name', kind: 'text', schema: { type: 'string', minLength: 1, maxLength: 255 }, nullable: false, description: 'Profile name' },
  { name: 'description', kind: 'text', schema: text(2000), nullable: true, description: 'Profile description' },
  { name: 'profile_type', kind: 'text', schema: { type: 'string', enum: PROFILE_TYPES }, nullable: false, default: 'custom', description: 'Profile type' },
  {
    name: 'llm_provider',
    kind: 'text',
    schema: { type: 'string', enum: PROFILE_PROVIDERS },
    nullable: true,
    description: `LLM provider (${PROVIDERS.join(', ')}), or 'default' or null for the service's default provider`,
  },
  { name: 'llm_model', kind: 'text', schema: { type: 'string', minLength: 1, maxLength: 100 }, nullable: true, description: "LLM model name, or null for the provider's default" },
  { name: 'temperature', kind: 'number', schema: { type: 'number', minimum: 0, maximum: 2 }, nullable: false, default: 0.7, description: 'Temperature for generation' },
  { name: 'top_p', kind: 'number', schema: { type: 'number', minimum: 0, maximum: 1 }, nullable: true, description: 'Top-p sampling parameter (stored, not sent to providers)' },
  { name: 'top_k', kind: 'integer', schema: { type: 'integer', minimum: 1, maximum: 1000 }, nullable: true, description: 'Top-k sampling parameter (stored, not sent to providers)' },
  { name: 'max_tokens', kind: 'integer', schema: { type: 'integer', minimum: 1, maximum: 100_000 }, nullable: false, default: 4096, description: 'Maximum tokens to generate' },
  { name: 'presence_penalty', kind: 'number', schema: { type: 'number', minimum: -2, maximum: 2 }, nullable: true, description: 'Presence penalty (stored)' },
  { name: 'frequency_penalty', kind: 'number', schema: { type: 'number', minimum: -2, maximum: 2 }, nullable: true, description: 'Frequency penalty (stored)' },
  { name: 'context_window', kind: 'integer', schema: { type: 'integer', minimum: 1, maximum: 200_000 }, nullable: false, default: 4096, description: 'Context window size (stored)' },
  { name: 'system_prompt', kind: 'text', schema: text(10_000), nullable: true, description: 'System prompt of the chats using the profile' },
  { name: 'memory_enabled', kind: 'boolean', schema: { type: 'boolean' }, nullable: false, default: true, description: 'Send the conversation history to the model' },
  { name: 'memory_strategy', kind: 'text', schema: text(50), nullable: true, description: 'Memory management strategy (stored)' },
  { name: 'enable_retrieval', kind: 'boolean', schema: { type: 'boolean' }, nullable: false, default: false, description: 'Enable document retrieval (stored; this service has no documents)' },
  { name: 'retrieval_limit', kind: 'integer', schema: { type: 'integer', minimum: 1, maximum: 50 }, nullable: false, default: 5, description: 'Number of documents to retrieve (stored)' },
  {
    name: 'retrieval_score_threshold',
    kind: 'number',
    schema: { type: 'number', minimum: 0, maximum: 1 },
    nullable: false,
    default: 0.7,
    description: 'Minimum retrieval score (stored)',
  },
  { name: 'enable_tools', kind: 'boolean', schema: { type: 'boolean' }, nullable: false, default: false, description: 'Chats using the profile run the chat_with_tools workflow' },
  { name: 'available_tools', kind: 'json', schema: strings(20, 100), nullable: true, description: 'List of available tools (stored)' },
  { name: 'tool_choice', kind: 'text', schema: text(50), nullable: true, description: 'Tool choice strategy (stored)' },
  { name: 'content_filter_enabled', kind: 'boolean', schema: { type: 'boolean' }, nullable: false, default: true, description: 'Enable content filtering (stored)' },
  { name: 'safety_level', kind: 'text', schema: text(20), nullable: true, description: 'Safety level (stored)' },
  { name: 'response_format', kind: 'text', schema: text(20), nullable: true, description: 'Response format: json, text, markdown (stored)' },
  { name: 'stream_response', kind: 'boolean', schema: { type: 'boolean' }, nullable: false, default: true, description: 'Enable streaming responses (stored)' },
  { name: 'seed', kind: 'integer', schema: { type: 'integer', minimum: 0, maximum: 2_147_483_647 }, nullable: true, description: 'Random seed (stored)' },
  { name: 'stop_sequences', kind: 'json', schema: strings(10, 200), nullable: true, description: 'Stop sequences (stored)' },
  {
    name: 'logit_bias',
    kind: 'json',
    schema: { type: 'object', additionalProperties: { type: 'number' }, maxProperties: 300 },
    nullable: true,
    description: 'Logit bias adjustments (stored)',
  },
  { name: 'embedding_provider', kind: 'text', schema: text(50), nullable: true, description: 'Embedding provider (stored)' },
  { name: 'embedding_model', kind: 'text', schema: text(100), nullable: true, description: 'Embedding model (stored)' },
  { name: 'is_public', kind: 'boolean', schema: { type: 'boolean' }, nullable: false, default: false, description: 'Readable (not editable) by every user' },
  { name: 'tags', kind: 'json', schema: strings(10, 100), nullable: true, description: 'Profile tags' },
  { name: 'extra_metadata', kind: 'json', schema: jsonObject, nullable: true, description: 'Additional metadata' },
];
