import type { Attributes } from '@opentelemetry/api';
import { getStringFromEnv, getStringListFromEnv, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter as OTLPGrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as OTLPJsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OTLPProtobufTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import {
  BatchSpanProcessor,
  ConsoleSpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace';
import { ATTR_CONTENT_PREFIX } from './semconv.js';

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

/** An `OTEL_*` value the SDK would only warn about (and then silently ignore). */
export class TelemetryConfigError extends Error {
  public constructor(variable: string, value: string, expected: string) {
    super(`${variable}=${JSON.stringify(value)}: ${expected}`);
    this.name = 'TelemetryConfigError';
  }
}

const positiveNumberFromEnv = (name: string): number | undefined => {
  const raw = getStringFromEnv(name);
  if (raw === undefined) {
    return undefined;
  }
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    throw new TelemetryConfigError(name, raw, 'must be a positive number');
  }
  return value;
};

const PROTOCOLS = ['http/protobuf', 'http/json', 'grpc'] as const;

/** The OTLP exporter of `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` (else `OTEL_EXPORTER_OTLP_PROTOCOL`, else protobuf). */
const createOtlpExporter = (): SpanExporter => {
  const variable =
    getStringFromEnv('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') === undefined
      ? 'OTEL_EXPORTER_OTLP_PROTOCOL'
      : 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL';
  const protocol = getStringFromEnv(variable) ?? 'http/protobuf';
  // Each exporter reads its endpoint, headers, timeout, compression and TLS settings
  // (OTEL_EXPORTER_OTLP_[TRACES_]*) from the environment itself.
  switch (protocol) {
    case 'http/protobuf':
      return new OTLPProtobufTraceExporter();
    case 'http/json':
      return new OTLPJsonTraceExporter();
    case 'grpc':
      return new OTLPGrpcTraceExporter();
    default:
      throw new TelemetryConfigError(variable, protocol, `must be one of ${PROTOCOLS.join(', ')}`);
  }
};

/** A batch processor with the `OTEL_BSP_*` settings (unset → the SDK's defaults). */
const createBatchProcessor = (exporter: SpanExporter): SpanProcessor =>
  new BatchSpanProcessor({
    exporter,
    scheduledDelayMillis: positiveNumberFromEnv('OTEL_BSP_SCHEDULE_DELAY'),
    exportTimeoutMillis: positiveNumberFromEnv('OTEL_BSP_EXPORT_TIMEOUT'),
    maxQueueSize: positiveNumberFromEnv('OTEL_BSP_MAX_QUEUE_SIZE'),
    maxExportBatchSize: positiveNumberFromEnv('OTEL_BSP_MAX_EXPORT_BATCH_SIZE'),
  });

/**
 * The trace export processors `OTEL_TRACES_EXPORTER` names (`otlp` by default,
 * `console`, `none`), plus `extra` exporters (tests: an in-memory one), each behind
 * the content redaction. These are what `NodeSDK` builds from the environment when it
 * is given no span processors (`getSpanProcessorsFromEnv` in @opentelemetry/sdk-node,
 * not exported by the package): it stops reading the environment as soon as the
 * service passes its own processors, so the same rules are applied here, with the
 * SDK's own environment readers. A value the SDK would only warn about is an error.
 *
 * Batching skips unsampled spans (RECORD_ONLY): sampling thins the traces only, never
 * what the service's own processors see.
 *
 * @throws TelemetryConfigError on an unknown exporter or protocol, or a bad `OTEL_BSP_*` number.
 */
export const createExportSpanProcessors = (extra: readonly SpanExporter[] = []): SpanProcessor[] => {
  const names = [...new Set(getStringListFromEnv('OTEL_TRACES_EXPORTER') ?? [])];
  const selected = names.length === 0 ? ['otlp'] : names;
  if (selected.includes('none') && selected.length > 1) {
    throw new TelemetryConfigError('OTEL_TRACES_EXPORTER', names.join(','), '"none" cannot be combined with other exporters');
  }
  const processors = selected
    .filter((name) => name !== 'none')
    .map((name) => {
      switch (name) {
        case 'otlp':
          return createBatchProcessor(new ContentRedactingExporter(createOtlpExporter()));
        case 'console':
          // As the SDK does: printed as each span ends, not batched.
          return new SimpleSpanProcessor({ exporter: new ContentRedactingExporter(new ConsoleSpanExporter()) });
        default:
          throw new TelemetryConfigError('OTEL_TRACES_EXPORTER', name, 'supported exporters are otlp, console and none');
      }
    });
  return [...processors, ...extra.map((exporter) => createBatchProcessor(new ContentRedactingExporter(exporter)))];
};
