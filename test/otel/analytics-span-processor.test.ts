import { AlwaysOffSampler, TracerProvider, createAlwaysRecordSampler } from '@opentelemetry/sdk-trace';
import { afterEach, describe, expect, it } from 'vitest';
import { createMetrics } from '../../otel/metrics.js';
import { AnalyticsSpanProcessor } from '../../otel/processors/analytics-span-processor.js';
import { createAnalyticsFeed, type RunCompletedEvent } from '../../src/analytics/analytics-feed.js';
import { PLANS } from './helpers/analytics-plans.js';
import { emitRun } from './helpers/emit-run.js';
import { scrape, total } from './helpers/prometheus.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const createHarness = (feed: ConstructorParameters<typeof AnalyticsSpanProcessor>[0]['feed'] = createAnalyticsFeed()) => {
  const metrics = createMetrics({ serviceName: 'chatter-test', enabled: true });
  const provider = new TracerProvider({
    // Unsampled: the feed sees every run all the same.
    sampler: createAlwaysRecordSampler(new AlwaysOffSampler()),
    spanProcessors: [new AnalyticsSpanProcessor({ feed, meter: metrics.meter })],
  });
  cleanups.push(async () => {
    await provider.shutdown();
    await metrics.meterProvider.shutdown();
  });
  return { metrics, provider, tracer: provider.getTracer('test') };
};

describe('AnalyticsSpanProcessor', () => {
  it('delivers run_completed to subscribers of that user only, in the same tick as the span end', async () => {
    const feed = createAnalyticsFeed();
    const { tracer } = createHarness(feed);
    const ofA = feed.subscribe({ userId: 'user-a' });
    const ofB = feed.subscribe({ userId: 'user-b' });
    const admin = feed.subscribe({ allUsers: true });
    const waiting = ofA.next();

    const run = emitRun({ ...PLANS[0]!, tracer, status: 'completed' });
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

    emitRun({ ...PLANS[1]!, tracer });
    expect(ofA.poll()).toEqual([]);
    // A call without a known price: the run's cost is unknown (null), never 0.
    expect(ofB.poll()).toMatchObject([{ user_id: 'user-b', status: 'failed', cost: null, tokens: { total: 2600 } }]);
    for (const subscription of [ofA, ofB, admin]) subscription.close();
    expect(feed.subscriberCount()).toBe(0);
  });

  it('reports the cost of a run whose calls reported no usage as 0: nothing was priced, no price was unknown', async () => {
    const feed = createAnalyticsFeed();
    const { tracer } = createHarness(feed);
    const all = feed.subscribe({ allUsers: true });
    emitRun({ ...PLANS[2]!, tracer });
    expect(all.poll()).toMatchObject([{ status: 'cancelled', cost: 0, tokens: { total: 0 } }]);
  });

  it('never throws into the application when the feed fails, and counts the failures', async () => {
    const { tracer, provider, metrics } = createHarness({
      publish: () => {
        throw new Error('feed broken');
      },
    });
    expect(() => emitRun({ ...PLANS[0]!, tracer })).not.toThrow();
    expect(() => emitRun({ ...PLANS[3]!, tracer })).not.toThrow();
    await expect(provider.forceFlush()).resolves.toBeUndefined();

    const { samples } = await scrape(metrics.metricsHandler);
    expect(
      total(samples, 'chatter_telemetry_processor_errors_total', { chatter_telemetry_processor: 'analytics', error_type: 'feed_failed' }),
    ).toBe(2);
  });
});
