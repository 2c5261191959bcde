import { sql, type DatabasePool, type FragmentSqlToken, type ListSqlToken } from 'slonik';
import { ulid } from '../ids.js';
import { z } from 'zod';

const jsonObject = z.record(z.string(), z.unknown());

export const ConversationRow = z.object({
  id: z.string(),
  user_id: z.string(),
  title: z.string(),
  description: z.string().nullable(),
  status: z.enum(['active', 'archived', 'deleted']),
  profile_id: z.string().nullable(),
  llm_provider: z.string().nullable(),
  llm_model: z.string().nullable(),
  system_prompt: z.string().nullable(),
  temperature: z.number().nullable(),
  max_tokens: z.number().int().nullable(),
  enable_retrieval: z.boolean(),
  context_window: z.number().int(),
  memory_enabled: z.boolean(),
  memory_strategy: z.string().nullable(),
  retrieval_limit: z.number().int(),
  retrieval_score_threshold: z.number(),
  tags: z.array(z.string()).nullable(),
  extra_metadata: jsonObject.nullable(),
  workflow_config: jsonObject.nullable(),
  token_budget: z.number().int().nullable(),
  cost_budget_usd: z.number().nullable(),
  // Maintained by the run writers in the same transactions as the messages; read as they are.
  message_count: z.number().int(),
  total_tokens: z.number().int(),
  total_cost: z.number(),
  last_message_at: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type ConversationRow = z.infer<typeof ConversationRow>;

/** Every column of ConversationRow, for SELECT and RETURNING lists. */
export const conversationColumns = sql.fragment`
  id, user_id, title, description, status, profile_id, llm_provider, llm_model, system_prompt, temperature,
  max_tokens, enable_retrieval, context_window, memory_enabled, memory_strategy, retrieval_limit,
  retrieval_score_threshold, tags, extra_metadata, workflow_config, token_budget, cost_budget_usd,
  message_count, total_tokens, total_cost, last_message_at, created_at, updated_at`;

type JsonObject = Record<string, unknown>;

export type NewConversation = {
  readonly userId: string;
  readonly title: string;
  readonly description?: string | null | undefined;
  readonly profileId?: string | null | undefined;
  readonly systemPrompt?: string | null | undefined;
  readonly enableRetrieval?: boolean | undefined;
  readonly temperature?: number | null | undefined;
  readonly maxTokens?: number | null | undefined;
  readonly workflowConfig?: JsonObject | null | undefined;
  readonly extraMetadata?: JsonObject | null | undefined;
  readonly tags?: readonly string[] | null | undefined;
};

/** Columns a user may change; a key that is present (even `null`) is written. */
export type ConversationChanges = {
  readonly title?: string;
  readonly description?: string | null;
  readonly status?: 'active' | 'archived' | 'deleted';
  readonly temperature?: number | null;
  readonly maxTokens?: number | null;
  readonly workflowConfig?: JsonObject | null;
  readonly extraMetadata?: JsonObject | null;
  readonly tags?: readonly string[] | null;
  readonly tokenBudget?: number | null;
  readonly costBudgetUsd?: number | null;
};

export const CONVERSATION_SORT_COLUMNS = [
  'updated_at',
  'created_at',
  'last_message_at',
  'title',
  'message_count',
  'total_tokens',
  'total_cost',
] as const;
export type ConversationSortColumn = (typeof CONVERSATION_SORT_COLUMNS)[number];

export type ConversationFilter = {
  readonly userId: string;
  /** 'deleted' matches nothing: deleted conversations are never listed. */
  readonly status?: 'active' | 'archived' | 'deleted' | undefined;
  readonly llmProvider?: string | undefined;
  readonly llmModel?: string | undefined;
  /** Conversations carrying every one of these tags. */
  readonly tags?: readonly string[] | undefined;
  readonly enableRetrieval?: boolean | undefined;
};

const jsonbOrNull = (value: JsonObject | null | undefined) => (value === null || value === undefined ? null : sql.jsonb(value as never));
const tagsOrNull = (tags: readonly string[] | null | undefined) => (tags === null || tags === undefined ? null : sql.jsonb([...tags]));

const whereOf = (filter: ConversationFilter): ListSqlToken => {
  const conditions: FragmentSqlToken[] = [sql.fragment`user_id = ${filter.userId}`, sql.fragment`status <> 'deleted'`];
  if (filter.status !== undefined) {
    conditions.push(sql.fragment`status = ${filter.status}`);
  }
  if (filter.llmProvider !== undefined) {
    conditions.push(sql.fragment`llm_provider = ${filter.llmProvider}`);
  }
  if (filter.llmModel !== undefined) {
    conditions.push(sql.fragment`llm_model = ${filter.llmModel}`);
  }
  if (filter.tags !== undefined && filter.tags.length > 0) {
    conditions.push(sql.fragment`tags @> ${sql.jsonb([...filter.tags])}`);
  }
  if (filter.enableRetrieval !== undefined) {
    conditions.push(sql.fragment`enable_retrieval = ${filter.enableRetrieval}`);
  }
  return sql.join(conditions, sql.fragment` AND `);
};

const setOf = (changes: ConversationChanges): FragmentSqlToken[] => {
  const sets: FragmentSqlToken[] = [];
  if (changes.title !== undefined) {
    sets.push(sql.fragment`title = ${changes.title}`);
  }
  if (changes.description !== undefined) {
    sets.push(sql.fragment`description = ${changes.description}`);
  }
  if (changes.status !== undefined) {
    sets.push(sql.fragment`status = ${changes.status}`);
  }
  if (changes.temperature !== undefined) {
    sets.push(sql.fragment`temperature = ${changes.temperature}`);
  }
  if (changes.maxTokens !== undefined) {
    sets.push(sql.fragment`max_tokens = ${changes.maxTokens}`);
  }
  if (changes.workflowConfig !== undefined) {
    sets.push(sql.fragment`workflow_config = ${jsonbOrNull(changes.workflowConfig)}`);
  }
  if (changes.extraMetadata !== undefined) {
    sets.push(sql.fragment`extra_metadata = ${jsonbOrNull(changes.extraMetadata)}`);
  }
  if (changes.tags !== undefined) {
    sets.push(sql.fragment`tags = ${tagsOrNull(changes.tags)}`);
  }
  if (changes.tokenBudget !== undefined) {
    sets.push(sql.fragment`token_budget = ${changes.tokenBudget}`);
  }
  if (changes.costBudgetUsd !== undefined) {
    sets.push(sql.fragment`cost_budget_usd = ${changes.costBudgetUsd}`);
  }
  return sets;
};

/**
 * The INSERT of a new conversation, returning its row (run on the pool, inside a
 * transaction, or as a CTE). `firstTurn`: the conversation is created by a chat turn's
 * first message, so it starts with that message counted and the turn's provider and model.
 */
export const insertConversation = (
  id: string,
  conversation: NewConversation,
  firstTurn?: { readonly provider: string; readonly model: string },
) => sql.type(ConversationRow)`
  INSERT INTO conversations (id, user_id, title, description, profile_id, system_prompt, enable_retrieval,
                             temperature, max_tokens, workflow_config, extra_metadata, tags,
                             message_count, last_message_at, llm_provider, llm_model)
  VALUES (${id}, ${conversation.userId}, ${conversation.title}, ${conversation.description ?? null},
          ${conversation.profileId ?? null}, ${conversation.systemPrompt ?? null},
          ${conversation.enableRetrieval ?? false}, ${conversation.temperature ?? null},
          ${conversation.maxTokens ?? null}, ${jsonbOrNull(conversation.workflowConfig)},
          ${jsonbOrNull(conversation.extraMetadata)}, ${tagsOrNull(conversation.tags)},
          ${firstTurn === undefined ? 0 : 1}, ${firstTurn === undefined ? null : sql.fragment`now()`},
          ${firstTurn?.provider ?? null}, ${firstTurn?.model ?? null})
  RETURNING ${conversationColumns}`;

export type ConversationsRepository = ReturnType<typeof createConversationsRepository>;

/**
 * Conversations as the API reads and edits them. Token and cost totals are never
 * written here: the run writers keep them equal to the sums over the messages.
 * Deleting is a soft delete (status `deleted`); deleted conversations are invisible.
 */
export const createConversationsRepository = (pool: DatabasePool) => ({
  create: async (conversation: NewConversation): Promise<ConversationRow> => pool.one(insertConversation(ulid(), conversation)),

  /** A conversation by id whoever owns it, deleted included: the caller decides what is visible. */
  findById: async (id: string): Promise<ConversationRow | null> =>
    pool.maybeOne(sql.type(ConversationRow)`SELECT ${conversationColumns} FROM conversations WHERE id = ${id}`),

  /** One page of a user's conversations (never deleted ones) and the count of all that match. */
  list: async (
    filter: ConversationFilter,
    page: { limit: number; offset: number; sortBy: ConversationSortColumn; sortOrder: 'asc' | 'desc' },
  ): Promise<{ rows: readonly ConversationRow[]; total: number }> => {
    const where = whereOf(filter);
    const direction = page.sortOrder === 'asc' ? sql.fragment`ASC` : sql.fragment`DESC`;
    // id breaks ties so that pages neither repeat nor skip rows.
    const rows = await pool.any(sql.type(ConversationRow)`
      SELECT ${conversationColumns} FROM conversations WHERE ${where}
      ORDER BY ${sql.identifier([page.sortBy])} ${direction} NULLS LAST, id ${direction}
      LIMIT ${page.limit} OFFSET ${page.offset}`);
    const total = await pool.oneFirst(sql.type(z.object({ n: z.number() }))`
      SELECT count(*)::int AS n FROM conversations WHERE ${where}`);
    return { rows, total };
  },

  /** Applies the changes to the user's conversation unless it is deleted; null when there is none. */
  update: async (id: string, userId: string, changes: ConversationChanges): Promise<ConversationRow | null> => {
    const sets = setOf(changes);
    if (sets.length === 0) {
      return pool.maybeOne(sql.type(ConversationRow)`
        SELECT ${conversationColumns} FROM conversations WHERE id = ${id} AND user_id = ${userId} AND status <> 'deleted'`);
    }
    return pool.maybeOne(sql.type(ConversationRow)`
      UPDATE conversations SET ${sql.join([...sets, sql.fragment`updated_at = now()`], sql.fragment`, `)}
      WHERE id = ${id} AND user_id = ${userId} AND status <> 'deleted'
      RETURNING ${conversationColumns}`);
  },

  /** Marks the user's conversation deleted; false when there was none to delete. */
  softDelete: async (id: string, userId: string): Promise<boolean> => {
    const result = await pool.query(sql.unsafe`
      UPDATE conversations SET status = 'deleted', updated_at = now()
      WHERE id = ${id} AND user_id = ${userId} AND status <> 'deleted'`);
    return result.rowCount > 0;
  },
});
