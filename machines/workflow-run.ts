import { assign, setup } from 'xstate';
import type {
  BudgetExceededParams,
  BudgetReason,
  ModelCallEndedParams,
  ModelCallFailedParams,
  ModelCallResult,
  ModelCallStartedParams,
  ModelFailedEvent,
  ModelStartedEvent,
  RetryScheduledParams,
  RunBudget,
  RunEndedParams,
  TerminalReason,
  TerminalStatus,
  ToolCallEndedParams,
  ToolCallStartedParams,
  WorkflowRunContext,
  WorkflowRunEvent,
  WorkflowRunInput,
  WorkflowRunOutput,
} from './workflow-run-types.js';
import { addUsage, priceUnknown, sumCosts, totalTokens, zeroUsage } from './usage.js';

export type * from './workflow-run-types.js';

// ── Accounting (pure; the arithmetic itself is ./usage.ts) ───────────────────

type Totals = Pick<WorkflowRunContext, 'usage' | 'costUsd' | 'costUnknown' | 'usageMissingCalls' | 'modelCalls'>;

/**
 * The run's totals once `result` is accounted. Usage `null` is flagged, never counted as 0;
 * costs are summed in integer 1e-10 USD units, so the total is exact.
 */
export const accountResult = (totals: Totals, result: ModelCallResult): Totals => ({
  usage: result.usage === null ? totals.usage : addUsage(totals.usage, result.usage),
  usageMissingCalls: totals.usageMissingCalls + (result.usage === null ? 1 : 0),
  costUsd: result.costUsd === null ? totals.costUsd : sumCosts([totals.costUsd, result.costUsd]),
  costUnknown: totals.costUnknown || priceUnknown(result),
  modelCalls: totals.modelCalls + 1,
});

/** Which budget `totals` break, if any. Tokens are checked first; unknown costs count as 0. */
export const budgetBreach = (budget: RunBudget, totals: Pick<Totals, 'usage' | 'costUsd'>): BudgetReason | null => {
  if (budget.tokensRemaining !== null && totalTokens(totals.usage) > budget.tokensRemaining) return 'budget_tokens';
  if (budget.costRemainingUsd !== null && totals.costUsd > budget.costRemainingUsd) return 'budget_cost';
  return null;
};

// Only called once `budgetWouldBeExceeded` held, so one of the two budgets is broken.
const exceededBudget = (context: WorkflowRunContext): BudgetReason => budgetBreach(context.budget, context) ?? 'budget_cost';

const isBudgetReason = (reason: TerminalReason | null): reason is BudgetReason => reason === 'budget_tokens' || reason === 'budget_cost';

/** The budget a run in `budgetExceeded` broke: the refused reservation's, or the one its totals break. */
const brokenBudget = (context: WorkflowRunContext): BudgetReason =>
  isBudgetReason(context.terminalReason) ? context.terminalReason : exceededBudget(context);

/** A refused reservation: the call is never made, the run ends over budget. */
const budgetRefused = {
  target: '#workflowRun.budgetExceeded',
  actions: {
    type: 'endRun',
    params: ({ event }: { event: WorkflowRunEvent }) => ({
      status: 'budgetExceeded' as const,
      reason: event.type === 'budget.refused' ? event.reason : ('budget_tokens' as const),
    }),
  },
} as const;

/** The model call result an event reports: a response, or a stopped call's partial result. */
const modelCallOf = (event: WorkflowRunEvent): ModelCallEndedParams | null => {
  if (event.type === 'model.responded') return { callId: event.callId, result: event.result, partial: false };
  if ((event.type === 'cancel' || event.type === 'timeout' || event.type === 'interrupt') && event.partial) {
    return { ...event.partial, partial: true };
  }
  return null;
};

/** Epoch ms an event happened at (the contract puts it in `at`, or in the result's `at`). */
const eventTime = (event: WorkflowRunEvent): number | null => {
  if (event.type === 'model.responded') return event.result.at;
  return event.at ?? null;
};

const modelStarted = (event: ModelStartedEvent) => ({
  callId: event.callId,
  provider: event.provider,
  model: event.model,
  at: event.at,
});

const modelFailed = (event: ModelFailedEvent) => ({ callId: event.callId, error: event.error, at: event.at });

type EndRunParams = { status: TerminalStatus; reason: TerminalReason; error?: string };

