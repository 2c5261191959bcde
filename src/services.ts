import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Tracer } from '@opentelemetry/api';
import type { SpanExporter, SpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import type { Logger } from 'pino';
import { createMetrics, observeBudgetUse, observeWriterBacklog, type Metrics } from '../otel/metrics.js';
import { AnalyticsSpanProcessor } from '../otel/processors/analytics-span-processor.js';
import { DatabaseWriterSpanProcessor } from '../otel/processors/database-writer-span-processor.js';
import { MetricsSpanProcessor } from '../otel/processors/metrics-span-processor.js';
import { createServiceResource, startTelemetry } from '../otel/tracing.js';
import { createAnalyticsFeed, type AnalyticsFeed } from './analytics/analytics-feed.js';
import type { AnalyticsStore } from './analytics/analytics-store.js';
import type { Config } from './config.js';
import type { Database } from './db/database.js';
import { createGraph } from './graphs/build-graph.js';
import { getTemplate } from './graphs/templates.js';
import { RunRecordWriter } from './persistence/run-record-writer.js';
import { loadShippedPrices } from './providers/pricing.js';
import { createProviderRegistry, type ProviderRegistry } from './providers/provider-registry.js';
import { createTokenCounter, preloadTokenizer } from './providers/token-counter.js';
import { readBudgetUse, type BudgetUse } from './repositories/budget-use-repository.js';
import { loadPrices, syncShippedPrices } from './repositories/prices-repository.js';
import { heartbeatRuns, interruptOrphanedRuns } from './repositories/run-recovery-repository.js';
import { createPriceBook } from './runtime/price-book.js';
import { RunRuntime, type ChatModelFactory } from './runtime/run-runtime.js';
import { createToolRegistry } from './tools/tool-registry.js';
import { SERVICE_NAME, SERVICE_VERSION } from './version.js';

type RunRollups = Pick<AnalyticsStore, 'add' | 'flush' | 'shutdown'>;

const HEARTBEAT_INTERVAL_MS = 15_000;
/** A run whose owner has not heartbeated for this long is taken as orphaned. */
const HEARTBEAT_STALE_MS = 120_000;

export type Services = {
  readonly instanceId: string;
  readonly metrics: Metrics;
  readonly analyticsFeed: AnalyticsFeed;
  /** Flushing it makes every finished run's rollups durable (they travel with the run records). */
  readonly analyticsStore: RunRollups;
  readonly providers: ProviderRegistry;
  readonly runtime: RunRuntime;
  readonly writer: RunRecordWriter;
  readonly tracerProvider: TracerProvider;
  readonly tracer: Tracer;
  /** Flushes telemetry and stops the writer (after the runtime has drained). */
  readonly close: () => Promise<void>;
};

export type ServicesOptions = {
  readonly config: Config;
  readonly db: Database;
  readonly logger: Logger;
  /** Span processors besides the database writer (metrics, analytics). */
  readonly processors?: readonly SpanProcessor[];
  /** Extra span exporters (tests: an in-memory exporter). */
  readonly exporters?: readonly SpanExporter[];
  readonly now?: () => number;
  readonly random?: () => number;
  /** Replaces the provider registry's models (tests: a scripted model). */
  readonly createChatModel?: ChatModelFactory;
  /** Where records wait while the database is down; defaults under CHATTER_DATA_DIR. */
  readonly spoolDir?: string;
};

/**
 * The composition root: builds the telemetry pipeline (spans → database writer,
 * metrics, analytics, OTLP) and the run runtime on top of it.
 */
export const createServices = async (options: ServicesOptions): Promise<Services> => {
  const { config, db, logger } = options;
  // The bundled tokenizer takes a moment to build; not on the first request.
  preloadTokenizer();
  // Stable across restarts on one host, so a restarted instance recognises its own runs.
  const instanceId = config.instanceId ?? hostname();

  await syncShippedPrices(db.pool, loadShippedPrices().prices);
  const { shipped, operator } = await loadPrices(db.pool);
  const prices = createPriceBook(shipped, operator);

  const spoolDir =
    options.spoolDir ??
    (config.database.dataDir === 'memory://' ? join(tmpdir(), `chatter-spool-${instanceId}`) : join(config.database.dataDir, 'spool'));
  const writer = new RunRecordWriter({
    pool: db.pool,
    spoolPath: join(spoolDir, 'run-records.jsonl'),
    deadLetterPath: join(spoolDir, 'dead-letter.jsonl'),
    logger: logger.child({ component: 'run-record-writer' }),
  });
  // Records spooled by an earlier process first, then whatever it left running.
  await writer.start();
  const interrupted = await interruptOrphanedRuns(db.pool, {
    instanceId,
    staleAfterMs: HEARTBEAT_STALE_MS,
    // An embedded database belongs to this one process: nothing else can own a run.
    allRunning: db.kind === 'pglite',
  });
  if (interrupted.length > 0) {
    logger.warn({ runs: interrupted.length }, 'runs left in flight by a stopped process were marked interrupted');
  }

  // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES are read by the SDK's resource detector.
  const resource = createServiceResource(SERVICE_VERSION);
  const metrics = createMetrics({ serviceName: String(resource.attributes['service.name']), enabled: config.telemetry.metricsEnabled });
  // Alerting (prometheus/alerts.yml): the writer's backlog, and the budget use, a database
  // fact every instance reports alike, refreshed with the heartbeat and served from memory.
  observeWriterBacklog(metrics.meter, () => writer.stats());
  let budgetUse: BudgetUse | undefined;
  let budgetRead: Promise<void> = Promise.resolve();
  const refreshBudgetUse = () => {
    if (!config.telemetry.metricsEnabled) {
      return;
    }
    budgetRead = readBudgetUse(db.pool).then(
      (use) => void (budgetUse = use),
      (error: unknown) => logger.warn({ err: error }, 'budget use not read'),
    );
  };
  observeBudgetUse(metrics.meter, () => budgetUse);
  refreshBudgetUse();
  const analyticsFeed = createAnalyticsFeed();
  // The rollups are written with each run's record (exactly once, see
  // src/analytics/run-record-rollups.ts); the analytics processor keeps the live feed.
  const flushRollups = async () => {
    await writer.forceFlush();
    return { applied: 0, pending: writer.stats().queued + writer.stats().spooled, inDoubt: 0 };
  };
  const analyticsStore: RunRollups = { add: () => {}, flush: flushRollups, shutdown: flushRollups };

  // The SDK reads the standard OTEL_* variables (exporter, protocol, endpoint, batching).
  const telemetry = startTelemetry({
    resource,
    sampler: config.telemetry.sampler,
    samplerArg: config.telemetry.samplerArg,
    processors: [
      new DatabaseWriterSpanProcessor({ sink: writer }),
      new MetricsSpanProcessor({ meter: metrics.meter }),
      new AnalyticsSpanProcessor({ store: analyticsStore, feed: analyticsFeed, meter: metrics.meter }),
      ...(options.processors ?? []),
    ],
    exporters: options.exporters ?? [],
  });
  const { tracerProvider } = telemetry;
  const tracer = tracerProvider.getTracer(SERVICE_NAME, SERVICE_VERSION);

  const providers = createProviderRegistry({
    defaultProvider: config.providers.defaultProvider,
    ...(config.providers.defaultModel === undefined ? {} : { defaultModel: config.providers.defaultModel }),
    local: { latencyMs: config.providers.localLatencyMs },
    openai: {
      ...(config.providers.openai.apiKey === undefined ? {} : { apiKey: config.providers.openai.apiKey }),
      ...(config.providers.openai.baseUrl === undefined ? {} : { baseUrl: config.providers.openai.baseUrl }),
    },
    anthropic: {
      ...(config.providers.anthropic.apiKey === undefined ? {} : { apiKey: config.providers.anthropic.apiKey }),
      ...(config.providers.anthropic.baseUrl === undefined ? {} : { baseUrl: config.providers.anthropic.baseUrl }),
    },
  });
  const tools = createToolRegistry();

  const runtime = new RunRuntime({
    tracer,
    createChatModel:
      options.createChatModel ??
      ((request) =>
        providers.createChatModel({
        provider: request.provider,
        model: request.model,
        ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
          ...(request.maxTokens === undefined ? {} : { maxTokens: request.maxTokens }),
        })),
    createGraph: (workflow, deps) =>
      createGraph(getTemplate(workflow), {
        model: deps.model,
        tools,
        toolCallLimit: deps.toolCallLimit,
        invokeModel: deps.invokeModel,
      }),
    prices,
    tokens: createTokenCounter(),
    commits: writer,
    limits: config.runtime,
    instanceId,
    logger: logger.child({ component: 'runtime' }),
    ...(options.now === undefined ? {} : { now: options.now }),
    ...(options.random === undefined ? {} : { random: options.random }),
  });

  const heartbeat = setInterval(() => {
    heartbeatRuns(
      db.pool,
      runtime.active().map((run) => run.runId),
    ).catch((error: unknown) => logger.warn({ err: error }, 'run heartbeat failed'));
    refreshBudgetUse();
  }, HEARTBEAT_INTERVAL_MS);
  heartbeat.unref();

  return {
    instanceId,
    metrics,
    analyticsFeed,
    analyticsStore,
    providers,
    runtime,
    writer,
    tracerProvider,
    tracer,
    close: async () => {
      clearInterval(heartbeat);
      await budgetRead;
      // The service's processors first: an unreachable trace backend (retrying for up to
      // OTEL_EXPORTER_OTLP_TIMEOUT) must not hold up the run records.
      await telemetry.flushProcessors();
      await writer.shutdown();
      // Shuts the processors down too (the analytics store makes its final flush), then
      // the trace export, whose failure is only logged.
      await telemetry
        .shutdown()
        .catch((error: unknown) => logger.warn({ err: error }, 'trace export did not flush before shutdown'));
      await metrics.meterProvider.shutdown();
    },
  };
};
