import { sql } from 'slonik';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { sumCosts } from '../../machines/usage.js';
import { computeCost, findPrice, loadShippedPrices } from '../../src/providers/pricing.js';
import { startOpenAICompatibleServer, usageOf, type OpenAICompatibleServer } from '../helpers/openai-compatible-server.js';
import { databaseForServer } from '../helpers/server-database.js';
import { registerThrough, requestJson, startServerProcess } from '../helpers/server-process.js';
import { waitUntil } from '../helpers/wait.js';

/*
 * Usage is durable as the provider reports it: a process killed (SIGKILL) in the middle
 * of a tool loop keeps every model call that had reported, on every figure, once.
 */

const MODEL = 'gpt-4o-mini';
const FLUSH_MS = 50;

describe('usage durable as it is reported', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('keeps both reported calls of a tool loop killed in its third call, on every figure, and flags the cut call', async () => {
    const provider: OpenAICompatibleServer = await startOpenAICompatibleServer();
    cleanups.push(provider.close);
    const where = await databaseForServer('chatter-durable-');
    cleanups.push(where.cleanup);
    const env = {
      ...where.env,
      JWT_SECRET: 'durable-usage-secret-0123456789-abcdefghij',
      CHATTER_INSTANCE_ID: 'durable-usage-instance',
      DEFAULT_PROVIDER: 'openai',
      DEFAULT_MODEL: MODEL,
      OPENAI_API_KEY: 'sk-loopback',
      OPENAI_BASE_URL: provider.baseUrl,
      MODEL_MAX_RETRIES: '0',
      RUN_FLUSH_INTERVAL_MS: String(FLUSH_MS),
    };
    const first = await startServerProcess(env, { timeoutMs: 60_000 });
    const { token } = await registerThrough(first);

    const reported = [usageOf(120, 14, 20), usageOf(180, 9)];
    provider.enqueue(
      { kind: 'toolCall', id: 'call_1', name: 'calculator', arguments: '{"expression":"6*7"}', usage: reported[0]! },
      { kind: 'toolCall', id: 'call_2', name: 'calculator', arguments: '{"expression":"42+1"}', usage: reported[1]! },
      { kind: 'hang' },
    );
    const chat = requestJson(first, 'POST', '/api/v1/workflows/execute/chat', {
      token,
      body: { message: 'What is 6*7, plus one?', enable_tools: true },
    }).catch(() => null);
    // The third call is in flight: the first two have reported their usage.
    await waitUntil(() => provider.requests.length === 3, { timeoutMs: 30_000, what: 'the third model call' });
    // Ten flush intervals: what was reported is committed by now.
    await new Promise((resolve) => setTimeout(resolve, FLUSH_MS * 10));
    expect(await first.stop('SIGKILL')).toBeNull();
    expect(await chat).toBeNull();

    // The restart (same instance id) takes the run over as interrupted.
    const second = await startServerProcess(env, { timeoutMs: 60_000 });
    expect(await second.stop('SIGTERM')).toBe(0);

    const price = findPrice(loadShippedPrices(), 'openai', MODEL, new Date())!;
    const costs = reported.map((u) =>
      computeCost(
        {
          inputUncached: u.prompt_tokens - (u.prompt_tokens_details?.cached_tokens ?? 0),
          cacheRead: u.prompt_tokens_details?.cached_tokens ?? 0,
          cacheWrite: 0,
          output: u.completion_tokens,
          reasoning: 0,
        },
        price,
      ),
    );
    const expectedCost = sumCosts(costs);
    const tokens = reported.reduce((sum, u) => sum + u.total_tokens, 0);

    const db = await where.open();
    try {
      const pool = db.pool;
      const run = await pool.one(sql.type(z.object({ id: z.string(), user_id: z.string() }).passthrough())`
        SELECT id, status, input_tokens, cache_read_tokens, output_tokens, total_tokens, cost, usage_missing,
               model_call_count, tool_call_count, conversation_id, user_id
        FROM workflow_runs`);
      expect(run).toMatchObject({
        status: 'interrupted',
        input_tokens: 300,
        cache_read_tokens: 20,
        output_tokens: 23,
        total_tokens: tokens,
        cost: expectedCost,
        usage_missing: true,
        model_call_count: 3,
        tool_call_count: 2,
      });
      const calls = await pool.any(sql.type(z.object({ estimated_input_tokens: z.number().nullable() }).passthrough())`
        SELECT sequence, input_tokens, output_tokens, cost, usage_source, estimated_input_tokens, error
        FROM model_calls ORDER BY sequence`);
      expect(calls).toMatchObject([
        { sequence: 0, input_tokens: 120, output_tokens: 14, cost: costs[0], usage_source: 'provider', error: null },
        { sequence: 1, input_tokens: 180, output_tokens: 9, cost: costs[1], usage_source: 'provider', error: null },
        { sequence: 2, input_tokens: null, output_tokens: null, cost: null, usage_source: 'missing', error: 'interrupted' },
      ]);
      // The runtime's estimate of the cut call is kept apart, outside every sum.
      expect(calls[2]!.estimated_input_tokens).toBeGreaterThan(0);

      const messages = await pool.any(sql.unsafe`
        SELECT role, content, total_tokens, cost, finish_reason FROM messages ORDER BY sequence_number`);
      expect(messages).toMatchObject([
        { role: 'user', total_tokens: null },
        { role: 'assistant', content: '', total_tokens: tokens, cost: expectedCost, finish_reason: 'interrupted' },
      ]);
      const conversation = await pool.one(sql.unsafe`SELECT message_count, total_tokens, total_cost FROM conversations`);
      expect(conversation).toEqual({ message_count: 2, total_tokens: tokens, total_cost: expectedCost });
      const user = await pool.one(sql.unsafe`SELECT total_tokens, total_cost FROM users WHERE id = ${run.user_id}`);
      expect(user).toEqual({ total_tokens: tokens, total_cost: expectedCost });
      const rollup = await pool.one(sql.unsafe`
        SELECT sum(input_tokens)::bigint AS input, sum(cache_read_tokens)::bigint AS cache_read,
               sum(output_tokens)::bigint AS output, sum(cost) AS cost, sum(model_calls)::int AS calls, sum(runs_total)::int AS runs
        FROM analytics_hourly`);
      // In the rollups `input` is uncached input, so the buckets add up.
      expect(rollup).toEqual({ input: 280, cache_read: 20, output: 23, cost: expectedCost, calls: 3, runs: 1 });
      const events = await pool.anyFirst(sql.type(z.object({ type: z.string() }))`
        SELECT type FROM events WHERE run_id = ${run.id} ORDER BY seq`);
      expect(events.filter((type) => type === 'workflow_started')).toHaveLength(1);
      expect(events.filter((type) => type === 'model_response')).toHaveLength(2);
      expect(events.filter((type) => type === 'tool_called')).toHaveLength(2);
      expect(events.filter((type) => type === 'usage_missing')).toHaveLength(1);
      expect(events.at(-1)).toBe('workflow_interrupted');
    } finally {
      await db.close();
    }
  }, 180_000);
});
