import type { BaseMessage } from '@langchain/core/messages';
import { sql, type DatabasePool } from 'slonik';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createTokenCounter } from '../../src/providers/token-counter.js';
import { RuntimeClosedError } from '../../src/runtime/run-runtime.js';
import { conversationTotals, createHarness, type Harness } from '../helpers/run-harness.js';
import { conversationsOutOfStep, readAssistantMessage, readEventTypes, readModelCalls, readRun } from '../helpers/run-rows.js';
import { waitUntil } from '../helpers/wait.js';

/*
 * Runs that outlive their process: a process that dies leaves its runs `running`, and
 * the next start must end them as `interrupted`; a graceful shutdown ends live runs as
 * `interrupted` itself, keeping the usage they had.
 */

const harnesses: Harness[] = [];
afterEach(async () => {
  // Later harnesses may share the first one's database: close them first.
  for (const h of harnesses.splice(0).reverse()) {
    await h.close();
  }
});
const track = (h: Harness): Harness => {
  harnesses.push(h);
  return h;
};

const unfinished = (pool: DatabasePool) =>
  pool.oneFirst(sql.type(z.object({ n: z.number() }))`
    SELECT count(*) AS n FROM workflow_runs WHERE status IN ('queued', 'running')`);

const text = (message: BaseMessage): string => (typeof message.content === 'string' ? message.content : JSON.stringify(message.content));

