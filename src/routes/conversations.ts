import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { SecurityEventLog } from '../auth/security-events.js';
import { HttpError } from '../http/errors.js';
import { bearerSecurity, errorResponses } from '../http/schemas/common-schemas.js';
import type { ConversationCreateBody, ConversationStatus, ConversationUpdateBody } from '../http/schemas/conversation-schemas.js';
import { MAX_TAG_LENGTH, MAX_TAGS } from '../http/schemas/conversation-schemas.js';
import {
  CONVERSATION_SORT_COLUMNS,
  createConversationsRepository,
  type ConversationChanges,
  type ConversationRow,
  type ConversationSortColumn,
} from '../repositories/conversations-repository.js';
import { createMessagesRepository } from '../repositories/messages-repository.js';

const MAX_PAGE = 100;
const MAX_OFFSET = 1_000_000_000;

const ConversationParams = {
  type: 'object',
  required: ['conversation_id'],
  properties: { conversation_id: { type: 'string', minLength: 1, maxLength: 128, description: 'Conversation ID' } },
} as const;
type ConversationParams = { conversation_id: string };

/** Superusers only: act on another user's conversations (read-only). */
const adminUserFilter = {
  type: 'string',
  minLength: 1,
  maxLength: 128,
  description: "Superusers only: read this user's conversations instead of their own",
} as const;

const ListQuery = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['active', 'archived', 'deleted'], description: 'Filter by conversation status' },
    llm_provider: { type: 'string', maxLength: 100, description: 'Filter by LLM provider' },
    llm_model: { type: 'string', maxLength: 200, description: 'Filter by LLM model' },
    tags: {
      type: 'array',
      items: { type: 'string', maxLength: MAX_TAG_LENGTH },
      maxItems: MAX_TAGS,
      description: 'Conversations carrying all these tags (repeat the parameter: `?tags=a&tags=b`)',
    },
    enable_retrieval: { type: 'boolean', description: 'Filter by retrieval enabled status' },
    limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: 50, description: 'Maximum number of results' },
    offset: { type: 'integer', minimum: 0, maximum: MAX_OFFSET, default: 0, description: 'Number of results to skip' },
    sort_by: { type: 'string', enum: CONVERSATION_SORT_COLUMNS, default: 'updated_at', description: 'Sort field' },
    sort_order: { type: 'string', enum: ['asc', 'desc'], default: 'desc', description: 'Sort order' },
    user_id: adminUserFilter,
  },
} as const;
type ListQuery = {
  status?: ConversationStatus;
  llm_provider?: string;
  llm_model?: string;
  tags?: string[];
  enable_retrieval?: boolean;
  limit: number;
  offset: number;
  sort_by: ConversationSortColumn;
  sort_order: 'asc' | 'desc';
  user_id?: string;
};

const GetQuery = {
  type: 'object',
  properties: {
    include_messages: { type: 'boolean', default: true, description: 'Include messages in response' },
    user_id: adminUserFilter,
  },
} as const;
type GetQuery = { include_messages: boolean; user_id?: string };

const MessagesQuery = {
  type: 'object',
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: 50, description: 'Number of results per page' },
    offset: { type: 'integer', minimum: 0, maximum: MAX_OFFSET, default: 0, description: 'Number of results to skip' },
    user_id: adminUserFilter,
  },
} as const;
type MessagesQuery = { limit: number; offset: number; user_id?: string };

const NOT_FOUND_MESSAGE = 'Conversation not found';
/** The one answer for a conversation that is missing, deleted or someone else's: nothing tells them apart. */
const notFound = (): HttpError => new HttpError(404, NOT_FOUND_MESSAGE, 'not_found');

