import { sql } from 'slonik';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { findPrice, loadShippedPrices } from '../../src/providers/pricing.js';
import {
  startOpenAICompatibleServer,
  usageOf,
  type CompletionStep,
  type OpenAICompatibleServer,
  type OpenAIUsage,
} from '../helpers/openai-compatible-server.js';
import { conversationTotals, createHarness, type Harness } from '../helpers/run-harness.js';
import { conversationsOutOfStep, readAssistantMessage, readEventTypes, readModelCalls, readRun, usdText } from '../helpers/run-rows.js';

/*
 * Acceptance: the whole stack with the real provider registry (ChatOpenAICompletions and
 * the OpenAI SDK over HTTP) against a loopback server that reports known usage. What the
 * server reported must land, bucket for bucket and cent for cent, in workflow_runs,
 * model_calls, messages and the conversation totals.
 */

const RESPONSE_MODEL = 'gpt-4o-mini-2024-07-18';
const price = findPrice(loadShippedPrices(), 'openai', 'gpt-4o-mini', new Date());

type Buckets = { inputUncached: number; cacheRead: number; output: number; reasoning: number };

/** The buckets a Chat Completions usage report means: cached tokens are inside prompt_tokens. */
const bucketsOf = (usage: OpenAIUsage): Buckets => {
  const cached = usage.prompt_tokens_details?.cached_tokens ?? 0;
  return {
    inputUncached: usage.prompt_tokens - cached,
    cacheRead: cached,
    output: usage.completion_tokens,
    reasoning: usage.completion_tokens_details?.reasoning_tokens ?? 0,
  };
};

/**
 * Cost in units of 1e-10 USD, worked out from the price's own numbers: a price in USD per
 * 1M tokens is a whole number of $0.0001 units, and tokens × those units is 1e-10 USD.
 */
const costUnits = (usage: OpenAIUsage): number => {
  const perToken = (usdPerMTok: number) => Math.round(usdPerMTok * 10_000);
  const b = bucketsOf(usage);
  return (
    b.inputUncached * perToken(price!.inputPerMTok) +
    b.cacheRead * perToken(price!.cacheReadPerMTok) +
    b.output * perToken(price!.outputPerMTok)
  );
};

// A tool call with cached input and reasoning, then the answer with more of both.
const TOOL_USAGE = usageOf(412, 23, 256, 7);
const ANSWER_USAGE = usageOf(1200, 300, 1024, 64);
const TOOL_CALL: CompletionStep = {
  kind: 'toolCall',
  id: 'call_calc_1',
  name: 'calculator',
  arguments: '{"expression":"2+2"}',
  usage: TOOL_USAGE,
};
const ANSWER: CompletionStep = { kind: 'text', text: 'The answer is 4, as computed.', usage: ANSWER_USAGE };

