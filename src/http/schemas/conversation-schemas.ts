/**
 * Conversation and message schemas of the Chatter API contract (see common-schemas.ts).
 */

import { INT4_MAX } from './common-schemas.js';

const nullable = <T extends object>(schema: T) => ({ anyOf: [schema, { type: 'null' }] }) as const;
const jsonObject = { type: 'object', additionalProperties: true } as const;
/** Tags a conversation may carry, and the length of one (the list filter takes as many). */
export const MAX_TAGS = 20;
export const MAX_TAG_LENGTH = 100;
/** Beyond the contract's create/update bodies (its responses and list filter have `tags`): stored as sent. */
const tagsProperty = {
  ...nullable({
    type: 'array',
    items: { type: 'string', minLength: 1, maxLength: MAX_TAG_LENGTH },
    maxItems: MAX_TAGS,
    uniqueItems: true,
  }),
  title: 'Tags',
  description: `Conversation tags: at most ${MAX_TAGS} distinct strings of 1 to ${MAX_TAG_LENGTH} characters (null clears them)`,
} as const;

export const ConversationStatusSchema = {
  $id: 'ConversationStatus',
  type: 'string',
  enum: ['active', 'archived', 'deleted'],
  title: 'ConversationStatus',
  description: 'Enumeration for conversation status.',
} as const;

export type ConversationStatus = 'active' | 'archived' | 'deleted';

export const MessageRoleSchema = {
  $id: 'MessageRole',
  type: 'string',
  enum: ['user', 'assistant', 'system', 'tool'],
  title: 'MessageRole',
  description: 'Enumeration for message roles.',
} as const;

export const ConversationCreateSchema = {
  $id: 'ConversationCreate',
  type: 'object',
  title: 'ConversationCreate',
  description: 'Schema for creating a conversation.',
  required: ['title'],
  properties: {
    title: { type: 'string', minLength: 1, maxLength: 500, title: 'Title', description: 'Conversation title' },
    description: { ...nullable({ type: 'string', maxLength: 10_000 }), title: 'Description', description: 'Conversation description' },
    profile_id: { ...nullable({ type: 'string', maxLength: 100 }), title: 'Profile Id', description: 'Profile ID to use' },
    system_prompt: { ...nullable({ type: 'string' }), title: 'System Prompt', description: 'System prompt' },
    enable_retrieval: { type: 'boolean', default: false, title: 'Enable Retrieval', description: 'Enable document retrieval' },
    temperature: { ...nullable({ type: 'number', minimum: 0, maximum: 2 }), title: 'Temperature', description: 'Temperature setting' },
    max_tokens: {
      ...nullable({ type: 'integer', minimum: 1, maximum: INT4_MAX }),
      title: 'Max Tokens',
      description: 'Max tokens setting',
    },
    workflow_config: { ...nullable(jsonObject), title: 'Workflow Config', description: 'Workflow configuration' },
    extra_metadata: { ...nullable(jsonObject), title: 'Extra Metadata', description: 'Additional metadata' },
    tags: tagsProperty,
  },
} as const;

export type JsonObject = Record<string, unknown>;

export type ConversationCreateBody = {
  title: string;
  description?: string | null;
  profile_id?: string | null;
  system_prompt?: string | null;
  enable_retrieval?: boolean;
  temperature?: number | null;
  max_tokens?: number | null;
  workflow_config?: JsonObject | null;
  extra_metadata?: JsonObject | null;
  tags?: string[] | null;
};

