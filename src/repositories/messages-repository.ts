import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';

export const MessageRow = z.object({
  id: z.string(),
  conversation_id: z.string(),
  role: z.enum(['user', 'assistant', 'system', 'tool']),
  content: z.string(),
  sequence_number: z.number().int(),
  prompt_tokens: z.number().int().nullable(),
  completion_tokens: z.number().int().nullable(),
  total_tokens: z.number().int().nullable(),
  cached_input_tokens: z.number().int().nullable(),
  reasoning_tokens: z.number().int().nullable(),
  cost: z.number().nullable(),
  model_used: z.string().nullable(),
  provider_used: z.string().nullable(),
  finish_reason: z.string().nullable(),
  response_time_ms: z.number().int().nullable(),
  run_id: z.string().nullable(),
  correlation_id: z.string().nullable(),
  rating: z.number().nullable(),
  rating_count: z.number().int(),
  created_at: z.string(),
});
export type MessageRow = z.infer<typeof MessageRow>;

/** The columns of MessageRow, for SELECT and RETURNING lists. */
export const messageColumns = sql.fragment`
  id, conversation_id, role, content, sequence_number, prompt_tokens, completion_tokens, total_tokens,
  cached_input_tokens, reasoning_tokens, cost, model_used, provider_used, finish_reason, response_time_ms,
  run_id, correlation_id, rating, rating_count, created_at`;

export type MessagesRepository = ReturnType<typeof createMessagesRepository>;

/**
 * Reads a conversation's messages in order. Messages are written by the run writers
 * (src/repositories/turns-repository.ts and the span pipeline), never through the API.
 * The caller checks that the conversation is visible to the user first.
 */
export const createMessagesRepository = (pool: DatabasePool) => ({
  /** One page, oldest first; without a page, all of them. */
  listByConversation: async (conversationId: string, page?: { limit: number; offset: number }): Promise<readonly MessageRow[]> =>
    pool.any(sql.type(MessageRow)`
      SELECT ${messageColumns} FROM messages WHERE conversation_id = ${conversationId}
      ORDER BY sequence_number ASC
      ${page === undefined ? sql.fragment`` : sql.fragment`LIMIT ${page.limit} OFFSET ${page.offset}`}`),

  /**
   * Adds a rating to a message of the user's (not deleted) conversation, in one statement
   * so that concurrent ratings all count: `rating` becomes the average of all ratings
   * given, `rating_count` their number. Null when there is no such message for the user.
   */
  rate: async (
    conversationId: string,
    messageId: string,
    userId: string,
    rating: number,
  ): Promise<{ rating: number; rating_count: number } | null> =>
    pool.maybeOne(sql.type(z.object({ rating: z.number(), rating_count: z.number().int() }))`
      UPDATE messages m
      SET rating = (COALESCE(m.rating, 0) * m.rating_count + ${rating}) / (m.rating_count + 1),
          rating_count = m.rating_count + 1
      FROM conversations c
      WHERE m.id = ${messageId} AND m.conversation_id = ${conversationId}
        AND c.id = m.conversation_id AND c.user_id = ${userId} AND c.status <> 'deleted'
      RETURNING m.rating, m.rating_count`),

  /** Whether a message with this id exists at all (for the operators' side of an access_denied event). */
  exists: async (messageId: string): Promise<boolean> =>
    (await pool.maybeOne(sql.type(z.object({ id: z.string() }))`SELECT id FROM messages WHERE id = ${messageId}`)) !== null,
});
