import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import * as semconv from '../../otel/semconv.js';
import { createHarness, type Harness } from '../helpers/run-harness.js';

const usage = (input: number, output: number, cacheRead = 0) => ({
  input_tokens: input,
  output_tokens: output,
  input_token_details: { cache_read: cacheRead },
});

const twoToolScript = (h: Harness) =>
  h.script([
    { content: '', toolCalls: [{ name: 'calculator', args: { expression: '2+3' } }], usage: usage(80, 8, 30) },
    { content: '', toolCalls: [{ name: 'current_time', args: {} }], usage: usage(100, 9) },
    { content: 'Five, at the current time.', usage: usage(120, 7) },
  ]);

describe('run spans', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h.close();
  });

  it('emits the span tree of a run with GenAI attributes, lifecycle events and the correlation id on every span', async () => {
    twoToolScript(h);
    const turn = await h.startTurn({ workflow: 'chat_with_tools', correlationId: 'corr-span-tree-1' });
    await turn.done;
    await h.services.tracerProvider.forceFlush();
    const spans = h.spans().filter((span) => span.attributes[semconv.ATTR_RUN_ID] === turn.runId);

    const root = spans.find((span) => span.name === 'invoke_workflow chat_with_tools');
    expect(root).toBeDefined();
    const rootId = root!.spanContext().spanId;
    const chats = spans.filter((span) => span.name.startsWith('chat '));
    const tools = spans.filter((span) => span.name.startsWith('execute_tool '));
    expect(chats).toHaveLength(3);
    expect(tools.map((span) => span.name)).toEqual(['execute_tool calculator', 'execute_tool current_time']);
    for (const child of [...chats, ...tools]) {
      expect(child.parentSpanContext?.spanId).toBe(rootId);
      expect(child.spanContext().traceId).toBe(root!.spanContext().traceId);
    }
    for (const span of spans) {
      expect(span.attributes[semconv.ATTR_CORRELATION_ID]).toBe('corr-span-tree-1');
    }

    const first = chats.find((span) => span.attributes[semconv.ATTR_MODEL_CALL_SEQUENCE] === 0)!;
    expect(first.kind).toBe(SpanKind.CLIENT);
    expect(first.name).toBe('chat gpt-4o-mini');
    expect(first.attributes).toMatchObject({
      [semconv.ATTR_GEN_AI_OPERATION_NAME]: 'chat',
      [semconv.ATTR_GEN_AI_PROVIDER_NAME]: 'openai',
      [semconv.ATTR_GEN_AI_REQUEST_MODEL]: 'gpt-4o-mini',
      [semconv.ATTR_GEN_AI_RESPONSE_MODEL]: 'gpt-4o-mini-2024-07-18',
      [semconv.ATTR_GEN_AI_USAGE_INPUT_TOKENS]: 80,
      [semconv.ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS]: 30,
      [semconv.ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: 8,
      [semconv.ATTR_GEN_AI_RESPONSE_FINISH_REASONS]: ['tool_calls'],
      [semconv.ATTR_USAGE_SOURCE]: 'provider',
    });
    expect(first.attributes[semconv.ATTR_GEN_AI_USAGE_COST]).toBeCloseTo((50 * 0.15 + 30 * 0.075 + 8 * 0.6) / 1e6, 10);
    expect(first.attributes[semconv.ATTR_PRICE_ID]).toEqual(expect.any(String));

    expect(root!.attributes).toMatchObject({
      [semconv.ATTR_GEN_AI_OPERATION_NAME]: 'invoke_workflow',
      [semconv.ATTR_WORKFLOW_NAME]: 'chat_with_tools',
      [semconv.ATTR_GEN_AI_CONVERSATION_ID]: turn.conversationId,
      [semconv.ATTR_RUN_STATUS]: 'completed',
      [semconv.ATTR_GEN_AI_USAGE_INPUT_TOKENS]: 300,
      [semconv.ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: 24,
      [semconv.ATTR_RUN_MODEL_CALLS]: 3,
      [semconv.ATTR_RUN_TOOL_CALLS]: 2,
    });
    expect(root!.status.code).not.toBe(SpanStatusCode.ERROR);
    const names = root!.events.map((event) => event.name);
    expect(names[0]).toBe('workflow_started');
    expect(names.filter((name) => name === 'model_response')).toHaveLength(3);
    expect(names.filter((name) => name === 'tool_called')).toHaveLength(2);
    expect(names.at(-1)).toBe('workflow_completed');
  });

  it('leaves the cost off the root span of an unpriced run: unknown (null) in the row and the live feed, never 0', async () => {
    const feed = h.services.analyticsFeed.subscribe({ allUsers: true });
    try {
      h.script([
        { content: '', toolCalls: [{ name: 'calculator', args: { expression: '1+1' } }], usage: usage(40, 4) },
        { content: 'Two.', usage: usage(50, 2) },
      ]);
      // No price is known for the model: both calls report usage and have no cost.
      const turn = await h.startTurn({ workflow: 'chat_with_tools', model: 'unpriced-model-x' });
      await turn.done;
      await h.services.tracerProvider.forceFlush();
      const root = h.spans().find((span) => span.attributes[semconv.ATTR_RUN_ID] === turn.runId && span.name.startsWith('invoke_workflow'));
      expect(root?.attributes[semconv.ATTR_RUN_COST_UNKNOWN]).toBe(true);
      expect(root?.attributes).not.toHaveProperty(semconv.ATTR_GEN_AI_USAGE_COST);
      const row = await h.db.pool.one(sql.type(z.object({ cost: z.number().nullable(), cost_unknown: z.boolean() }))`
        SELECT cost, cost_unknown FROM workflow_runs WHERE id = ${turn.runId}`);
      expect(row).toEqual({ cost: null, cost_unknown: true });
      expect(feed.poll().filter((event) => event.run_id === turn.runId)).toMatchObject([{ cost: null, tokens: { total: 96 } }]);
    } finally {
      feed.close();
    }
  });

  it('never exports message or tool-argument content', async () => {
    twoToolScript(h);
    const turn = await h.startTurn({ workflow: 'chat_with_tools' });
    await turn.done;
    await h.services.tracerProvider.forceFlush();
    const exported = h.spans().filter((span) => span.attributes[semconv.ATTR_RUN_ID] === turn.runId);
    expect(exported.length).toBeGreaterThan(0);
    for (const span of exported) {
      expect(Object.keys(span.attributes).filter((key) => key.startsWith(semconv.ATTR_CONTENT_PREFIX))).toEqual([]);
    }
    // …while the database writer saw it.
    const content = await h.db.pool.oneFirst(sql.type(z.object({ content: z.string() }))`
      SELECT content FROM messages WHERE run_id = ${turn.runId} AND role = 'assistant'`);
    expect(content).toBe('Five, at the current time.');
  });
});

