import type { BaseChatModel } from '@langchain/core/language_models/chat_models';
import type { BaseMessage } from '@langchain/core/messages';
import type { RunnableConfig } from '@langchain/core/runnables';
import type { Context, Tracer } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { Usage } from '../../machines/usage.js';
import type { GenAiConventions } from '../../otel/semconv.js';
import type { RunBudget, WorkflowRunOutput } from '../../machines/workflow-run-types.js';
import type { GraphDefinition } from '../graphs/definition.js';
import type { TokenCounter } from '../providers/token-counter.js';
import type { BudgetReservations, BudgetScope } from './budget-reservations.js';
import type { PriceBook } from './price-book.js';
import type { RunSpanEventListener } from './run-spans.js';

// The runtime's public shapes and errors: what callers (chat service, routes, services)
// hand to the runtime and get back from it.

/** A second turn while the conversation already has a run in flight (HTTP 409). */
export class RunConflictError extends Error {
  public readonly conversationId: string;
  public readonly activeRunId: string;

  public constructor(conversationId: string, activeRunId: string) {
    super(`conversation ${conversationId} already has a run in progress (${activeRunId})`);
    this.name = 'RunConflictError';
    this.conversationId = conversationId;
    this.activeRunId = activeRunId;
  }
}

/** The service is shutting down and takes no new runs (HTTP 503). */
export class RuntimeClosedError extends Error {
  public constructor() {
    super('the service is shutting down');
    this.name = 'RuntimeClosedError';
  }
}

/** Calls the model on behalf of a model node; the runtime wraps it with retries and timeouts. */
export type InvokeModel = (
  runnable: { invoke: (input: BaseMessage[], config?: RunnableConfig) => Promise<BaseMessage> },
  messages: BaseMessage[],
  config: RunnableConfig | undefined,
) => Promise<BaseMessage>;

/** A compiled graph, as much of it as the runtime uses. */
export type RunnableGraph = {
  invoke: (input: { messages: BaseMessage[] }, config?: RunnableConfig) => Promise<{ messages: BaseMessage[] }>;
};

export type GraphFactory = (
  workflow: string,
  /**
   * `userId`: whose tool set the graph offers (the user's enabled built-in and MCP tools);
   * `allowedTools`: only those of them (a profile's available_tools), absent: all.
   * `definition`: the graph to run instead of the built-in template `workflow` names.
   */
  deps: {
    model: BaseChatModel;
    toolCallLimit: number;
    invokeModel: InvokeModel;
    userId: string;
    allowedTools?: readonly string[] | undefined;
    definition?: GraphDefinition | undefined;
  },
) => RunnableGraph;

export type ChatModelFactory = (options: {
  provider: string;
  model: string;
  temperature?: number | undefined;
  maxTokens?: number | undefined;
  topP?: number | undefined;
}) => BaseChatModel;

/**
 * Where a run's record ended up: committed, spooled to disk, refused by the database
 * (dead-lettered) or nowhere yet (the spool could not be written).
 */
export type RunDurability = 'database' | 'spool' | 'rejected' | 'unsaved';

/** Tells when a run's record is settled. */
export type RunCommits = {
  readonly whenDurable: (runId: string) => Promise<RunDurability>;
};

export type RunRequest = {
  readonly runId: string;
  readonly userId: string;
  readonly conversationId: string;
  readonly correlationId: string;
  readonly workflow: string;
  /** A user's graph (a workflow definition) to run under the name `workflow`; absent: the built-in template of that name. */
  readonly definition?: GraphDefinition | undefined;
  readonly provider: string;
  readonly model: string;
  readonly temperature?: number | undefined;
  readonly maxTokens?: number | undefined;
  readonly topP?: number | undefined;
  /** The only tools the run is offered, of its user's tool set (absent: all of it). */
  readonly allowedTools?: readonly string[] | undefined;
  /** The history the graph starts from, ending with the new user message. */
  readonly messages: BaseMessage[];
  readonly budget: RunBudget;
  /**
   * The budgets the run's model calls reserve against before each call (null or absent:
   * none applies, nothing is reserved). Needs the runtime's `budgets`.
   */
  readonly budgetScope?: BudgetScope | null | undefined;
  readonly userMessageId: string | null;
  readonly assistantMessageId: string | null;
  /** The request's context: the run span becomes a child of its span. */
  readonly parentContext?: Context | undefined;
  readonly onToken?: ((text: string) => void) | undefined;
  /** Stream from the provider (default: when onToken is given). Usage is the same either way. */
  readonly streaming?: boolean | undefined;
  /** This run's timeout, overriding the runtime's `runTimeoutMs`. */
  readonly timeoutMs?: number | undefined;
};

export type RunOutcome = WorkflowRunOutput & {
  readonly runId: string;
  readonly traceId: string | undefined;
  readonly durable: RunDurability | 'none';
  readonly startedAt: number;
  readonly endedAt: number;
};

export type RunHandle = {
  readonly runId: string;
  readonly done: Promise<RunOutcome>;
};

export type ActiveRun = {
  readonly runId: string;
  readonly userId: string;
  readonly conversationId: string;
  readonly correlationId: string;
  readonly workflow: string;
  readonly provider: string;
  readonly model: string;
  readonly state: string;
  readonly usage: Usage;
  readonly costUsd: number;
  readonly modelCalls: number;
  readonly toolCalls: number;
  readonly startedAt: number;
  readonly traceId: string | undefined;
};

export type RunRuntimeOptions = {
  readonly tracer: Tracer;
  readonly createChatModel: ChatModelFactory;
  readonly createGraph: GraphFactory;
  readonly prices: PriceBook;
  readonly tokens: TokenCounter;
  readonly commits?: RunCommits | undefined;
  /** Told of each lifecycle event as it happens (the database writer commits them live). */
  readonly spanEvents?: RunSpanEventListener | undefined;
  /** Which GenAI semantic-convention names the run spans carry; the released ones by default. */
  readonly genAiConventions?: GenAiConventions | undefined;
  /** Budget reservations, used only by runs with a `budgetScope`. */
  readonly budgets?: BudgetReservations | undefined;
  readonly limits: {
    readonly runTimeoutMs: number;
    readonly modelCallTimeoutMs: number;
    readonly maxRetries: number;
    readonly retryBaseMs: number;
    readonly toolCallLimit: number;
  };
  readonly instanceId: string;
  readonly logger: Logger;
  readonly now?: () => number;
  readonly random?: () => number;
};