export const ConversationUpdateSchema = {
  $id: 'ConversationUpdate',
  type: 'object',
  title: 'ConversationUpdate',
  description:
    'Schema for updating a conversation. Absent fields are left as they are; `null` clears a field (title and status cannot be cleared: `null` leaves them).',
  properties: {
    title: { ...nullable({ type: 'string', minLength: 1, maxLength: 500 }), title: 'Title', description: 'Conversation title' },
    description: { ...nullable({ type: 'string', maxLength: 10_000 }), title: 'Description', description: 'Conversation description' },
    status: { anyOf: [{ $ref: 'ConversationStatus#' }, { type: 'null' }], description: 'Conversation status' },
    temperature: { ...nullable({ type: 'number', minimum: 0, maximum: 2 }), title: 'Temperature', description: 'Temperature setting' },
    max_tokens: {
      ...nullable({ type: 'integer', minimum: 1, maximum: INT4_MAX }),
      title: 'Max Tokens',
      description: 'Max tokens setting',
    },
    workflow_config: { ...nullable(jsonObject), title: 'Workflow Config', description: 'Workflow configuration' },
    extra_metadata: { ...nullable(jsonObject), title: 'Extra Metadata', description: 'Additional metadata' },
    tags: tagsProperty,
    // Beyond the contract: the conversation's own budgets (null: unlimited), see README "Budgets".
    token_budget: {
      ...nullable({ type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
      description: "Tokens the conversation's runs may spend in all; null: unlimited",
    },
    cost_budget_usd: {
      ...nullable({ type: 'number', minimum: 0, maximum: 9_999_999_999 }),
      description: "USD the conversation's runs may spend in all; null: unlimited",
    },
  },
} as const;

export type ConversationUpdateBody = {
  title?: string | null;
  description?: string | null;
  status?: ConversationStatus | null;
  temperature?: number | null;
  max_tokens?: number | null;
  workflow_config?: JsonObject | null;
  extra_metadata?: JsonObject | null;
  tags?: string[] | null;
  token_budget?: number | null;
  cost_budget_usd?: number | null;
};

export const MessageResponseSchema = {
  $id: 'MessageResponse',
  type: 'object',
  title: 'MessageResponse',
  description: 'Schema for message response.',
  required: ['role', 'content', 'id', 'conversation_id', 'sequence_number', 'created_at'],
  properties: {
    role: { $ref: 'MessageRole#', description: 'Message role' },
    content: { type: 'string', title: 'Content', description: 'Message content' },
    id: { type: 'string', title: 'Id', description: 'Message ID' },
    conversation_id: { type: 'string', title: 'Conversation Id', description: 'Conversation ID' },
    sequence_number: { type: 'integer', title: 'Sequence Number', description: 'Message sequence number' },
    prompt_tokens: { ...nullable({ type: 'integer' }), title: 'Prompt Tokens', description: 'Prompt tokens used' },
    completion_tokens: { ...nullable({ type: 'integer' }), title: 'Completion Tokens', description: 'Completion tokens used' },
    total_tokens: { ...nullable({ type: 'integer' }), title: 'Total Tokens', description: 'Total tokens used' },
    model_used: { ...nullable({ type: 'string' }), title: 'Model Used', description: 'Model used for generation' },
    provider_used: { ...nullable({ type: 'string' }), title: 'Provider Used', description: 'Provider used' },
    response_time_ms: { ...nullable({ type: 'integer' }), title: 'Response Time Ms', description: 'Response time in milliseconds' },
    cost: { ...nullable({ type: 'number' }), title: 'Cost', description: 'Cost of the message (USD)' },
    finish_reason: { ...nullable({ type: 'string' }), title: 'Finish Reason', description: 'Reason for completion' },
    rating: { ...nullable({ type: 'number' }), title: 'Rating', description: 'User rating for the message' },
    rating_count: { type: 'integer', default: 0, title: 'Rating Count', description: 'Number of ratings for the message' },
    created_at: { type: 'string', format: 'date-time', title: 'Created At', description: 'Creation timestamp' },
    // Beyond the contract: the run that produced the message and its correlation id.
    run_id: { ...nullable({ type: 'string' }), description: 'Workflow run that wrote this message' },
    correlation_id: { ...nullable({ type: 'string' }), description: 'Correlation id of the request' },
    cached_input_tokens: { ...nullable({ type: 'integer' }), description: 'Input tokens read from or written to a prompt cache' },
    reasoning_tokens: { ...nullable({ type: 'integer' }), description: 'Output tokens spent on reasoning' },
  },
} as const;

const conversationProperties = {
  title: { type: 'string', title: 'Title', description: 'Conversation title' },
  description: { ...nullable({ type: 'string' }), title: 'Description', description: 'Conversation description' },
  id: { type: 'string', title: 'Id', description: 'Conversation ID' },
  user_id: { type: 'string', title: 'User Id', description: 'User ID' },
  profile_id: { ...nullable({ type: 'string' }), title: 'Profile Id', description: 'Profile ID' },
  status: { $ref: 'ConversationStatus#', description: 'Conversation status' },
  llm_provider: { ...nullable({ type: 'string' }), title: 'Llm Provider', description: 'LLM provider' },
  llm_model: { ...nullable({ type: 'string' }), title: 'Llm Model', description: 'LLM model' },
  temperature: { ...nullable({ type: 'number' }), title: 'Temperature', description: 'Temperature setting' },
  max_tokens: { ...nullable({ type: 'integer' }), title: 'Max Tokens', description: 'Max tokens setting' },
  enable_retrieval: { type: 'boolean', title: 'Enable Retrieval', description: 'Retrieval enabled' },
  message_count: { type: 'integer', title: 'Message Count', description: 'Number of messages' },
  total_tokens: { type: 'integer', title: 'Total Tokens', description: 'Total tokens used' },
  total_cost: { type: 'number', title: 'Total Cost', description: 'Total cost (USD)' },
  system_prompt: { ...nullable({ type: 'string' }), title: 'System Prompt', description: 'System prompt' },
  context_window: { type: 'integer', title: 'Context Window', description: 'Context window size' },
  memory_enabled: { type: 'boolean', title: 'Memory Enabled', description: 'Memory enabled' },
  memory_strategy: { ...nullable({ type: 'string' }), title: 'Memory Strategy', description: 'Memory strategy' },
  retrieval_limit: { type: 'integer', title: 'Retrieval Limit', description: 'Retrieval limit' },
  retrieval_score_threshold: { type: 'number', title: 'Retrieval Score Threshold', description: 'Retrieval score threshold' },
  tags: { ...nullable({ type: 'array', items: { type: 'string' } }), title: 'Tags', description: 'Conversation tags' },
  extra_metadata: { ...nullable(jsonObject), title: 'Extra Metadata', description: 'Extra metadata' },
  workflow_config: { ...nullable(jsonObject), title: 'Workflow Config', description: 'Workflow configuration' },
  created_at: { type: 'string', format: 'date-time', title: 'Created At', description: 'Creation timestamp' },
  updated_at: { type: 'string', format: 'date-time', title: 'Updated At', description: 'Last update timestamp' },
  last_message_at: {
    ...nullable({ type: 'string', format: 'date-time' }),
    title: 'Last Message At',
    description: 'Last message timestamp',
  },
  // Beyond the contract: the budgets the run actor enforces (null: unlimited).
  token_budget: { ...nullable({ type: 'integer' }), description: 'Token budget of the conversation' },
  cost_budget_usd: { ...nullable({ type: 'number' }), description: 'Cost budget of the conversation (USD)' },
} as const;

const conversationRequired = [
  'title',
  'id',
  'user_id',
  'status',
  'enable_retrieval',
  'message_count',
  'total_tokens',
  'total_cost',
  'context_window',
  'memory_enabled',
  'retrieval_limit',
  'retrieval_score_threshold',
  'created_at',
  'updated_at',
] as const;

export const ConversationResponseSchema = {
  $id: 'ConversationResponse',
  type: 'object',
  title: 'ConversationResponse',
  description: 'Schema for conversation response.',
  required: conversationRequired,
  properties: conversationProperties,
} as const;

export const ConversationWithMessagesSchema = {
  $id: 'ConversationWithMessages',
  type: 'object',
  title: 'ConversationWithMessages',
  description: 'Schema for conversation with messages.',
  required: [...conversationRequired, 'messages'],
  properties: {
    ...conversationProperties,
    messages: {
      type: 'array',
      items: { $ref: 'MessageResponse#' },
      title: 'Messages',
      description: 'Conversation messages (empty unless include_messages)',
    },
  },
} as const;

export const ConversationListResponseSchema = {
  $id: 'ConversationListResponse',
  type: 'object',
  title: 'ConversationListResponse',
  description: 'Schema for conversation list response.',
  required: ['conversations', 'total_count', 'limit', 'offset'],
  properties: {
    conversations: {
      type: 'array',
      items: { $ref: 'ConversationResponse#' },
      title: 'Conversations',
      description: 'List of conversations',
    },
    total_count: { type: 'integer', title: 'Total Count', description: 'Total number of conversations' },
    limit: { type: 'integer', title: 'Limit', description: 'Applied limit' },
    offset: { type: 'integer', title: 'Offset', description: 'Applied offset' },
  },
} as const;

export const ConversationDeleteResponseSchema = {
  $id: 'ConversationDeleteResponse',
  type: 'object',
  title: 'ConversationDeleteResponse',
  description: 'Schema for conversation delete response.',
  required: ['message'],
  properties: { message: { type: 'string', title: 'Message', description: 'Success message' } },
} as const;

export const CONVERSATION_SCHEMAS = [
  ConversationStatusSchema,
  MessageRoleSchema,
  ConversationCreateSchema,
  ConversationUpdateSchema,
  MessageResponseSchema,
  ConversationResponseSchema,
  ConversationWithMessagesSchema,
  ConversationListResponseSchema,
  ConversationDeleteResponseSchema,
] as const;