describe('runs against a loopback OpenAI-compatible server', () => {
  let server: OpenAICompatibleServer;
  let h: Harness;

  beforeAll(async () => {
    server = await startOpenAICompatibleServer();
    h = await createHarness({ OPENAI_API_KEY: 'test', OPENAI_BASE_URL: server.baseUrl, MODEL_MAX_RETRIES: '2' }, { realProviders: true });
  });
  afterAll(async () => {
    await h?.close();
    await server?.close();
  });
  beforeEach(() => {
    server.reset();
  });

  it('costs from the shipped gpt-4o-mini price, whose numbers these checks are worked out from', () => {
    expect(price).toMatchObject({ id: 'openai:gpt-4o-mini@2024-07-18', inputPerMTok: 0.15, cacheReadPerMTok: 0.075, outputPerMTok: 0.6 });
    // By hand: 156 × 0.15 + 256 × 0.075 + 23 × 0.60 = 56.4 USD per 1M tokens; 176 × 0.15 + 1024 × 0.075 + 300 × 0.60 = 283.2.
    expect(usdText(costUnits(TOOL_USAGE))).toBe('0.0000564000');
    expect(usdText(costUnits(ANSWER_USAGE))).toBe('0.0002832000');
  });

  for (const streaming of [false, true]) {
    it(`records exactly the buckets and cost the server reported over a tool round trip, ${streaming ? 'streaming' : 'not streaming'}`, async () => {
      server.enqueue(TOOL_CALL, ANSWER);
      const tokens: string[] = [];
      const turn = await h.startTurn({
        workflow: 'chat_with_tools',
        provider: 'openai',
        model: 'gpt-4o-mini',
        message: 'What is 2 + 2?',
        streaming,
        ...(streaming ? { onToken: (text: string) => tokens.push(text) } : {}),
      });
      const outcome = await turn.done;

      expect(outcome).toMatchObject({ status: 'completed', modelCalls: 2, toolCalls: 1, durable: 'database' });
      expect(server.pending()).toBe(0);
      // The requests the client made: streaming asks for the usage chunk; the second carries the tool result.
      expect(server.requests).toHaveLength(2);
      for (const request of server.requests) {
        expect(request.headers.authorization).toBe('Bearer test');
        expect(request.body).toMatchObject(
          streaming ? { model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true } } : { model: 'gpt-4o-mini' },
        );
        if (!streaming) {
          expect((request.body as { stream?: boolean }).stream ?? false).toBe(false);
        }
      }
      expect((server.requests[1]?.body as { messages: unknown[] }).messages).toContainEqual(
        expect.objectContaining({ role: 'tool', tool_call_id: 'call_calc_1', content: '4' }),
      );
      if (streaming) {
        expect(tokens.join('')).toBe('The answer is 4, as computed.');
      }

      const tool = bucketsOf(TOOL_USAGE);
      const answer = bucketsOf(ANSWER_USAGE);
      const runUnits = costUnits(TOOL_USAGE) + costUnits(ANSWER_USAGE);
      const prompt = TOOL_USAGE.prompt_tokens + ANSWER_USAGE.prompt_tokens;
      const completion = TOOL_USAGE.completion_tokens + ANSWER_USAGE.completion_tokens;
      const cached = tool.cacheRead + answer.cacheRead;
      const reasoning = tool.reasoning + answer.reasoning;

      expect(await readModelCalls(h.db.pool, turn.runId)).toEqual([
        {
          sequence: 0,
          provider: 'openai',
          request_model: 'gpt-4o-mini',
          response_model: RESPONSE_MODEL,
          input_tokens: TOOL_USAGE.prompt_tokens,
          cache_read_tokens: tool.cacheRead,
          cache_write_tokens: 0,
          output_tokens: TOOL_USAGE.completion_tokens,
          reasoning_tokens: tool.reasoning,
          cost_text: usdText(costUnits(TOOL_USAGE)),
          price_id: price!.id,
          finish_reason: 'tool_calls',
          usage_source: 'provider',
          error: null,
        },
        {
          sequence: 1,
          provider: 'openai',
          request_model: 'gpt-4o-mini',
          response_model: RESPONSE_MODEL,
          input_tokens: ANSWER_USAGE.prompt_tokens,
          cache_read_tokens: answer.cacheRead,
          cache_write_tokens: 0,
          output_tokens: ANSWER_USAGE.completion_tokens,
          reasoning_tokens: answer.reasoning,
          cost_text: usdText(costUnits(ANSWER_USAGE)),
          price_id: price!.id,
          finish_reason: 'stop',
          usage_source: 'provider',
          error: null,
        },
      ]);
      expect(await readRun(h.db.pool, turn.runId)).toMatchObject({
        status: 'completed',
        input_tokens: prompt,
        cache_read_tokens: cached,
        cache_write_tokens: 0,
        output_tokens: completion,
        reasoning_tokens: reasoning,
        total_tokens: prompt + completion,
        cost_text: usdText(runUnits),
        cost_unknown: false,
        usage_missing: false,
        model_call_count: 2,
        tool_call_count: 1,
      });
      expect(await readAssistantMessage(h.db.pool, turn.runId)).toEqual({
        content: 'The answer is 4, as computed.',
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
        cached_input_tokens: cached,
        reasoning_tokens: reasoning,
        cost_text: usdText(runUnits),
        model_used: RESPONSE_MODEL,
        provider_used: 'openai',
        finish_reason: 'stop',
      });
      // What the caller was told is what was stored.
      expect(outcome.usage).toEqual({
        inputUncached: tool.inputUncached + answer.inputUncached,
        cacheRead: cached,
        cacheWrite: 0,
        output: completion,
        reasoning,
      });
      expect(outcome.costUsd).toBe(runUnits / 1e10);

      const totals = await conversationTotals(h.db, turn.conversationId);
      expect(totals).toMatchObject({ message_count: 2, sum_count: 2, total_tokens: prompt + completion, sum_tokens: prompt + completion });
      expect(Math.round(totals.total_cost * 1e10)).toBe(runUnits);
      expect(Math.round(totals.sum_cost * 1e10)).toBe(runUnits);
    });
  }

  it('retries a 429 with Retry-After: 0 and counts only the call that answered', async () => {
    server.enqueue(
      {
        kind: 'error',
        status: 429,
        headers: { 'retry-after': '0' },
        body: { error: { message: 'Rate limit reached for gpt-4o-mini', type: 'requests', code: 'rate_limit_exceeded' } },
      },
      { kind: 'text', text: 'Answered on the second try.', usage: usageOf(90, 12, 0, 0) },
    );
    const turn = await h.startTurn({ provider: 'openai', model: 'gpt-4o-mini' });
    const outcome = await turn.done;

    expect(outcome.status).toBe('completed');
    expect(server.requests).toHaveLength(2);
    const types = await readEventTypes(h.db.pool, turn.runId);
    expect(types.filter((type) => type === 'retry_scheduled')).toHaveLength(1);
    expect(types.filter((type) => type === 'workflow_completed')).toHaveLength(1);
    // Retry-After: 0 was read as "now", not as absent.
    const retryAfter = await h.db.pool.oneFirst(sql.type(z.object({ after: z.string().nullable() }))`
      SELECT data->>'chatter.retry.after_ms' AS after FROM events WHERE run_id = ${turn.runId} AND type = 'retry_scheduled'`);
    expect(retryAfter).toBe('0');
    const calls = await readModelCalls(h.db.pool, turn.runId);
    expect(calls.map((call) => [call.usage_source, call.input_tokens, call.error === null])).toEqual([
      ['missing', null, false],
      ['provider', 90, true],
    ]);
    expect(calls[0]?.error).toContain('429');
    const units = costUnits(usageOf(90, 12));
    expect(await readRun(h.db.pool, turn.runId)).toMatchObject({
      status: 'completed',
      input_tokens: 90,
      output_tokens: 12,
      total_tokens: 102,
      cost_text: usdText(units),
      usage_missing: false,
      model_call_count: 1,
    });
    expect(await readAssistantMessage(h.db.pool, turn.runId)).toMatchObject({
      content: 'Answered on the second try.',
      total_tokens: 102,
      cost_text: usdText(units),
    });
  });

  it('retries a stream cut mid-way (a transient failure) and counts what the completed calls reported', async () => {
    server.enqueue(TOOL_CALL, { kind: 'cut', text: 'The answer is four, but this stream never' }, ANSWER);
    const tokens: string[] = [];
    const turn = await h.startTurn({
      workflow: 'chat_with_tools',
      provider: 'openai',
      model: 'gpt-4o-mini',
      streaming: true,
      onToken: (text) => tokens.push(text),
    });
    const outcome = await turn.done;

    expect(outcome.status).toBe('completed');
    expect(server.requests).toHaveLength(3);
    // The client saw part of the cut reply, then the whole answer.
    expect(tokens.join('')).toContain('The answer is four, but');
    expect(tokens.join('')).toMatch(/The answer is 4, as computed\.$/);
    const types = await readEventTypes(h.db.pool, turn.runId);
    expect(types.filter((type) => type === 'retry_scheduled')).toHaveLength(1);
    const calls = await readModelCalls(h.db.pool, turn.runId);
    expect(calls.map((call) => [call.usage_source, call.input_tokens, call.error === null])).toEqual([
      ['provider', TOOL_USAGE.prompt_tokens, true],
      ['missing', null, false],
      ['provider', ANSWER_USAGE.prompt_tokens, true],
    ]);
    const prompt = TOOL_USAGE.prompt_tokens + ANSWER_USAGE.prompt_tokens;
    const completion = TOOL_USAGE.completion_tokens + ANSWER_USAGE.completion_tokens;
    const units = costUnits(TOOL_USAGE) + costUnits(ANSWER_USAGE);
    expect(await readRun(h.db.pool, turn.runId)).toMatchObject({
      status: 'completed',
      input_tokens: prompt,
      output_tokens: completion,
      total_tokens: prompt + completion,
      cost_text: usdText(units),
      model_call_count: 2,
    });
    expect(await readAssistantMessage(h.db.pool, turn.runId)).toMatchObject({
      content: 'The answer is 4, as computed.',
      total_tokens: prompt + completion,
      cost_text: usdText(units),
    });
  });

  it('fails a run whose every retry is cut, keeping exactly what the completed call reported', async () => {
    const cut: CompletionStep = { kind: 'cut', text: 'Cut again and again' };
    server.enqueue(TOOL_CALL, cut, cut, cut); // one attempt and MODEL_MAX_RETRIES = 2 retries
    const turn = await h.startTurn({ workflow: 'chat_with_tools', provider: 'openai', model: 'gpt-4o-mini', streaming: true });
    const outcome = await turn.done;

    expect(outcome).toMatchObject({ status: 'failed', terminalReason: 'retries_exhausted' });
    expect(server.requests).toHaveLength(4);
    const types = await readEventTypes(h.db.pool, turn.runId);
    expect(types.filter((type) => type === 'retry_scheduled')).toHaveLength(2);
    expect(types.at(-1)).toBe('workflow_failed');
    const calls = await readModelCalls(h.db.pool, turn.runId);
    expect(calls.map((call) => call.usage_source)).toEqual(['provider', 'missing', 'missing', 'missing']);
    const units = costUnits(TOOL_USAGE);
    expect(await readRun(h.db.pool, turn.runId)).toMatchObject({
      status: 'failed',
      input_tokens: TOOL_USAGE.prompt_tokens,
      cache_read_tokens: bucketsOf(TOOL_USAGE).cacheRead,
      output_tokens: TOOL_USAGE.completion_tokens,
      reasoning_tokens: bucketsOf(TOOL_USAGE).reasoning,
      cost_text: usdText(units),
      model_call_count: 1,
    });
    expect(await readAssistantMessage(h.db.pool, turn.runId)).toMatchObject({
      prompt_tokens: TOOL_USAGE.prompt_tokens,
      completion_tokens: TOOL_USAGE.completion_tokens,
      cost_text: usdText(units),
      finish_reason: 'retries_exhausted',
    });
  });

  it('keeps every conversation total equal to the sums over its messages', async () => {
    expect(await conversationsOutOfStep(h.db.pool)).toEqual([]);
  });
});
