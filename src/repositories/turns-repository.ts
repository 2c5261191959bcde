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

/** The conversation's row as the statement left it, with the user's message's place in it. */
const BegunTurnRow = ConversationRow.extend({
  user_sequence_number: z.number(),
  user_created_at: z.string(),
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

/** The unique (conversation, sequence number) of messages (migration 0001). */
const ONE_MESSAGE_PER_SEQUENCE = 'messages_conversation_id_sequence_number_key';

/**
 * Saves the user's message and the run's `running` row in one statement (so one
 * transaction and one round trip), with the conversation's message_count moved in the
 * same statement (its token and cost totals do not change: a user message carries no
 * usage), creating the conversation when `newConversation` is given.
 *
 * The run row is where instances agree that the conversation is busy: a second live run
 * there violates a unique index, so of two turns racing on any instances exactly one
 * commits (the conversation row's lock makes the loser wait for the winner's commit).
 * The message's sequence number is read in the statement's snapshot: should a turn
 * that waited on the lock find the winner's run already ended (a whole run and its
 * record inside that wait), its number is taken and the unique index refuses it: busy
 * too, never a duplicate.
 *
 * @throws ConversationNotFoundError when the conversation is not the user's.
 * @throws ConversationBusyError when the conversation already has a live run; nothing is saved.
 */
export const beginTurn = async (pool: DatabasePool, turn: BeginTurnInput): Promise<BegunTurn> => {
  const conversation =
    turn.newConversation === undefined
      ? sql.fragment`
        UPDATE conversations
        SET message_count = message_count + 1, last_message_at = now(), updated_at = now(),
            llm_provider = COALESCE(llm_provider, ${turn.provider}), llm_model = COALESCE(llm_model, ${turn.model}),
            profile_id = COALESCE(${turn.profileId ?? null}, profile_id)
        WHERE id = ${turn.conversationId} AND user_id = ${turn.userId} AND status <> 'deleted'
        RETURNING ${conversationColumns}`
      : insertConversation(
          turn.conversationId,
          { ...turn.newConversation, userId: turn.userId, profileId: turn.profileId ?? turn.newConversation.profileId },
          { provider: turn.provider, model: turn.model },
        );
  // The run's row and the message in the same statement: the message names the run
  // (messages.run_id references it; foreign keys are checked at the statement's end).
  const userMessageId = ulid();
  const row = await pool
    .maybeOne(
      sql.type(BegunTurnRow)`
      WITH conversation AS (${conversation}),
      run AS (
        INSERT INTO workflow_runs (id, user_id, conversation_id, workflow, status, provider, model, input,
                                   correlation_id, instance_id, started_at, last_heartbeat_at)
        SELECT ${turn.runId}, ${turn.userId}, conversation.id, ${turn.workflow}, 'running', ${turn.provider},
               ${turn.model}, ${sql.jsonb({ user_message_id: userMessageId, ...(turn.input ?? {}) } as never)},
               ${turn.correlationId}, ${turn.instanceId}, now(), now()
        FROM conversation
        RETURNING id
      ),
      message AS (
        INSERT INTO messages (id, conversation_id, role, content, sequence_number, run_id, correlation_id, created_at)
        SELECT ${userMessageId}, conversation.id, 'user', ${turn.content},
               (SELECT COALESCE(MAX(sequence_number), -1) + 1 FROM messages WHERE conversation_id = ${turn.conversationId}),
               run.id, ${turn.correlationId}, now()
        FROM conversation, run
        RETURNING sequence_number, created_at
      )
      SELECT conversation.*, message.sequence_number AS user_sequence_number, message.created_at AS user_created_at
      FROM conversation, message`,
    )
    .catch((error: unknown) => {
      if (
        error instanceof UniqueIntegrityConstraintViolationError &&
        (error.constraint === ONE_LIVE_RUN_PER_CONVERSATION || error.constraint === ONE_MESSAGE_PER_SEQUENCE)
      ) {
        throw new ConversationBusyError(turn.conversationId, { cause: error });
      }
      throw error;
    });
  if (row === null) {
    throw new ConversationNotFoundError(turn.conversationId);
  }
  const { user_sequence_number: sequenceNumber, user_created_at: createdAt, ...locked } = row;
  return { userMessageId, sequenceNumber, createdAt, conversation: locked };
};
