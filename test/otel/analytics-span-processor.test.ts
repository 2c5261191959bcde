import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
  createAlwaysRecordSampler,
  type Sampler,
} from '@opentelemetry/sdk-trace';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sql } from 'slonik';
import { createMetrics } from '../../otel/metrics.js';
import { AnalyticsSpanProcessor } from '../../otel/processors/analytics-span-processor.js';
import { MetricsSpanProcessor } from '../../otel/processors/metrics-span-processor.js';
import { ATTR_USER_ID, OPERATION_CHAT, ATTR_GEN_AI_OPERATION_NAME } from '../../otel/semconv.js';
import { createAnalyticsFeed, type RunCompletedEvent } from '../../src/analytics/analytics-feed.js';
import { createAnalyticsStore, type AnalyticsStoreOptions } from '../../src/analytics/analytics-store.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { expectedAnalyticsRows, insertUsers, readAnalyticsRows } from './helpers/analytics-rows.js';
import { emitRun, startRun, type EmitRunOptions, type FinishedRun, type RunStatus } from './helpers/emit-run.js';
import { scrape, total } from './helpers/prometheus.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
  await insertUsers(db.pool, ['user-a', 'user-b', 'user-c']);
});
afterAll(async () => {
  await db?.drop();
});
beforeEach(async () => {
  await db.pool.query(sql.unsafe`DELETE FROM analytics_hourly`);
});

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const createHarness = (
  options: { sampler?: Sampler; store?: Partial<AnalyticsStoreOptions> } = {},
) => {
  const store = createAnalyticsStore({ pool: db.pool, flushIntervalMs: 60_000, ...options.store });
  const feed = createAnalyticsFeed();
  const metrics = createMetrics({ serviceName: 'chatter-test', enabled: true });
  const processor = new AnalyticsSpanProcessor({ store, feed, meter: metrics.meter });
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({
    sampler: options.sampler ?? createAlwaysRecordSampler(new AlwaysOffSampler()),
    spanProcessors: [processor, new MetricsSpanProcessor({ meter: metrics.meter }), new SimpleSpanProcessor({ exporter })],
  });
  cleanups.push(async () => {
    await provider.shutdown();
    await metrics.meterProvider.shutdown();
  });
  return { store, feed, processor, provider, exporter, metrics, tracer: provider.getTracer('test') };
};

type Plan = Omit<EmitRunOptions, 'tracer'> & { readonly status: RunStatus };

// 10:59:59 — the runs straddle the hour, so their spans land in two buckets.
const T0 = Date.parse('2026-03-02T10:59:58.500Z');
const usage = (inputUncached: number, cacheRead: number, cacheWrite: number, output: number, reasoning: number) => ({
  inputUncached, cacheRead, cacheWrite, output, reasoning,
});

const PLANS: readonly Plan[] = [
  {
    userId: 'user-a', provider: 'openai', model: 'gpt-4o-mini', status: 'completed', startAt: T0,
    steps: [
      { chat: { usage: usage(1200, 300, 0, 250, 40), costUsd: 0.000345, latencyMs: 820 } },
      { tool: { tool: 'calculator', ok: true, durationMs: 3 } },
      { chat: { usage: usage(1500, 1500, 0, 90, 0), costUsd: 0.0002915, latencyMs: 1430 } },
    ],
  },
  {
    userId: 'user-b', provider: 'anthropic', model: 'claude-sonnet-4-5', status: 'failed', startAt: T0 + 100,
    steps: [
      { chat: { usage: null, costUsd: null, latencyMs: 95, errorType: 'RateLimitError' } },
      { chat: { usage: usage(40, 0, 2048, 512, 128), costUsd: null, latencyMs: 3900 } },
      { tool: { tool: 'current_time', ok: false, durationMs: 2 } },
    ],
  },
  {
    userId: 'user-a', provider: 'openai', model: 'gpt-4o-mini', status: 'cancelled', startAt: T0 + 200,
    steps: [{ chat: { usage: null, usageSource: 'missing', costUsd: null, latencyMs: 12_000 } }],
  },
  {
    userId: 'user-a', provider: 'openai', model: 'gpt-4o-mini', status: 'completed', startAt: T0 + 300,
    steps: [
      // A second model within the run: its tokens go to that model's row.
      { chat: { requestModel: 'gpt-4.1', usage: usage(7, 0, 0, 3, 0), costUsd: 0.0000417, latencyMs: 64_000 } },
      { chat: { usage: usage(9, 0, 0, 4, 0), costUsd: 0.0000101, latencyMs: 240 } },
    ],
  },
];

const emitPlans = (tracer: ReturnType<typeof createHarness>['tracer'], plans: readonly Plan[] = PLANS): FinishedRun[] =>
  plans.map((plan) => emitRun({ ...plan, tracer }));