const effects = setup({
  types: {} as {
    context: WorkflowRunContext;
    events: WorkflowRunEvent;
    input: WorkflowRunInput;
    output: WorkflowRunOutput;
  },
  actions: {
    // Effects, provided by the runtime.
    onRunStarted: () => {},
    onModelCallStarted: (_, _params: ModelCallStartedParams) => {},
    onModelCallEnded: (_, _params: ModelCallEndedParams) => {},
    onUsageMissing: (_, _params: ModelCallEndedParams) => {},
    onPriceUnknown: (_, _params: ModelCallEndedParams) => {},
    onModelCallFailed: (_, _params: ModelCallFailedParams) => {},
    onRetryScheduled: (_, _params: RetryScheduledParams) => {},
    onToolCallStarted: (_, _params: ToolCallStartedParams) => {},
    onToolCallEnded: (_, _params: ToolCallEndedParams) => {},
    onBudgetExceeded: (_, _params: BudgetExceededParams) => {},
    abortWork: (_, _params: RunEndedParams) => {},
    onRunEnded: (_, _params: RunEndedParams) => {},

    // Context updates (pure).
    startRun: assign(({ event }) => ({ status: 'running' as const, startedAt: eventTime(event) })),
    startModelCall: assign((_, params: { callId: string }) => ({ activeModelCallId: params.callId })),
    scheduleRetry: assign(({ context }) => ({
      retries: context.retries + 1,
      totalRetries: context.totalRetries + 1,
      activeModelCallId: null,
    })),
    startToolCall: assign(({ context }, params: { callId: string }) => ({
      toolCalls: context.toolCalls + 1,
      activeToolCallId: params.callId,
    })),
    endToolCall: assign(({ context }, params: { ok: boolean }) => ({
      toolErrors: context.toolErrors + (params.ok ? 0 : 1),
      activeToolCallId: null,
    })),
    recordOutput: assign((_, params: { output: string }) => ({ output: params.output })),
    endRun: assign(({ event }, params: EndRunParams) => ({
      status: params.status,
      terminalReason: params.reason,
      error: params.error ?? null,
      endedAt: eventTime(event),
    })),
  },
  guards: {
    budgetWouldBeExceeded: ({ context, event }) =>
      event.type === 'model.responded' && budgetBreach(context.budget, accountResult(context, event.result)) !== null,
    canRetry: ({ context, event }) => event.type === 'model.failed' && event.error.transient && context.retries < context.limits.maxRetries,
    toolCallLimitReached: ({ context }) => context.toolCalls >= context.limits.toolCallLimit,
  },
});

const runSetup = effects.extend({
  actions: {
    /** Adds a response's (or a stopped call's partial) usage and cost, then reports the call. */
    accountModelResult: effects.enqueueActions(({ event, enqueue }) => {
      const call = modelCallOf(event);
      if (call === null) return;
      enqueue.assign(({ context }) => ({
        ...accountResult(context, call.result),
        retries: call.partial ? context.retries : 0,
        activeModelCallId: null,
      }));
      enqueue({ type: 'onModelCallEnded', params: call });
      if (call.result.usage === null) enqueue({ type: 'onUsageMissing', params: call });
      if (priceUnknown(call.result)) enqueue({ type: 'onPriceUnknown', params: call });
    }),
  },
});

const endRun = (params: EndRunParams) => ({ type: 'endRun', params }) as const;

// cancel / timeout / interrupt: accepted in queued and anywhere in running. A stopped
// model call's partial result is accounted first, so usage is never lost.
const stopTransitions = {
  cancel: {
    target: '#workflowRun.cancelled',
    actions: ['accountModelResult', endRun({ status: 'cancelled', reason: 'cancelled' })],
  },
  timeout: {
    target: '#workflowRun.timedOut',
    actions: ['accountModelResult', endRun({ status: 'timedOut', reason: 'timeout' })],
  },
  interrupt: {
    target: '#workflowRun.interrupted',
    actions: ['accountModelResult', endRun({ status: 'interrupted', reason: 'interrupted' })],
  },
} as const;

/**
 * One workflow run (a chat turn) as pure data: every effect is a named action whose
 * default is a no-op; src/runtime supplies the real ones with `.provide({ actions })`
 * and sends the events of docs/run-contract.md.
 */
