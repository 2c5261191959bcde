import { ConfigError, loadConfig } from '../config.js';
import { openDatabase } from './database.js';
import { loadMigrations, migrate } from './migrations.js';

/** `npm run migrate`: applies pending migrations to the configured database and exits. */
try {
  const config = loadConfig();
  const db = await openDatabase({ url: config.database.url, dataDir: config.database.dataDir, poolSize: 1, role: 'migrate' });
  try {
    const report = await migrate(db.pool, await loadMigrations());
    process.stdout.write(
      `${db.kind}: ${report.applied.length} migration(s) applied${report.applied.length > 0 ? ` (${report.applied.join(', ')})` : ''}, ${report.alreadyApplied} already applied\n`,
    );
  } finally {
    await db.close();
  }
} catch (error) {
  process.stderr.write(
    `${error instanceof ConfigError ? error.message : `migrate failed: ${error instanceof Error ? error.message : String(error)}`}\n`,
  );
  process.exit(1);
}