const changesOf = (body: ConversationUpdateBody): ConversationChanges => ({
  // title and status cannot be cleared: null leaves them as they are.
  ...(typeof body.title === 'string' ? { title: body.title } : {}),
  ...(typeof body.status === 'string' ? { status: body.status } : {}),
  ...(body.description !== undefined ? { description: body.description } : {}),
  ...(body.temperature !== undefined ? { temperature: body.temperature } : {}),
  ...(body.max_tokens !== undefined ? { maxTokens: body.max_tokens } : {}),
  ...(body.workflow_config !== undefined ? { workflowConfig: body.workflow_config } : {}),
  ...(body.extra_metadata !== undefined ? { extraMetadata: body.extra_metadata } : {}),
  ...(body.tags !== undefined ? { tags: body.tags } : {}),
  ...(body.token_budget !== undefined ? { tokenBudget: body.token_budget } : {}),
  ...(body.cost_budget_usd !== undefined ? { costBudgetUsd: body.cost_budget_usd } : {}),
});

/**
 * `/api/v1/conversations/*`: create, list, read, update, delete (soft) and read the
 * messages of the caller's conversations. Another user's conversation answers exactly
 * like a missing one (404) and leaves an `access_denied` security event.
 */
export const conversationRoutes: FastifyPluginAsync = async (app) => {
  const conversations = createConversationsRepository(app.db.pool);
  const messages = createMessagesRepository(app.db.pool);
  const events: SecurityEventLog = app.securityEvents;

  app.addHook('onRequest', app.authenticate);

  /** Whose conversations the request reads: the caller's, or (superusers) the `user_id` asked for. */
  const readerScope = async (request: FastifyRequest, requestedUserId: string | undefined): Promise<string> => {
    const { user } = request;
    if (requestedUserId === undefined || requestedUserId === user.id) {
      return user.id;
    }
    if (!user.isSuperuser) {
      await events.record(request, {
        type: 'access_denied',
        userId: user.id,
        reason: 'user_filter_requires_superuser',
        details: { requested_user_id: requestedUserId },
      });
      throw new HttpError(403, 'Only superusers may read other users’ conversations', 'forbidden');
    }
    return requestedUserId;
  };

  /**
   * The conversation if it is visible in the scope (not deleted, owned by `ownerId`),
   * else 404 with the same `access_denied` event for a missing and for another user's
   * one (the target's id goes to operators only: no existence oracle).
   */
  const visibleConversation = async (request: FastifyRequest, id: string, ownerId: string): Promise<ConversationRow> => {
    const row = await conversations.findById(id);
    if (row === null || row.status === 'deleted' || row.user_id !== ownerId) {
      await events.recordHidden(request, { resource: 'conversation', id, exists: row !== null });
      throw notFound();
    }
    return row;
  };

  app.post<{ Body: ConversationCreateBody }>(
    '/',
    {
      schema: {
        tags: ['Conversations'],
        summary: 'Create Conversation',
        operationId: 'create_conversation_api_v1_conversations__post',
        security: bearerSecurity,
        body: { $ref: 'ConversationCreate#' },
        response: { 201: { $ref: 'ConversationResponse#' }, ...errorResponses(401, 413) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const row = await conversations.create({
        userId: request.user.id,
        title: body.title,
        description: body.description,
        profileId: body.profile_id,
        systemPrompt: body.system_prompt,
        enableRetrieval: body.enable_retrieval,
        temperature: body.temperature,
        maxTokens: body.max_tokens,
        workflowConfig: body.workflow_config,
        extraMetadata: body.extra_metadata,
        tags: body.tags,
      });
      return reply.status(201).send(row);
    },
  );

  app.get<{ Querystring: ListQuery }>(
    '/',
    {
      schema: {
        tags: ['Conversations'],
        summary: 'List Conversations',
        description: "The caller's conversations (deleted ones never appear), filtered, sorted and paginated.",
        operationId: 'list_conversations_api_v1_conversations__get',
        security: bearerSecurity,
        querystring: ListQuery,
        response: { 200: { $ref: 'ConversationListResponse#' }, ...errorResponses(401, 403) },
      },
    },
    async (request) => {
      const query = request.query;
      const userId = await readerScope(request, query.user_id);
      const { rows, total } = await conversations.list(
        {
          userId,
          status: query.status,
          llmProvider: query.llm_provider,
          llmModel: query.llm_model,
          tags: query.tags,
          enableRetrieval: query.enable_retrieval,
        },
        { limit: query.limit, offset: query.offset, sortBy: query.sort_by, sortOrder: query.sort_order },
      );
      return { conversations: rows, total_count: total, limit: query.limit, offset: query.offset };
    },
  );

  app.get<{ Params: ConversationParams; Querystring: GetQuery }>(
    '/:conversation_id',
    {
      schema: {
        tags: ['Conversations'],
        summary: 'Get Conversation',
        description: 'Conversation details with its messages (all of them, in order) unless include_messages=false.',
        operationId: 'get_conversation_api_v1_conversations__conversation_id__get',
        security: bearerSecurity,
        params: ConversationParams,
        querystring: GetQuery,
        response: { 200: { $ref: 'ConversationWithMessages#' }, ...errorResponses(401, 403, 404) },
      },
    },
    async (request) => {
      const ownerId = await readerScope(request, request.query.user_id);
      const row = await visibleConversation(request, request.params.conversation_id, ownerId);
      const list = request.query.include_messages ? await messages.listByConversation(row.id) : [];
      return { ...row, messages: list };
    },
  );

  app.put<{ Params: ConversationParams; Body: ConversationUpdateBody }>(
    '/:conversation_id',
    {
      schema: {
        tags: ['Conversations'],
        summary: 'Update Conversation',
        description: 'Changes the fields present in the body; `null` clears a field (title and status: `null` leaves them).',
        operationId: 'update_conversation_api_v1_conversations__conversation_id__put',
        security: bearerSecurity,
        params: ConversationParams,
        body: { $ref: 'ConversationUpdate#' },
        response: { 200: { $ref: 'ConversationResponse#' }, ...errorResponses(401, 404, 413) },
      },
    },
    async (request) => {
      const { user } = request;
      await visibleConversation(request, request.params.conversation_id, user.id);
      const row = await conversations.update(request.params.conversation_id, user.id, changesOf(request.body));
      if (row === null) {
        throw notFound();
      }
      return row;
    },
  );

  app.delete<{ Params: ConversationParams }>(
    '/:conversation_id',
    {
      schema: {
        tags: ['Conversations'],
        summary: 'Delete Conversation',
        description: 'Deletes the conversation (kept as status `deleted`, answered 404 from then on).',
        operationId: 'delete_conversation_api_v1_conversations__conversation_id__delete',
        security: bearerSecurity,
        params: ConversationParams,
        response: { 200: { $ref: 'ConversationDeleteResponse#' }, ...errorResponses(401, 404) },
      },
    },
    async (request) => {
      const { user } = request;
      await visibleConversation(request, request.params.conversation_id, user.id);
      if (!(await conversations.softDelete(request.params.conversation_id, user.id))) {
        throw notFound();
      }
      return { message: 'Conversation deleted successfully' };
    },
  );

  app.get<{ Params: ConversationParams; Querystring: MessagesQuery }>(
    '/:conversation_id/messages',
    {
      schema: {
        tags: ['Conversations'],
        summary: 'Get Conversation Messages',
        description: 'One page of the conversation’s messages, oldest first.',
        operationId: 'get_conversation_messages_api_v1_conversations__conversation_id__messages_get',
        security: bearerSecurity,
        params: ConversationParams,
        querystring: MessagesQuery,
        response: { 200: { type: 'array', items: { $ref: 'MessageResponse#' } }, ...errorResponses(401, 403, 404) },
      },
    },
    async (request) => {
      const ownerId = await readerScope(request, request.query.user_id);
      const row = await visibleConversation(request, request.params.conversation_id, ownerId);
      return messages.listByConversation(row.id, { limit: request.query.limit, offset: request.query.offset });
    },
  );
};
