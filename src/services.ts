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
import type { Config } from './config.js';
import { RunControl } from './control/run-control.js';
import { RunLiveness } from './control/run-liveness.js';
import type { Database } from './db/database.js';
import { createNotifier, type Notifier } from './db/notifications.js';
import { createTemplateGraphFactory } from './graphs/template-graph-factory.js';
import { RunRecordWriter } from './persistence/run-record-writer.js';
import { loadShippedPrices } from './providers/pricing.js';
import { createProviderRegistry, type ProviderRegistry } from './providers/provider-registry.js';
import { createTokenCounter, preloadTokenizer } from './providers/token-counter.js';
import { createBudgetReservationsRepository } from './repositories/budget-reservations-repository.js';
import { readBudgetUse, type BudgetUse } from './repositories/budget-use-repository.js';
import { loadPrices, syncShippedPrices } from './repositories/prices-repository.js';
import { interruptOrphanedRuns } from './repositories/run-recovery-repository.js';
import { loadPriceBook, type ReloadablePriceBook } from './runtime/price-book.js';
import { RunRuntime, type ChatModelFactory } from './runtime/run-runtime.js';
import { ToolServers } from './tools/tool-servers.js';
import { SERVICE_NAME, SERVICE_VERSION } from './version.js';

/** How soon a price changed through another instance is used here (until model_prices changes are announced by NOTIFY). */
const PRICE_RELOAD_INTERVAL_MS = 10_000;

export type Services = {
  readonly instanceId: string;
  /** LISTEN/NOTIFY between instances (in-process on the embedded database). */
  readonly notifier: Notifier;
  readonly metrics: Metrics;
  readonly analyticsFeed: AnalyticsFeed;
  readonly providers: ProviderRegistry;
  /** The prices runs are costed with (a cache of model_prices). */
  readonly prices: ReloadablePriceBook;
  readonly runtime: RunRuntime;
  /** Cancels a run on whichever instance runs it. */
  readonly runControl: RunControl;
  /** Users' remote tool servers (MCP): rows, this instance's connections, the users' tool sets. */
  readonly toolServers: ToolServers;
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
  const notifier = createNotifier(db, logger.child({ component: 'notifier' }));

  await syncShippedPrices(db.pool, loadShippedPrices().prices);
  // A cache of model_prices: reloaded at once by the admin price routes of this
  // instance, and every PRICE_RELOAD_INTERVAL_MS for changes made through another one.
  const prices = await loadPriceBook(async () => loadPrices(db.pool));
  prices.reloadEvery(PRICE_RELOAD_INTERVAL_MS, (error: unknown) => logger.warn({ err: error }, 'price reload failed'));

  const spoolDir =
    options.spoolDir ??
    (config.database.dataDir === 'memory://' ? join(tmpdir(), `chatter-spool-${instanceId}`) : join(config.database.dataDir, 'spool'));
  const writer = new RunRecordWriter({
    pool: db.pool,
    notifier,
    flushIntervalMs: config.runRecords.flushIntervalMs,
    spoolPath: join(spoolDir, 'run-records.jsonl'),
    deadLetterPath: join(spoolDir, 'dead-letter.jsonl'),
    logger: logger.child({ component: 'run-record-writer' }),
  });
  // Records spooled by an earlier process first, then whatever it left running.
  await writer.start();
  const interrupted = await interruptOrphanedRuns(db.pool, {
    instanceId,
    staleAfterMs: config.runControl.staleAfterMs,
    // An embedded database belongs to this one process: nothing else can own a run.
    allRunning: db.kind === 'pglite',
    notifier,
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
  // The rollups are written with each run's record (exactly once, see
  // src/analytics/run-record-rollups.ts); the analytics processor is the live feed only.
  const analyticsFeed = createAnalyticsFeed();

  const databaseWriter = new DatabaseWriterSpanProcessor({ sink: writer });
  // The SDK reads the standard OTEL_* variables (exporter, protocol, endpoint, batching).
  const telemetry = startTelemetry({
    resource,
    sampler: config.telemetry.sampler,
    samplerArg: config.telemetry.samplerArg,
    processors: [
      databaseWriter,
      new MetricsSpanProcessor({ meter: metrics.meter, conventions: config.telemetry.genAiConventions }),
      new AnalyticsSpanProcessor({ feed: analyticsFeed, meter: metrics.meter }),
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
  const toolServers = new ToolServers({
    pool: db.pool,
    connectTimeoutMs: config.mcp.connectTimeoutMs,
    callTimeoutMs: config.mcp.toolCallTimeoutMs,
    logger: logger.child({ component: 'tool-servers' }),
  });

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
          ...(request.topP === undefined ? {} : { topP: request.topP }),
        })),
    createGraph: createTemplateGraphFactory({ toolsFor: (userId) => toolServers.toolSets.forUser(userId) }),
    prices,
    tokens: createTokenCounter(),
    commits: writer,
    // Lifecycle events reach the database writer as they happen, not only with the run's end.
    spanEvents: databaseWriter,
    genAiConventions: config.telemetry.genAiConventions,
    budgets: createBudgetReservationsRepository(db.pool),
    limits: config.runtime,
    instanceId,
    logger: logger.child({ component: 'runtime' }),
    ...(options.now === undefined ? {} : { now: options.now }),
    ...(options.random === undefined ? {} : { random: options.random }),
  });

  const liveness = new RunLiveness({
    pool: db.pool,
    liveRunIds: () => runtime.active().map((run) => run.runId),
    heartbeatIntervalMs: config.runControl.heartbeatIntervalMs,
    staleAfterMs: config.runControl.staleAfterMs,
    notifier,
    logger: logger.child({ component: 'run-liveness' }),
  });
  liveness.start();
  const runControl = new RunControl({
    pool: db.pool,
    notifier,
    cancelLocal: (runId, reason) => runtime.cancel(runId, reason),
    instanceId,
    ackTimeoutMs: config.runControl.cancelAckTimeoutMs,
    logger: logger.child({ component: 'run-control' }),
  });
  await runControl.start();
  // The budget gauge (alerts) reads the users' spend as often as runs heartbeat.
  const budgetTimer = setInterval(refreshBudgetUse, config.runControl.heartbeatIntervalMs);
  budgetTimer.unref();

  return {
    instanceId,
    notifier,
    metrics,
    analyticsFeed,
    providers,
    prices,
    runtime,
    runControl,
    toolServers,
    writer,
    tracerProvider,
    tracer,
    close: async () => {
      runControl.close();
      await liveness.stop();
      prices.stop();
      clearInterval(budgetTimer);
      await budgetRead;
      // The runtime has drained: no tool call needs a connection any more.
      await toolServers.close();
      // The service's processors first: an unreachable trace backend (retrying for up to
      // OTEL_EXPORTER_OTLP_TIMEOUT) must not hold up the run records.
      await telemetry.flushProcessors();
      await writer.shutdown();
      // Shuts the processors down too, then the trace export, whose failure is only logged.
      await telemetry.shutdown().catch((error: unknown) => logger.warn({ err: error }, 'trace export did not flush before shutdown'));
      await metrics.meterProvider.shutdown();
      await notifier.close();
    },
  };
};
