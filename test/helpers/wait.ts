/**
 * Polls `done` every `intervalMs` until it holds.
 *
 * @throws Error naming `what` once `timeoutMs` passed without it.
 */
export const waitUntil = async (
  done: () => boolean | Promise<boolean>,
  { timeoutMs = 5_000, what = 'the condition', intervalMs = 10 }: { timeoutMs?: number; what?: string; intervalMs?: number } = {},
): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
};
