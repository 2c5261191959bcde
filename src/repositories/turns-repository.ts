import { sql, UniqueIntegrityConstraintViolationError, type DatabasePool } from 'slonik';
import { ulid } from '../ids.js';
import { z } from 'zod';
import { ConversationRow, conversationColumns, insertConversation, type NewConversation } from './conversations-repository.js';

export type BeginTurnInput = {
  readonly conversationId: string;
  readonly userId: string;
  readonly content: string;
  readonly runId: string;
  readonly workflow: string;
  readonly provider: string;
  readonly model: string;
  readonly correlationId: string;
  readonly instanceId: string;
  readonly input?: Record<string, unknown>;
  /** The profile the turn runs with: recorded on the conversation (null or absent: left as it is). */
  readonly profileId?: string | null | undefined;
  /**
   * Creates the conversation (with `conversationId` as its id) in the same transaction,
   * so a first turn is one write transaction and a failed one leaves no empty conversation.
   */
  readonly newConversation?: Omit<NewConversation, 'userId'> | undefined;
};

export type BegunTurn = {
  readonly userMessageId: string;
  readonly sequenceNumber: number;
  readonly createdAt: string;
  /** The conversation as this transaction left it (the user's message counted). */
  readonly conversation: ConversationRow;
};

const UserMessageRow = z.object({
  id: z.string(),
  sequence_number: z.number(),
  created_at: z.string(),
});

/** The conversation a turn was asked for does not exist (or is not the user's). */
export class ConversationNotFoundError extends Error {
  public constructor(conversationId: string) {
    super(`conversation ${conversationId} not found`);
    this.name = 'ConversationNotFoundError';
  }
}

/** The index (migration 0007) that allows one `queued`/`running` run per conversation. */
const ONE_LIVE_RUN_PER_CONVERSATION = 'workflow_runs_one_live_per_conversation';

/**
 * The conversation already has a live run (on this or any other instance): the database
 * refused the turn's run row, and the whole turn was rolled back (HTTP 409).
 */
export class ConversationBusyError extends Error {
  public constructor(conversationId: string, options?: ErrorOptions) {
    super(`conversation ${conversationId} already has a live run`, options);
    this.name = 'ConversationBusyError';
  }
}

/**
 * Saves the user's message and the run's `running` row in one transaction, with the
 * conversation's message_count moved in the same transaction (its token and cost
 * totals do not change: a user message carries no usage), creating the conversation
 * first when `newConversation` is given.
 *
 * The run row is where instances agree that the conversation is busy: a second live run
 * there violates a unique index, so of two turns racing on any instances exactly one
 * commits (the conversation row's lock makes the loser wait for the winner's commit).
 *
 * @throws ConversationNotFoundError when the conversation is not the user's.
 * @throws ConversationBusyError when the conversation already has a live run; nothing is saved.
 */
export const beginTurn = async (
  pool: DatabasePool,
  turn: BeginTurnInput,
): Promise<BegunTurn> =>
  pool.transaction(async (tx) => {
    if (turn.newConversation !== undefined) {
      await tx.query(insertConversation(turn.conversationId, { ...turn.newConversation, userId: turn.userId }));
    }
    const locked = await tx.maybeOne(sql.type(ConversationRow)`
      UPDATE conversations
      SET message_count = message_count + 1, last_message_at = now(), updated_at = now(),
          llm_provider = COALESCE(llm_provider, ${turn.provider}), llm_model = COALESCE(llm_model, ${turn.model}),
          profile_id = COALESCE(${turn.profileId ?? null}, profile_id)
      WHERE id = ${turn.conversationId} AND user_id = ${turn.userId} AND status <> 'deleted'
      RETURNING ${conversationColumns}`);
    if (locked === null) {
      throw new ConversationNotFoundError(turn.conversationId);
    }
    // The run's row first, so the message can name it (messages.run_id references it).
    const userMessageId = ulid();
    await tx
      .query(sql.unsafe`
      INSERT INTO workflow_runs (id, user_id, conversation_id, workflow, status, provider, model, input,
                                 correlation_id, instance_id, started_at, last_heartbeat_at)
      VALUES (${turn.runId}, ${turn.userId}, ${turn.conversationId}, ${turn.workflow}, 'running', ${turn.provider},
              ${turn.model}, ${sql.jsonb({ user_message_id: userMessageId, ...(turn.input ?? {}) } as never)},
              ${turn.correlationId}, ${turn.instanceId}, now(), now())`)
      .catch((error: unknown) => {
        if (error instanceof UniqueIntegrityConstraintViolationError && error.constraint === ONE_LIVE_RUN_PER_CONVERSATION) {
          throw new ConversationBusyError(turn.conversationId, { cause: error });
        }
        throw error;
      });
    const message = await tx.one(sql.type(UserMessageRow)`
      INSERT INTO messages (id, conversation_id, role, content, sequence_number, run_id, correlation_id, created_at)
      VALUES (
        ${userMessageId}, ${turn.conversationId}, 'user', ${turn.content},
        (SELECT COALESCE(MAX(sequence_number), -1) + 1 FROM messages WHERE conversation_id = ${turn.conversationId}),
        ${turn.runId}, ${turn.correlationId}, now()
      )
      RETURNING id, sequence_number, created_at`);
    return { userMessageId: message.id, sequenceNumber: message.sequence_number, createdAt: message.created_at, conversation: locked };
  });