describe('run spans with OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness({ OTEL_SEMCONV_STABILITY_OPT_IN: 'http,gen_ai_latest_experimental' });
  });
  afterAll(async () => {
    await h.close();
  });

  it('carries the latest GenAI names, and the run is recorded from them as from the released ones', async () => {
    h.script([
      {
        content: 'Cached and streamed.',
        usage: { input_tokens: 100, output_tokens: 10, input_token_details: { cache_read: 20, cache_creation: 30 } },
      },
    ]);
    const turn = await h.startTurn({ streaming: true, onToken: () => {} });
    await turn.done;
    await h.services.tracerProvider.forceFlush();
    const spans = h.spans().filter((span) => span.attributes[semconv.ATTR_RUN_ID] === turn.runId);
    const chat = spans.find((span) => span.name.startsWith('chat '));
    const root = spans.find((span) => span.name.startsWith('invoke_workflow '));
    for (const span of [chat, root]) {
      expect(span?.attributes[semconv.ATTR_GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS]).toBe(30);
      expect(span?.attributes).not.toHaveProperty(semconv.ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS);
    }
    const seconds = chat?.attributes[semconv.ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK];
    expect(typeof seconds).toBe('number');
    expect(chat?.attributes).not.toHaveProperty(semconv.ATTR_TIME_TO_FIRST_CHUNK_MS);

    const call = await h.db.pool.one(sql.type(
      z.object({ cache_write_tokens: z.number().nullable(), time_to_first_token_ms: z.number().nullable() }),
    )`
      SELECT cache_write_tokens, time_to_first_token_ms FROM model_calls WHERE run_id = ${turn.runId}`);
    expect(call).toEqual({ cache_write_tokens: 30, time_to_first_token_ms: Math.round((seconds as number) * 1000) });
  });
});

describe('sampling', () => {
  it('drops unsampled traces from export but records every run in the database', async () => {
    const h = await createHarness({ OTEL_TRACES_SAMPLER: 'always_off' });
    try {
      twoToolScript(h);
      const turn = await h.startTurn({ workflow: 'chat_with_tools' });
      const outcome = await turn.done;
      await h.services.tracerProvider.forceFlush();
      expect(h.spans().filter((span: ReadableSpan) => span.attributes[semconv.ATTR_RUN_ID] === turn.runId)).toEqual([]);
      const row = await h.db.pool.one(sql.type(z.object({ total_tokens: z.number(), status: z.string() }))`
        SELECT total_tokens, status FROM workflow_runs WHERE id = ${turn.runId}`);
      expect(row).toEqual({ total_tokens: 324, status: 'completed' });
      expect(outcome.usage.inputUncached + outcome.usage.cacheRead + outcome.usage.output).toBe(324);
    } finally {
      await h.close();
    }
  });
});
