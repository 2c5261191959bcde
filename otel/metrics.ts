import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Meter } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationType, MeterProvider, type ViewOptions } from '@opentelemetry/sdk-metrics';
import {
  ATTR_SERVICE_NAME,
  METRIC_INFERENCE_DURATION,
  METRIC_INFERENCE_OPERATION_INPUT_TOKENS,
  METRIC_INFERENCE_OPERATION_OUTPUT_TOKENS,
  METRIC_INFERENCE_TIME_TO_FIRST_CHUNK,
  METRIC_OPERATION_DURATION,
  METRIC_RUN_DURATION,
  METRIC_TIME_TO_FIRST_CHUNK,
  METRIC_TOKEN_USAGE,
  METRIC_WRITER_BACKLOG,
} from './semconv.js';

// Names of the service-state instruments below (to move into semconv.ts with the other
// metric names when the processors' work on it is merged).
export const METRIC_WRITER_DEAD_LETTERED = 'chatter.telemetry.writer_dead_lettered';
export const METRIC_BUDGET_MAX_USED = 'chatter.budget.max_used';
/** `queued` (in memory, not yet committed) or `spooled` (on disk while the database is unreachable). */
export const ATTR_WRITER_STATE = 'chatter.writer.state';
/** `cost` or `tokens`: which budget a budget figure is about. */
export const ATTR_BUDGET_KIND = 'chatter.budget.kind';

/** Bucket boundaries of the token histograms (`gen_ai.client.token.usage`, `gen_ai.client.inference.operation.*`), as advised by the GenAI semconv. */
export const TOKEN_USAGE_BOUNDARIES: readonly number[] = [
  1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
];

/**
 * Bucket boundaries (seconds) of every duration histogram. The SDK default
 * ([0, 5, 10, 25, …, 10000]) is made for milliseconds and would put every model call
 * in one or two buckets.
 */
export const DURATION_BOUNDARIES_SECONDS: readonly number[] = [
  0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];

/** The text exposition format the exporter writes (it only sends `text/plain`). */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const METER_NAME = 'chatter';

export type MetricsOptions = {
  readonly serviceName: string;
  /** false → no exporter: instruments still work but nothing is collected or served. */
  readonly enabled: boolean;
};

export type Metrics = {
  readonly meterProvider: MeterProvider;
  /** The pull reader behind `GET /metrics`; undefined when metrics are disabled. */
  readonly prometheus: PrometheusExporter | undefined;
  /** The meter every span processor records on. */
  readonly meter: Meter;
  /**
   * Writes the Prometheus text exposition of all metrics to `response` (404 when
   * disabled). For Fastify: `reply.hijack(); metricsHandler(request.raw, reply.raw)`.
   */
  readonly metricsHandler: (request: IncomingMessage, response: ServerResponse) => void;
};

const histogramView = (instrumentName: string, boundaries: readonly number[]): ViewOptions => ({
  instrumentName,
  aggregation: {
    type: AggregationType.EXPLICIT_BUCKET_HISTOGRAM,
    options: { boundaries: [...boundaries], recordMinMax: true },
  },
});

/** Views that replace the SDK's default bucket boundaries where they don't fit (both GenAI conventions' names). */
export const createMetricViews = (): ViewOptions[] => [
  histogramView(METRIC_TOKEN_USAGE, TOKEN_USAGE_BOUNDARIES),
  histogramView(METRIC_INFERENCE_OPERATION_INPUT_TOKENS, TOKEN_USAGE_BOUNDARIES),
  histogramView(METRIC_INFERENCE_OPERATION_OUTPUT_TOKENS, TOKEN_USAGE_BOUNDARIES),
  histogramView(METRIC_OPERATION_DURATION, DURATION_BOUNDARIES_SECONDS),
  histogramView(METRIC_TIME_TO_FIRST_CHUNK, DURATION_BOUNDARIES_SECONDS),
  histogramView(METRIC_INFERENCE_DURATION, DURATION_BOUNDARIES_SECONDS),
  histogramView(METRIC_INFERENCE_TIME_TO_FIRST_CHUNK, DURATION_BOUNDARIES_SECONDS),
  histogramView(METRIC_RUN_DURATION, DURATION_BOUNDARIES_SECONDS),
];

