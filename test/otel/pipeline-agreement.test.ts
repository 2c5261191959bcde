import { sql } from 'slonik';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createHarness, type Harness } from '../helpers/run-harness.js';
import { scrape, total } from './helpers/prometheus.js';

const usage = (input: number, output: number, cacheRead = 0, reasoning = 0) => ({
  input_tokens: input,
  output_tokens: output,
  input_token_details: { cache_read: cacheRead },
  output_token_details: { reasoning },
});

/** Tools, streaming, a failure after a retry, a cancel, a budget stop, a missing usage, an unpriced model. */
const runMix = async (h: Harness): Promise<void> => {
  const userId = undefined;
  h.script([
    { content: '', toolCalls: [{ name: 'calculator', args: { expression: '3*3' } }], usage: usage(90, 9, 40) },
    { content: 'Nine.', usage: usage(120, 4, 80, 2) },
  ]);
  await (await h.startTurn({ workflow: 'chat_with_tools', userId })).done;

  h.script([{ content: 'Streaming answer in several chunks of text.', usage: usage(33, 11) }]);
  await (await h.startTurn({ streaming: true, onToken: () => {} })).done;

  h.script([
    { error: { message: 'busy', status: 429 } },
    { content: '', toolCalls: [{ name: 'calculator', args: { expression: '1/0' } }], usage: usage(50, 6) },
    { error: { message: 'bad request', status: 400 } },
  ]);
  await (await h.startTurn({ workflow: 'chat_with_tools' })).done;

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
  await (await h.startTurn({ workflow: 'chat_with_tools', budget: { tokensRemaining: 100, costRemainingUsd: null } })).done;

  h.script([{ content: 'no usage reported', usage: null }]);
  await (await h.startTurn({})).done;

  h.script([{ content: 'no price known', usage: usage(12, 3) }]);
  await (await h.startTurn({ model: 'unpriced-model-x' })).done;
};

const DbSums = z.object({
  runs: z.number(),
  run_input: z.number(),
  run_cache_read: z.number(),
  run_output: z.number(),
  run_reasoning: z.number(),
  run_cost: z.number(),
  call_input: z.number(),
  call_cache_read: z.number(),
  call_output: z.number(),
  call_cost: z.number(),
  msg_prompt: z.number(),
  msg_completion: z.number(),
  msg_total: z.number(),
  msg_cost: z.number(),
  conv_tokens: z.number(),
  conv_cost: z.number(),
  conv_count: z.number(),
  msg_count: z.number(),
  an_input: z.number(),
  an_cache_read: z.number(),
  an_output: z.number(),
  an_reasoning: z.number(),
  an_cost: z.number(),
  an_runs: z.number(),
});

const dbSums = (h: Harness) =>
  h.db.pool.one(sql.type(DbSums)`
    SELECT
      (SELECT count(*) FROM workflow_runs) AS runs,
      (SELECT COALESCE(sum(input_tokens), 0) FROM workflow_runs) AS run_input,
      (SELECT COALESCE(sum(cache_read_tokens), 0) FROM workflow_runs) AS run_cache_read,
      (SELECT COALESCE(sum(output_tokens), 0) FROM workflow_runs) AS run_output,
      (SELECT COALESCE(sum(reasoning_tokens), 0) FROM workflow_runs) AS run_reasoning,
      (SELECT COALESCE(sum(cost), 0) FROM workflow_runs) AS run_cost,
      (SELECT COALESCE(sum(input_tokens), 0) FROM model_calls) AS call_input,
      (SELECT COALESCE(sum(cache_read_tokens), 0) FROM model_calls) AS call_cache_read,
      (SELECT COALESCE(sum(output_tokens), 0) FROM model_calls) AS call_output,
      (SELECT COALESCE(sum(cost), 0) FROM model_calls) AS call_cost,
      (SELECT COALESCE(sum(prompt_tokens), 0) FROM messages) AS msg_prompt,
      (SELECT COALESCE(sum(completion_tokens), 0) FROM messages) AS msg_completion,
      (SELECT COALESCE(sum(total_tokens), 0) FROM messages) AS msg_total,
      (SELECT COALESCE(sum(cost), 0) FROM messages) AS msg_cost,
      (SELECT COALESCE(sum(total_tokens), 0) FROM conversations) AS conv_tokens,
      (SELECT COALESCE(sum(total_cost), 0) FROM conversations) AS conv_cost,
      (SELECT COALESCE(sum(message_count), 0) FROM conversations) AS conv_count,
      (SELECT count(*) FROM messages) AS msg_count,
      (SELECT COALESCE(sum(input_tokens), 0) FROM analytics_hourly) AS an_input,
      (SELECT COALESCE(sum(cache_read_tokens), 0) FROM analytics_hourly) AS an_cache_read,
      (SELECT COALESCE(sum(output_tokens), 0) FROM analytics_hourly) AS an_output,
      (SELECT COALESCE(sum(reasoning_tokens), 0) FROM analytics_hourly) AS an_reasoning,
      (SELECT COALESCE(sum(cost), 0) FROM analytics_hourly) AS an_cost,
      (SELECT COALESCE(sum(runs_total), 0) FROM analytics_hourly) AS an_runs`);