describe('runs left behind by a stopped process', () => {
  it(
    'marks the runs a dead process left running as interrupted when services start again on the same database',
    { timeout: 60_000 },
    async () => {
      const first = track(await createHarness());
      let open!: () => void;
      const gate = new Promise<void>((resolve) => {
        open = resolve;
      });
      first.script([{ content: 'An answer that comes too late.', latencyMs: 50, usage: { input_tokens: 40, output_tokens: 8 } }], { gate });
      const turn = await first.startTurn({});
      await waitUntil(() => first.services.runtime.get(turn.runId)?.state === 'running.callingModel', {
        timeoutMs: 10_000,
        what: 'the model call',
      });
      expect((await readRun(first.db.pool, turn.runId)).status).toBe('running');
      // A crash loses at most what waits for the next flush: let the reported progress commit.
      await first.services.writer.forceFlush();

      // The first process is gone without a shutdown; a new one starts on the same database
      // (same host, so the same instance id).
      const second = track(await createHarness({}, { database: first.db }));
      expect(second.services.instanceId).toBe(first.services.instanceId);

      expect(await readRun(first.db.pool, turn.runId)).toMatchObject({
        status: 'interrupted',
        terminal_reason: 'interrupted',
        total_tokens: 0,
      });
      // What was committed while it ran stays; the call in flight is usage_missing, never zero.
      const lifecycle = ['workflow_started', 'usage_missing', 'workflow_interrupted'];
      expect(await readEventTypes(first.db.pool, turn.runId)).toEqual(lifecycle);
      expect(await readModelCalls(first.db.pool, turn.runId)).toMatchObject([
        { usage_source: 'missing', input_tokens: null, output_tokens: null },
      ]);
      expect(await unfinished(first.db.pool)).toBe(0);
      // The interrupted run leaves its (empty) reply, so the conversation keeps alternating.
      expect(await readAssistantMessage(first.db.pool, turn.runId)).toMatchObject({
        content: '',
        finish_reason: 'interrupted',
        total_tokens: 0,
      });
      const totals = await conversationTotals(first.db, turn.conversationId);
      expect(totals).toMatchObject({ message_count: 2, sum_count: 2, total_tokens: 0, sum_tokens: 0 });

      // Should the old process still deliver its record, it counts nothing a second time.
      open();
      const outcome = await turn.done;
      expect(outcome.durable).toBe('database');
      expect((await readRun(first.db.pool, turn.runId)).status).toBe('interrupted');
      expect(await readEventTypes(first.db.pool, turn.runId)).toEqual(lifecycle);
      expect(await readAssistantMessage(first.db.pool, turn.runId)).toMatchObject({ content: '', finish_reason: 'interrupted' });
      expect(await conversationTotals(first.db, turn.conversationId)).toEqual(totals);
      expect(await conversationsOutOfStep(first.db.pool)).toEqual([]);

      // A third start finds nothing more to interrupt.
      track(await createHarness({}, { database: first.db }));
      expect(await readEventTypes(first.db.pool, turn.runId)).toEqual(lifecycle);
    },
  );

  it('ends live runs as interrupted on a graceful shutdown, keeping their usage so far', { timeout: 60_000 }, async () => {
    const h = track(await createHarness({ TOOL_CALL_LIMIT: '4' }));
    const tokens = createTokenCounter();

    // A run streaming its answer after a tool call…
    const streamingModel = h.script([
      { content: '', toolCalls: [{ name: 'calculator', args: { expression: '1+2' } }], usage: { input_tokens: 30, output_tokens: 3 } },
      {
        content: 'one two three four five six seven eight nine ten eleven twelve',
        chunkDelayMs: 40,
        usage: { input_tokens: 60, output_tokens: 12 },
      },
    ]);
    const chunks: string[] = [];
    const streaming = await h.startTurn({ workflow: 'chat_with_tools', streaming: true, onToken: (chunk) => chunks.push(chunk) });
    // …and a run still waiting for its first model response.
    const waitingModel = h.script([{ content: 'never sent', latencyMs: 10_000, usage: { input_tokens: 9, output_tokens: 2 } }]);
    const waiting = await h.startTurn({ message: 'Tell me something slow.' });

    await waitUntil(() => chunks.length >= 3 && waitingModel.calls.length === 1, { timeoutMs: 10_000, what: 'both runs to be mid-call' });
    await h.services.runtime.shutdown(5_000);
    const [streamed, waited] = await Promise.all([streaming.done, waiting.done]);

    // The cut call is estimated from its prompt and what it streamed before the stop.
    const promptOf = (messages: BaseMessage[]) => tokens.count(messages.map(text).join('\n'));
    const streamedPrompt = promptOf(streamingModel.calls[1]!.messages);
    const streamedOutput = tokens.count(chunks.join(''));
    expect(streamed).toMatchObject({ status: 'interrupted', terminalReason: 'interrupted', durable: 'database', modelCalls: 2 });
    expect(streamed.usage).toEqual({
      inputUncached: 30 + streamedPrompt,
      cacheRead: 0,
      cacheWrite: 0,
      output: 3 + streamedOutput,
      reasoning: 0,
    });
    const waitedPrompt = promptOf(waitingModel.calls[0]!.messages);
    expect(waited).toMatchObject({ status: 'interrupted', durable: 'database', modelCalls: 1 });
    expect(waited.usage).toEqual({ inputUncached: waitedPrompt, cacheRead: 0, cacheWrite: 0, output: 0, reasoning: 0 });

    const streamedTotal = 33 + streamedPrompt + streamedOutput;
    expect(await readRun(h.db.pool, streaming.runId)).toMatchObject({
      status: 'interrupted',
      terminal_reason: 'interrupted',
      input_tokens: 30 + streamedPrompt,
      output_tokens: 3 + streamedOutput,
      total_tokens: streamedTotal,
      model_call_count: 2,
      tool_call_count: 1,
    });
    const calls = await readModelCalls(h.db.pool, streaming.runId);
    expect(calls.map((call) => [call.usage_source, call.input_tokens, call.output_tokens])).toEqual([
      ['provider', 30, 3],
      ['estimated', streamedPrompt, streamedOutput],
    ]);
    expect(await readAssistantMessage(h.db.pool, streaming.runId)).toMatchObject({
      content: chunks.join(''),
      prompt_tokens: 30 + streamedPrompt,
      completion_tokens: 3 + streamedOutput,
      total_tokens: streamedTotal,
      finish_reason: 'interrupted',
    });
    expect(await readRun(h.db.pool, waiting.runId)).toMatchObject({
      status: 'interrupted',
      input_tokens: waitedPrompt,
      output_tokens: 0,
      total_tokens: waitedPrompt,
    });
    expect(await readAssistantMessage(h.db.pool, waiting.runId)).toMatchObject({ content: '', total_tokens: waitedPrompt });

    for (const turn of [streaming, waiting]) {
      const types = await readEventTypes(h.db.pool, turn.runId);
      expect(types.filter((type) => type === 'workflow_started')).toHaveLength(1);
      expect(types.filter((type) => type.startsWith('workflow_') && type !== 'workflow_started')).toEqual(['workflow_interrupted']);
      const totals = await conversationTotals(h.db, turn.conversationId);
      expect(totals.message_count).toBe(2);
      expect(totals.message_count).toBe(totals.sum_count);
      expect(totals.total_tokens).toBe(totals.sum_tokens);
      expect(totals.total_cost).toBe(totals.sum_cost);
    }
    expect(await unfinished(h.db.pool)).toBe(0);

    // Once shut down, no new turn is taken, and nothing of it is saved.
    h.script([{ content: 'too late' }]);
    await expect(h.startTurn({ userId: streaming.userId, conversationId: streaming.conversationId })).rejects.toBeInstanceOf(
      RuntimeClosedError,
    );
    expect((await conversationTotals(h.db, streaming.conversationId)).message_count).toBe(2);
  });
});
