import type { BaseMessage } from '@langchain/core/messages';
import { context as otelContext } from '@opentelemetry/api';
import { createActor } from 'xstate';
import { zeroUsage } from '../../machines/usage.js';
import type { TerminalStatus, WorkflowRunEvent, WorkflowRunOutput } from '../../machines/workflow-run-types.js';
import { callModelWithRetries } from './model-call-retries.js';
import { boundTools, RunBudgetLedger } from './run-budget-ledger.js';
import { RunCallbacks } from './run-callbacks.js';
import { provideRunMachine, type LiveRun, type RunMachine } from './run-machine.js';
import { RunSpans } from './run-spans.js';
import {
  RunConflictError,
  RuntimeClosedError,
  type ActiveRun,
  type RunHandle,
  type RunnableGraph,
  type RunOutcome,
  type RunRequest,
  type RunRuntimeOptions,
} from './run-types.js';

export * from './run-types.js';

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
  private readonly machine: RunMachine;
  private closed = false;

  public constructor(options: RunRuntimeOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    this.machine = provideRunMachine((runId) => this.runs.get(runId), this.now);
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
      topP: request.topP,
    });
    const controller = new AbortController();
    const { budgets } = this.options;
    const scope = request.budgetScope ?? null;
    const run: LiveRun = {
      request,
      controller,
      budget:
        budgets === undefined || scope === null
          ? undefined
          : new RunBudgetLedger({
              budgets,
              scope,
              tokens: this.options.tokens,
              prices: this.options.prices,
              runId: request.runId,
              userId: request.userId,
              conversationId: request.conversationId,
              provider: request.provider,
              model: request.model,
              maxTokens: request.maxTokens ?? null,
              now: this.now,
              logger: this.options.logger,
              onRefused: (reason) => this.send(request.runId, { type: 'budget.refused', reason, at: this.now() }),
            }),
      startedAt: this.now(),
      spans: new RunSpans({
        tracer: this.options.tracer,
        info: {
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
        parentContext: request.parentContext ?? otelContext.active(),
        listener: this.options.spanEvents,
        conventions: this.options.genAiConventions,
      }),
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
      userId: request.userId,
      allowedTools: request.allowedTools,
      definition: request.definition,
      toolCallLimit: limits.toolCallLimit,
      invokeModel: (runnable, messages, config) =>
        callModelWithRetries(
          {
            signal: controller.signal,
            onTimeout: (message) => {
              run.budget?.keepHeld(); // the provider may bill the call cut short
              run.callbacks.failInFlight(message);
            },
            beforeAttempt:
              run.budget === undefined ? undefined : (messages, runnable) => run.budget!.reserve(messages, boundTools(runnable)),
            retryDecision: () => {
              const snapshot = run.actor?.getSnapshot();
              return snapshot !== undefined && snapshot.matches({ running: 'retrying' })
                ? { retries: snapshot.context.retries, retryAfterMs: run.retryAfterMs }
                : undefined;
            },
          },
          { timeoutMs: limits.modelCallTimeoutMs, retryBaseMs: limits.retryBaseMs, random: this.options.random },
          runnable,
          messages,
          config,
        ),
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
      usage: context?.usage ?? zeroUsage(),
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
