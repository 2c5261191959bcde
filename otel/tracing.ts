import { context, propagation, type Attributes } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  createAlwaysRecordSampler,
  type ReadableSpan,
  type Sampler,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace';
import { ATTR_CONTENT_PREFIX } from './semconv.js';

export type SamplerName =
  | 'always_on'
  | 'always_off'
  | 'traceidratio'
  | 'parentbased_always_on'
  | 'parentbased_always_off'
  | 'parentbased_traceidratio';

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
 * Exports spans without their `chatter.content.*` attributes: message text and tool
 * arguments stay in the database, not in the trace backend.
 */
export class ContentRedactingExporter implements SpanExporter {
  private readonly delegate: SpanExporter;

  public constructor(delegate: SpanExporter) {
    this.delegate = delegate;
  }

  public export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    const redacted = spans.map((span) => {
      const keys = Object.keys(span.attributes).filter((key) => key.startsWith(ATTR_CONTENT_PREFIX));
      if (keys.length === 0) {
        return span;
      }
      const attributes: Attributes = { ...span.attributes };
      for (const key of keys) {
        delete attributes[key];
      }
      return new Proxy(span, { get: (target, property) => (property === 'attributes' ? attributes : Reflect.get(target, property)) });
    });
    this.delegate.export(redacted, resultCallback);
  }

  public shutdown(): Promise<void> {
    return this.delegate.shutdown();
  }

  public forceFlush(): Promise<void> {
    return this.delegate.forceFlush?.() ?? Promise.resolve();
  }
}

let contextRegistered = false;

/** Context propagation across async calls, W3C trace context and baggage. Idempotent. */
export const registerContext = (): void => {
  if (contextRegistered) {
    return;
  }
  contextRegistered = true;
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(
    new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
  );
};

export type TracingOptions = {
  readonly serviceName: string;
  readonly serviceVersion: string;
  readonly sampler: SamplerName;
  readonly samplerArg?: number | undefined;
  /** Full OTLP/HTTP traces URL; unset → no trace export. */
  readonly otlpTracesEndpoint?: string | undefined;
  /** The processors that feed the database, metrics and analytics (they see every span). */
  readonly processors: readonly SpanProcessor[];
  /** Extra exporters (tests use an in-memory one); export only sampled spans. */
  readonly exporters?: readonly SpanExporter[];
};

/** Builds the one TracerProvider of the service. */
export const createTracerProvider = (options: TracingOptions): TracerProvider => {
  const exporters = [...(options.exporters ?? [])];
  if (options.otlpTracesEndpoint !== undefined) {
    exporters.push(new OTLPTraceExporter({ url: options.otlpTracesEndpoint }));
  }
  return new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName, 'service.version': options.serviceVersion }),
    sampler: createSampler(options.sampler, options.samplerArg ?? 1),
    spanProcessors: [
      ...options.processors,
      // BatchSpanProcessor skips unsampled spans: sampling thins the traces only.
      ...exporters.map((exporter) => new BatchSpanProcessor({ exporter: new ContentRedactingExporter(exporter), scheduledDelayMillis: 500 })),
    ],
  });
};