describe('AnalyticsSpanProcessor', () => {
  it('writes rollup rows equal to the sums over the spans after forceFlush, and a second flush changes nothing', async () => {
    const { tracer, provider, exporter } = createHarness();
    const runs = emitPlans(tracer);
    expect(exporter.getFinishedSpans()).toHaveLength(0); // unsampled, still accounted
    expect(await readAnalyticsRows(db.pool)).toEqual([]); // nothing written on span end

    await provider.forceFlush();
    const rows = await readAnalyticsRows(db.pool);
    expect(rows).toEqual(expectedAnalyticsRows(runs));
    // Hand-checked anchors: user-a's first chat ended at 10:59:59.325, the rest after 11:00.
    const row = (hour: string, model: string) =>
      rows.find((r) => r.bucket_start === `2026-03-02T${hour}:00:00.000Z` && r.user_id === 'user-a' && r.model === model);
    expect(row('10', 'gpt-4o-mini')).toMatchObject({ input_tokens: 1200, cache_read_tokens: 300, output_tokens: 250, model_calls: 1, runs_total: 0, cost: 0.000345 });
    expect(row('11', 'gpt-4o-mini')).toMatchObject({
      input_tokens: 1509, model_calls: 3, runs_total: 3, runs_by_status: { completed: 2, cancelled: 1 }, cost: 0.0003016,
      latency_buckets: [0, 1, 0, 0, 1, 0, 0, 1, 0, 0], // 240 ms, 1430 ms, 12 s
    });
    expect(row('11', 'gpt-4.1')).toMatchObject({ model_calls: 1, runs_total: 0, latency_buckets: [0, 0, 0, 0, 0, 0, 0, 0, 0, 1] });

    await provider.forceFlush();
    expect(await readAnalyticsRows(db.pool)).toEqual(rows);
  });

  it('adds later runs onto the stored rows, merging run statuses and latency buckets in SQL', async () => {
    const { tracer, provider } = createHarness({ sampler: new AlwaysOnSampler() });
    const first = emitPlans(tracer);
    await provider.forceFlush();
    const second = emitPlans(tracer, [
      ...PLANS,
      { userId: 'user-a', provider: 'openai', model: 'gpt-4o-mini', status: 'timedOut', startAt: T0 + 400, steps: [{ chat: { usage: usage(1, 0, 0, 1, 0), costUsd: 0.0000000001, latencyMs: 30_001 } }] },
    ]);
    await provider.forceFlush();
    expect(await readAnalyticsRows(db.pool)).toEqual(expectedAnalyticsRows([...first, ...second]));
  });

  it('attributes child spans to the user of their root and forgets the run when the root ends', async () => {
    const { tracer, processor, provider, exporter } = createHarness({ sampler: new AlwaysOnSampler() });
    const run = startRun({
      tracer, userId: 'user-c', provider: 'openai', model: 'gpt-4o-mini', startAt: T0,
      steps: [{ chat: { usage: usage(10, 0, 0, 5, 0), costUsd: 0.00001, latencyMs: 300 } }],
    });
    expect(processor.trackedRuns).toBe(1);
    const chatSpans = exporter.getFinishedSpans().filter((span) => span.attributes[ATTR_GEN_AI_OPERATION_NAME] === OPERATION_CHAT);
    expect(chatSpans).toHaveLength(1);
    expect(chatSpans[0]?.attributes[ATTR_USER_ID]).toBeUndefined();
    const finished = run.finish('completed');
    expect(processor.trackedRuns).toBe(0);

    await provider.forceFlush();
    expect(await readAnalyticsRows(db.pool)).toEqual(expectedAnalyticsRows([finished]));
    expect((await readAnalyticsRows(db.pool)).every((row) => row.user_id === 'user-c')).toBe(true);
  });

  it('delivers run_completed to subscribers of that user only, in the same tick as the span end', async () => {
    const { tracer, feed } = createHarness();
    const ofA = feed.subscribe({ userId: 'user-a' });
    const ofB = feed.subscribe({ userId: 'user-b' });
    const admin = feed.subscribe({ allUsers: true });
    const waiting = ofA.next();

    const run = emitRun({
      ...PLANS[0]!,
      tracer,
      status: 'completed',
    });
    const sameTick = await Promise.race([waiting, new Promise<'next tick'>((resolve) => setImmediate(() => resolve('next tick')))]);
    const expected: RunCompletedEvent = {
      type: 'run_completed',
      run_id: run.runId,
      user_id: 'user-a',
      conversation_id: run.conversationId,
      workflow: 'chat',
      status: 'completed',
      provider: 'openai',
      model: 'gpt-4o-mini',
      tokens: { input: 2700, cache_read: 1800, cache_write: 0, output: 340, reasoning: 40, total: 4840 },
      cost: 0.0006365,
      duration_ms: run.durationMs,
      at: new Date(run.endAt).toISOString(),
    };
    expect(sameTick).toEqual({ done: false, value: expected });
    expect(admin.poll()).toEqual([expected]);
    expect(ofB.poll()).toEqual([]);
    // Live, not after the database flush.
    expect(await readAnalyticsRows(db.pool)).toEqual([]);

    emitRun({ ...PLANS[1]!, tracer });
    expect(ofA.poll()).toEqual([]);
    expect(ofB.poll()).toMatchObject([{ user_id: 'user-b', status: 'failed', cost: null, tokens: { total: 2600 } }]);
    for (const subscription of [ofA, ofB, admin]) subscription.close();
    expect(feed.subscriberCount()).toBe(0);
  });

  it('flushes on its own every flush interval', async () => {
    const { tracer } = createHarness({ store: { flushIntervalMs: 25 } });
    const runs = emitPlans(tracer);
    const deadline = Date.now() + 10_000;
    let rows = await readAnalyticsRows(db.pool);
    while (rows.length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      rows = await readAnalyticsRows(db.pool);
    }
    expect(rows).toEqual(expectedAnalyticsRows(runs));
  });

  it('never throws into the application when its sinks fail, and counts the failures', async () => {
    const metrics = createMetrics({ serviceName: 'chatter-test', enabled: true });
    const failingStore = {
      add: () => {
        throw new Error('store broken');
      },
      flush: async () => ({ applied: 0, pending: 0, inDoubt: 0 }),
      shutdown: async () => ({ applied: 0, pending: 0, inDoubt: 0 }),
    };
    const failingFeed = {
      publish: () => {
        throw new Error('feed broken');
      },
    };
    const provider = new TracerProvider({
      spanProcessors: [new AnalyticsSpanProcessor({ store: failingStore, feed: failingFeed, meter: metrics.meter })],
    });
    cleanups.push(async () => {
      await provider.shutdown();
      await metrics.meterProvider.shutdown();
    });
    const tracer = provider.getTracer('test');
    expect(() => emitRun({ ...PLANS[0]!, tracer })).not.toThrow();
    // A chat span of a run the processor never saw start: no user to attribute it to.
    const orphan = tracer.startSpan('chat gpt-4o-mini', { attributes: { [ATTR_GEN_AI_OPERATION_NAME]: OPERATION_CHAT, 'chatter.run.id': 'unknown-run' } });
    expect(() => orphan.end()).not.toThrow();
    await expect(provider.forceFlush()).resolves.toBeUndefined();

    const { samples } = await scrape(metrics.metricsHandler);
    const errors = (reason: string) =>
      total(samples, 'chatter_telemetry_processor_errors_total', { chatter_telemetry_processor: 'analytics', error_type: reason });
    expect(errors('on_end')).toBe(3); // the store failed for two chat spans and the root
    expect(errors('feed_failed')).toBe(1);
    expect(errors('run_unknown')).toBe(1);
  });

  it('agrees exactly with the Prometheus token and cost counters for the same runs', async () => {
    const { tracer, provider, metrics } = createHarness();
    emitPlans(tracer);
    await provider.forceFlush();
    const rows = await readAnalyticsRows(db.pool);
    const { samples } = await scrape(metrics.metricsHandler);
    const models = [...new Set(rows.map((row) => JSON.stringify([row.provider, row.model])))].map((key) => JSON.parse(key) as [string, string]);
    for (const [provider_, model] of models) {
      const of = rows.filter((row) => row.provider === provider_ && row.model === model);
      const sum = (pick: (row: (typeof rows)[number]) => number) => of.reduce((acc, row) => acc + pick(row), 0);
      const labels = { gen_ai_provider_name: provider_, gen_ai_request_model: model };
      const tokens = (type: string) => total(samples, 'chatter_llm_tokens_total', { ...labels, gen_ai_token_type: type });
      expect(tokens('input')).toBe(sum((row) => row.input_tokens));
      expect(tokens('cache_read')).toBe(sum((row) => row.cache_read_tokens));
      expect(tokens('cache_write')).toBe(sum((row) => row.cache_write_tokens));
      expect(tokens('output')).toBe(sum((row) => row.output_tokens));
      expect(tokens('reasoning')).toBe(sum((row) => row.reasoning_tokens));
      expect(total(samples, 'chatter_llm_cost_total', labels)).toBeCloseTo(sum((row) => row.cost), 10);
      expect(total(samples, 'chatter_llm_calls_total', labels)).toBe(sum((row) => row.model_calls));
    }
    expect(total(samples, 'chatter_workflow_runs_total')).toBe(rows.reduce((acc, row) => acc + row.runs_total, 0));
  });
});
