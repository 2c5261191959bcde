import type { Context } from '@opentelemetry/api';
import { AIMessage, HumanMessage, SystemMessage, type BaseMessage } from '@langchain/core/messages';
import { sql, type DatabasePool } from 'slonik';
import { ulid } from '../ids.js';
import { getTemplate } from '../graphs/templates.js';
import { HttpError } from '../http/errors.js';
import type { ProviderRegistry } from '../providers/provider-registry.js';
import { createConversationsRepository, type ConversationRow } from '../repositories/conversations-repository.js';
import { budgetStanding, type BudgetStanding, type BudgetView } from '../repositories/budget-reservations-repository.js';
import { MessageRow } from '../repositories/messages-repository.js';
import { beginTurn, ConversationBusyError, ConversationNotFoundError } from '../repositories/turns-repository.js';
import type { RunOutcome, RunRuntime } from '../runtime/run-runtime.js';
import { assistantMessageOf, writesAssistantMessage } from '../persistence/assistant-message.js';
import type { Settlement } from '../persistence/run-record-writer.js';
import { sumCosts } from '../../machines/usage.js';
import { createTokenCounter, type TokenCounter } from '../providers/token-counter.js';
import { countInputTokens, REPLY_PRIMING_TOKENS } from '../runtime/run-budget-ledger.js';
import type { WorkflowChoice, WorkflowResolver } from '../workflows/workflow-resolver.js';
import { createTurnSettingsResolver, type TurnSettings } from './turn-settings.js';

export type ChatTurnRequest = {
  readonly userId: string;
  /** The user's budget standing as the credential check read it (absent: read here). */
  readonly userBudget?: BudgetView | undefined;
  readonly message: string;
  readonly conversationId?: string | null | undefined;
  readonly provider?: string | null | undefined;
  readonly model?: string | null | undefined;
  readonly temperature?: number | null | undefined;
  readonly maxTokens?: number | null | undefined;
  readonly workflowTemplateName?: string | null | undefined;
  /** A stored definition or template, or a graph sent with the request, to run instead of a built-in template. */
  readonly workflow?: WorkflowChoice | undefined;
  readonly enableTools?: boolean | undefined;
  readonly enableMemory?: boolean | undefined;
  readonly contextLimit?: number | null | undefined;
  readonly systemPromptOverride?: string | null | undefined;
  /** A profile and a prompt the turn takes its settings from (src/chat/turn-settings.ts). */
  readonly profileId?: string | null | undefined;
  readonly promptId?: string | null | undefined;
  readonly promptVariables?: Readonly<Record<string, string>> | null | undefined;
  readonly correlationId: string;
  readonly parentContext?: Context | undefined;
  readonly onToken?: ((text: string) => void) | undefined;
  readonly streaming: boolean;
  /** Called once the turn is saved and the run started (SSE sends its `start` chunk). */
  readonly onStarted?: ((started: StartedTurn) => void) | undefined;
};

export type StartedTurn = {
  readonly runId: string;
  readonly conversationId: string;
  readonly userMessageId: string;
  readonly assistantMessageId: string;
  readonly cancel: (reason: string) => boolean;
};

export type ChatTurnResult = {
  readonly outcome: RunOutcome;
  readonly conversation: ConversationRow;
  readonly assistantMessage: MessageRow | null;
  readonly started: StartedTurn;
};

/** The most earlier messages read for a turn's history (then cut to the token limit). */
const HISTORY_LIMIT = 200;

/**
 * The newest of `history` that fit, with `fixed` (the system prompt and the new message,
 * always sent), in `limit` input tokens as the runtime counts them; all of it without a limit.
 */
const fitHistory = (
  tokens: TokenCounter,
  history: readonly BaseMessage[],
  fixed: readonly BaseMessage[],
  limit: number | null | undefined,
): readonly BaseMessage[] => {
  if (limit === null || limit === undefined) {
    return history;
  }
  let used = countInputTokens(tokens, fixed);
  let start = history.length;
  while (start > 0) {
    const next = used + countInputTokens(tokens, [history[start - 1] as BaseMessage]) - REPLY_PRIMING_TOKENS;
    if (next > limit) {
      break;
    }
    used = next;
    start -= 1;
  }
  return history.slice(start);
};

/**
 * `conversation` as beginTurn left it (the user's message counted), with the reply a
 * spooled record will add: the same sums the writer's SQL makes (costs in integer 1e-10
 * USD units, the stored precision).
 */
const pendingConversation = (conversation: ConversationRow, message: MessageRow): ConversationRow => ({
  ...conversation,
  message_count: conversation.message_count + 1,
  total_tokens: conversation.total_tokens + (message.total_tokens ?? 0),
  total_cost: sumCosts([conversation.total_cost, message.cost ?? 0]),
  last_message_at: message.created_at,
});

