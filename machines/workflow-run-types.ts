/**
 * Types of the workflow-run machine (docs/run-contract.md). Kept apart from the machine
 * so that src/runtime, src/providers and otel/ can import them without the machine.
 */

import type { Usage } from './usage.js';

export type ModelCallResult = {
  provider: string;
  requestModel: string;
  responseModel: string;
  /** `null` when the provider reported no usage (flag `usage_missing`), never zeros. */
  usage: Usage | null;
  usageSource: 'provider' | 'estimated' | 'missing';
  /** USD rounded to 10 decimals; `null` when no price is known (flag `price_unknown`) or there is no usage to price (flag `usage_missing`). */
  costUsd: number | null;
  priceId: string | null;
  finishReason: string | null;
  hasToolCalls: boolean;
  latencyMs: number;
  timeToFirstChunkMs: number | null;
  /** Epoch ms of the response. */
  at: number;
};

/** The result of a model call that was in flight when the run was stopped. */
export type PartialModelCall = { callId: string; result: ModelCallResult };

export type ModelCallError = {
  message: string;
  transient: boolean;
  retryAfterMs?: number;
  status?: number;
};

/**
 * `run.start` carries no payload in the contract; `at` is an optional extension so the
 * machine can record `startedAt` without reading a clock.
 */
export type RunStartEvent = { type: 'run.start'; at?: number };
export type ModelStartedEvent = { type: 'model.started'; callId: string; provider: string; model: string; at: number };
export type ModelRespondedEvent = { type: 'model.responded'; callId: string; result: ModelCallResult };
export type ModelFailedEvent = { type: 'model.failed'; callId: string; error: ModelCallError; at: number };
export type ToolStartedEvent = { type: 'tool.started'; callId: string; tool: string; args: unknown; at: number };
export type ToolReturnedEvent = {
  type: 'tool.returned';
  callId: string;
  tool: string;
  ok: boolean;
  resultSize: number;
  error?: string;
  at: number;
};
export type RunFinishedEvent = { type: 'run.finished'; output: string; at: number };
export type RunFailedEvent = { type: 'run.failed'; error: { message: string }; at: number };
export type CancelEvent = { type: 'cancel'; reason?: string; at: number; partial?: PartialModelCall };
export type TimeoutEvent = { type: 'timeout'; at: number; partial?: PartialModelCall };
export type InterruptEvent = { type: 'interrupt'; reason?: string; at: number; partial?: PartialModelCall };
/**
 * The next model call could not reserve its worst case in the budget named by `reason`
 * (sent by the runtime before the call, so while stepping or retrying).
 */
export type BudgetRefusedEvent = { type: 'budget.refused'; reason: BudgetReason; at: number };

export type WorkflowRunEvent =
  | RunStartEvent
  | ModelStartedEvent
  | ModelRespondedEvent
  | ModelFailedEvent
  | ToolStartedEvent
  | ToolReturnedEvent
  | RunFinishedEvent
  | RunFailedEvent
  | CancelEvent
  | TimeoutEvent
  | InterruptEvent
  | BudgetRefusedEvent;

/** Events that stop a run from outside the graph; each may carry an in-flight call's result. */
export type StopEvent = CancelEvent | TimeoutEvent | InterruptEvent;

export type TerminalStatus = 'completed' | 'failed' | 'cancelled' | 'timedOut' | 'budgetExceeded' | 'interrupted';
export type RunStatus = 'queued' | 'running' | TerminalStatus;

export type BudgetReason = 'budget_tokens' | 'budget_cost';

/** Stable strings stored as the run's terminal reason. */
export type TerminalReason =
  | 'completed'
  | 'error'
  | 'retries_exhausted'
  | 'non_transient_error'
  | 'tool_call_limit'
  | 'cancelled'
  | 'timeout'
  | 'interrupted'
  | BudgetReason;

export type RunLimits = { toolCallLimit: number; maxRetries: number };

/** What the run may still spend; `null` means unlimited. */
export type RunBudget = { tokensRemaining: number | null; costRemainingUsd: number | null };

export type WorkflowRunInput = {
  runId: string;
  workflow: string;
  conversationId: string;
  userId: string;
  correlationId: string;
  limits: RunLimits;
  budget: RunBudget;
};

export type WorkflowRunContext = WorkflowRunInput & {
  status: RunStatus;
  /** Sum of the usage of every accounted model call (calls with usage `null` add nothing). */
  usage: Usage;
  /** Sum of the known costs (USD, 10 decimals), summed in integer units; unknown costs are not in it (see costUnknown). */
  costUsd: number;
  /** True once an accounted call with usage had no known price (a call without usage is `usage_missing` instead). */
  costUnknown: boolean;
  usageMissingCalls: number;
  /** Accounted model responses, in-flight results of stopped runs included. */
  modelCalls: number;
  toolCalls: number;
  /** Tool calls that returned `ok: false` (not a run failure). */
  toolErrors: number;
  /** Retries used for the current model call; reset by a successful response. */
  retries: number;
  totalRetries: number;
  startedAt: number | null;
  endedAt: number | null;
  terminalReason: TerminalReason | null;
  error: string | null;
  output: string | null;
  /** The call in flight; in a final state, the call that was in flight when the run ended. */
  activeModelCallId: string | null;
  activeToolCallId: string | null;
};

export type WorkflowRunOutput = {
  status: TerminalStatus;
  terminalReason: TerminalReason | null;
  usage: Usage;
  costUsd: number;
  costUnknown: boolean;
  modelCalls: number;
  toolCalls: number;
  error: string | null;
  output: string | null;
};

// Params of the effect actions the runtime provides with `machine.provide({ actions })`.
export type ModelCallStartedParams = { callId: string; provider: string; model: string; at: number; attempt: number };
export type ModelCallEndedParams = { callId: string; result: ModelCallResult; partial: boolean };
export type ModelCallFailedParams = { callId: string; error: ModelCallError; at: number; willRetry: boolean };
export type RetryScheduledParams = { retry: number; retryAfterMs: number | null };
export type ToolCallStartedParams = { callId: string; tool: string; args: unknown; at: number };
export type ToolCallEndedParams = {
  callId: string;
  tool: string;
  ok: boolean;
  resultSize: number;
  error: string | null;
  at: number;
};
export type BudgetExceededParams = { reason: BudgetReason };
export type RunEndedParams = { status: TerminalStatus };