/**
 * The metrics SDK: a MeterProvider whose only reader is a Prometheus exporter that
 * never opens its own port; the API serves its request handler at `GET /metrics`.
 *
 * Exemplars are not enabled: @opentelemetry/sdk-metrics 3.1 has no exemplar support
 * (no exemplar filter or reservoir), and the Prometheus exporter does not write them.
 */
export const createMetrics = ({ serviceName, enabled }: MetricsOptions): Metrics => {
  const prometheus = enabled ? new PrometheusExporter({ preventServerStart: true }) : undefined;
  const meterProvider = new MeterProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: serviceName }),
    views: createMetricViews(),
    readers: prometheus === undefined ? [] : [prometheus],
  });
  const metricsHandler = (request: IncomingMessage, response: ServerResponse): void => {
    if (prometheus === undefined) {
      response.statusCode = 404;
      response.end('metrics are disabled\n');
      return;
    }
    prometheus.getMetricsRequestHandler(request, response);
    // The handler sets `text/plain` synchronously and writes the body once collection
    // resolves, so the header can still be replaced here; Prometheus 3 wants the
    // versioned media type to pick its text parser.
    if (!response.headersSent) {
      response.setHeader('content-type', PROMETHEUS_CONTENT_TYPE);
    }
  };
  return {
    meterProvider,
    prometheus,
    meter: meterProvider.getMeter(METER_NAME),
    metricsHandler,
  };
};

/** What the run-record writer holds that is not in the database yet (its `stats()`). */
export type WriterBacklog = { readonly queued: number; readonly spooled: number; readonly deadLettered: number };

/**
 * Observable instruments of the run-record writer, read at each collection: the backlog
 * by where it waits (`chatter_telemetry_writer_backlog{chatter_writer_state}`) and the
 * records the database refused for good (`chatter_telemetry_writer_dead_lettered_total`).
 */
export const observeWriterBacklog = (meter: Meter, read: () => WriterBacklog): void => {
  const backlog = meter.createObservableGauge(METRIC_WRITER_BACKLOG, {
    description: 'Run records not yet committed to the database: queued in memory, or spooled on disk while the database is unreachable.',
    unit: '{record}',
  });
  const deadLettered = meter.createObservableCounter(METRIC_WRITER_DEAD_LETTERED, {
    description: 'Run records the database refused for good, moved to the dead-letter file (an operator must look at them).',
    unit: '{record}',
  });
  meter.addBatchObservableCallback(
    (result) => {
      const stats = read();
      result.observe(backlog, stats.queued, { [ATTR_WRITER_STATE]: 'queued' });
      result.observe(backlog, stats.spooled, { [ATTR_WRITER_STATE]: 'spooled' });
      result.observe(deadLettered, stats.deadLettered);
    },
    [backlog, deadLettered],
  );
};

/** The largest share of a budget any user has spent (null: no user has that budget). */
export type BudgetUse = { readonly cost: number | null; readonly tokens: number | null };

/**
 * `chatter_budget_max_used{chatter_budget_kind}`: the largest share (0–1, above 1 when
 * a run overshot) of their own budget any user has spent, from the last reading `read`
 * returns (the database, refreshed by the caller). No user label: which user it is, is
 * answered by the database (the "Usage by user" dashboard).
 */
export const observeBudgetUse = (meter: Meter, read: () => BudgetUse | undefined): void => {
  const gauge = meter.createObservableGauge(METRIC_BUDGET_MAX_USED, {
    description: 'The largest share of their own budget any user has spent (1 = used up), by budget kind.',
  });
  gauge.addCallback((result) => {
    const use = read();
    if (use?.cost !== null && use?.cost !== undefined) {
      result.observe(use.cost, { [ATTR_BUDGET_KIND]: 'cost' });
    }
    if (use?.tokens !== null && use?.tokens !== undefined) {
      result.observe(use.tokens, { [ATTR_BUDGET_KIND]: 'tokens' });
    }
  });
};
