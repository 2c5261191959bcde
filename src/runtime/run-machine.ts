import { workflowRunMachine } from '../../machines/workflow-run.js';
import type { Actor } from 'xstate';
import type { RunBudgetLedger } from './run-budget-ledger.js';
import type { RunCallbacks } from './run-callbacks.js';
import type { RunSpans } from './run-spans.js';
import type { RunRequest } from './run-types.js';

export type RunMachine = ReturnType<typeof provideRunMachine>;

/** A run in flight: its request, its actor and what its effects work on. */
export type LiveRun = {
  readonly request: RunRequest;
  readonly spans: RunSpans;
  readonly callbacks: RunCallbacks;
  readonly controller: AbortController;
  /** The run's budget reservations; undefined when no budget applies. */
  readonly budget: RunBudgetLedger | undefined;
  readonly startedAt: number;
  actor: Actor<RunMachine> | undefined;
  /** Text streamed by the current model call: the answer so far if the run is stopped. */
  answerSoFar: string;
  retryAfterMs: number | null;
  timer: NodeJS.Timeout | undefined;
  ended: boolean;
};

/**
 * The run machine with its effects: each named action of the machine opens, annotates
 * or closes the run's spans (or aborts its work). `live` finds the run an action is
 * for; a run already gone is left alone.
 */
export const provideRunMachine = (live: (runId: string) => LiveRun | undefined, now: () => number) =>
  workflowRunMachine.provide({
    actions: {
      onRunStarted: ({ context }) => live(context.runId)?.spans.runStarted(context.startedAt ?? now()),
      onModelCallStarted: ({ context }, params) => {
        const run = live(context.runId);
        if (run !== undefined) {
          run.answerSoFar = '';
          run.spans.modelCallStarted(params, run.callbacks.estimatedInputTokens(params.callId));
        }
      },
      onModelCallEnded: ({ context }, params) => {
        const run = live(context.runId);
        if (run !== undefined) {
          // A stopped call's partial result is an estimate: its worst case stays held.
          if (params.partial) run.budget?.keepHeld();
          else run.budget?.settle(params.result);
          run.spans.modelCallEnded(params);
        }
      },
      onUsageMissing: ({ context }, params) => live(context.runId)?.spans.usageMissing(params),
      onPriceUnknown: ({ context }, params) => live(context.runId)?.spans.priceUnknown(params),
      onModelCallFailed: ({ context }, params) => {
        const run = live(context.runId);
        if (run !== undefined) {
          run.budget?.release();
          run.spans.modelCallFailed(params);
        }
      },
      onRetryScheduled: ({ context }, params) => {
        const run = live(context.runId);
        if (run !== undefined) {
          run.retryAfterMs = params.retryAfterMs;
          run.spans.retryScheduled(params, now());
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