/** The reply a settled record gives: the rows it wrote, or (spooled) the rows it will write. */
const replyOf = (
  settlement: Settlement,
  conversation: ConversationRow,
  userSequence: number,
): { message: MessageRow | null; conversation: ConversationRow } => {
  if (settlement.durability === 'database') {
    return { message: settlement.reply?.message ?? null, conversation: settlement.reply?.conversation ?? conversation };
  }
  if (!writesAssistantMessage(settlement.record)) {
    return { message: null, conversation };
  }
  // The spooled record is written exactly as assistantMessageOf says; its sequence number
  // follows the user's message (one run per conversation at a time).
  const { tool_calls: _toolCalls, extra_metadata: _metadata, ...fields } = assistantMessageOf(settlement.record);
  const message: MessageRow = { ...fields, sequence_number: userSequence + 1 };
  return { message, conversation: pendingConversation(conversation, message) };
};

const toLangChain = (row: MessageRow): BaseMessage | null => {
  switch (row.role) {
    case 'user':
      return new HumanMessage(row.content);
    case 'assistant':
      return row.content === '' ? null : new AIMessage(row.content);
    case 'system':
      return new SystemMessage(row.content);
    default:
      return null;
  }
};

/** The database cannot take the user's message: nothing was saved (HTTP 503). */
const unavailable = (error: unknown): HttpError =>
  new HttpError(503, 'The service cannot save messages right now; please retry shortly', 'database_unavailable', {
    cause: error,
  });

export type ChatServiceOptions = {
  readonly pool: DatabasePool;
  readonly runtime: RunRuntime;
  /** The run records' writer: what a run's record left is what the chat answers. */
  readonly records: { readonly settlement: (runId: string) => Settlement | undefined };
  readonly providers: ProviderRegistry;
  readonly instanceId: string;
  /** Resolves a turn's `workflow` (users' definitions and templates). */
  readonly workflows: WorkflowResolver;
};

/**
 * One chat turn: checks the request, saves the user's message with the run's row,
 * runs the workflow and returns once the run's records are durable. Bad input fails
 * before anything is written.
 */
