import type { ReadableSpan, SpanProcessor } from '@opentelemetry/sdk-trace';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createExportSpanProcessors, TelemetryConfigError } from '../../otel/trace-export.js';
import * as semconv from '../../otel/semconv.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { withOtelEnv } from '../helpers/otel-env.js';
import { createHarness, type Harness } from '../helpers/run-harness.js';
import { startGrpcReceiver, startHttpReceiver, type OtlpReceiver, type ReceivedSpan } from './helpers/otlp-receivers.js';
import { waitUntil } from '../helpers/wait.js';

const usage = { input_tokens: 9, output_tokens: 3 };
const SECRET = 'a secret answer text';

/** Runs one scripted turn and returns its run id once its spans have ended. */
const runTurn = async (h: Harness, correlationId: string): Promise<{ runId: string; durable: string }> => {
  h.script([{ content: SECRET, usage }]);
  const turn = await h.startTurn({ correlationId });
  const outcome = await turn.done;
  return { runId: turn.runId, durable: outcome.durable };
};

const ofRun = (spans: ReceivedSpan[], runId: string): ReceivedSpan[] =>
  spans.filter((span) => span.attributes[semconv.ATTR_RUN_ID] === runId);

/** Waits for `condition` without flushing (for the batch settings); fails after `timeoutMs`. */
describe('OTLP trace export, configured by the standard OTEL_* variables', () => {
  let http: OtlpReceiver;
  let grpc: OtlpReceiver;
  let h: Harness | undefined;
  let db: TestDatabase;
  /** A harness on the file's one database (each run has its own conversation). */
  const harness = (env: Record<string, string>, processors: SpanProcessor[] = []) => createHarness(env, { database: db, processors });
  beforeAll(async () => {
    db = await createTestDatabase();
    http = await startHttpReceiver();
    grpc = await startGrpcReceiver();
  });
  afterEach(async () => {
    await h?.close();
    h = undefined;
    http.requests.length = 0;
    grpc.requests.length = 0;
  });
  afterAll(async () => {
    await http.close();
    await grpc.close();
    await db.drop();
  });

  it('sends sampled spans as OTLP/HTTP protobuf by default, decodable, without message content', async () => {
    const seen: ReadableSpan[] = [];
    const recorder: SpanProcessor = {
      onStart: () => {},
      onEnd: (span) => void seen.push(span),
      forceFlush: async () => {},
      shutdown: async () => {},
    };
    h = await harness({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: http.url }, [recorder]);
    const { runId } = await runTurn(h, 'otlp-corr-1');
    await h.services.tracerProvider.forceFlush();
    expect(http.requests.length).toBeGreaterThan(0);
    expect(http.requests.every((request) => request.path === '/v1/traces')).toBe(true);
    expect(http.requests[0]!.contentType).toBe('application/x-protobuf');
    const spans = ofRun(http.spans(), runId);
    expect(spans.map((span) => span.name)).toContain('invoke_workflow chat');
    expect(spans.some((span) => span.name.startsWith('chat '))).toBe(true);
    expect(spans.every((span) => span.attributes[semconv.ATTR_CORRELATION_ID] === 'otlp-corr-1')).toBe(true);
    expect(new Set(spans.map((span) => span.traceId)).size).toBe(1);
    expect(spans[0]!.resource['service.name']).toBe('chatter');
    // Content is redacted on the way out: neither the attribute nor its text is sent.
    expect(spans.flatMap((span) => Object.keys(span.attributes)).filter((key) => key.startsWith(semconv.ATTR_CONTENT_PREFIX))).toEqual([]);
    expect(JSON.stringify(spans)).not.toContain(SECRET);
    // The service's processors get the content: it is dropped at export only.
    expect(seen.some((span) => Object.keys(span.attributes).some((key) => key.startsWith(semconv.ATTR_CONTENT_PREFIX)))).toBe(true);
  });

  it('sends OTLP/JSON with OTEL_EXPORTER_OTLP_PROTOCOL=http/json, with the resource of OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES', async () => {
    h = await harness({
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${http.url}/custom/traces`,
      OTEL_SERVICE_NAME: 'chatter-eu',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=staging,team=assistants',
    });
    const { runId } = await runTurn(h, 'otlp-json-1');
    await h.services.tracerProvider.forceFlush();
    expect(http.requests.length).toBeGreaterThan(0);
    expect(http.requests.every((request) => request.path === '/custom/traces')).toBe(true);
    expect(http.requests[0]!.contentType).toMatch(/^application\/json/);
    const spans = ofRun(http.spans(), runId);
    expect(spans.map((span) => span.name)).toContain('invoke_workflow chat');
    expect(spans.every((span) => span.attributes[semconv.ATTR_CORRELATION_ID] === 'otlp-json-1')).toBe(true);
    expect(spans[0]!.resource).toMatchObject({
      'service.name': 'chatter-eu',
      'deployment.environment.name': 'staging',
      team: 'assistants',
    });
    expect(JSON.stringify(spans)).not.toContain(SECRET);
  });

  it('sends OTLP/gRPC with OTEL_EXPORTER_OTLP_PROTOCOL=grpc', async () => {
    h = await harness({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_ENDPOINT: grpc.url });
    const { runId } = await runTurn(h, 'otlp-grpc-1');
    await h.services.tracerProvider.forceFlush();
    expect(http.requests).toEqual([]);
    const spans = ofRun(grpc.spans(), runId);
    expect(spans.map((span) => span.name)).toContain('invoke_workflow chat');
    expect(spans.every((span) => span.attributes[semconv.ATTR_CORRELATION_ID] === 'otlp-grpc-1')).toBe(true);
    expect(JSON.stringify(spans)).not.toContain(SECRET);
  });

  it('batches by OTEL_BSP_MAX_EXPORT_BATCH_SIZE: one span per request, sent without a flush', async () => {
    // A schedule delay far beyond the test: only the batch size can send them.
    h = await harness({
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_ENDPOINT: http.url,
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '1',
      OTEL_BSP_SCHEDULE_DELAY: '600000',
    });
    const { runId } = await runTurn(h, 'otlp-bsp-1');
    await waitUntil(() => ofRun(http.spans(), runId).some((span) => span.name === 'invoke_workflow chat'), { timeoutMs: 10_000 });
    expect(http.requests.every((request) => request.spans.length === 1)).toBe(true);
    expect(ofRun(http.spans(), runId).length).toBeGreaterThanOrEqual(2);
  });

  it('exports after OTEL_BSP_SCHEDULE_DELAY without a flush', async () => {
    // The SDK's default delay is 5 s; 50 ms gets the spans out well within the wait.
    h = await harness({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: http.url, OTEL_BSP_SCHEDULE_DELAY: '50' });
    const { runId } = await runTurn(h, 'otlp-delay-1');
    await waitUntil(() => ofRun(http.spans(), runId).some((span) => span.name === 'invoke_workflow chat'), { timeoutMs: 3_000 });
  });

  it('sends nothing for unsampled traces while the run is still recorded', async () => {
    h = await harness({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: http.url, OTEL_TRACES_SAMPLER: 'always_off' });
    const { durable } = await runTurn(h, 'otlp-unsampled-1');
    await h.services.tracerProvider.forceFlush();
    expect(http.requests).toEqual([]);
    expect(durable).toBe('database');
  });

  it('exports nothing with OTEL_TRACES_EXPORTER=none, and the run is still recorded', async () => {
    h = await harness({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: http.url });
    const { runId, durable } = await runTurn(h, 'otlp-none-1');
    await h.services.tracerProvider.forceFlush();
    expect(http.requests).toEqual([]);
    expect(durable).toBe('database');
    // The harness's own exporter still sees the spans: only the standard exporter is off.
    expect(h.spans().some((span) => span.attributes[semconv.ATTR_RUN_ID] === runId)).toBe(true);
  });

  it('records the run but exports nothing with OTEL_SDK_DISABLED=true', async () => {
    h = await harness({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: http.url });
    const { durable } = await runTurn(h, 'otlp-disabled-1');
    await h.services.tracerProvider.forceFlush();
    expect(durable).toBe('database');
    expect(http.requests).toEqual([]);
    expect(h.spans()).toEqual([]);
  });

  it('prints the spans, without content, with OTEL_TRACES_EXPORTER=console', async () => {
    const printed: unknown[] = [];
    const dir = vi.spyOn(console, 'dir').mockImplementation((item: unknown) => void printed.push(item));
    try {
      h = await harness({ OTEL_TRACES_EXPORTER: 'console', OTEL_EXPORTER_OTLP_ENDPOINT: http.url });
      const { runId } = await runTurn(h, 'otlp-console-1');
      await h.services.tracerProvider.forceFlush();
      const ofThisRun = printed.filter((item) => JSON.stringify(item).includes(runId));
      expect(ofThisRun.map((item) => (item as { name?: string }).name)).toContain('invoke_workflow chat');
      expect(JSON.stringify(printed)).not.toContain(SECRET);
      expect(http.requests).toEqual([]);
    } finally {
      dir.mockRestore();
    }
  });

  it('refuses the values the SDK would only warn about and ignore', async () => {
    const refused = async (env: Record<string, string>): Promise<unknown> =>
      withOtelEnv(env, async () => {
        try {
          createExportSpanProcessors();
          return undefined;
        } catch (error) {
          return error;
        }
      });
    for (const [env, message] of [
      [{ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/jsn' }, 'OTEL_EXPORTER_OTLP_PROTOCOL="http/jsn"'],
      [{ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'thrift' }, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="thrift"'],
      [{ OTEL_TRACES_EXPORTER: 'jaeger' }, 'OTEL_TRACES_EXPORTER="jaeger"'],
      [{ OTEL_TRACES_EXPORTER: 'none,console' }, 'OTEL_TRACES_EXPORTER="none,console"'],
      [{ OTEL_TRACES_EXPORTER: 'console', OTEL_BSP_SCHEDULE_DELAY: 'soon' }, undefined],
      [{ OTEL_TRACES_EXPORTER: 'otlp', OTEL_BSP_SCHEDULE_DELAY: 'soon' }, 'OTEL_BSP_SCHEDULE_DELAY="soon"'],
    ] as const) {
      const error = await refused(env);
      if (message === undefined) {
        // The console exporter is not batched: the batch settings do not apply to it.
        expect(error).toBeUndefined();
      } else {
        expect(error).toBeInstanceOf(TelemetryConfigError);
        expect((error as Error).message).toContain(message);
      }
    }
  });
});
