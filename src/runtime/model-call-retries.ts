import type { BaseMessage } from '@langchain/core/messages';
import type { RunnableConfig } from '@langchain/core/runnables';
import { abortableSleep } from '../providers/abort.js';
import { computeBackoffMs } from '../providers/errors.js';
import type { InvokeModel } from './run-types.js';

export type ModelCallPolicy = {
  /** One call that takes longer is aborted (and may be retried). */
  readonly timeoutMs: number;
  /** Base of the exponential backoff between retries (full jitter). */
  readonly retryBaseMs: number;
  readonly random?: (() => number) | undefined;
};

/** What the retry loop needs of the run the call belongs to. */
export type ModelCallRun = {
  /** The run's signal: once it fires (cancel, run timeout, budget), nothing is retried. */
  readonly signal: AbortSignal;
  /** Told when a call timed out, before its error reaches the machine. */
  readonly onTimeout: (message: string) => void;
  /**
   * The machine's decision on the failure just reported: the retry number and the
   * provider's Retry-After when it moved to `retrying`, undefined when it did not.
   */
  readonly retryDecision: () => { readonly retries: number; readonly retryAfterMs: number | null } | undefined;
  /**
   * Runs before each attempt (budgeted runs: reserves its worst case) and returns the
   * attempt's max_tokens cap, passed to the model as the `maxTokens` call option.
   * A rejection (a refused reservation) ends the loop with it; nothing is retried.
   */
  readonly beforeAttempt?: ((messages: BaseMessage[], runnable: Parameters<InvokeModel>[0]) => Promise<number | undefined>) | undefined;
};

/**
 * One model call with the per-call timeout, retried while the machine says so (it
 * moves to `retrying` on a transient error with retries left), after an exponential
 * backoff with full jitter that honours Retry-After. The machine, not this loop, keeps
 * the retry count and the limit: a failure reaches it through the run's callbacks
 * before this loop looks at its decision.
 *
 * @throws the call's error when the machine does not retry it, or an AbortError when
 *   the run is stopped during the backoff.
 */
export const callModelWithRetries = async (
  run: ModelCallRun,
  policy: ModelCallPolicy,
  runnable: Parameters<InvokeModel>[0],
  messages: BaseMessage[],
  config: RunnableConfig | undefined,
): Promise<BaseMessage> => {
  for (;;) {
    const maxTokens = run.beforeAttempt === undefined ? undefined : await run.beforeAttempt(messages, runnable);
    run.signal.throwIfAborted();
    const callTimeout = new AbortController();
    const timer = setTimeout(() => callTimeout.abort(), policy.timeoutMs);
    try {
      return await runnable.invoke(messages, {
        ...config,
        ...(maxTokens === undefined ? {} : { maxTokens }),
        signal: AbortSignal.any([run.signal, callTimeout.signal]),
      } as RunnableConfig);
    } catch (error) {
      if (run.signal.aborted) {
        throw error;
      }
      if (callTimeout.signal.aborted) {
        run.onTimeout(`model call timed out after ${policy.timeoutMs} ms`);
      }
      const decision = run.retryDecision();
      if (decision === undefined) {
        throw error;
      }
      const delay = computeBackoffMs(decision.retries, policy.retryBaseMs, decision.retryAfterMs ?? undefined, policy.random);
      await abortableSleep(delay, run.signal);
    } finally {
      clearTimeout(timer);
    }
  }
};
