/**
 * Prompt schemas of the Chatter API contract (openapi-full.json: PromptCreate,
 * PromptUpdate, PromptResponse, PromptListResponse, PromptDeleteResponse), derived from
 * the one list of prompt fields.
 */
import { PROMPT_FIELDS } from '../../prompts/prompt-fields.js';
import { createProperties, orNull as nullable, responseProperties, updateProperties } from '../../repositories/record-fields.js';

export const PromptCreateSchema = {
  $id: 'PromptCreate',
  type: 'object',
  title: 'PromptCreate',
  description: 'Schema for creating a prompt.',
  required: ['name', 'content'],
  properties: createProperties(PROMPT_FIELDS),
} as const;

export const PromptUpdateSchema = {
  $id: 'PromptUpdate',
  type: 'object',
  title: 'PromptUpdate',
  description:
    'Schema for updating a prompt: absent fields are left as they are; null clears a field that can be empty (and leaves the others).',
  properties: updateProperties(PROMPT_FIELDS),
} as const;

export const PromptResponseSchema = {
  $id: 'PromptResponse',
  type: 'object',
  title: 'PromptResponse',
  description: 'Schema for prompt response.',
  required: [
    'id',
    'owner_id',
    'name',
    'prompt_type',
    'category',
    'content',
    'template_format',
    'is_chain',
    'version',
    'is_latest',
    'is_public',
    'rating_count',
    'usage_count',
    'total_tokens_used',
    'total_cost',
    'content_hash',
    'created_at',
    'updated_at',
  ],
  properties: {
    id: { type: 'string', description: 'Prompt ID' },
    owner_id: { type: 'string', description: 'Owner user ID' },
    ...responseProperties(PROMPT_FIELDS),
    version: { type: 'integer', description: 'Prompt version: 1, then one more each time the content changes' },
    is_latest: { type: 'boolean', description: 'Always true: a prompt is edited in place' },
    changelog: { ...nullable({ type: 'string' }), description: 'Version changelog' },
    rating: { ...nullable({ type: 'number' }), description: 'Average rating' },
    rating_count: { type: 'integer', description: 'Number of ratings' },
    usage_count: { type: 'integer', description: 'Chat turns run with this prompt' },
    success_rate: { ...nullable({ type: 'number' }), description: 'Share of finished runs with this prompt that completed' },
    avg_response_time_ms: { ...nullable({ type: 'integer' }), description: 'Average duration of those runs' },
    last_used_at: { ...nullable({ type: 'string', format: 'date-time' }), description: 'Last used timestamp' },
    total_tokens_used: { type: 'integer', description: 'Tokens of the runs with this prompt' },
    total_cost: { type: 'number', description: 'Cost of the runs with this prompt (USD)' },
    avg_tokens_per_use: { ...nullable({ type: 'number' }), description: 'Average tokens per run' },
    content_hash: { type: 'string', description: 'SHA-256 of the content (hex)' },
    estimated_tokens: { ...nullable({ type: 'integer' }), description: 'Tokens of the content (o200k_base)' },
    language: { ...nullable({ type: 'string' }), description: 'Content language' },
    created_at: { type: 'string', format: 'date-time', description: 'Creation timestamp' },
    updated_at: { type: 'string', format: 'date-time', description: 'Last update timestamp' },
  },
} as const;

export const PromptListResponseSchema = {
  $id: 'PromptListResponse',
  type: 'object',
  title: 'PromptListResponse',
  description: 'Schema for prompt list response.',
  required: ['prompts', 'total_count', 'limit', 'offset'],
  properties: {
    prompts: { type: 'array', items: { $ref: 'PromptResponse#' }, description: 'List of prompts' },
    total_count: { type: 'integer', description: 'Total number of prompts' },
    limit: { type: 'integer', description: 'Requested limit' },
    offset: { type: 'integer', description: 'Requested offset' },
  },
} as const;

export const PromptDeleteResponseSchema = {
  $id: 'PromptDeleteResponse',
  type: 'object',
  title: 'PromptDeleteResponse',
  description: 'Schema for prompt delete response.',
  required: ['message'],
  properties: { message: { type: 'string', description: 'Success message' } },
} as const;

export const PROMPT_SCHEMAS = [
  PromptCreateSchema,
  PromptUpdateSchema,
  PromptResponseSchema,
  PromptListResponseSchema,
  PromptDeleteResponseSchema,
] as const;
