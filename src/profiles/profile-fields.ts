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
  {
    name: 'profile_type',
    kind: 'text',
    schema: { type: 'string', enum: PROFILE_TYPES },
    nullable: false,
    default: 'custom',
    description: 'Profile type',
  },
  {
    name: 'llm_provider',
    kind: 'text',
    schema: { type: 'string', enum: PROFILE_PROVIDERS },
    nullable: true,
    description: `LLM provider (${PROVIDERS.join(', ')}), or 'default' or null for the service's default provider`,
  },
  {
    name: 'llm_model',
    kind: 'text',
    schema: { type: 'string', minLength: 1, maxLength: 100 },
    nullable: true,
    description: "LLM model name, or null for the provider's default",
  },
  {
    name: 'temperature',
    kind: 'number',
    schema: { type: 'number', minimum: 0, maximum: 2 },
    nullable: false,
    default: 0.7,
    description: 'Temperature for generation',
  },
  {
    name: 'top_p',
    kind: 'number',
    schema: { type: 'number', minimum: 0, maximum: 1 },
    nullable: true,
    description: 'Top-p (nucleus) sampling, sent to the provider by chats using the profile',
  },
  {
    name: 'top_k',
    kind: 'integer',
    schema: { type: 'integer', minimum: 1, maximum: 1000 },
    nullable: true,
    description: 'Top-k sampling: must be null (not sent to providers; 422 otherwise)',
  },
  {
    name: 'max_tokens',
    kind: 'integer',
    schema: { type: 'integer', minimum: 1, maximum: 100_000 },
    nullable: false,
    default: 4096,
    description: 'Maximum tokens to generate',
  },
  {
    name: 'presence_penalty',
    kind: 'number',
    schema: { type: 'number', minimum: -2, maximum: 2 },
    nullable: true,
    description: 'Presence penalty: must be null (not sent to providers; 422 otherwise)',
  },
  {
    name: 'frequency_penalty',
    kind: 'number',
    schema: { type: 'number', minimum: -2, maximum: 2 },
    nullable: true,
    description: 'Frequency penalty: must be null (not sent to providers; 422 otherwise)',
  },
  {
    name: 'context_window',
    kind: 'integer',
    schema: { type: 'integer', minimum: 1, maximum: 200_000 },
    nullable: false,
    default: 4096,
    description: 'Most input tokens a chat sends: the oldest history is left out to fit (a request’s context_limit overrides it)',
  },
  {
    name: 'system_prompt',
    kind: 'text',
    schema: text(10_000),
    nullable: true,
    description: 'System prompt of the chats using the profile',
  },
  {
    name: 'memory_enabled',
    kind: 'boolean',
    schema: { type: 'boolean' },
    nullable: false,
    default: true,
    description: 'Send the conversation history to the model',
  },
  {
    name: 'memory_strategy',
    kind: 'text',
    schema: text(50),
    nullable: true,
    description: 'Memory strategy: must be null (the history is the newest that fits context_window; 422 otherwise)',
  },
  {
    name: 'enable_retrieval',
    kind: 'boolean',
    schema: { type: 'boolean' },
    nullable: false,
    default: false,
    description: 'Must be false: this service has no documents or retrieval (422 otherwise)',
  },
  {
    name: 'retrieval_limit',
    kind: 'integer',
    schema: { type: 'integer', minimum: 1, maximum: 50 },
    nullable: false,
    default: 5,
    description: 'Only the default, 5 (no retrieval; 422 otherwise)',
  },
  {
    name: 'retrieval_score_threshold',
    kind: 'number',
    schema: { type: 'number', minimum: 0, maximum: 1 },
    nullable: false,
    default: 0.7,
    description: 'Only the default, 0.7 (no retrieval; 422 otherwise)',
  },
  {
    name: 'enable_tools',
    kind: 'boolean',
    schema: { type: 'boolean' },
    nullable: false,
    default: false,
    description: 'Chats using the profile run the chat_with_tools workflow',
  },
  {
    name: 'available_tools',
    kind: 'json',
    schema: strings(20, 100),
    nullable: true,
    description: 'The only tools chats using the profile are offered (of the user’s tool set); null: all of them',
  },
  {
    name: 'tool_choice',
    kind: 'text',
    schema: text(50),
    nullable: true,
    description: 'Null or auto: the model chooses among the offered tools (422 otherwise)',
  },
  {
    name: 'content_filter_enabled',
    kind: 'boolean',
    schema: { type: 'boolean' },
    nullable: false,
    default: true,
    description: 'Must be true: the providers’ own content filtering always applies (422 otherwise)',
  },
  {
    name: 'safety_level',
    kind: 'text',
    schema: text(20),
    nullable: true,
    description: 'Must be null: no safety levels of this service (422 otherwise)',
  },
  {
    name: 'response_format',
    kind: 'text',
    schema: text(20),
    nullable: true,
    description: 'Must be null: answers are the model’s text (422 otherwise)',
  },
  {
    name: 'stream_response',
    kind: 'boolean',
    schema: { type: 'boolean' },
    nullable: false,
    default: true,
    description: 'Must be true: each request chooses streaming by its endpoint (422 otherwise)',
  },
  {
    name: 'seed',
    kind: 'integer',
    schema: { type: 'integer', minimum: 0, maximum: 2_147_483_647 },
    nullable: true,
    description: 'Must be null: not sent to providers (422 otherwise)',
  },
  {
    name: 'stop_sequences',
    kind: 'json',
    schema: strings(10, 200),
    nullable: true,
    description: 'Must be null or empty: not sent to providers (422 otherwise)',
  },
  {
    name: 'logit_bias',
    kind: 'json',
    schema: { type: 'object', additionalProperties: { type: 'number' }, maxProperties: 300 },
    nullable: true,
    description: 'Must be null or empty: not sent to providers (422 otherwise)',
  },
  {
    name: 'embedding_provider',
    kind: 'text',
    schema: text(50),
    nullable: true,
    description: 'Must be null: no retrieval, so no embeddings (422 otherwise)',
  },
  {
    name: 'embedding_model',
    kind: 'text',
    schema: text(100),
    nullable: true,
    description: 'Must be null: no retrieval, so no embeddings (422 otherwise)',
  },
  {
    name: 'is_public',
    kind: 'boolean',
    schema: { type: 'boolean' },
    nullable: false,
    default: false,
    description: 'Readable (not editable) by every user',
  },
  { name: 'tags', kind: 'json', schema: strings(10, 100), nullable: true, description: 'Profile tags' },
  { name: 'extra_metadata', kind: 'json', schema: jsonObject, nullable: true, description: 'Additional metadata' },
];
