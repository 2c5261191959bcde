import { sql } from 'slonik';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { asUser, registerUser } from '../helpers/api.js';
import { createChatApi } from '../helpers/chat-api.js';
import { startMcpServer } from '../helpers/mcp-server.js';
import { createHarness, type Harness } from '../helpers/run-harness.js';
import { toolLoopGraph } from '../helpers/workflow-graphs.js';
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
  await (
    await h.startTurn({ workflow: 'chat_with_tools', userId })
  ).done;

  h.script([{ content: 'Streaming answer in several chunks of text.', usage: usage(33, 11) }]);
  await (
    await h.startTurn({ streaming: true, onToken: () => {} })
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
  run_tool_calls: z.number(),
  tool_call_rows: z.number(),
  tool_call_errors: z.number(),
  run_model_calls: z.number(),
  model_call_rows: z.number(),
});

/** What the figures are read from: a harness below HTTP, or the whole service. */
type Pipeline = Pick<Harness, 'db' | 'services'>;

const dbSums = (h: Pipeline) =>
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
      (SELECT COALESCE(sum(runs_total), 0) FROM analytics_hourly) AS an_runs,
      (SELECT COALESCE(sum(tool_call_count), 0) FROM workflow_runs) AS run_tool_calls,
      (SELECT count(*) FROM tool_calls) AS tool_call_rows,
      (SELECT count(*) FROM tool_calls WHERE error IS NOT NULL) AS tool_call_errors,
      (SELECT COALESCE(sum(model_call_count), 0) FROM workflow_runs) AS run_model_calls,
      (SELECT count(*) FROM model_calls) AS model_call_rows`);

const checkAgreement = async (h: Pipeline, runs = 7): Promise<void> => {
  // Flushes the database writer too: the runs' records, rollups included, are committed.
  await h.services.tracerProvider.forceFlush();
  const s = await dbSums(h);
  const samples = (await scrape(h.services.metrics.metricsHandler)).samples;
  const tokens = (type: string) => total(samples, 'chatter_llm_tokens_total', { gen_ai_token_type: type });
  const promCost = total(samples, 'chatter_llm_cost_total');

  expect(s.runs).toBe(runs);
  // Run rows = their tool-call rows; call rows = the Prometheus call counters.
  expect(s.tool_call_rows).toBe(s.run_tool_calls);
  expect(total(samples, 'chatter_tool_calls_total')).toBe(s.tool_call_rows);
  expect(total(samples, 'chatter_llm_calls_total')).toBe(s.model_call_rows);
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

describe('one pipeline for workflow definitions', () => {
  it('agrees for a definition of model, built-in and MCP tool and conditional nodes, run by execute and by chat', async () => {
    const api = await createChatApi({
      DEFAULT_PROVIDER: 'openai',
      OPENAI_API_KEY: 'sk-test',
      CHAT_RATE_LIMIT_PER_MINUTE: '1000',
      CHAT_RATE_LIMIT_PER_HOUR: '1000',
    });
    const mcp = await startMcpServer();
    try {
      const user = await registerUser(api.app);
      const as = asUser(api.app, user);
      const server = await as({
        method: 'POST',
        url: '/api/v1/toolservers/servers',
        payload: { name: 'local', display_name: 'Local', base_url: mcp.url },
      });
      expect(server.statusCode, server.body).toBe(201);
      const created = await as({
        method: 'POST',
        url: '/api/v1/workflows/definitions',
        payload: { name: 'Both tools', ...toolLoopGraph(['calculator', 'local__add']) },
      });
      expect(created.statusCode, created.body).toBe(200);
      const definitionId = created.json<{ id: string }>().id;

      const bothTools = (a: number, b: number) => [
        {
          content: '',
          toolCalls: [
            { name: 'calculator', args: { expression: `${a}*${b}` } },
            { name: 'local__add', args: { a, b } },
          ],
          usage: usage(120, 14, 64),
        },
        { content: '', toolCalls: [{ name: 'calculator', args: { expression: '1/0' } }], usage: usage(160, 9, 96) },
        { content: `${a * b} and ${a + b}.`, usage: usage(200, 7, 128, 3) },
      ];
      api.script(bothTools(6, 7));
      const executed = await as({
        method: 'POST',
        url: `/api/v1/workflows/definitions/${definitionId}/execute`,
        payload: { definition_id: definitionId, input_data: { message: 'Multiply and add 6 and 7' } },
      });
      expect(executed.statusCode, executed.body).toBe(200);
      expect(executed.json()).toMatchObject({ status: 'completed', definition_id: definitionId, model_call_count: 3, tool_call_count: 3 });

      api.script(bothTools(2, 9));
      const chat = await as({
        method: 'POST',
        url: '/api/v1/workflows/execute/chat',
        payload: {
          message: 'Multiply and add 2 and 9',
          workflow_definition_id: definitionId,
          conversation_id: executed.json<{ conversation_id: string }>().conversation_id,
        },
      });
      expect(chat.statusCode, chat.body).toBe(200);
      expect(chat.json()).toMatchObject({ message: { content: '18 and 11.' }, run_status: 'completed' });
      expect(mcp.toolCalls).toEqual(['add({"a":6,"b":7})', 'add({"a":2,"b":9})']);

      await checkAgreement(api, 2);
      const s = await dbSums(api);
      expect(s.tool_call_rows).toBe(6);
      expect(s.model_call_rows).toBe(6);
      expect(s.run_model_calls).toBe(s.model_call_rows);
      expect(s.tool_call_errors).toBe(2);
      // Both runs are the definition's, and its analytics are their rows' sums.
      const analytics = await as({ method: 'GET', url: `/api/v1/workflows/definitions/${definitionId}/analytics` });
      expect(analytics.json<{ runs: Record<string, number> }>().runs).toMatchObject({
        total: 2,
        completed: 2,
        prompt_tokens: s.run_input,
        completion_tokens: s.run_output,
        total_tokens: s.msg_total,
        model_calls: s.model_call_rows,
        tool_calls: s.tool_call_rows,
      });
      expect(Math.round(analytics.json<{ runs: { cost: number } }>().runs.cost * 1e10)).toBe(Math.round(s.run_cost * 1e10));
      const rows = await api.db.pool.any(sql.type(z.object({ workflow: z.string(), definition: z.string().nullable() }))`
        SELECT workflow, input ->> 'workflow_definition_id' AS definition FROM workflow_runs`);
      expect(rows).toEqual([
        { workflow: 'custom', definition: definitionId },
        { workflow: 'custom', definition: definitionId },
      ]);
      // The same actor and spans as chat: one run span each, one start and one terminal event each.
      const runSpans = api.exporter.getFinishedSpans().filter((span) => span.name === 'invoke_workflow custom');
      expect(runSpans).toHaveLength(2);
      expect(api.exporter.getFinishedSpans().filter((span) => span.name.startsWith('execute_tool '))).toHaveLength(6);
      const lifecycle = await api.db.pool.any(sql.type(z.object({ type: z.string(), n: z.number() }))`
        SELECT type, count(*)::int AS n FROM events WHERE type IN ('workflow_started', 'workflow_completed') GROUP BY type ORDER BY type`);
      expect(lifecycle).toEqual([
        { type: 'workflow_completed', n: 2 },
        { type: 'workflow_started', n: 2 },
      ]);
    } finally {
      await api.close();
      await mcp.close();
    }
  }, 60_000);
});
