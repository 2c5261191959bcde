import { context, diag, propagation, trace, ProxyTracerProvider } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { defaultResource, detectResources, envDetector, resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  createAlwaysRecordSampler,
  type Sampler,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace';
import { createExportSpanProcessors } from './trace-export.js';

export type SamplerName =
  'always_on' | 'always_off' | 'traceidratio' | 'parentbased_always_on' | 'parentbased_always_off' | 'parentbased_traceidratio';

/**
 * The sampler the standard `OTEL_TRACES_SAMPLER` names, wrapped so that a span the
 * sampler drops is still recorded (RECORD_ONLY): the processors that count tokens and
 * money see every run; only the trace export honours the sampling decision.
 */
export const createSampler = (name: SamplerName, ratio = 1): Sampler => {
  const ratioSampler = () => new TraceIdRatioBasedSampler(ratio);
  const samplers: Record<SamplerName, () => Sampler> = {
    always_on: () => new AlwaysOnSampler(),
    always_off: () => new AlwaysOffSampler(),
    traceidratio: ratioSampler,
    parentbased_always_on: () => new ParentBasedSampler({ root: new AlwaysOnSampler() }),
    parentbased_always_off: () => new ParentBasedSampler({ root: new AlwaysOffSampler() }),
    parentbased_traceidratio: () => new ParentBasedSampler({ root: ratioSampler() }),
  };
  return createAlwaysRecordSampler(samplers[name]());
};

/**
 * One context manager for the process: `NodeSDK.start()` registers it the first time;
 * later service instances (tests build many in one process) hand the SDK the same one,
 * whose registration the API then declines, so contexts never change hands mid-flight.
 */
const contextManager = new AsyncLocalStorageContextManager();

/** What the SDK itself would register when it is disabled (`OTEL_SDK_DISABLED`): context and W3C propagation. */
const registerContext = (): void => {
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));
};

const DEFAULT_SERVICE_NAME = 'chatter';

/**
 * The service's resource: `service.name` (default `chatter`) and `service.version`,
 * overridden by `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_SERVICE_NAME` (the SDK's env
 * detector). NodeSDK adds its other detectors (host, process, …) on top for traces.
 */
export const createServiceResource = (serviceVersion: string): Resource =>
  defaultResource()
    .merge(resourceFromAttributes({ 'service.name': DEFAULT_SERVICE_NAME, 'service.version': serviceVersion }))
    .merge(detectResources({ detectors: [envDetector] }));

export type TelemetryOptions = {
  readonly resource: Resource;
  readonly sampler: SamplerName;
  readonly samplerArg?: number | undefined;
  /** The processors that feed the database, metrics and analytics (they see every span). */
  readonly processors: readonly SpanProcessor[];
  /** Extra exporters (tests use an in-memory one); export only sampled spans. */
  readonly exporters?: readonly SpanExporter[];
};

export type Telemetry = {
  readonly tracerProvider: TracerProvider;
  /** Flushes the service's own processors only: a slow trace backend does not hold them up. */
  readonly flushProcessors: () => Promise<void>;
  /** Flushes the trace export and shuts everything down. */
  readonly shutdown: () => Promise<void>;
};

/**
 * Starts the OpenTelemetry SDK (`NodeSDK`) for traces: resource detection,
 * propagators (`OTEL_PROPAGATORS`), span limits, `OTEL_LOG_LEVEL`, `OTEL_SDK_DISABLED`,
 * and the exporters of `OTEL_TRACES_EXPORTER` (see `createExportSpanProcessors`) behind
 * the service's own processors. The sampler is the `OTEL_TRACES_SAMPLER` one made
 * always-record, so the processors see every span and only the export is sampled.
 *
 * Metrics stay out of the SDK (`metricReaders: []`): `otel/metrics.ts` serves them at
 * `/metrics`. Logs go to pino on stdout (`logRecordProcessors: []`).
 *
 * @throws TelemetryConfigError on an `OTEL_*` value the SDK would ignore.
 */
export const startTelemetry = (options: TelemetryOptions): Telemetry => {
  const processors = [...options.processors];
  const exportProcessors = createExportSpanProcessors(options.exporters);
  const sampler = createSampler(options.sampler, options.samplerArg ?? 1);
  // start() registers the SDK's TracerProvider globally, and the API refuses a second
  // registration: the newest instance takes the global over (the service itself uses the
  // provider it is handed, never the global one).
  trace.disable();
  const sdk = new NodeSDK({
    resource: options.resource,
    sampler,
    contextManager,
    spanProcessors: [...processors, ...exportProcessors],
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [],
  });
  sdk.start();
  const registered = trace.getTracerProvider();
  const delegate = registered instanceof ProxyTracerProvider ? registered.getDelegate() : registered;
  let tracerProvider: TracerProvider;
  let shutdownSdk: () => Promise<void>;
  if (delegate instanceof TracerProvider) {
    tracerProvider = delegate;
    shutdownSdk = () => sdk.shutdown();
  } else {
    // OTEL_SDK_DISABLED: nothing is exported, but the money is still counted.
    diag.info('OpenTelemetry SDK disabled: spans are recorded by the service processors only, not exported');
    registerContext();
    void Promise.all(exportProcessors.map((processor) => processor.shutdown())).catch(() => undefined);
    tracerProvider = new TracerProvider({ resource: options.resource, sampler, spanProcessors: processors });
    shutdownSdk = () => tracerProvider.shutdown();
  }
  return {
    tracerProvider,
    flushProcessors: async () => {
      await Promise.all(processors.map((processor) => processor.forceFlush()));
    },
    shutdown: async () => {
      await shutdownSdk();
      const global = trace.getTracerProvider();
      if (global instanceof ProxyTracerProvider && global.getDelegate() === tracerProvider) {
        trace.disable();
      }
    },
  };
};