const checkAgreement = async (h: Harness): Promise<void> => {
  // Flushes the database writer too: the runs' records, rollups included, are committed.
  await h.services.tracerProvider.forceFlush();
  const s = await dbSums(h);
  const samples = (await scrape(h.services.metrics.metricsHandler)).samples;
  const tokens = (type: string) => total(samples, 'chatter_llm_tokens_total', { gen_ai_token_type: type });
  const promCost = total(samples, 'chatter_llm_cost_total');

  expect(s.runs).toBe(7);
  // Run rows = model-call rows = message rows = conversation totals.
  expect(s.call_input).toBe(s.run_input);
  expect(s.call_cache_read).toBe(s.run_cache_read);
  expect(s.call_output).toBe(s.run_output);
  expect(s.msg_prompt).toBe(s.run_input);
  expect(s.msg_completion).toBe(s.run_output);
  expect(s.msg_total).toBe(s.run_input + s.run_output);
  expect(s.conv_tokens).toBe(s.msg_total);
  expect(s.conv_count).toBe(s.msg_count);
  // Prometheus counters (input = uncached input there, as in the analytics rollups).
  expect(tokens('input')).toBe(s.run_input - s.run_cache_read);
  expect(tokens('cache_read')).toBe(s.run_cache_read);
  expect(tokens('output')).toBe(s.run_output);
  expect(tokens('reasoning')).toBe(s.run_reasoning);
  expect(total(samples, 'chatter_workflow_runs_total')).toBe(s.runs);
  // Analytics rollups.
  expect(s.an_input).toBe(s.run_input - s.run_cache_read);
  expect(s.an_cache_read).toBe(s.run_cache_read);
  expect(s.an_output).toBe(s.run_output);
  expect(s.an_reasoning).toBe(s.run_reasoning);
  expect(s.an_runs).toBe(s.runs);
  // Money: every figure is a sum of values rounded to 1e-10 USD.
  const cents = (usd: number) => Math.round(usd * 1e10);
  expect(cents(s.call_cost)).toBe(cents(s.run_cost + 0));
  expect(cents(s.msg_cost)).toBe(cents(s.run_cost));
  expect(cents(s.conv_cost)).toBe(cents(s.msg_cost));
  expect(cents(s.an_cost)).toBe(cents(s.call_cost));
  expect(cents(promCost)).toBe(cents(s.call_cost));
  expect(s.run_input).toBeGreaterThan(0);
  expect(s.call_cost).toBeGreaterThan(0);
};

describe('one pipeline, one set of figures', () => {
  it('agrees across messages, conversations, runs, model calls, Prometheus and analytics', async () => {
    const h = await createHarness({ TOOL_CALL_LIMIT: '3', MODEL_MAX_RETRIES: '1' });
    try {
      await runMix(h);
      await checkAgreement(h);
    } finally {
      await h.close();
    }
  });

  it('agrees just the same with OTEL_TRACES_SAMPLER=always_off', async () => {
    const h = await createHarness({ TOOL_CALL_LIMIT: '3', MODEL_MAX_RETRIES: '1', OTEL_TRACES_SAMPLER: 'always_off' });
    try {
      await runMix(h);
      await checkAgreement(h);
      expect(h.spans()).toEqual([]);
    } finally {
      await h.close();
    }
  });
});
