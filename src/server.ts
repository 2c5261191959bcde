import { buildApp } from './app.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { openDatabase } from './db/database.js';
import { loadMigrations, migrate } from './db/migrations.js';
import { createLogger } from './logger.js';
import { createServices } from './services.js';

/**
 * Starts the service: config, database (PGlite when DATABASE_URL is unset),
 * migrations, HTTP. SIGTERM/SIGINT stop accepting, drain, close the pool.
 */
const start = async (config: Config): Promise<void> => {
  const logger = createLogger(config);
  const db = await openDatabase({
    url: config.database.url,
    dataDir: config.database.dataDir,
    poolSize: config.database.poolSize,
    statementTimeoutMs: config.database.statementTimeoutMs,
    acquireTimeoutMs: config.database.acquireTimeoutMs,
    role: 'server',
  });
  logger.info({ database: db.kind, dataDir: db.kind === 'pglite' ? config.database.dataDir : undefined }, 'database open');
  try {
    const report = await migrate(db.pool, await loadMigrations());
    logger.info({ applied: report.applied, alreadyApplied: report.alreadyApplied }, 'migrations checked');
  } catch (error) {
    await db.close();
    throw error;
  }

  const services = await createServices({ config, db, logger });
  const app = await buildApp({ config, db, logger, services });
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) {
      return;
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      logger.error('shutdown timed out; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    timer.unref();
    try {
      // Stop accepting; give runs in flight half the time to finish, then interrupt
      // them (their usage so far is kept), flush telemetry and the writer, close the pool.
      const closing = app.close();
      await services.runtime.shutdown(config.shutdownTimeoutMs / 4, config.shutdownTimeoutMs / 2);
      await closing;
      await services.close();
      await db.close();
      logger.info('stopped');
      process.exit(0);
    } catch (error) {
      logger.error({ err: error }, 'shutdown failed');
      process.exit(1);
    }
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));

  await app.listen({ host: config.host, port: config.port });
};

try {
  await start(loadConfig());
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(78);
  }
  process.stderr.write(`chatter failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
