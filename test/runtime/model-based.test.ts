import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { HumanMessage } from '@langchain/core/messages';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace';
import { sql } from 'slonik';
import { ulid } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Usage } from '../../machines/usage.js';
import * as semconv from '../../otel/semconv.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { findPrice, loadShippedPrices } from '../../src/providers/pricing.js';
import { ScriptedChatModel } from '../helpers/scripted-chat-model.js';
import { beginTurn } from '../../src/repositories/turns-repository.js';
import { createServices, type Services } from '../../src/services.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createConversation, createUser } from '../helpers/fixtures.js';
import { generateShortestPaths, generateSimplePaths, pathInput } from '../machines/paths.js';
import { compileScenarios, SCENARIO_LIMITS, type Scenario } from './model-based-scenarios.js';

// ── Paths → scenarios (at collection, so that every scenario is its own test) ─────────

const PROVIDER = 'openai';
const MODEL = 'gpt-4o-mini';
const price = findPrice(loadShippedPrices(), PROVIDER, MODEL, new Date());
if (price === null) throw new Error(`no shipped price for ${PROVIDER}/${MODEL}`);

const generationStart = performance.now();
const shortest = compileScenarios(generateShortestPaths(), price);
const simple = compileScenarios(generateSimplePaths(), price);
const generationMs = performance.now() - generationStart;
const fromShortest = new Set(shortest.scenarios.map((scenario) => scenario.key));
const simpleOnly = simple.scenarios.filter((scenario) => !fromShortest.has(scenario.key));
const scenarios = [...shortest.scenarios, ...simpleOnly];

/** A run timeout that fires while the stopped call is in flight, well after the steps before it. */
const RUN_TIMEOUT_MS = 250;
const STOP_REASON_TEXT = 'model-based test stop';
const FINAL_STATES = new Set(['completed', 'failed', 'cancelled', 'timedOut', 'budgetExceeded', 'interrupted']);

// ── Observing the runtime at every step ────────────────────────────────────────────

type Observation = { state: string; usage: Usage; modelCalls: number };

/**
 * Sees every span of every run as the machine's actions open and close them (one per
 * step), samples the run's actor through `runtime.get` at each, and performs a
 * scenario's stop once the stopped model call has started.
 */
class RunObserver implements SpanProcessor {
  public runtime: Services['runtime'] | undefined;
  public readonly ended = new Map<string, ReadableSpan[]>();
  public readonly observations = new Map<string, Observation[]>();
  public readonly stops = new Map<string, { attempt: number; perform: () => void }>();

  public sample(runId: string): void {
    const run = this.runtime?.get(runId);
    if (run === undefined) return;
    const seen = this.observations.get(runId) ?? [];
    seen.push({ state: run.state, usage: { ...run.usage }, modelCalls: run.modelCalls });
    this.observations.set(runId, seen);
  }

  private observe(runId: string): void {
    this.sample(runId); // the snapshot the action's transition leaves
    queueMicrotask(() => this.sample(runId)); // the one it reaches
  }

  public onStart(span: Span): void {
    const runId = span.attributes[semconv.ATTR_RUN_ID];
    if (typeof runId !== 'string') return;
    this.observe(runId);
    const stop = this.stops.get(runId);
    if (
      stop !== undefined &&
      span.name.startsWith(`${semconv.SPAN_CHAT} `) &&
      span.attributes[semconv.ATTR_MODEL_CALL_SEQUENCE] === stop.attempt
    ) {
      this.stops.delete(runId);
      setImmediate(stop.perform); // not from inside the machine's action
    }
  }

  public onEnd(span: ReadableSpan): void {
    const runId = span.attributes[semconv.ATTR_RUN_ID];
    if (typeof runId !== 'string') return;
    this.ended.set(runId, [...(this.ended.get(runId) ?? []), span]);
    this.observe(runId);
  }

