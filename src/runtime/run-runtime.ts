import type { BaseChatModel } from '@langchain/core/language_models/chat_models';
import type { BaseMessage } from '@langchain/core/messages';
import type { RunnableConfig } from '@langchain/core/runnables';
import { context as otelContext, type Context, type Tracer } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { createActor, type Actor } from 'xstate';
import { workflowRunMachine } from '../../machines/workflow-run.js';
import type {
  RunBudget,
  TerminalStatus,
  Usage,
  WorkflowRunEvent,
  WorkflowRunOutput,
} from '../../machines/workflow-run-types.js';
import { abortableSleep } from '../providers/abort.js';
import { computeBackoffMs } from '../providers/errors.js';
import type { TokenCounter } from '../providers/token-counter.js';
import type { PriceBook } from './price-book.js';
import { RunCallbacks } from './run-callbacks.js';
import { RunSpans } from './run-spans.js';

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
  deps: { model: BaseChatModel; toolCallLimit: number; invokeModel: InvokeModel },
) => RunnableGraph;

export type ChatModelFactory = (options: {
  provider: string;
  model: string;
  temperature?: number | undefined;
  maxTokens?: number | undefined;
}) => BaseChatModel;

/** Tells when a run's records are safe (committed, or spooled to disk). */
export type RunCommits = {
  readonly whenDurable: (runId: string) => Promise<'database' | 'spool'>;
};

