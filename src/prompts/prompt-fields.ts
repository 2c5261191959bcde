import type { FieldSpec } from '../repositories/record-fields.js';
import { TEMPLATE_FORMATS } from './prompt-template.js';

export const PROMPT_TYPES = ['system', 'user', 'assistant', 'chain', 'template'] as const;
export const PROMPT_CATEGORIES = ['general', 'creative', 'analytical', 'technical', 'educational', 'business', 'coding', 'custom'] as const;
export type PromptType = (typeof PROMPT_TYPES)[number];
export type PromptCategory = (typeof PROMPT_CATEGORIES)[number];

/** The longest template stored (a system prompt; the chat's own message may be 100,000 characters). */
export const MAX_PROMPT_CONTENT = 100_000;

const names = { type: 'array', items: { type: 'string', minLength: 1, maxLength: 100 }, maxItems: 100 };
const objects = { type: 'array', items: { type: 'object', additionalProperties: true }, maxItems: 100 };
const jsonObject = { type: 'object', additionalProperties: true };
const INT4_MAX = 2_147_483_647;

/**
 * The editable columns of a prompt with the contract's bounds (PromptCreate / PromptUpdate)
 * and a few the contract leaves open. The template (`content`, `template_format`) and its
 * `variables` are checked against each other on every write (src/prompts/prompt-template.ts).
 */
export const PROMPT_FIELDS: readonly FieldSpec[] = [
  { name: 'name', kind: 'text', schema: { type: 'string', minLength: 1, maxLength: 255 }, nullable: false, description: 'Prompt name' },
  { name: 'description', kind: 'text', schema: { type: 'string', maxLength: 10_000 }, nullable: true, description: 'Prompt description' },
  {
    name: 'prompt_type',
    kind: 'text',
    schema: { type: 'string', enum: PROMPT_TYPES },
    nullable: false,
    default: 'template',
    description: 'Prompt type',
  },
  {
    name: 'category',
    kind: 'text',
    schema: { type: 'string', enum: PROMPT_CATEGORIES },
    nullable: false,
    default: 'general',
    description: 'Prompt category',
  },
  {
    name: 'content',
    kind: 'text',
    schema: { type: 'string', minLength: 1, maxLength: MAX_PROMPT_CONTENT },
    nullable: false,
    description: 'The template: `{name}` placeholders (f-string, `{{`/`}}` for literal braces) or `{{ name }}` (mustache, jinja2)',
  },
  {
    name: 'variables',
    kind: 'json',
    schema: names,
    nullable: true,
    description:
      "The template's variables: must be exactly its placeholders (422 naming the one that differs); null or absent: taken from the template",
  },
  {
    name: 'template_format',
    kind: 'text',
    schema: { type: 'string', enum: TEMPLATE_FORMATS },
    nullable: false,
    default: 'f-string',
    description: 'Template format: f-string, mustache or jinja2 (plain substitution only)',
  },
  { name: 'input_schema', kind: 'json', schema: jsonObject, nullable: true, description: 'JSON schema for input validation (stored)' },
  { name: 'output_schema', kind: 'json', schema: jsonObject, nullable: true, description: 'JSON schema for output validation (stored)' },
  {
    name: 'max_length',
    kind: 'integer',
    schema: { type: 'integer', minimum: 1, maximum: INT4_MAX },
    nullable: true,
    description: 'Maximum content length (characters), checked on every write',
  },
  {
    name: 'min_length',
    kind: 'integer',
    schema: { type: 'integer', minimum: 1, maximum: INT4_MAX },
    nullable: true,
    description: 'Minimum content length (characters), checked on every write',
  },
  {
    name: 'required_variables',
    kind: 'json',
    schema: names,
    nullable: true,
    description: 'Variables a chat must give a value for (null: all of them); others default to the empty string',
  },
  { name: 'examples', kind: 'json', schema: objects, nullable: true, description: 'Usage examples' },
  { name: 'test_cases', kind: 'json', schema: objects, nullable: true, description: 'Test cases' },
  {
    name: 'suggested_temperature',
    kind: 'number',
    schema: { type: 'number', minimum: 0, maximum: 2 },
    nullable: true,
    description: 'Suggested temperature (stored)',
  },
  {
    name: 'suggested_max_tokens',
    kind: 'integer',
    schema: { type: 'integer', minimum: 1, maximum: INT4_MAX },
    nullable: true,
    description: 'Suggested max tokens (stored)',
  },
  { name: 'suggested_providers', kind: 'json', schema: names, nullable: true, description: 'Suggested LLM providers' },
  {
    name: 'is_chain',
    kind: 'boolean',
    schema: { type: 'boolean' },
    nullable: false,
    default: false,
    description: 'Whether this is a chain prompt (stored)',
  },
  { name: 'chain_steps', kind: 'json', schema: objects, nullable: true, description: 'Chain execution steps (stored)' },
  {
    name: 'parent_prompt_id',
    kind: 'text',
    schema: { type: 'string', maxLength: 128 },
    nullable: true,
    description: 'Parent prompt ID for chains',
  },
  {
    name: 'is_public',
    kind: 'boolean',
    schema: { type: 'boolean' },
    nullable: false,
    default: false,
    description: 'Readable (not editable) by every user',
  },
  {
    name: 'tags',
    kind: 'json',
    schema: { type: 'array', items: { type: 'string', maxLength: 100 }, maxItems: 20 },
    nullable: true,
    description: 'Prompt tags',
  },
  { name: 'extra_metadata', kind: 'json', schema: jsonObject, nullable: true, description: 'Additional metadata' },
];