  public forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  public shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

// ── Rows read back ─────────────────────────────────────────────────────────────────

const RunRow = z.object({
  status: z.string(),
  terminal_reason: z.string().nullable(),
  input_tokens: z.number(),
  cache_read_tokens: z.number(),
  cache_write_tokens: z.number(),
  output_tokens: z.number(),
  reasoning_tokens: z.number(),
  total_tokens: z.number(),
  cost_text: z.string().nullable(),
  cost_unknown: z.boolean(),
  model_call_count: z.number(),
  tool_call_count: z.number(),
});
const CallRow = z.object({
  sequence: z.number(),
  input_tokens: z.number().nullable(),
  cache_read_tokens: z.number().nullable(),
  cache_write_tokens: z.number().nullable(),
  output_tokens: z.number().nullable(),
  reasoning_tokens: z.number().nullable(),
  cost_text: z.string().nullable(),
  usage_source: z.string(),
  error: z.string().nullable(),
});
const MessageRow = z.object({
  prompt_tokens: z.number().nullable(),
  completion_tokens: z.number().nullable(),
  total_tokens: z.number().nullable(),
  cached_input_tokens: z.number().nullable(),
  reasoning_tokens: z.number().nullable(),
  cost_text: z.string().nullable(),
});
const ConversationRow = z.object({
  message_count: z.number(),
  total_tokens: z.number(),
  total_cost_text: z.string(),
  sum_count: z.number(),
  sum_tokens: z.number(),
  sum_cost_text: z.string(),
});

/** USD as integer units of 1e-10 (numeric(20, 10) text, or a rounded JS number). */
const units = (usd: number | string | null): number =>
  usd === null ? 0 : typeof usd === 'number' ? Math.round(usd * 1e10) : Math.round(Number(usd) * 1e10);

const callUsage = (row: z.infer<typeof CallRow>): Usage | null =>
  row.input_tokens === null
    ? null
    : {
        inputUncached: row.input_tokens - (row.cache_read_tokens ?? 0) - (row.cache_write_tokens ?? 0),
        cacheRead: row.cache_read_tokens ?? 0,
        cacheWrite: row.cache_write_tokens ?? 0,
        output: row.output_tokens ?? 0,
        reasoning: row.reasoning_tokens ?? 0,
      };

// Written from docs/run-contract.md, not imported from the machine: a broken machine
// helper must not break the check that is meant to catch it.
const BUCKETS = ['inputUncached', 'cacheRead', 'cacheWrite', 'output', 'reasoning'] as const;
const zero = (): Usage => ({ inputUncached: 0, cacheRead: 0, cacheWrite: 0, output: 0, reasoning: 0 });
const combine = (a: Usage, b: Usage, sign: 1 | -1): Usage =>
  Object.fromEntries(BUCKETS.map((bucket) => [bucket, a[bucket] + sign * b[bucket]])) as Usage;
const sum = (usages: readonly (Usage | null)[]): Usage =>
  usages.reduce<Usage>((total, each) => (each === null ? total : combine(total, each, 1)), zero());
const atLeast = (a: Usage, b: Usage): boolean => BUCKETS.every((bucket) => a[bucket] >= b[bucket]);
const tokens = (usage: Usage): number => usage.inputUncached + usage.cacheRead + usage.cacheWrite + usage.output;

describe('the run runtime along generated machine paths', () => {
  let db: TestDatabase;
  let services: Services;
  const observer = new RunObserver();
  let nextModel: ScriptedChatModel | undefined;
  // Every turn goes to one conversation, so its totals are checked as they accumulate.
  let chat: { userId: string; conversationId: string };

  beforeAll(async () => {
    db = await createTestDatabase();
    const config = loadConfig({
      CHATTER_ENV: 'test',
      LOG_LEVEL: 'silent',
      TOOL_CALL_LIMIT: String(SCENARIO_LIMITS.toolCallLimit),
      MODEL_MAX_RETRIES: String(SCENARIO_LIMITS.maxRetries),
      MODEL_RETRY_BASE_MS: '1',
    });
    services = await createServices({
      config,
      db,
      logger: createLogger(config),
      processors: [observer],
      spoolDir: await mkdtemp(join(tmpdir(), 'chatter-spool-')),
      // runtime.start builds the model synchronously: each run takes the model set just before.
      createChatModel: () => {
        if (nextModel === undefined) throw new Error('no scripted model for this run');
        return nextModel;
      },
    });
    observer.runtime = services.runtime;
    const userId = await createUser(db.pool);
    chat = { userId, conversationId: await createConversation(db.pool, userId) };
  });

  afterAll(async () => {
    await services?.runtime.shutdown(1_000);
    await services?.close();
    await db?.drop();
  });

  it('generates the machine paths and compiles them into runtime scenarios', () => {
    const skipped = new Map<string, number>();
    for (const [reason, count] of [...shortest.skipped, ...simple.skipped]) {
      skipped.set(reason, (skipped.get(reason) ?? 0) + count);
    }
    console.log(
      [
        `model-based: ${shortest.generated} shortest + ${simple.generated} simple paths generated in ${(generationMs / 1000).toFixed(1)} s`,
        `  realizable: ${shortest.realizable} shortest + ${simple.realizable} simple`,
        `  distinct scenarios: ${shortest.scenarios.length} from shortest paths + ${simpleOnly.length} more from simple paths ` +
          `(${simple.scenarios.length} distinct among simple) = ${scenarios.length} driven`,
        `  skipped (both sets): ${[...skipped].map(([reason, count]) => `${reason}: ${count}`).join('; ')}`,
        `  every distinct scenario is driven; costs at the shipped ${MODEL} price (${price.id}), the generator's ` +
          'price-unknown response priced like the others (the runtime prices by the request model)',
      ].join('\n'),
    );
    const outcomes = new Set(scenarios.map((scenario) => `${scenario.expected.status}/${scenario.expected.terminalReason}`));
    expect([...outcomes].sort()).toEqual(
      [
        'budgetExceeded/budget_tokens',
        'cancelled/cancelled',
        'completed/completed',
        'failed/non_transient_error',
        'failed/retries_exhausted',
        'interrupted/interrupted',
        'timedOut/timeout',
      ].sort(),
    );
  });

  /** Saves a user message like the API does, starts the scenario's run, performs its stop. */
  const drive = async (scenario: Scenario, streaming: boolean) => {
    const { runtime } = services;
    const runId = ulid();
    const correlationId = ulid();
    const content = 'What is 6 times 7?';
    const release = runtime.reserve(chat.conversationId, runId);
    const turn = await beginTurn(db.pool, {
      ...chat,
      content,
      runId,
      workflow: 'chat_with_tools',
      provider: PROVIDER,
      model: MODEL,
      correlationId,
      instanceId: services.instanceId,
    }).catch((error: unknown) => {
      release();
      throw error;
    });
    let stateAtStop: string | undefined;
    let stopAccepted: boolean | undefined;
    const { stop } = scenario;
    if (stop !== null && stop.kind !== 'timeout') {
      observer.stops.set(runId, {
        attempt: stop.attempt,
        perform: () => {
          stateAtStop = runtime.get(runId)?.state;
          stopAccepted = stop.kind === 'cancel' ? runtime.cancel(runId, STOP_REASON_TEXT) : runtime.interrupt(runId, STOP_REASON_TEXT);
        },
      });
    }
    nextModel = new ScriptedChatModel({ turns: scenario.turns, model: 'gpt-4o-mini-2024-07-18' });
    const handle = runtime.start({
      runId,
      userId: chat.userId,
      conversationId: chat.conversationId,
      correlationId,
      workflow: 'chat_with_tools',
      provider: PROVIDER,
      model: MODEL,
      messages: [new HumanMessage(content)],
      budget: pathInput.budget,
      userMessageId: turn.userMessageId,
      assistantMessageId: ulid(),
      streaming,
      timeoutMs: stop?.kind === 'timeout' ? RUN_TIMEOUT_MS : undefined,
    });
    nextModel = undefined;
    const poll = setInterval(() => observer.sample(runId), 2);
    const outcome = await handle.done.finally(() => clearInterval(poll));
    const stillLive = runtime.get(runId) !== undefined || runtime.active().some((run) => run.runId === runId);
    return { runId, conversationId: chat.conversationId, outcome, stateAtStop, stopAccepted, stillLive };
  };

  /** Every invariant the run broke, as readable lines (empty when it kept them all). */
  const violationsOf = async (scenario: Scenario, run: Awaited<ReturnType<typeof drive>>): Promise<string[]> => {
    const { runId, outcome, conversationId } = run;
    const { expected, stop } = scenario;
    const violations: string[] = [];
    const check = (ok: boolean, what: string) => {
      if (!ok) violations.push(what);
    };
    const same = (actual: unknown, wanted: unknown, what: string) =>
      check(JSON.stringify(actual) === JSON.stringify(wanted), `${what}: ${JSON.stringify(actual)} ≠ expected ${JSON.stringify(wanted)}`);

    // Exactly one terminal state: the outcome, the events table, the root span, the actor.
    same(outcome.status, expected.status, 'status');
    same(outcome.terminalReason, expected.terminalReason, 'terminal reason');
    check(outcome.durable === 'database', `records are ${outcome.durable}, not in the database`);
    check(!run.stillLive, 'the run is still registered as live after done');
    const terminalEvents = new Set<string>(Object.values(semconv.TERMINAL_EVENT_BY_STATUS));
    const eventTypes = await db.pool.anyFirst(sql.type(z.object({ type: z.string() }))`
      SELECT type FROM events WHERE run_id = ${runId} ORDER BY seq`);
    same(eventTypes.filter((type) => type === semconv.EVENT_WORKFLOW_STARTED).length, 1, 'workflow_started events');
    same(
      eventTypes.filter((type) => terminalEvents.has(type)),
      [semconv.TERMINAL_EVENT_BY_STATUS[outcome.status]],
      'terminal lifecycle events in the events table',
    );
    const roots = (observer.ended.get(runId) ?? []).filter((span) => span.name.startsWith(`${semconv.SPAN_INVOKE_WORKFLOW} `));
    same(roots.length, 1, 'root spans');
    const root = roots[0];
    same(
      root?.events.filter((event) => terminalEvents.has(event.name)).map((event) => event.name),
      [semconv.TERMINAL_EVENT_BY_STATUS[outcome.status]],
      'terminal events on the root span',
    );
    same(root?.attributes[semconv.ATTR_RUN_STATUS], outcome.status, 'root span status');

    // At every observed step: one final state at most, never left; usage never decreases.
    const seen = observer.observations.get(runId) ?? [];
    const finals = [...new Set(seen.filter((each) => FINAL_STATES.has(each.state)).map((each) => each.state))];
    same(finals, [outcome.status], 'final states the actor was seen in');
    const firstFinal = seen.findIndex((each) => FINAL_STATES.has(each.state));
    check(firstFinal === -1 || seen.slice(firstFinal).every((each) => FINAL_STATES.has(each.state)), 'the actor left its final state');
    seen.forEach((each, index) => {
      const before = seen[index - 1];
      if (before !== undefined && (!atLeast(each.usage, before.usage) || each.modelCalls < before.modelCalls)) {
        violations.push(`usage went down from ${JSON.stringify(before)} to ${JSON.stringify(each)}`);
      }
    });
    check(seen.length >= 3, `only ${seen.length} steps observed`);

    // Usage: the sum over the model_calls rows, the run row, the message.
    const calls = await db.pool.any(sql.type(CallRow)`
      SELECT sequence, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens,
             cost::text AS cost_text, usage_source, error
      FROM model_calls WHERE run_id = ${runId} ORDER BY sequence`);
    const callSum = sum(calls.map(callUsage));
    same(callSum, outcome.usage, 'sum over the model_calls rows (vs the outcome usage)');
    same(
      calls.reduce((sum, call) => sum + units(call.cost_text), 0),
      units(outcome.costUsd),
      'cost summed over the model_calls rows (vs the outcome cost, 1e-10 USD)',
    );
    const row = await db.pool.one(sql.type(RunRow)`
      SELECT status, terminal_reason, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens,
             reasoning_tokens, total_tokens, cost::text AS cost_text, cost_unknown, model_call_count, tool_call_count
      FROM workflow_runs WHERE id = ${runId}`);
    const u = outcome.usage;
    const prompt = u.inputUncached + u.cacheRead + u.cacheWrite;
    same(
      row,
      {
        status: outcome.status,
        terminal_reason: outcome.terminalReason,
        input_tokens: prompt,
        cache_read_tokens: u.cacheRead,
        cache_write_tokens: u.cacheWrite,
        output_tokens: u.output,
        reasoning_tokens: u.reasoning,
        total_tokens: tokens(u),
        cost_text: outcome.costUnknown ? null : row.cost_text,
        cost_unknown: outcome.costUnknown,
        model_call_count: outcome.modelCalls,
        tool_call_count: outcome.toolCalls,
      },
      'workflow_runs row',
    );
    if (!outcome.costUnknown) same(units(row.cost_text), units(outcome.costUsd), 'workflow_runs cost (1e-10 USD)');
    const message = await db.pool.maybeOne(sql.type(MessageRow)`
      SELECT prompt_tokens, completion_tokens, total_tokens, cached_input_tokens, reasoning_tokens, cost::text AS cost_text
      FROM messages WHERE run_id = ${runId} AND role = 'assistant'`);
    if (outcome.modelCalls === 0) {
      same(message, null, 'assistant message of a run without model responses');
    } else {
      same(
        message,
        {
          prompt_tokens: prompt,
          completion_tokens: u.output,
          total_tokens: tokens(u),
          cached_input_tokens: u.cacheRead,
          reasoning_tokens: u.reasoning,
          cost_text: outcome.costUnknown ? null : row.cost_text,
        },
        'assistant message token fields',
      );
    }

    // Each provider response as scripted, in order; the totals against the scripted
    // usage (summed here, independently) and against the machine run over the path.
    const responses = calls.filter((call) => call.error === null && call.usage_source !== 'estimated').map(callUsage);
    same(responses, expected.responses, 'usage of each model response (model_calls rows)');
    const scripted = sum(expected.responses);
    const { totals } = expected;
    const counts = (each: { modelCalls: number; toolCalls: number; costUsd: number; costUnknown: boolean }) => ({
      modelCalls: each.modelCalls,
      toolCalls: each.toolCalls,
      costUsd: each.costUsd,
      costUnknown: each.costUnknown,
    });
    if (stop === null) {
      same(u, scripted, 'outcome usage vs the sum of the scripted responses');
      same(u, totals.usage, 'outcome usage vs the machine over the path');
      same(counts(outcome), counts(totals), 'outcome calls and cost vs the machine over the path');
      if (outcome.status === 'budgetExceeded') {
        const crossing = expected.responses.at(-1);
        check(crossing !== null && crossing !== undefined && atLeast(u, crossing), 'the response that crossed the budget is not kept');
        check(tokens(u) > (pathInput.budget.tokensRemaining ?? Infinity), `budgetExceeded at ${tokens(u)} tokens`);
      }
    } else {
      // The stop keeps what was accounted before it and adds the in-flight call's estimate.
      check(atLeast(u, scripted), `usage ${JSON.stringify(u)} lost some of ${JSON.stringify(scripted)} kept before the ${stop.kind}`);
      same(totals.usage, scripted, `the machine's usage before the ${stop.kind} vs the sum of the scripted responses`);
      same(outcome.modelCalls, totals.modelCalls + 1, `model calls after the ${stop.kind} (responses + the in-flight call)`);
      same(outcome.toolCalls, totals.toolCalls, `tool calls after the ${stop.kind}`);
      const inFlight = calls.at(-1);
      same(
        inFlight === undefined ? null : { sequence: inFlight.sequence, source: inFlight.usage_source },
        { sequence: stop.attempt, source: 'estimated' },
        'the in-flight model call row',
      );
      same(inFlight === undefined ? null : callUsage(inFlight), combine(u, scripted, -1), 'usage added by the stop');
      if (stop.kind !== 'timeout') {
        same([run.stateAtStop, run.stopAccepted], ['running.callingModel', true], `state when the ${stop.kind} was sent, accepted`);
      }
    }

    // Conversation totals equal the sums over its messages, after every turn.
    const conversation = await db.pool.one(sql.type(ConversationRow)`
      SELECT c.message_count, c.total_tokens, c.total_cost::text AS total_cost_text,
             (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) AS sum_count,
             (SELECT COALESCE(sum(m.total_tokens), 0) FROM messages m WHERE m.conversation_id = c.id) AS sum_tokens,
             (SELECT COALESCE(sum(m.cost), 0)::text FROM messages m WHERE m.conversation_id = c.id) AS sum_cost_text
      FROM conversations c WHERE c.id = ${conversationId}`);
    same(
      [conversation.message_count, conversation.total_tokens, units(conversation.total_cost_text)],
      [conversation.sum_count, conversation.sum_tokens, units(conversation.sum_cost_text)],
      'conversation totals vs the sums over its messages',
    );
    return violations;
  };

  describe('drives every distinct scenario', () => {
    scenarios.forEach((scenario, index) => {
      const stop = scenario.stop === null ? '' : ` by ${scenario.stop.kind}`;
      it(`${scenario.expected.status}${stop} (${scenario.paths} path(s)): ${scenario.description}`, async ({ expect: expectHere }) => {
        const run = await drive(scenario, index % 2 === 1);
        expectHere(await violationsOf(scenario, run), `${scenario.description} (run ${run.runId})`).toEqual([]);
      });
    });
  });
});
