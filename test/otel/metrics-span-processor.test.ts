import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
  createAlwaysRecordSampler,
  type Sampler,
} from '@opentelemetry/sdk-trace';
import { afterEach, describe, expect, it } from 'vitest';
import { createMetrics, DURATION_BOUNDARIES_SECONDS, PROMETHEUS_CONTENT_TYPE, TOKEN_USAGE_BOUNDARIES } from '../../otel/metrics.js';
import { MetricsSpanProcessor } from '../../otel/processors/metrics-span-processor.js';
import type { GenAiConventions } from '../../otel/semconv.js';
import { emitRun, startRun, type EmitRunOptions, type FinishedRun, type RunStatus } from './helpers/emit-run.js';
import { scrape, select, total, type Sample } from './helpers/prometheus.js';

type Harness = Awaited<ReturnType<typeof createHarness>>;

const createHarness = (sampler: Sampler = new AlwaysOnSampler(), conventions?: GenAiConventions) => {
  const metrics = createMetrics({ serviceName: 'chatter-test', enabled: true });
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({
    sampler,
    spanProcessors: [
      new MetricsSpanProcessor({ meter: metrics.meter, ...(conventions === undefined ? {} : { conventions }) }),
      new SimpleSpanProcessor({ exporter }),
    ],
  });
  return { metrics, exporter, provider, tracer: provider.getTracer('test') };
};

const harnesses: Harness[] = [];
const harness = (sampler?: Sampler, conventions?: GenAiConventions): Harness => {
  const created = createHarness(sampler, conventions);
  harnesses.push(created);
  return created;
};

afterEach(async () => {
  for (const { provider, metrics } of harnesses.splice(0)) {
    await provider.shutdown();
    await metrics.meterProvider.shutdown();
  }
});

type RunPlan = Omit<EmitRunOptions, 'tracer'> & { readonly status: RunStatus };

const T0 = Date.parse('2026-03-02T09:15:00.000Z');

/** A mix of providers, models, outcomes, cache use, missing usage and unknown prices. */
const PLANS: readonly RunPlan[] = [
  {
    userId: 'user-a',
    provider: 'openai',
    model: 'gpt-4o-mini',
    status: 'completed',
    startAt: T0,
    steps: [
      {
        chat: {
          usage: { inputUncached: 1200, cacheRead: 300, cacheWrite: 0, output: 250, reasoning: 40 },
          costUsd: 0.000345,
          latencyMs: 820,
          timeToFirstChunkMs: 140,
        },
      },
      { tool: { tool: 'calculator', ok: true, durationMs: 3 } },
      {
        chat: {
          usage: { inputUncached: 1500, cacheRead: 1500, cacheWrite: 0, output: 90, reasoning: 0 },
          costUsd: 0.0002915,
          latencyMs: 1430,
          timeToFirstChunkMs: 210,
        },
      },
    ],
  },
  {
    userId: 'user-b',
    provider: 'anthropic',
    model: 'claude-sonnet-4-5',
    status: 'failed',
    startAt: T0 + 60_000,
    steps: [
      { chat: { usage: null, costUsd: null, latencyMs: 95, errorType: 'RateLimitError' } },
      {
        chat: {
          usage: { inputUncached: 40, cacheRead: 0, cacheWrite: 2048, output: 512, reasoning: 128 },
          costUsd: null,
          latencyMs: 3900,
          timeToFirstChunkMs: 600,
        },
      },
      { tool: { tool: 'current_time', ok: false, durationMs: 2 } },
    ],
  },
  {
    userId: 'user-a',
    provider: 'openai',
    model: 'gpt-4o-mini',
    status: 'cancelled',
    startAt: T0 + 120_000,
    steps: [{ chat: { usage: null, usageSource: 'missing', costUsd: null, latencyMs: 12_000, timeToFirstChunkMs: null } }],
  },
  {
    userId: 'user-c',
    provider: 'openai',
    model: 'gpt-4.1',
    workflow: 'research',
    status: 'completed',
    startAt: T0 + 180_000,
    steps: [
      {
        chat: {
          responseModel: 'gpt-4.1-2025-04-14',
          usage: { inputUncached: 7, cacheRead: 0, cacheWrite: 0, output: 3, reasoning: 0 },
          costUsd: 0.0000417,
          latencyMs: 64_000,
          timeToFirstChunkMs: 50,
        },
      },
      { tool: { tool: 'calculator', ok: true, durationMs: 1 } },
      { tool: { tool: 'calculator', ok: false, durationMs: 1 } },
      {
        chat: {
          usage: { inputUncached: 9, cacheRead: 0, cacheWrite: 0, output: 4, reasoning: 0 },
          costUsd: 0.0000101,
          latencyMs: 90_000,
          timeToFirstChunkMs: 30,
        },
      },
    ],
  },
];

