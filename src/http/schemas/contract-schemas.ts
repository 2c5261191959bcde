import type { FastifyInstance } from 'fastify';
import { ANALYTICS_SCHEMAS } from './analytics-schemas.js';
import { AUTH_SCHEMAS } from './auth-schemas.js';
import { CHAT_SCHEMAS } from './chat-schemas.js';
import { ErrorResponseSchema, HTTPValidationErrorSchema, ValidationErrorSchema } from './common-schemas.js';
import { CONVERSATION_SCHEMAS } from './conversation-schemas.js';
import { EXECUTION_SCHEMAS } from './execution-schemas.js';
import { PROFILE_SCHEMAS } from './profile-schemas.js';
import { PROMPT_SCHEMAS } from './prompt-schemas.js';
import { DOCUMENT_SCHEMAS } from './document-schemas.js';
import { MESSAGE_RATING_SCHEMAS } from './message-rating-schemas.js';
import { WORKFLOW_SCHEMAS } from './workflow-schemas.js';

/** Every shared schema, registered once at the root so all route plugins can `$ref` them. */
export const CONTRACT_SCHEMAS = [
  ValidationErrorSchema,
  HTTPValidationErrorSchema,
  ErrorResponseSchema,
  ...AUTH_SCHEMAS,
  ...CONVERSATION_SCHEMAS,
  ...CHAT_SCHEMAS,
  ...ANALYTICS_SCHEMAS,
  ...EXECUTION_SCHEMAS,
  ...PROFILE_SCHEMAS,
  ...PROMPT_SCHEMAS,
  ...MESSAGE_RATING_SCHEMAS,
  ...DOCUMENT_SCHEMAS,
  ...WORKFLOW_SCHEMAS,
] as const;

export const registerContractSchemas = (app: FastifyInstance): void => {
  for (const schema of CONTRACT_SCHEMAS) {
    app.addSchema(schema);
  }
};