export const createChatService = ({ pool, runtime, records, providers, instanceId, workflows }: ChatServiceOptions) => {
  const conversations = createConversationsRepository(pool);
  const turnSettings = createTurnSettingsResolver(pool);
  const tokens = createTokenCounter();

  /**
   * The turn's budgets: 402 when one is used up (spent and reserved by runs in flight),
   * before anything is saved. `conversation` null: a new conversation (no budget of its own).
   */
  const budgetFor = async (request: ChatTurnRequest, conversation: ConversationRow | null): Promise<BudgetStanding> => {
    const standing = await budgetStanding(pool, request.userId, conversation, request.userBudget);
    if (standing.exhausted !== null) {
      throw new HttpError(402, 'The token or cost budget for this conversation or account is used up', 'budget_exhausted');
    }
    return standing;
  };

  /**
   * The system prompt, the newest history that fits the turn's token limit (its
   * context_limit, else the conversation's context_window) and the new message.
   * `conversation` null: a new conversation, which has no messages yet.
   */
  const history = async (conversation: ConversationRow | null, request: ChatTurnRequest): Promise<BaseMessage[]> => {
    const rows =
      request.enableMemory === false || conversation === null
        ? []
        : await pool.any(sql.type(MessageRow)`
            SELECT * FROM (
              SELECT id, conversation_id, role, content, sequence_number, prompt_tokens, completion_tokens,
                     total_tokens, cached_input_tokens, reasoning_tokens, cost, model_used, provider_used,
                     finish_reason, response_time_ms, run_id, correlation_id, rating, rating_count, created_at
              FROM messages WHERE conversation_id = ${conversation.id}
              ORDER BY sequence_number DESC LIMIT ${HISTORY_LIMIT}
            ) recent ORDER BY sequence_number ASC`);
    const systemPrompt = request.systemPromptOverride ?? conversation?.system_prompt;
    const system = systemPrompt === null || systemPrompt === undefined || systemPrompt === '' ? [] : [new SystemMessage(systemPrompt)];
    const latest = new HumanMessage(request.message);
    const earlier = rows.map(toLangChain).filter((message): message is BaseMessage => message !== null);
    const limit = request.contextLimit ?? conversation?.context_window;
    return [...system, ...fitHistory(tokens, earlier, [...system, latest], limit), latest];
  };

  /** The user's conversation the turn continues, or null when the turn starts a new one. */
  const conversationFor = (request: ChatTurnRequest, found: ConversationRow | null | undefined): ConversationRow | null => {
    if (found === undefined) {
      return null;
    }
    if (found === null || found.user_id !== request.userId || found.status === 'deleted') {
      throw new HttpError(404, 'Conversation not found', 'not_found');
    }
    return found;
  };

  /** A new conversation is created with the turn's first message, in beginTurn's transaction. */
  const newConversationFor = (request: ChatTurnRequest, profileId: string | null) => ({
    profileId,
    title: request.message.replace(/\s+/g, ' ').trim().slice(0, 80) || 'New conversation',
    systemPrompt: request.systemPromptOverride ?? null,
    temperature: request.temperature ?? null,
    maxTokens: request.maxTokens ?? null,
  });

  /** The request with what its profile and prompt fill in (404/422 here: nothing is saved). */
  const withSettings = async (asked: ChatTurnRequest, existing: ConversationRow | null | undefined) => {
    const own = existing !== null && existing !== undefined && existing.user_id === asked.userId && existing.status !== 'deleted';
    const settings: TurnSettings = await turnSettings.resolve(asked, own ? existing : null);
    const request: ChatTurnRequest = {
      ...asked,
      provider: settings.provider,
      model: settings.model,
      temperature: settings.temperature,
      maxTokens: settings.maxTokens,
      contextLimit: settings.contextLimit,
      enableTools: settings.enableTools,
      enableMemory: settings.enableMemory,
      systemPromptOverride: settings.systemPrompt,
    };
    return { request, settings };
  };

  const run = async (asked: ChatTurnRequest): Promise<ChatTurnResult> => {
    const requestedId = asked.conversationId ?? undefined;
    const existing =
      requestedId === undefined
        ? undefined
        : await conversations.findById(requestedId).catch((error: unknown) => {
            throw unavailable(error);
          });
    // A user's workflow (404/422 here: nothing is saved); its model nodes' settings come after the request's.
    const chosen = asked.workflow === undefined ? undefined : await workflows.resolve(asked.userId, asked.workflow, ['workflow_config']);
    const { request, settings } = await withSettings(
      chosen === undefined
        ? asked
        : {
            ...asked,
            provider: asked.provider ?? chosen.settings.provider,
            model: asked.model ?? chosen.settings.model,
            temperature: asked.temperature ?? chosen.settings.temperature,
            maxTokens: asked.maxTokens ?? chosen.settings.maxTokens,
          },
      existing,
    );
    const workflow = chosen?.workflow ?? request.workflowTemplateName ?? (request.enableTools === true ? 'chat_with_tools' : 'chat');
    if (chosen?.definition === undefined) getTemplate(workflow); // unknown template → 4xx before anything is written
    const { provider, model } = providers.resolve(
      request.provider ?? existing?.llm_provider ?? undefined,
      request.model ?? existing?.llm_model ?? undefined,
    );
    // A provider without credentials fails here, before the message is saved.
    providers.createChatModel({ provider, model });

    const found = conversationFor(request, existing);
    const budget = await budgetFor(request, found);
    const messages = await history(found, request);
    const runId = ulid();
    const assistantMessageId = ulid();
    const conversationId = found?.id ?? ulid();
    const release = runtime.reserve(conversationId, runId);
    let userMessageId: string;
    let userSequence: number;
    /** As the user's message left it: counted, not yet the reply. */
    let conversation: ConversationRow;
    try {
      ({
        userMessageId,
        sequenceNumber: userSequence,
        conversation,
      } = await beginTurn(pool, {
        conversationId,
        newConversation: found === null ? newConversationFor(request, settings.profileId) : undefined,
        profileId: settings.profileId,
        userId: request.userId,
        content: request.message,
        runId,
        workflow,
        provider,
        model,
        correlationId: request.correlationId,
        instanceId,
        // The message id a takeover writes the interrupted reply under, should this instance die.
        input: {
          streaming: request.streaming,
          assistant_message_id: assistantMessageId,
          // The profile's and prompt's usage figures are read from the runs that name them.
          ...(settings.profileId === null ? {} : { profile_id: settings.profileId }),
          ...(settings.promptId === null ? {} : { prompt_id: settings.promptId }),
          ...chosen?.runInput,
        },
      }));
    } catch (error) {
      release();
      if (error instanceof ConversationNotFoundError) {
        throw new HttpError(404, 'Conversation not found', 'not_found');
      }
      if (error instanceof ConversationBusyError) {
        throw error; // a run is live there on another instance: 409, nothing saved
      }
      throw unavailable(error);
    }
    const handle = runtime.start({
      runId,
      userId: request.userId,
      conversationId: conversation.id,
      correlationId: request.correlationId,
      workflow,
      definition: chosen?.definition,
      provider,
      model,
      temperature: request.temperature ?? conversation.temperature ?? undefined,
      maxTokens: request.maxTokens ?? conversation.max_tokens ?? undefined,
      topP: settings.topP,
      allowedTools: settings.allowedTools,
      messages,
      budget: budget.budget,
      budgetScope: budget.scope,
      userMessageId,
      assistantMessageId,
      parentContext: request.parentContext,
      onToken: request.onToken,
      streaming: request.streaming,
    });
    const started: StartedTurn = {
      runId,
      conversationId: conversation.id,
      userMessageId,
      assistantMessageId,
      cancel: (reason) => runtime.cancel(runId, reason),
    };
    request.onStarted?.(started);
    const outcome = await handle.done;
    const settlement = records.settlement(runId);
    if (settlement === undefined || settlement.durability === 'unsaved') {
      throw new HttpError(
        503,
        `The reply of run ${runId} could not be saved yet; it is kept and retried, please check the conversation shortly`,
        'run_record_unsaved',
      );
    }
    if (settlement.durability === 'rejected') {
      throw new HttpError(500, `The reply of run ${runId} could not be stored`, 'run_record_rejected');
    }
    const reply = replyOf(settlement, conversation, userSequence);
    return { outcome, conversation: reply.conversation, assistantMessage: reply.message, started };
  };

  return { run };
};

export type ChatService = ReturnType<typeof createChatService>;