const emitPlans = (tracer: Harness['tracer']): FinishedRun[] => PLANS.map((plan) => emitRun({ ...plan, tracer }));

const chatCallsOf = (runs: readonly FinishedRun[]) => runs.flatMap((run) => run.chatCalls);
const modelKeys = (runs: readonly FinishedRun[]) =>
  [...new Map(chatCallsOf(runs).map((call) => [`${call.provider}/${call.requestModel}`, call] as const)).values()].map((call) => ({
    provider: call.provider,
    model: call.requestModel,
  }));
const modelLabels = (key: { provider: string; model: string }) => ({
  gen_ai_provider_name: key.provider,
  gen_ai_request_model: key.model,
});

describe('MetricsSpanProcessor', () => {
  it('counts tokens by bucket, cost and model calls exactly as the sums over the spans', async () => {
    const { tracer, metrics } = harness();
    const runs = emitPlans(tracer);
    const { samples } = await scrape(metrics.metricsHandler);

    // Anchor one series on hand-computed numbers, then every series on the spans.
    expect(
      total(samples, 'chatter_llm_tokens_total', {
        ...modelLabels({ provider: 'openai', model: 'gpt-4o-mini' }),
        gen_ai_token_type: 'input',
      }),
    ).toBe(2700);
    for (const key of modelKeys(runs)) {
      const calls = chatCallsOf(runs).filter((call) => call.provider === key.provider && call.requestModel === key.model);
      const withUsage = calls.flatMap((call) => (call.usage === null || call.errorType !== undefined ? [] : [call.usage]));
      const sum = (pick: (usage: (typeof withUsage)[number]) => number) => withUsage.reduce((acc, usage) => acc + pick(usage), 0);
      const labels = modelLabels(key);
      const tokens = (type: string) => total(samples, 'chatter_llm_tokens_total', { ...labels, gen_ai_token_type: type });
      expect(tokens('input')).toBe(sum((usage) => usage.inputUncached));
      expect(tokens('cache_read')).toBe(sum((usage) => usage.cacheRead));
      expect(tokens('cache_write')).toBe(sum((usage) => usage.cacheWrite));
      expect(tokens('output')).toBe(sum((usage) => usage.output));
      expect(tokens('reasoning')).toBe(sum((usage) => usage.reasoning));

      // The semconv histogram counts all input (cached included) and output, once per call with usage.
      const usage = { ...labels, gen_ai_operation_name: 'chat' };
      expect(total(samples, 'gen_ai_client_token_usage_sum', { ...usage, gen_ai_token_type: 'input' })).toBe(
        sum((u) => u.inputUncached + u.cacheRead + u.cacheWrite),
      );
      expect(total(samples, 'gen_ai_client_token_usage_sum', { ...usage, gen_ai_token_type: 'output' })).toBe(sum((u) => u.output));
      expect(total(samples, 'gen_ai_client_token_usage_count', { ...usage, gen_ai_token_type: 'input' })).toBe(withUsage.length);

      // Cost: summed in the same order as the SDK adds, so the doubles are identical.
      const costs = calls.flatMap((call) => (call.costUsd === null ? [] : [call.costUsd]));
      const costSeries = select(samples, 'chatter_llm_cost_total', labels);
      expect(costSeries.length).toBe(costs.length === 0 ? 0 : 1);
      expect(total(samples, 'chatter_llm_cost_total', labels)).toBe(costs.reduce((acc, cost) => acc + cost, 0));

      const failed = calls.filter((call) => call.errorType !== undefined).length;
      expect(total(samples, 'chatter_llm_calls_total', { ...labels, chatter_outcome: 'error' })).toBe(failed);
      expect(total(samples, 'chatter_llm_calls_total', { ...labels, chatter_outcome: 'ok' })).toBe(calls.length - failed);
    }
    // Usage missing is counted as a call with its source, never as zero tokens.
    expect(total(samples, 'chatter_llm_calls_total', { chatter_usage_source: 'missing', chatter_outcome: 'ok' })).toBe(1);
    // Tokens over all types but reasoning = prompt + completion tokens of every run.
    const allTokens = ['input', 'cache_read', 'cache_write', 'output'].reduce(
      (acc, type) => acc + total(samples, 'chatter_llm_tokens_total', { gen_ai_token_type: type }),
      0,
    );
    const runTotals = runs.reduce(
      (acc, run) => acc + run.totals.inputUncached + run.totals.cacheRead + run.totals.cacheWrite + run.totals.output,
      0,
    );
    expect(allTokens).toBe(runTotals);
  });

  it('records call durations and time to first chunk in seconds, in the configured buckets', async () => {
    const { tracer, metrics } = harness();
    const runs = emitPlans(tracer);
    const { samples } = await scrape(metrics.metricsHandler);
    const calls = chatCallsOf(runs);

    expect(total(samples, 'gen_ai_client_operation_duration_count')).toBe(calls.length);
    expect(total(samples, 'gen_ai_client_operation_duration_sum')).toBeCloseTo(
      calls.reduce((acc, call) => acc + call.latencyMs / 1000, 0),
      9,
    );
    expect(total(samples, 'gen_ai_client_operation_duration_count', { error_type: 'RateLimitError' })).toBe(1);
    expect(select(samples, 'gen_ai_client_operation_duration_count').filter((s) => s.labels.error_type !== undefined)).toHaveLength(1);
    // 0.095 s lands in the 0.16 bucket, not in 0.08.
    const failedBuckets = { error_type: 'RateLimitError' };
    expect(total(samples, 'gen_ai_client_operation_duration_bucket', { ...failedBuckets, le: '0.08' })).toBe(0);
    expect(total(samples, 'gen_ai_client_operation_duration_bucket', { ...failedBuckets, le: '0.16' })).toBe(1);
    // 90 s is beyond the last bound: only +Inf holds it.
    const slow = { gen_ai_request_model: 'gpt-4.1' };
    expect(total(samples, 'gen_ai_client_operation_duration_bucket', { ...slow, le: '81.92' })).toBe(1);
    expect(total(samples, 'gen_ai_client_operation_duration_bucket', { ...slow, le: '+Inf' })).toBe(2);

    const bounds = (name: string) =>
      [...new Set(select(samples, name).map((sample) => sample.labels.le))].filter((le) => le !== '+Inf').map(Number);
    expect(bounds('gen_ai_client_operation_duration_bucket')).toEqual(DURATION_BOUNDARIES_SECONDS);
    expect(bounds('gen_ai_client_operation_time_to_first_chunk_bucket')).toEqual(DURATION_BOUNDARIES_SECONDS);
    expect(bounds('chatter_workflow_duration_bucket')).toEqual(DURATION_BOUNDARIES_SECONDS);
    expect(bounds('gen_ai_client_token_usage_bucket')).toEqual(TOKEN_USAGE_BOUNDARIES);

    const withFirstChunk = calls.filter((call) => typeof call.timeToFirstChunkMs === 'number');
    expect(total(samples, 'gen_ai_client_operation_time_to_first_chunk_count')).toBe(withFirstChunk.length);
    expect(total(samples, 'gen_ai_client_operation_time_to_first_chunk_sum')).toBeCloseTo(
      withFirstChunk.reduce((acc, call) => acc + (call.timeToFirstChunkMs ?? 0) / 1000, 0),
      9,
    );
  });

  it('with the latest GenAI conventions, counts usage on the inference counters and times calls on the inference histograms', async () => {
    const { tracer, metrics } = harness(undefined, 'latest');
    const runs = emitPlans(tracer);
    const { samples, text } = await scrape(metrics.metricsHandler);

    // None of the released GenAI names; the inference ones instead.
    expect(samples.filter((sample) => /^gen_ai_client_(token_usage|operation_)/.test(sample.name))).toEqual([]);
    expect(text).toContain('# TYPE gen_ai_client_inference_usage_input_tokens_total counter');
    expect(text).toContain('# TYPE gen_ai_client_inference_operation_input_tokens histogram');
    expect(
      total(samples, 'gen_ai_client_inference_usage_input_tokens_total', { ...modelLabels({ provider: 'openai', model: 'gpt-4o-mini' }) }),
    ).toBe(4500);
    for (const key of modelKeys(runs)) {
      const calls = chatCallsOf(runs).filter((call) => call.provider === key.provider && call.requestModel === key.model);
      const withUsage = calls.flatMap((call) => (call.usage === null || call.errorType !== undefined ? [] : [call.usage]));
      const sum = (pick: (usage: (typeof withUsage)[number]) => number) => withUsage.reduce((acc, usage) => acc + pick(usage), 0);
      const labels = { ...modelLabels(key), gen_ai_operation_name: 'chat' };
      const counted = (name: string) =>
        total(samples, `gen_ai_client_inference_usage_${name}_total`, { ...labels, gen_ai_token_modality: 'text' });
      // Input counts cached tokens, output counts reasoning: the cache and reasoning counters are subsets.
      expect(counted('input_tokens')).toBe(sum((u) => u.inputUncached + u.cacheRead + u.cacheWrite));
      expect(counted('output_tokens')).toBe(sum((u) => u.output));
      expect(counted('cache_read_input_tokens')).toBe(sum((u) => u.cacheRead));
      expect(counted('cache_write_input_tokens')).toBe(sum((u) => u.cacheWrite));
      expect(counted('reasoning_output_tokens')).toBe(sum((u) => u.reasoning));
      expect(total(samples, 'gen_ai_client_inference_operation_input_tokens_count', labels)).toBe(withUsage.length);
      expect(total(samples, 'gen_ai_client_inference_operation_output_tokens_sum', labels)).toBe(sum((u) => u.output));
    }
    const calls = chatCallsOf(runs);
    expect(total(samples, 'gen_ai_client_inference_duration_count')).toBe(calls.length);
    expect(total(samples, 'gen_ai_client_inference_duration_count', { error_type: 'RateLimitError' })).toBe(1);
    expect(total(samples, 'gen_ai_client_inference_time_to_first_chunk_count')).toBe(
      calls.filter((call) => typeof call.timeToFirstChunkMs === 'number').length,
    );
    const bounds = (name: string) =>
      [...new Set(select(samples, name).map((sample) => sample.labels.le))].filter((le) => le !== '+Inf').map(Number);
    expect(bounds('gen_ai_client_inference_duration_bucket')).toEqual(DURATION_BOUNDARIES_SECONDS);
    expect(bounds('gen_ai_client_inference_time_to_first_chunk_bucket')).toEqual(DURATION_BOUNDARIES_SECONDS);
    expect(bounds('gen_ai_client_inference_operation_input_tokens_bucket')).toEqual(TOKEN_USAGE_BOUNDARIES);

    // The service's own metrics do not change with the conventions.
    const released = harness();
    emitPlans(released.tracer);
    const own = (all: readonly Sample[]) =>
      all
        .filter((sample) => sample.name.startsWith('chatter_'))
        .map((sample) => `${sample.name}${JSON.stringify(sample.labels)} ${sample.value}`)
        .sort();
    expect(own(samples)).toEqual(own((await scrape(released.metrics.metricsHandler)).samples));
  });

  it('counts runs by workflow and status, their durations, and tool calls by tool and success', async () => {
    const { tracer, metrics } = harness();
    const runs = emitPlans(tracer);
    const { samples } = await scrape(metrics.metricsHandler);

    for (const run of runs) {
      const labels = { chatter_workflow_name: run.workflow, chatter_run_status: run.status };
      const same = runs.filter((other) => other.workflow === run.workflow && other.status === run.status);
      expect(total(samples, 'chatter_workflow_runs_total', labels)).toBe(same.length);
      expect(total(samples, 'chatter_workflow_duration_count', labels)).toBe(same.length);
      expect(total(samples, 'chatter_workflow_duration_sum', labels)).toBeCloseTo(
        same.reduce((acc, other) => acc + other.durationMs / 1000, 0),
        9,
      );
    }
    expect(total(samples, 'chatter_workflow_runs_total')).toBe(runs.length);
    const tools = runs.flatMap((run) => run.toolCalls);
    for (const tool of ['calculator', 'current_time']) {
      for (const ok of [true, false]) {
        expect(total(samples, 'chatter_tool_calls_total', { gen_ai_tool_name: tool, chatter_tool_ok: String(ok) })).toBe(
          tools.filter((call) => call.tool === tool && call.ok === ok).length,
        );
      }
    }
  });

  it('counts unsampled (record-only) spans exactly like sampled ones', async () => {
    const sampled = harness();
    const unsampled = harness(createAlwaysRecordSampler(new AlwaysOffSampler()));
    emitPlans(sampled.tracer);
    emitPlans(unsampled.tracer);
    // The unsampled provider exported nothing: its spans really were not sampled.
    expect(unsampled.exporter.getFinishedSpans()).toHaveLength(0);
    expect(sampled.exporter.getFinishedSpans().length).toBeGreaterThan(0);

    const comparable = (samples: readonly Sample[]) =>
      samples
        .filter((sample) => sample.name.startsWith('chatter_') || sample.name.startsWith('gen_ai_'))
        .map((sample) => `${sample.name}${JSON.stringify(sample.labels)} ${sample.value}`)
        .sort();
    const fromSampled = comparable((await scrape(sampled.metrics.metricsHandler)).samples);
    const fromUnsampled = comparable((await scrape(unsampled.metrics.metricsHandler)).samples);
    expect(fromSampled.length).toBeGreaterThan(50);
    expect(fromUnsampled).toEqual(fromSampled);
  });

  it('never labels a series with a user, run, conversation or correlation id', async () => {
    const { tracer, metrics } = harness();
    const runs = emitPlans(tracer);
    const { samples } = await scrape(metrics.metricsHandler);
    const ids = new Set(runs.flatMap((run) => [run.userId, run.runId, run.conversationId, run.correlationId]));
    const ours = samples.filter((sample) => sample.name.startsWith('chatter_') || sample.name.startsWith('gen_ai_'));
    expect(ours.length).toBeGreaterThan(0);
    const labelNames = new Set(ours.flatMap((sample) => Object.keys(sample.labels)));
    expect([...labelNames].sort()).toEqual(
      [
        'chatter_outcome',
        'chatter_run_status',
        'chatter_tool_ok',
        'chatter_usage_source',
        'chatter_workflow_name',
        'error_type',
        'gen_ai_operation_name',
        'gen_ai_provider_name',
        'gen_ai_request_model',
        'gen_ai_response_model',
        'gen_ai_token_type',
        'gen_ai_tool_name',
        'le',
        'otel_scope_name',
      ].sort(),
    );
    for (const sample of ours) {
      for (const value of Object.values(sample.labels)) {
        expect(ids.has(value), `${sample.name} carries ${value}`).toBe(false);
      }
    }
  });

  it('raises active runs when a root span starts and lowers them when it ends', async () => {
    const { tracer, metrics } = harness(createAlwaysRecordSampler(new AlwaysOffSampler()));
    const active = async () =>
      total((await scrape(metrics.metricsHandler)).samples, 'chatter_workflow_active_runs', { chatter_workflow_name: 'chat' });
    const step = {
      chat: { usage: { inputUncached: 1, cacheRead: 0, cacheWrite: 0, output: 1, reasoning: 0 }, costUsd: 0.000001, latencyMs: 10 },
    };

    const first = startRun({ tracer, userId: 'user-a', steps: [step] });
    const second = startRun({ tracer, userId: 'user-b', steps: [step] });
    expect(await active()).toBe(2);
    first.finish('completed');
    expect(await active()).toBe(1);
    second.finish('timedOut');
    expect(await active()).toBe(0);
    // Ending a root twice must not go below zero.
    second.root.end();
    expect(await active()).toBe(0);
  });

  it('serves the text format with a versioned content type, and 404 when metrics are disabled', async () => {
    const { tracer, metrics } = harness();
    emitPlans(tracer);
    const enabled = await scrape(metrics.metricsHandler);
    expect(enabled.status).toBe(200);
    expect(enabled.contentType).toBe(PROMETHEUS_CONTENT_TYPE);
    expect(enabled.text).toContain('# TYPE chatter_llm_tokens_total counter');
    expect(enabled.text).toContain('# TYPE gen_ai_client_token_usage histogram');
    expect(enabled.text).toContain('# TYPE chatter_workflow_active_runs gauge');
    expect(enabled.text).toMatch(/target_info\{[^}]*service_name="chatter-test"/);

    const disabled = createMetrics({ serviceName: 'chatter-test', enabled: false });
    expect(disabled.prometheus).toBeUndefined();
    const response = await scrape(disabled.metricsHandler);
    expect(response.status).toBe(404);
    await disabled.meterProvider.shutdown();
  });
});
