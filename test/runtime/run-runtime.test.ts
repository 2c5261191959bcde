import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { RunConflictError } from '../../src/runtime/run-runtime.js';
import { conversationTotals, createHarness, type Harness } from '../helpers/run-harness.js';

// gpt-4o-mini at its shipped price: $0.15 / 1M input, $0.075 / 1M cached input, $0.60 / 1M output.
const usage = (input: number, output: number, cacheRead = 0) => ({
  input_tokens: input,
  output_tokens: output,
  total_tokens: input + output,
  input_token_details: { cache_read: cacheRead },
});
const costOf = (uncached: number, cacheRead: number, output: number) =>
  Math.round((uncached * 0.15 + cacheRead * 0.075 + output * 0.6) * 10_000) / 1e10;

const RunRow = z.object({
  status: z.string(),
  terminal_reason: z.string().nullable(),
  input_tokens: z.number(),
  cache_read_tokens: z.number(),
  output_tokens: z.number(),
  total_tokens: z.number(),
  cost: z.number().nullable(),
  model_call_count: z.number(),
  tool_call_count: z.number(),
  correlation_id: z.string(),
});
const MessageRow = z.object({
  role: z.string(),
  content: z.string(),
  prompt_tokens: z.number().nullable(),
  completion_tokens: z.number().nullable(),
  total_tokens: z.number().nullable(),
  cached_input_tokens: z.number().nullable(),
  cost: z.number().nullable(),
  model_used: z.string().nullable(),
  provider_used: z.string().nullable(),
  finish_reason: z.string().nullable(),
  response_time_ms: z.number().nullable(),
  correlation_id: z.string().nullable(),
});

