/**
 * Cancellation helpers shared by the in-process chat models (scripted and local).
 *
 * Both models must stop *promptly* when the run is cancelled: a pending chunk delay
 * is interrupted by the abort event instead of running to completion, so a cancel
 * never waits for the rest of a simulated stream.
 */

/**
 * The error thrown when a call is cancelled through its AbortSignal. It is named
 * `AbortError` like the DOM/fetch error (what `classifyProviderError` and LangChain's
 * own retry logic look for) and keeps the signal's reason as `cause`, so a caller can
 * still tell a user cancel from a timeout.
 */
export function createAbortError(signal?: AbortSignal): Error {
  const error = new Error('The model call was aborted.', { cause: signal?.reason });
  error.name = 'AbortError';
  return error;
}

/**
 * Throws {@link createAbortError} when the signal has fired.
 * @throws AbortError
 */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw createAbortError(signal);
}

/**
 * Waits `ms` milliseconds, or rejects with an AbortError as soon as the signal fires.
 * `ms <= 0` still checks the signal but does not yield to the timer queue, so a
 * zero-latency stream stays fast.
 * @throws AbortError
 */
export async function abortableSleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  throwIfAborted(signal);
  if (ms <= 0) return;
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(createAbortError(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
