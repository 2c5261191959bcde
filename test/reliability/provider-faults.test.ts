import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { findPrice, loadShippedPrices } from '../../src/providers/pricing.js';
import {
  startOpenAICompatibleServer,
  usageOf,
  type CompletionStep,
  type OpenAICompatibleServer,
  type OpenAIUsage,
  type UsageReport,
} from '../helpers/openai-compatible-server.js';
import { conversationTotals, createHarness, type Harness } from '../helpers/run-harness.js';
import {
  conversationsOutOfStep,
  readAssistantMessage,
  readEventTypes,
  readModelCalls,
  readRun,
  usdText,
  type ModelCallRow,
} from '../helpers/run-rows.js';

/*
 * Issue 7, reliability point 3: a provider that fails (429 with Retry-After, 500s, hung
 * responses, streams cut or stalled midway) or reports usage that is missing or garbage.
 * The whole stack runs with the real provider registry (the OpenAI SDK over HTTP) against
 * a loopback server. Each run must end in the right state with one terminal event, and
 * what is stored must be exactly what the server reported for the calls that answered,
 * or, where the report is missing or unusable, a call flagged `usage_missing` with no
 * tokens: never zeros or a repaired guess counted as the provider's word.
 * (429 + Retry-After and a stream cut midway are in test/runtime/openai-loopback.test.ts.)
 */

const RESPONSE_MODEL = 'gpt-4o-mini-2024-07-18';
const CALL_TIMEOUT_MS = 1_000;
const price = findPrice(loadShippedPrices(), 'openai', 'gpt-4o-mini', new Date())!;

/** Cost in 1e-10 USD of a well-formed report: cached tokens are inside prompt_tokens. */
const costUnits = (usage: OpenAIUsage): number => {
  const perToken = (usdPerMTok: number) => Math.round(usdPerMTok * 10_000);
  const cached = usage.prompt_tokens_details?.cached_tokens ?? 0;
  return (
    (usage.prompt_tokens - cached) * perToken(price.inputPerMTok) +
    cached * perToken(price.cacheReadPerMTok) +
    usage.completion_tokens * perToken(price.outputPerMTok)
  );
};

const serverError = (status: number): CompletionStep => ({
  kind: 'error',
  status,
  body: { error: { message: `upstream failure ${status}`, type: 'server_error', code: null } },
});

const TERMINAL = ['workflow_completed', 'workflow_failed', 'workflow_cancelled', 'workflow_timed_out', 'workflow_interrupted'];

/** A model_calls row for an attempt that failed: an error, and no usage (nothing was answered). */
const failedAttempt = (error: string | RegExp) =>
  expect.objectContaining({
    usage_source: 'missing',
    input_tokens: null,
    output_tokens: null,
    cost_text: null,
    error: typeof error === 'string' ? expect.stringContaining(error) : expect.stringMatching(error),
  }) as ModelCallRow;

/** A model_calls row holding exactly what the server reported. */
const answeredCall = (usage: OpenAIUsage, finishReason = 'stop') =>
  expect.objectContaining({
    usage_source: 'provider',
    response_model: RESPONSE_MODEL,
    input_tokens: usage.prompt_tokens,
    cache_read_tokens: usage.prompt_tokens_details?.cached_tokens ?? 0,
    cache_write_tokens: 0,
    output_tokens: usage.completion_tokens,
    reasoning_tokens: usage.completion_tokens_details?.reasoning_tokens ?? 0,
    cost_text: usdText(costUnits(usage)),
    price_id: price.id,
    finish_reason: finishReason,
    error: null,
  }) as ModelCallRow;