describe('the run runtime', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness({ TOOL_CALL_LIMIT: '4', MODEL_MAX_RETRIES: '2' });
  });
  afterAll(async () => {
    await h.close();
  });

  const run = (runId: string) =>
    h.db.pool.one(sql.type(RunRow)`
      SELECT status, terminal_reason, input_tokens, cache_read_tokens, output_tokens, total_tokens, cost,
             model_call_count, tool_call_count, correlation_id
      FROM workflow_runs WHERE id = ${runId}`);
  const assistant = (runId: string) =>
    h.db.pool.maybeOne(sql.type(MessageRow)`
      SELECT role, content, prompt_tokens, completion_tokens, total_tokens, cached_input_tokens, cost, model_used,
             provider_used, finish_reason, response_time_ms, correlation_id
      FROM messages WHERE run_id = ${runId} AND role = 'assistant'`);
  const eventTypes = async (runId: string) =>
    h.db.pool.anyFirst(sql.type(z.object({ type: z.string() }))`
      SELECT type FROM events WHERE run_id = ${runId} ORDER BY seq`);

  it('accumulates the usage of all three model calls of a two-tool-call run', async () => {
    h.script([
      { content: '', toolCalls: [{ name: 'calculator', args: { expression: '2+2' } }], usage: usage(100, 10, 40) },
      { content: '', toolCalls: [{ name: 'calculator', args: { expression: '4*3' } }], usage: usage(130, 12) },
      { content: '2 + 2 is 4 and 4 × 3 is 12.', usage: usage(160, 20, 100) },
    ]);
    const turn = await h.startTurn({ workflow: 'chat_with_tools' });
    const outcome = await turn.done;

    expect(outcome.status).toBe('completed');
    expect(outcome.modelCalls).toBe(3);
    expect(outcome.toolCalls).toBe(2);
    expect(outcome.usage).toEqual({ inputUncached: 250, cacheRead: 140, cacheWrite: 0, output: 42, reasoning: 0 });
    const expectedCost = costOf(60, 40, 10) + costOf(130, 0, 12) + costOf(60, 100, 20);
    expect(outcome.costUsd).toBeCloseTo(expectedCost, 10);
    expect(outcome.durable).toBe('database');

    const row = await run(turn.runId);
    expect(row).toMatchObject({
      status: 'completed',
      input_tokens: 390,
      cache_read_tokens: 140,
      output_tokens: 42,
      total_tokens: 432,
      model_call_count: 3,
      tool_call_count: 2,
    });
    expect(row.cost).toBeCloseTo(expectedCost, 10);
    const calls = await h.db.pool.any(sql.type(z.object({ input_tokens: z.number(), output_tokens: z.number() }))`
      SELECT input_tokens, output_tokens FROM model_calls WHERE run_id = ${turn.runId} ORDER BY sequence`);
    expect(calls).toEqual([
      { input_tokens: 100, output_tokens: 10 },
      { input_tokens: 130, output_tokens: 12 },
      { input_tokens: 160, output_tokens: 20 },
    ]);
    const message = await assistant(turn.runId);
    expect(message).toMatchObject({
      content: '2 + 2 is 4 and 4 × 3 is 12.',
      prompt_tokens: 390,
      completion_tokens: 42,
      total_tokens: 432,
      cached_input_tokens: 140,
      provider_used: 'openai',
      model_used: 'gpt-4o-mini-2024-07-18',
      finish_reason: 'stop',
    });
    expect(message?.cost).toBeCloseTo(expectedCost, 10);
    expect(message?.response_time_ms).toBeGreaterThanOrEqual(0);

    const types = await eventTypes(turn.runId);
    expect(types.filter((type) => type === 'workflow_started')).toHaveLength(1);
    expect(types.filter((type) => type === 'model_response')).toHaveLength(3);
    expect(types.filter((type) => type === 'tool_called')).toHaveLength(2);
    expect(types.at(-1)).toBe('workflow_completed');

    const totals = await conversationTotals(h.db, turn.conversationId);
    expect(totals.message_count).toBe(2);
    expect(totals.message_count).toBe(totals.sum_count);
    expect(totals.total_tokens).toBe(totals.sum_tokens);
    expect(totals.total_cost).toBeCloseTo(totals.sum_cost, 10);
  });

  it('counts two tool calls requested in one model response', async () => {
    h.script([
      {
        content: '',
        toolCalls: [
          { name: 'calculator', args: { expression: '1+1' } },
          { name: 'calculator', args: { expression: '2+2' } },
        ],
        usage: usage(30, 6),
      },
      { content: 'Two and four.', usage: usage(50, 4) },
    ]);
    const turn = await h.startTurn({ workflow: 'chat_with_tools' });
    const outcome = await turn.done;
    expect(outcome.status).toBe('completed');
    expect(outcome.toolCalls).toBe(2);
    const tools = await h.db.pool.anyFirst(sql.type(z.object({ tool: z.string() }))`
      SELECT tool FROM tool_calls WHERE run_id = ${turn.runId} ORDER BY sequence`);
    expect(tools).toEqual(['calculator', 'calculator']);
    expect((await eventTypes(turn.runId)).filter((type) => type === 'tool_called')).toHaveLength(2);
  });

  it('gives identical usage streaming and not streaming', async () => {
    const script = () =>
      h.script([
        { content: '', toolCalls: [{ name: 'calculator', args: { expression: '1+1' } }], usage: usage(50, 5, 10) },
        { content: 'The answer is two, as computed.', usage: usage(70, 9) },
      ]);
    script();
    const plain = await (await h.startTurn({ workflow: 'chat_with_tools', streaming: false })).done;
    script();
    const tokens: string[] = [];
    const streamed = await (await h.startTurn({ workflow: 'chat_with_tools', streaming: true, onToken: (text) => tokens.push(text) })).done;
    expect(streamed.usage).toEqual(plain.usage);
    expect(streamed.costUsd).toBe(plain.costUsd);
    expect(streamed.output).toBe(plain.output);
    expect(tokens.length).toBeGreaterThan(1);
    expect(tokens.join('')).toBe('The answer is two, as computed.');
  });

  it('retries a rate-limited call and then succeeds', async () => {
    h.script([
      { error: { message: 'Rate limit', status: 429, retryAfterMs: 10 } },
      { error: { message: 'Bad gateway', status: 502 } },
      { content: 'Recovered.', usage: usage(20, 3) },
    ]);
    const turn = await h.startTurn({});
    const outcome = await turn.done;
    expect(outcome.status).toBe('completed');
    expect(outcome.usage.output).toBe(3);
    const types = await eventTypes(turn.runId);
    expect(types.filter((type) => type === 'retry_scheduled')).toHaveLength(2);
    const calls = await h.db.pool.any(sql.type(z.object({ error: z.string().nullable(), usage_source: z.string() }))`
      SELECT error, usage_source FROM model_calls WHERE run_id = ${turn.runId} ORDER BY sequence`);
    expect(calls.map((call) => call.error === null)).toEqual([false, false, true]);
    expect(calls.map((call) => call.usage_source)).toEqual(['missing', 'missing', 'provider']);
  });

  it('fails after the retries are exhausted and keeps the usage so far', async () => {
    h.script([
      { content: '', toolCalls: [{ name: 'calculator', args: { expression: '6*7' } }], usage: usage(40, 4) },
      { error: { message: 'overloaded', status: 503 } },
      { error: { message: 'overloaded', status: 503 } },
      { error: { message: 'overloaded', status: 503 } },
    ]);
    const turn = await h.startTurn({ workflow: 'chat_with_tools' });
    const outcome = await turn.done;
    expect(outcome.status).toBe('failed');
    expect(outcome.terminalReason).toBe('retries_exhausted');
    expect(outcome.usage).toEqual({ inputUncached: 40, cacheRead: 0, cacheWrite: 0, output: 4, reasoning: 0 });
    const row = await run(turn.runId);
    expect(row).toMatchObject({ status: 'failed', total_tokens: 44, model_call_count: 1 });
    const message = await assistant(turn.runId);
    expect(message).toMatchObject({ total_tokens: 44, finish_reason: 'retries_exhausted' });
    expect((await eventTypes(turn.runId)).at(-1)).toBe('workflow_failed');
    const totals = await conversationTotals(h.db, turn.conversationId);
    expect(totals.total_tokens).toBe(totals.sum_tokens);
  });

  it('fails at once on a non-transient provider error', async () => {
    h.script([{ error: { message: 'invalid api key', status: 401 } }]);
    const outcome = await (await h.startTurn({})).done;
    expect(outcome.status).toBe('failed');
    expect(outcome.terminalReason).toBe('non_transient_error');
  });

  it('cancels a streaming run and accounts the usage of the cut call', async () => {
    h.script([
      { content: '', toolCalls: [{ name: 'calculator', args: { expression: '1+2' } }], usage: usage(30, 3) },
      { content: 'one two three four five six seven eight nine ten', chunkDelayMs: 40, usage: usage(60, 10) },
    ]);
    const chunks: string[] = [];
    let cancelled = false;
    const turn = await h.startTurn({
      workflow: 'chat_with_tools',
      streaming: true,
      onToken: (text) => {
        chunks.push(text);
        if (!cancelled && chunks.length >= 2) {
          cancelled = true;
          setImmediate(() => h.services.runtime.cancel(turn.runId, 'client disconnected'));
        }
      },
    });
    const outcome = await turn.done;
    expect(outcome.status).toBe('cancelled');
    expect(outcome.modelCalls).toBe(2);
    // The first call's reported usage plus an estimate for the cut one.
    expect(outcome.usage.inputUncached).toBeGreaterThan(30);
    expect(outcome.usage.output).toBeGreaterThan(3);
    const row = await run(turn.runId);
    expect(row.status).toBe('cancelled');
    expect(row.total_tokens).toBe(outcome.usage.inputUncached + outcome.usage.output);
    const message = await assistant(turn.runId);
    expect(message?.content).toBe(chunks.join(''));
    expect(message?.total_tokens).toBe(row.total_tokens);
    const estimated = await h.db.pool.anyFirst(sql.type(z.object({ usage_source: z.string() }))`
      SELECT usage_source FROM model_calls WHERE run_id = ${turn.runId} ORDER BY sequence`);
    expect(estimated).toEqual(['provider', 'estimated']);
    expect((await eventTypes(turn.runId)).at(-1)).toBe('workflow_cancelled');
  });

  it('ends a run that exceeds its token budget, keeping the usage of the response that crossed it', async () => {
    h.script([
      { content: '', toolCalls: [{ name: 'calculator', args: { expression: '9-1' } }], usage: usage(400, 50) },
      { content: 'never reached', usage: usage(10, 1) },
    ]);
    const outcome = await (
      await h.startTurn({ workflow: 'chat_with_tools', budget: { tokensRemaining: 300, costRemainingUsd: null } })
    ).done;
    expect(outcome.status).toBe('budgetExceeded');
    expect(outcome.terminalReason).toBe('budget_tokens');
    expect(outcome.usage.inputUncached + outcome.usage.output).toBe(450);
  });

  it('flags a response without usage as usage_missing instead of counting zero', async () => {
    h.script([{ content: 'No usage here.', usage: null }]);
    const turn = await h.startTurn({});
    const outcome = await turn.done;
    expect(outcome.status).toBe('completed');
    const types = await eventTypes(turn.runId);
    expect(types).toContain('usage_missing');
    const calls = await h.db.pool.any(sql.type(z.object({ input_tokens: z.number().nullable(), usage_source: z.string() }))`
      SELECT input_tokens, usage_source FROM model_calls WHERE run_id = ${turn.runId}`);
    expect(calls).toEqual([{ input_tokens: null, usage_source: 'missing' }]);
  });

  it('leaves cost NULL with a price_unknown event for a model without a price', async () => {
    h.script([{ content: 'Priced? No.', usage: usage(10, 2) }]);
    const turn = await h.startTurn({ model: 'some-unpriced-model' });
    await turn.done;
    const message = await assistant(turn.runId);
    expect(message?.cost).toBeNull();
    expect(message?.total_tokens).toBe(12);
    expect(await eventTypes(turn.runId)).toContain('price_unknown');
  });

  it('refuses a second concurrent turn in the same conversation', async () => {
    h.script([{ content: 'slow answer', latencyMs: 200, usage: usage(5, 2) }]);
    const first = await h.startTurn({});
    await expect(h.startTurn({ userId: first.userId, conversationId: first.conversationId })).rejects.toBeInstanceOf(RunConflictError);
    await first.done;
  });

  it('times out a slow model call and retries it', async () => {
    const slow = await createHarness({ MODEL_CALL_TIMEOUT_MS: '150', MODEL_RETRY_BASE_MS: '1' });
    try {
      slow.script([
        { content: 'too slow', latencyMs: 3_000, usage: usage(5, 2) },
        { content: 'in time', usage: usage(6, 3) },
      ]);
      const turn = await slow.startTurn({});
      const outcome = await turn.done;
      expect(outcome.status).toBe('completed');
      expect(outcome.usage).toEqual({ inputUncached: 6, cacheRead: 0, cacheWrite: 0, output: 3, reasoning: 0 });
      const calls = await slow.db.pool.any(sql.type(z.object({ error: z.string().nullable() }))`
        SELECT error FROM model_calls WHERE run_id = ${turn.runId} ORDER BY sequence`);
      expect(calls.map((call) => call.error)).toEqual([expect.stringContaining('timed out'), null]);
    } finally {
      await slow.close();
    }
  });

  it('times a run out and records it as timedOut', async () => {
    const slow = await createHarness({ RUN_TIMEOUT_MS: '150' });
    try {
      slow.script([{ content: 'too slow', latencyMs: 2_000, usage: usage(5, 2) }]);
      const outcome = await (await slow.startTurn({})).done;
      expect(outcome.status).toBe('timedOut');
      expect(outcome.terminalReason).toBe('timeout');
    } finally {
      await slow.close();
    }
  });
});