export type RunRequest = {
  readonly runId: string;
  readonly userId: string;
  readonly conversationId: string;
  readonly correlationId: string;
  readonly workflow: string;
  readonly provider: string;
  readonly model: string;
  readonly temperature?: number | undefined;
  readonly maxTokens?: number | undefined;
  /** The history the graph starts from, ending with the new user message. */
  readonly messages: BaseMessage[];
  readonly budget: RunBudget;
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
  readonly durable: 'database' | 'spool' | 'none';
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

type RunActor = Actor<typeof workflowRunMachine>;

type LiveRun = {
  readonly request: RunRequest;
  readonly spans: RunSpans;
  readonly callbacks: RunCallbacks;
  readonly controller: AbortController;
  readonly startedAt: number;
  actor: RunActor | undefined;
  /** Text streamed by the current model call: the answer so far if the run is stopped. */
  answerSoFar: string;
  retryAfterMs: number | null;
  timer: NodeJS.Timeout | undefined;
  ended: boolean;
};

const stateName = (value: unknown): string =>
  typeof value === 'string'
    ? value
    : Object.entries(value as Record<string, unknown>)
        .map(([key, child]) => `${key}.${stateName(child)}`)
        .join(',');

const messageText = (message: BaseMessage | undefined): string => {
  if (message === undefined) {
    return '';
  }
  return typeof message.content === 'string'
    ? message.content
    : message.content.map((part) => ('text' in part && typeof part.text === 'string' ? part.text : '')).join('');
};

/**
 * Runs workflow runs: one XState actor per run, driven by what LangGraph reports while
 * the graph runs; the actor's actions (provided here) open and close the run's spans.
 * Keeps a registry of live runs, one per conversation at a time.
 */
export class RunRuntime {
  private readonly options: RunRuntimeOptions;
  private readonly now: () => number;
  private readonly runs = new Map<string, LiveRun>();
  private readonly byConversation = new Map<string, string>();
  private readonly machine;
  private closed = false;

  public constructor(options: RunRuntimeOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    const live = (runId: string): LiveRun | undefined => this.runs.get(runId);
    this.machine = workflowRunMachine.provide({
      actions: {
        onRunStarted: ({ context }) => live(context.runId)?.spans.runStarted(context.startedAt ?? this.now()),
        onModelCallStarted: ({ context }, params) => {
          const run = live(context.runId);
          if (run !== undefined) {
            run.answerSoFar = '';
            run.spans.modelCallStarted(params);
          }
        },
        onModelCallEnded: ({ context }, params) => live(context.runId)?.spans.modelCallEnded(params),
        onUsageMissing: ({ context }, params) => live(context.runId)?.spans.usageMissing(params),
        onPriceUnknown: ({ context }, params) => live(context.runId)?.spans.priceUnknown(params),
        onModelCallFailed: ({ context }, params) => live(context.runId)?.spans.modelCallFailed(params),
        onRetryScheduled: ({ context }, params) => {
          const run = live(context.runId);
          if (run !== undefined) {
            run.retryAfterMs = params.retryAfterMs;
            run.spans.retryScheduled(params, this.now());
          }
        },
        onToolCallStarted: ({ context }, params) => live(context.runId)?.spans.toolCallStarted(params),
        onToolCallEnded: ({ context }, params) => live(context.runId)?.spans.toolCallEnded(params),
        onBudgetExceeded: ({ context }, params) => live(context.runId)?.spans.budgetExceeded(params.reason),
        abortWork: ({ context }) => live(context.runId)?.controller.abort(),
        onRunEnded: ({ context }, params) => {
          const run = live(context.runId);
          if (run !== undefined) {
            const output = params.status === 'completed' ? context.output : run.answerSoFar || null;
            run.spans.runEnded(params.status, context, output);
          }
        },
      },
    });
  }

  /**
   * Starts a run. Builds the model and graph first, so a bad provider, model or
   * workflow fails here, before anything is recorded.
   *
   * @throws RunConflictError when the conversation already has a run in flight.
   * @throws RuntimeClosedError while shutting down.
   */
  public start(request: RunRequest): RunHandle {
    if (this.closed) {
      throw new RuntimeClosedError();
    }
    const activeRunId = this.byConversation.get(request.conversationId);
    if (activeRunId !== undefined && (activeRunId !== request.runId || this.runs.has(request.runId))) {
      throw new RunConflictError(request.conversationId, activeRunId);
    }
    const { limits } = this.options;
    const model = this.options.createChatModel({
      provider: request.provider,
      model: request.model,
      temperature: request.temperature,
      maxTokens: request.maxTokens,
    });
    const controller = new AbortController();
    const run: LiveRun = {
      request,
      controller,
      startedAt: this.now(),
      spans: new RunSpans(
        this.options.tracer,
        {
          runId: request.runId,
          workflow: request.workflow,
          userId: request.userId,
          conversationId: request.conversationId,
          correlationId: request.correlationId,
          provider: request.provider,
          model: request.model,
          userMessageId: request.userMessageId,
          assistantMessageId: request.assistantMessageId,
          instanceId: this.options.instanceId,
        },
        request.parentContext ?? otelContext.active(),
      ),
      callbacks: new RunCallbacks({
        provider: request.provider,
        model: request.model,
        prices: this.options.prices,
        tokens: this.options.tokens,
        now: this.now,
        send: (event) => this.send(request.runId, event),
        streaming: request.streaming ?? request.onToken !== undefined,
        onToken: (text) => {
          const live = this.runs.get(request.runId);
          if (live !== undefined) {
            live.answerSoFar += text;
          }
          request.onToken?.(text);
        },
      }),
      actor: undefined,
      answerSoFar: '',
      retryAfterMs: null,
      timer: undefined,
      ended: false,
    };
    const graph = this.options.createGraph(request.workflow, {
      model,
      toolCallLimit: limits.toolCallLimit,
      invokeModel: (runnable, messages, config) => this.invokeModel(run, runnable, messages, config),
    });

    this.runs.set(request.runId, run);
    this.byConversation.set(request.conversationId, request.runId);
    const actor = createActor(this.machine, {
      input: {
        runId: request.runId,
        workflow: request.workflow,
        conversationId: request.conversationId,
        userId: request.userId,
        correlationId: request.correlationId,
        limits: { toolCallLimit: limits.toolCallLimit, maxRetries: limits.maxRetries },
        budget: request.budget,
      },
    });
    run.actor = actor;
    const done = new Promise<RunOutcome>((resolve) => {
      actor.subscribe({
        complete: () => resolve(this.finish(run)),
        error: (error) => {
          this.options.logger.error({ err: error, runId: request.runId }, 'run actor failed');
          resolve(this.finish(run));
        },
      });
    });
    actor.start();
    actor.send({ type: 'run.start', at: run.startedAt });
    run.timer = setTimeout(() => this.stop(request.runId, 'timeout'), request.timeoutMs ?? limits.runTimeoutMs);
    void this.execute(run, graph);
    return { runId: request.runId, done };
  }

  /**
   * Holds the conversation for a run about to start, so that the user's message is
   * saved only when no other run is in flight there. Returns the release function
   * (call it if the run is not started after all); `start` with the same run id takes
   * the reservation over.
   *
   * @throws RunConflictError when the conversation already has a run.
   * @throws RuntimeClosedError while shutting down.
   */
  public reserve(conversationId: string, runId: string): () => void {
    if (this.closed) {
      throw new RuntimeClosedError();
    }
    const activeRunId = this.byConversation.get(conversationId);
    if (activeRunId !== undefined) {
      throw new RunConflictError(conversationId, activeRunId);
    }
    this.byConversation.set(conversationId, runId);
    return () => {
      if (this.byConversation.get(conversationId) === runId && !this.runs.has(runId)) {
        this.byConversation.delete(conversationId);
      }
    };
  }

  /** Cancels a live run; its usage so far is kept. Returns false if it is not live. */
  public cancel(runId: string, reason = 'cancelled'): boolean {
    return this.stop(runId, 'cancel', reason);
  }

  /** Interrupts a live run (as shutdown does); its usage so far is kept. Returns false if it is not live. */
  public interrupt(runId: string, reason = 'interrupted'): boolean {
    return this.stop(runId, 'interrupt', reason);
  }

  public get(runId: string): ActiveRun | undefined {
    const run = this.runs.get(runId);
    return run === undefined ? undefined : this.describe(run);
  }

  public active(): ActiveRun[] {
    return [...this.runs.values()].filter((run) => !run.ended).map((run) => this.describe(run));
  }

  public activeCount(): number {
    return this.byConversation.size;
  }

  /**
   * Stops taking runs, lets live ones finish for `graceMs`, then ends those still
   * running as `interrupted` (their usage so far is kept) and waits at most
   * `timeoutMs` more for their records.
   */
  public async shutdown(timeoutMs: number, graceMs = 0): Promise<void> {
    this.closed = true;
    const drained = (withinMs: number) =>
      new Promise<boolean>((resolve) => {
        const deadline = Date.now() + withinMs;
        const check = () => {
          if (this.byConversation.size === 0) {
            resolve(true);
          } else if (Date.now() >= deadline) {
            resolve(false);
          } else {
            setTimeout(check, 10).unref();
          }
        };
        check();
      });
    if (graceMs > 0 && (await drained(graceMs))) {
      return;
    }
    for (const runId of [...this.runs.keys()]) {
      this.stop(runId, 'interrupt', 'shutdown');
    }
    await drained(timeoutMs);
  }

  private describe(run: LiveRun): ActiveRun {
    const snapshot = run.actor?.getSnapshot();
    const context = snapshot?.context;
    return {
      runId: run.request.runId,
      userId: run.request.userId,
      conversationId: run.request.conversationId,
      correlationId: run.request.correlationId,
      workflow: run.request.workflow,
      provider: run.request.provider,
      model: run.request.model,
      state: snapshot === undefined ? 'queued' : stateName(snapshot.value),
      usage: context?.usage ?? { inputUncached: 0, cacheRead: 0, cacheWrite: 0, output: 0, reasoning: 0 },
      costUsd: context?.costUsd ?? 0,
      modelCalls: context?.modelCalls ?? 0,
      toolCalls: context?.toolCalls ?? 0,
      startedAt: run.startedAt,
      traceId: run.spans.traceId,
    };
  }

  private send(runId: string, event: WorkflowRunEvent): void {
    const run = this.runs.get(runId);
    if (run?.actor !== undefined && !run.ended) {
      run.actor.send(event);
    }
  }

  private stop(runId: string, type: 'cancel' | 'timeout' | 'interrupt', reason?: string): boolean {
    const run = this.runs.get(runId);
    if (run === undefined || run.ended || run.actor?.getSnapshot().status !== 'active') {
      return false;
    }
    const partial = run.callbacks.takeInFlight();
    const at = this.now();
    const base = partial === undefined ? {} : { partial };
    if (type === 'timeout') {
      run.actor.send({ type, at, ...base });
    } else {
      run.actor.send({ type, at, ...base, ...(reason === undefined ? {} : { reason }) });
    }
    return true;
  }

  private async execute(run: LiveRun, graph: RunnableGraph): Promise<void> {
    try {
      const result = await otelContext.with(run.spans.context, () =>
        graph.invoke(
          { messages: run.request.messages },
          { callbacks: [run.callbacks], signal: run.controller.signal, runName: run.request.workflow },
        ),
      );
      this.send(run.request.runId, { type: 'run.finished', output: messageText(result.messages.at(-1)), at: this.now() });
    } catch (error) {
      if (run.controller.signal.aborted) {
        return; // the machine already ended the run (cancel, timeout, budget, failure)
      }
      this.send(run.request.runId, {
        type: 'run.failed',
        error: { message: error instanceof Error ? error.message : String(error) },
        at: this.now(),
      });
    }
  }

  /**
   * One model call with the per-call timeout, retried while the machine says so
   * (it moves to `retrying` on a transient error with retries left), after an
   * exponential backoff with full jitter that honours Retry-After.
   */
  private async invokeModel(
    run: LiveRun,
    runnable: Parameters<InvokeModel>[0],
    messages: BaseMessage[],
    config: RunnableConfig | undefined,
  ): Promise<BaseMessage> {
    const { limits } = this.options;
    for (;;) {
      const callTimeout = new AbortController();
      const timer = setTimeout(() => callTimeout.abort(), limits.modelCallTimeoutMs);
      try {
        return await runnable.invoke(messages, {
          ...config,
          signal: AbortSignal.any([run.controller.signal, callTimeout.signal]),
        });
      } catch (error) {
        if (run.controller.signal.aborted) {
          throw error;
        }
        if (callTimeout.signal.aborted) {
          run.callbacks.failInFlight(`model call timed out after ${limits.modelCallTimeoutMs} ms`);
        }
        const snapshot = run.actor?.getSnapshot();
        if (snapshot === undefined || !snapshot.matches({ running: 'retrying' })) {
          throw error;
        }
        const delay = computeBackoffMs(
          snapshot.context.retries,
          limits.retryBaseMs,
          run.retryAfterMs ?? undefined,
          this.options.random,
        );
        await abortableSleep(delay, run.controller.signal);
      } finally {
        clearTimeout(timer);
      }
    }
  }

  private async finish(run: LiveRun): Promise<RunOutcome> {
    run.ended = true;
    clearTimeout(run.timer);
    const snapshot = run.actor!.getSnapshot();
    const output = snapshot.output as WorkflowRunOutput | undefined;
    const context = snapshot.context;
    let durable: RunOutcome['durable'] = 'none';
    try {
      if (this.options.commits !== undefined) {
        durable = await this.options.commits.whenDurable(run.request.runId);
      }
    } catch (error) {
      this.options.logger.error({ err: error, runId: run.request.runId }, 'run records could not be saved');
    } finally {
      this.runs.delete(run.request.runId);
      if (this.byConversation.get(run.request.conversationId) === run.request.runId) {
        this.byConversation.delete(run.request.conversationId);
      }
    }
    const status: TerminalStatus = output?.status ?? (context.status as TerminalStatus);
    return {
      status,
      terminalReason: context.terminalReason,
      usage: context.usage,
      costUsd: context.costUsd,
      costUnknown: context.costUnknown,
      modelCalls: context.modelCalls,
      toolCalls: context.toolCalls,
      error: context.error,
      output: status === 'completed' ? context.output : run.answerSoFar || null,
      runId: run.request.runId,
      traceId: run.spans.traceId,
      durable,
      startedAt: run.startedAt,
      endedAt: context.endedAt ?? this.now(),
    };
  }
}