describe('provider faults against a loopback OpenAI-compatible server', () => {
  let server: OpenAICompatibleServer;
  let h: Harness;

  beforeAll(async () => {
    server = await startOpenAICompatibleServer();
    h = await createHarness(
      {
        OPENAI_API_KEY: 'test',
        OPENAI_BASE_URL: server.baseUrl,
        MODEL_MAX_RETRIES: '2',
        MODEL_CALL_TIMEOUT_MS: String(CALL_TIMEOUT_MS),
      },
      { realProviders: true },
    );
  });
  afterAll(async () => {
    await h?.close();
    await server?.close();
  });
  beforeEach(() => {
    server.reset();
  });

  const run = async (streaming: boolean, workflow = 'chat') => {
    const tokens: string[] = [];
    const turn = await h.startTurn({
      workflow,
      provider: 'openai',
      model: 'gpt-4o-mini',
      streaming,
      ...(streaming ? { onToken: (text: string) => tokens.push(text) } : {}),
    });
    const outcome = await turn.done;
    return {
      turn,
      outcome,
      tokens,
      events: await readEventTypes(h.db.pool, turn.runId),
      calls: await readModelCalls(h.db.pool, turn.runId),
      record: await readRun(h.db.pool, turn.runId),
      message: await readAssistantMessage(h.db.pool, turn.runId),
      totals: await conversationTotals(h.db, turn.conversationId),
    };
  };

  /** The run, its message and its conversation hold the answered calls' usage, and nothing else. */
  const expectCountedExactly = (result: Awaited<ReturnType<typeof run>>, answered: OpenAIUsage[]) => {
    const prompt = answered.reduce((sum, usage) => sum + usage.prompt_tokens, 0);
    const completion = answered.reduce((sum, usage) => sum + usage.completion_tokens, 0);
    const cached = answered.reduce((sum, usage) => sum + (usage.prompt_tokens_details?.cached_tokens ?? 0), 0);
    const units = answered.reduce((sum, usage) => sum + costUnits(usage), 0);
    expect(result.record).toMatchObject({
      input_tokens: prompt,
      cache_read_tokens: cached,
      output_tokens: completion,
      total_tokens: prompt + completion,
      cost_text: usdText(units),
      cost_unknown: false,
      usage_missing: false,
      model_call_count: answered.length,
    });
    expect(result.message).toMatchObject({
      prompt_tokens: prompt,
      completion_tokens: completion,
      total_tokens: prompt + completion,
      cached_input_tokens: cached,
      cost_text: usdText(units),
      model_used: RESPONSE_MODEL,
      provider_used: 'openai',
    });
    expect(result.totals).toMatchObject({
      message_count: 2,
      sum_count: 2,
      total_tokens: prompt + completion,
      sum_tokens: prompt + completion,
    });
    expect(Math.round(result.totals.total_cost * 1e10)).toBe(units);
    expect(Math.round(result.totals.sum_cost * 1e10)).toBe(units);
  };

  describe('server errors', () => {
    for (const status of [500, 502, 503]) {
      for (const streaming of [false, true]) {
        it(`retries a ${status} and counts only the call that answered, ${streaming ? 'streaming' : 'not streaming'}`, async () => {
          const answered = usageOf(70 + (status % 10), 9, 32);
          server.enqueue(serverError(status), { kind: 'text', text: `Answered after a ${status}.`, usage: answered });
          const result = await run(streaming);

          expect(result.outcome).toMatchObject({ status: 'completed', modelCalls: 1 });
          expect(server.requests).toHaveLength(2);
          expect(result.events).toEqual(['workflow_started', 'retry_scheduled', 'model_response', 'workflow_completed']);
          expect(result.calls).toEqual([failedAttempt(String(status)), answeredCall(answered)]);
          expect(result.message?.content).toBe(`Answered after a ${status}.`);
          if (streaming) expect(result.tokens.join('')).toBe(`Answered after a ${status}.`);
          expectCountedExactly(result, [answered]);
        });
      }
    }

    it('fails a run whose every attempt gets a 5xx: retries exhausted, one terminal event, nothing counted', async () => {
      server.enqueue(serverError(500), serverError(502), serverError(503)); // one attempt + MODEL_MAX_RETRIES = 2
      const result = await run(true);

      expect(result.outcome).toMatchObject({ status: 'failed', terminalReason: 'retries_exhausted', modelCalls: 0 });
      expect(result.outcome.error).toContain('503');
      expect(server.requests).toHaveLength(3);
      expect(result.events).toEqual(['workflow_started', 'retry_scheduled', 'retry_scheduled', 'workflow_failed']);
      expect(result.calls).toEqual([failedAttempt('500'), failedAttempt('502'), failedAttempt('503')]);
      expect(result.record).toMatchObject({
        status: 'failed',
        terminal_reason: 'retries_exhausted',
        input_tokens: 0,
        output_tokens: 0,
        total_tokens: 0,
        cost_text: usdText(0),
        usage_missing: false, // no call answered: there is no usage to miss
        model_call_count: 0,
      });
      // No reply, so no assistant message: the conversation holds the user's message only.
      expect(result.message).toBeNull();
      expect(result.totals).toMatchObject({ message_count: 1, sum_count: 1, total_tokens: 0, sum_tokens: 0 });
    });

    it('does not retry a 400 (not transient): the run fails at once', async () => {
      server.enqueue({
        kind: 'error',
        status: 400,
        body: { error: { message: 'Invalid value for messages', type: 'invalid_request_error' } },
      });
      const result = await run(false);

      expect(result.outcome).toMatchObject({ status: 'failed', terminalReason: 'non_transient_error' });
      expect(server.requests).toHaveLength(1);
      expect(result.events).toEqual(['workflow_started', 'workflow_failed']);
      expect(result.calls).toEqual([failedAttempt('400')]);
      expect(result.record).toMatchObject({ status: 'failed', total_tokens: 0, model_call_count: 0 });
    });
  });

  describe('timeouts', () => {
    it('gives up on a response that never comes after MODEL_CALL_TIMEOUT_MS and retries it', async () => {
      const answered = usageOf(41, 6);
      server.enqueue({ kind: 'hang' }, { kind: 'text', text: 'Answered on the retry.', usage: answered });
      const result = await run(false);

      expect(result.outcome.status).toBe('completed');
      expect(result.outcome.endedAt - result.outcome.startedAt).toBeGreaterThanOrEqual(CALL_TIMEOUT_MS);
      expect(server.requests).toHaveLength(2);
      expect(result.events).toEqual(['workflow_started', 'retry_scheduled', 'model_response', 'workflow_completed']);
      expect(result.calls).toEqual([failedAttempt(`timed out after ${CALL_TIMEOUT_MS} ms`), answeredCall(answered)]);
      expectCountedExactly(result, [answered]);
    });

    it('gives up on a stream that goes silent midway and retries it', async () => {
      const answered = usageOf(52, 8, 0, 2);
      server.enqueue({ kind: 'stall', text: 'This reply stops half' }, { kind: 'text', text: 'A whole reply.', usage: answered });
      const result = await run(true);

      expect(result.outcome.status).toBe('completed');
      expect(server.requests).toHaveLength(2);
      // The client saw the stalled part, then the whole retried reply.
      expect(result.tokens.join('')).toBe('This reply stops halfA whole reply.');
      expect(result.events).toEqual(['workflow_started', 'retry_scheduled', 'model_response', 'workflow_completed']);
      expect(result.calls).toEqual([failedAttempt(`timed out after ${CALL_TIMEOUT_MS} ms`), answeredCall(answered)]);
      expectCountedExactly(result, [answered]);
    });

    it('fails the run when every attempt hangs', async () => {
      server.enqueue({ kind: 'hang' }, { kind: 'hang' }, { kind: 'hang' });
      const result = await run(false);

      expect(result.outcome).toMatchObject({ status: 'failed', terminalReason: 'retries_exhausted' });
      expect(server.requests).toHaveLength(3);
      expect(result.events).toEqual(['workflow_started', 'retry_scheduled', 'retry_scheduled', 'workflow_failed']);
      expect(result.calls).toHaveLength(3);
      expect(result.calls).toEqual(result.calls.map(() => failedAttempt('timed out')));
      expect(result.record).toMatchObject({ status: 'failed', total_tokens: 0, model_call_count: 0, usage_missing: false });
    });
  });

  describe('usage reports', () => {
    // Reports whose numbers can't all be true; and no report at all.
    const unusable: [string, UsageReport][] = [
      ['no usage at all', 'omit'],
      ['a negative prompt_tokens', { ...usageOf(30, 5), prompt_tokens: -30, total_tokens: -25 }],
      ['a fractional completion_tokens', { ...usageOf(30, 5), completion_tokens: 5.5, total_tokens: 35.5 }],
      ['token counts sent as strings', { prompt_tokens: '30', completion_tokens: '5', total_tokens: '35' }],
      ['cached_tokens above prompt_tokens', usageOf(30, 5, 64)],
      ['reasoning_tokens above completion_tokens', usageOf(30, 5, 0, 9)],
      ['a total_tokens that is not prompt + completion', { ...usageOf(30, 5), total_tokens: 99 }],
      ['no prompt_tokens', { completion_tokens: 5, total_tokens: 5 }],
    ];
    for (const [what, usage] of unusable) {
      for (const streaming of [false, true]) {
        it(`flags a call with ${what} as usage_missing and counts no tokens for it, ${streaming ? 'streaming' : 'not streaming'}`, async () => {
          server.enqueue({ kind: 'text', text: 'Answered, usage unusable.', usage });
          const result = await run(streaming);

          expect(result.outcome).toMatchObject({ status: 'completed', modelCalls: 1 });
          expect(result.events.filter((type) => type === 'usage_missing')).toHaveLength(1);
          // The model's price is known: there is just nothing to price.
          expect(result.events).not.toContain('price_unknown');
          expect(result.events.filter((type) => TERMINAL.includes(type))).toEqual(['workflow_completed']);
          expect(result.calls).toEqual([
            expect.objectContaining({
              usage_source: 'missing',
              input_tokens: null,
              cache_read_tokens: null,
              output_tokens: null,
              reasoning_tokens: null,
              cost_text: null,
              finish_reason: 'stop',
              error: null,
            }),
          ]);
          expect(result.record).toMatchObject({
            status: 'completed',
            usage_missing: true,
            // No price is missing: the flag above, not an unknown cost, marks the gap.
            cost_unknown: false,
            input_tokens: 0,
            output_tokens: 0,
            total_tokens: 0,
            cost_text: '0.0000000000',
          });
          // The message holds the sums over the calls with usage (none); the run says usage is missing.
          expect(result.message).toMatchObject({ content: 'Answered, usage unusable.', total_tokens: 0, cost_text: '0.0000000000' });
          expect(result.totals).toMatchObject({ message_count: 2, sum_count: 2, total_tokens: 0, sum_tokens: 0 });
        });
      }
    }

    // Reports that are unusual but true: counted exactly as sent.
    const usable: [string, OpenAIUsage][] = [
      ['without prompt_tokens_details and completion_tokens_details', { prompt_tokens: 33, completion_tokens: 4, total_tokens: 37 }],
      ['with completion_tokens 0 (an empty reply)', usageOf(33, 0)],
      ['with every prompt token cached', usageOf(64, 3, 64)],
    ];
    for (const [what, usage] of usable) {
      for (const streaming of [false, true]) {
        it(`counts a report ${what} exactly as sent, ${streaming ? 'streaming' : 'not streaming'}`, async () => {
          server.enqueue({ kind: 'text', text: 'Answered.', usage });
          const result = await run(streaming);

          expect(result.outcome.status).toBe('completed');
          expect(result.events).toEqual(['workflow_started', 'model_response', 'workflow_completed']);
          expect(result.calls).toEqual([answeredCall(usage)]);
          expectCountedExactly(result, [usage]);
        });
      }
    }

    it('counts a tool call’s usage and flags the answer whose usage is missing, in one run', async () => {
      const toolUsage = usageOf(120, 14, 64);
      server.enqueue(
        { kind: 'toolCall', id: 'call_calc_7', name: 'calculator', arguments: '{"expression":"6*7"}', usage: toolUsage },
        { kind: 'text', text: 'It is 42.', usage: 'omit' },
      );
      const result = await run(true, 'chat_with_tools');

      expect(result.outcome).toMatchObject({ status: 'completed', modelCalls: 2, toolCalls: 1 });
      expect(result.calls).toEqual([
        answeredCall(toolUsage, 'tool_calls'),
        expect.objectContaining({ usage_source: 'missing', input_tokens: null, output_tokens: null, cost_text: null, error: null }),
      ]);
      expect(result.events.filter((type) => type === 'usage_missing')).toHaveLength(1);
      // Tokens and cost are what the one report said; the run is flagged for the other call.
      expect(result.events).not.toContain('price_unknown');
      expect(result.record).toMatchObject({
        usage_missing: true,
        cost_unknown: false,
        input_tokens: 120,
        cache_read_tokens: 64,
        output_tokens: 14,
        total_tokens: 134,
        model_call_count: 2,
      });
      expect(result.message).toMatchObject({ content: 'It is 42.', prompt_tokens: 120, completion_tokens: 14, total_tokens: 134 });
      expect(result.totals).toMatchObject({ total_tokens: 134, sum_tokens: 134 });
    });
  });

  it('keeps every conversation total equal to the sums over its messages', async () => {
    expect(await conversationsOutOfStep(h.db.pool)).toEqual([]);
  });
});