export const workflowRunMachine = runSetup.createMachine({
  id: 'workflowRun',
  context: ({ input }) => ({
    ...input,
    status: 'queued',
    usage: zeroUsage(),
    costUsd: 0,
    costUnknown: false,
    usageMissingCalls: 0,
    modelCalls: 0,
    toolCalls: 0,
    toolErrors: 0,
    retries: 0,
    totalRetries: 0,
    startedAt: null,
    endedAt: null,
    terminalReason: null,
    error: null,
    output: null,
    activeModelCallId: null,
    activeToolCallId: null,
  }),
  initial: 'queued',
  states: {
    queued: {
      on: {
        'run.start': { target: 'running', actions: ['startRun', 'onRunStarted'] },
        ...stopTransitions,
      },
    },
    running: {
      initial: 'stepping',
      on: {
        'run.failed': {
          target: 'failed',
          actions: { type: 'endRun', params: ({ event }) => ({ status: 'failed', reason: 'error', error: event.error.message }) },
        },
        ...stopTransitions,
      },
      states: {
        stepping: {
          on: {
            'model.started': {
              target: 'callingModel',
              actions: [
                { type: 'startModelCall', params: ({ event }) => ({ callId: event.callId }) },
                {
                  type: 'onModelCallStarted',
                  params: ({ context, event }) => ({ ...modelStarted(event), attempt: context.retries + 1 }),
                },
              ],
            },
            'tool.started': [
              {
                guard: 'toolCallLimitReached',
                target: '#workflowRun.failed',
                actions: {
                  type: 'endRun',
                  params: ({ context }) => ({
                    status: 'failed',
                    reason: 'tool_call_limit',
                    error: `tool call limit of ${context.limits.toolCallLimit} reached`,
                  }),
                },
              },
              {
                target: 'callingTool',
                actions: [
                  { type: 'startToolCall', params: ({ event }) => ({ callId: event.callId }) },
                  {
                    type: 'onToolCallStarted',
                    params: ({ event }) => ({ callId: event.callId, tool: event.tool, args: event.args, at: event.at }),
                  },
                ],
              },
            ],
            'budget.refused': budgetRefused,
            'run.finished': {
              target: '#workflowRun.completed',
              actions: [
                { type: 'recordOutput', params: ({ event }) => ({ output: event.output }) },
                endRun({ status: 'completed', reason: 'completed' }),
              ],
            },
          },
        },
        callingModel: {
          on: {
            'model.responded': [
              {
                guard: 'budgetWouldBeExceeded',
                target: '#workflowRun.budgetExceeded',
                actions: [
                  'accountModelResult',
                  { type: 'endRun', params: ({ context }) => ({ status: 'budgetExceeded', reason: exceededBudget(context) }) },
                ],
              },
              { target: 'stepping', actions: 'accountModelResult' },
            ],
            'model.failed': [
              {
                guard: 'canRetry',
                target: 'retrying',
                actions: [
                  { type: 'onModelCallFailed', params: ({ event }) => ({ ...modelFailed(event), willRetry: true }) },
                  'scheduleRetry',
                ],
              },
              {
                target: '#workflowRun.failed',
                actions: [
                  { type: 'onModelCallFailed', params: ({ event }) => ({ ...modelFailed(event), willRetry: false }) },
                  {
                    type: 'endRun',
                    params: ({ event }) => ({
                      status: 'failed',
                      reason: event.error.transient ? 'retries_exhausted' : 'non_transient_error',
                      error: event.error.message,
                    }),
                  },
                ],
              },
            ],
          },
        },
        // The runtime waits the backoff, then sends model.started for the next attempt.
        retrying: {
          entry: {
            type: 'onRetryScheduled',
            params: ({ context, event }) => ({
              retry: context.retries,
              retryAfterMs: event.type === 'model.failed' ? (event.error.retryAfterMs ?? null) : null,
            }),
          },
          on: {
            'model.started': {
              target: 'callingModel',
              actions: [
                { type: 'startModelCall', params: ({ event }) => ({ callId: event.callId }) },
                {
                  type: 'onModelCallStarted',
                  params: ({ context, event }) => ({ ...modelStarted(event), attempt: context.retries + 1 }),
                },
              ],
            },
            'budget.refused': budgetRefused,
          },
        },
        callingTool: {
          on: {
            'tool.returned': {
              target: 'stepping',
              actions: [
                { type: 'endToolCall', params: ({ event }) => ({ ok: event.ok }) },
                {
                  type: 'onToolCallEnded',
                  params: ({ event }) => ({
                    callId: event.callId,
                    tool: event.tool,
                    ok: event.ok,
                    resultSize: event.resultSize,
                    error: event.error ?? null,
                    at: event.at,
                  }),
                },
              ],
            },
          },
        },
      },
    },
    // Final states accept nothing; each reports the end of the run exactly once.
    completed: {
      type: 'final',
      entry: { type: 'onRunEnded', params: { status: 'completed' } },
    },
    failed: {
      type: 'final',
      entry: [
        { type: 'abortWork', params: { status: 'failed' } },
        { type: 'onRunEnded', params: { status: 'failed' } },
      ],
    },
    cancelled: {
      type: 'final',
      entry: [
        { type: 'abortWork', params: { status: 'cancelled' } },
        { type: 'onRunEnded', params: { status: 'cancelled' } },
      ],
    },
    timedOut: {
      type: 'final',
      entry: [
        { type: 'abortWork', params: { status: 'timedOut' } },
        { type: 'onRunEnded', params: { status: 'timedOut' } },
      ],
    },
    budgetExceeded: {
      type: 'final',
      entry: [
        { type: 'onBudgetExceeded', params: ({ context }) => ({ reason: brokenBudget(context) }) },
        { type: 'abortWork', params: { status: 'budgetExceeded' } },
        { type: 'onRunEnded', params: { status: 'budgetExceeded' } },
      ],
    },
    interrupted: {
      type: 'final',
      entry: [
        { type: 'abortWork', params: { status: 'interrupted' } },
        { type: 'onRunEnded', params: { status: 'interrupted' } },
      ],
    },
  },
  output: ({ context }) => ({
    // Output is only computed in a final state, where endRun has set a terminal status.
    status: context.status as TerminalStatus,
    terminalReason: context.terminalReason,
    usage: context.usage,
    costUsd: context.costUsd,
    costUnknown: context.costUnknown,
    modelCalls: context.modelCalls,
    toolCalls: context.toolCalls,
    error: context.error,
    output: context.output,
  }),
});
