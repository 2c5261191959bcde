/** The contract's chat request and response (openapi-core.json: ChatRequest, ChatResponse). */

import { INT4_MAX } from './common-schemas.js';

const nullable = (schema: Record<string, unknown>) => ({ anyOf: [schema, { type: 'null' }] });

export const ChatRequestSchema = {
  $id: 'ChatRequest',
  type: 'object',
  title: 'ChatRequest',
  required: ['message'],
  properties: {
    message: { type: 'string', minLength: 1, maxLength: 100_000, description: 'User message' },
    conversation_id: nullable({ type: 'string', maxLength: 128 }),
    profile_id: nullable({ type: 'string', maxLength: 128 }),
    workflow_config: nullable({ type: 'object', additionalProperties: true }),
    workflow_definition_id: nullable({ type: 'string', maxLength: 128 }),
    workflow_template_name: nullable({ type: 'string', maxLength: 128 }),
    // What this service does not have: accepted off (the frontend sends them), 422 when asked for.
    enable_retrieval: {
      type: 'boolean',
      default: false,
      description: 'Must be false: this service has no documents or retrieval (true: 422)',
    },
    // No schema defaults: absent means "the profile's setting" (then false / true).
    enable_tools: { type: 'boolean', description: "Run chat_with_tools; absent: the profile's enable_tools, else false" },
    enable_memory: { type: 'boolean', description: "Send the history; absent: the profile's memory_enabled, else true" },
    enable_web_search: { type: 'boolean', default: false, description: 'Must be false: this service has no web search (true: 422)' },
    provider: nullable({ type: 'string', maxLength: 64 }),
    model: nullable({ type: 'string', maxLength: 200 }),
    temperature: nullable({ type: 'number', minimum: 0, maximum: 2 }),
    max_tokens: nullable({ type: 'integer', minimum: 1, maximum: 8192 }),
    context_limit: {
      ...nullable({ type: 'integer', minimum: 1, maximum: INT4_MAX }),
      description:
        "Most tokens of input sent to the model: the oldest history is left out to fit (the new message always goes); absent: the profile's, else the conversation's context_window",
    },
    document_ids: {
      ...nullable({ type: 'array', items: { type: 'string' }, maxItems: 100 }),
      description: 'Must be empty or null: this service stores no documents (any id: 422)',
    },
    prompt_id: nullable({ type: 'string', maxLength: 128 }),
    // Beyond the contract (which has no field for them): the values of the prompt's variables.
    prompt_variables: {
      ...nullable({ type: 'object', additionalProperties: { type: 'string', maxLength: 100_000 }, maxProperties: 100 }),
      description: "Values of prompt_id's template variables (a required one missing: 422 naming it)",
    },
    system_prompt_override: nullable({ type: 'string', maxLength: 100_000 }),
    enable_tracing: {
      type: 'boolean',
      default: false,
      description: 'Accepted either way: every run is always traced (spans, lifecycle events and run records), whatever the value',
    },
  },
} as const;

export type ChatRequestBody = {
  message: string;
  conversation_id?: string | null;
  workflow_template_name?: string | null;
  enable_retrieval?: boolean;
  enable_web_search?: boolean;
  document_ids?: string[] | null;
  workflow_definition_id?: string | null;
  workflow_config?: Record<string, unknown> | null;
  enable_tools?: boolean;
  enable_memory?: boolean;
  provider?: string | null;
  model?: string | null;
  temperature?: number | null;
  max_tokens?: number | null;
  context_limit?: number | null;
  system_prompt_override?: string | null;
  profile_id?: string | null;
  prompt_id?: string | null;
  prompt_variables?: Record<string, string> | null;
};

export const ChatResponseSchema = {
  $id: 'ChatResponse',
  type: 'object',
  title: 'ChatResponse',
  required: ['conversation_id', 'message', 'conversation'],
  properties: {
    conversation_id: { type: 'string' },
    message: { $ref: 'MessageResponse#' },
    conversation: { $ref: 'ConversationResponse#' },
    run_id: { type: 'string' },
    correlation_id: { type: 'string' },
    run_status: { type: 'string' },
  },
} as const;

export const CHAT_SCHEMAS = [ChatRequestSchema, ChatResponseSchema] as const;
