import type { Harness } from '../../helpers/run-harness.js';

const usage = (input: number, output: number, cacheRead = 0, reasoning = 0) => ({
  input_tokens: input,
  output_tokens: output,
  input_token_details: { cache_read: cacheRead },
  output_token_details: { reasoning },
});

/** How many runs one `runMix` finishes. */
export const RUNS_PER_MIX = 8;

/**
 * Runs that give every dashboard panel something to show: two providers, tool calls
 * (one failing), streaming (time to first chunk), a retried then failed call, a cancel,
 * a budget stop, a call without usage, an unpriced model; each run by a new user.
 */
export const runMix = async (h: Harness): Promise<void> => {
  h.script([
    { content: '', toolCalls: [{ name: 'calculator', args: { expression: '3*3' } }], usage: usage(90, 9, 40) },
    { content: 'Nine.', usage: usage(120, 4, 80, 2) },
  ]);
  await (
    await h.startTurn({ workflow: 'chat_with_tools' })
  ).done;

  h.script([{ content: 'Streaming answer in several chunks of text.', usage: usage(33, 11) }]);
  await (
    await h.startTurn({ streaming: true, onToken: () => {} })
  ).done;

  h.script([{ content: 'Hello from another provider.', usage: usage(25, 7, 10) }]);
  await (
    await h.startTurn({ provider: 'anthropic', model: 'claude-sonnet-4-5', streaming: true, onToken: () => {} })
  ).done;

  h.script([
    { error: { message: 'busy', status: 429 } },
    { content: '', toolCalls: [{ name: 'calculator', args: { expression: '1/0' } }], usage: usage(50, 6) },
    { error: { message: 'bad request', status: 400 } },
  ]);
  await (
    await h.startTurn({ workflow: 'chat_with_tools' })
  ).done;

  h.script([{ content: 'a b c d e f g h i j k l m n o p', chunkDelayMs: 30, usage: usage(44, 16) }]);
  let cancelled = false;
  const turn = await h.startTurn({
    streaming: true,
    onToken: () => {
      if (!cancelled) {
        cancelled = true;
        setImmediate(() => h.services.runtime.cancel(turn.runId));
      }
    },
  });
  await turn.done;

  h.script([
    { content: '', toolCalls: [{ name: 'calculator', args: { expression: '2+2' } }], usage: usage(500, 60) },
    { content: 'unreached', usage: usage(1, 1) },
  ]);
  await (
    await h.startTurn({ workflow: 'chat_with_tools', budget: { tokensRemaining: 100, costRemainingUsd: null } })
  ).done;

  h.script([{ content: 'no usage reported', usage: null }]);
  await (
    await h.startTurn({})
  ).done;

  h.script([{ content: 'no price known', usage: usage(12, 3) }]);
  await (
    await h.startTurn({ model: 'unpriced-model-x' })
  ).done;

  // Flushes the database writer too: the runs' records, rollups included, are committed.
  await h.services.tracerProvider.forceFlush();
};
