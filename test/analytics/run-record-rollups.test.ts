import { sql } from 'slonik';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createMetrics } from '../../otel/metrics.js';
import { MetricsSpanProcessor } from '../../otel/processors/metrics-span-processor.js';
import { applyRunRecords } from '../../src/repositories/run-records-repository.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { PLANS, T0 } from '../otel/helpers/analytics-plans.js';
import { expectedAnalyticsRows, insertUsers, readAnalyticsRows } from '../otel/helpers/analytics-rows.js';
import { emitRun, startRun } from '../otel/helpers/emit-run.js';
import { createRecordPath, type RecordPath } from '../otel/helpers/record-path.js';
import { scrape, total } from '../otel/helpers/prometheus.js';

/*
 * The hourly rollups come from the run records, in the records' own transaction
 * (src/analytics/run-record-rollups.ts): spans → database writer processor → record →
 * applyRunRecords. Unsampled spans, as the record path's sampler records them.
 */

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

const recordPath = (...processors: ConstructorParameters<typeof MetricsSpanProcessor>[0][]): RecordPath => {
  const metricsProcessors = processors.map((options) => new MetricsSpanProcessor(options));
  const path = createRecordPath(db.pool, metricsProcessors);
  cleanups.push(path.shutdown);
  return path;
};

describe('rollups from run records', () => {
  it('writes rows equal to the sums over the spans with the records, and a replay of the records changes nothing', async () => {
    const path = recordPath();
    const runs = PLANS.map((plan) => emitRun({ ...plan, tracer: path.tracer, conversationId: null, httpParent: false }));
    const records = await path.commit();
    expect(records.map((record) => record.runId)).toEqual(runs.map((run) => run.runId));
    const rows = await readAnalyticsRows(db.pool);
    expect(rows).toEqual(expectedAnalyticsRows(runs));
    // Hand-checked anchors: user-a's first chat ended at 10:59:59.325, the rest after 11:00.
    const row = (hour: string, model: string) =>
      rows.find((r) => r.bucket_start === `2026-03-02T${hour}:00:00.000Z` && r.user_id === 'user-a' && r.model === model);
    expect(row('10', 'gpt-4o-mini')).toMatchObject({
      input_tokens: 1200,
      cache_read_tokens: 300,
      output_tokens: 250,
      model_calls: 1,
      runs_total: 0,
      cost: 0.000345,
    });
    expect(row('11', 'gpt-4o-mini')).toMatchObject({
      input_tokens: 1509,
      model_calls: 3,
      runs_total: 3,
      runs_by_status: { completed: 2, cancelled: 1 },
      cost: 0.0003016,
      latency_buckets: [0, 1, 0, 0, 1, 0, 0, 1, 0, 0], // 240 ms, 1430 ms, 12 s
    });
    expect(row('11', 'gpt-4.1')).toMatchObject({ model_calls: 1, runs_total: 0, latency_buckets: [0, 0, 0, 0, 0, 0, 0, 0, 0, 1] });

    // The same records again (a spool replay, a retried batch): applied once, by run id.
    const replay = await db.pool.transaction(async (tx) => applyRunRecords(tx, records));
    expect(replay.applied).toEqual([]);
    expect(await readAnalyticsRows(db.pool)).toEqual(rows);
  });

  it('adds later runs onto the stored rows, merging run statuses and latency buckets in SQL', async () => {
    const path = recordPath();
    const first = await path.seed(PLANS);
    const second = await path.seed([
      ...PLANS,
      {
        userId: 'user-a',
        provider: 'openai',
        model: 'gpt-4o-mini',
        status: 'timedOut',
        startAt: T0 + 400,
        steps: [
          {
            chat: {
              usage: { inputUncached: 1, cacheRead: 0, cacheWrite: 0, output: 1, reasoning: 0 },
              costUsd: 0.0000000001,
              latencyMs: 30_001,
            },
          },
        ],
      },
    ]);
    expect(await readAnalyticsRows(db.pool)).toEqual(expectedAnalyticsRows([...first, ...second]));
  });

  it('attributes child spans to the user of their root', async () => {
    const path = recordPath();
    const run = startRun({
      tracer: path.tracer,
      userId: 'user-c',
      provider: 'openai',
      model: 'gpt-4o-mini',
      startAt: T0,
      conversationId: null,
      steps: [
        { chat: { usage: { inputUncached: 10, cacheRead: 0, cacheWrite: 0, output: 5, reasoning: 0 }, costUsd: 0.00001, latencyMs: 300 } },
      ],
    });
    const finished = run.finish('completed');
    await path.commit();
    expect(await readAnalyticsRows(db.pool)).toEqual(expectedAnalyticsRows([finished]));
    expect((await readAnalyticsRows(db.pool)).every((row) => row.user_id === 'user-c')).toBe(true);
  });

  it('agrees exactly with the Prometheus token and cost counters for the same runs', async () => {
    const metrics = createMetrics({ serviceName: 'chatter-test', enabled: true });
    cleanups.push(() => metrics.meterProvider.shutdown());
    const path = recordPath({ meter: metrics.meter });
    await path.seed(PLANS);
    const rows = await readAnalyticsRows(db.pool);
    const { samples } = await scrape(metrics.metricsHandler);
    const models = [...new Set(rows.map((row) => JSON.stringify([row.provider, row.model])))].map(
      (key) => JSON.parse(key) as [string, string],
    );
    for (const [provider, model] of models) {
      const of = rows.filter((row) => row.provider === provider && row.model === model);
      const sum = (pick: (row: (typeof rows)[number]) => number) => of.reduce((acc, row) => acc + pick(row), 0);
      const labels = { gen_ai_provider_name: provider, gen_ai_request_model: model };
      const tokens = (type: string) => total(samples, 'chatter_llm_tokens_total', { ...labels, gen_ai_token_type: type });
      expect(tokens('input')).toBe(sum((row) => row.input_tokens));
      expect(tokens('cache_read')).toBe(sum((row) => row.cache_read_tokens));
      expect(tokens('cache_write')).toBe(sum((row) => row.cache_write_tokens));
      expect(tokens('output')).toBe(sum((row) => row.output_tokens));
      expect(tokens('reasoning')).toBe(sum((row) => row.reasoning_tokens));
      expect(total(samples, 'chatter_llm_cost_total', labels)).toBeCloseTo(
        sum((row) => row.cost),
        10,
      );
      expect(total(samples, 'chatter_llm_calls_total', labels)).toBe(sum((row) => row.model_calls));
    }
    expect(total(samples, 'chatter_workflow_runs_total')).toBe(rows.reduce((acc, row) => acc + row.runs_total, 0));
  });
});
