/**
 * Times the analytics reports' queries in process (no HTTP) on a database the analytics
 * bench kept (`npm run bench:analytics -- --keep`), for profiling fixes:
 *
 *   npx tsx bench/analytics-probe.ts --database-url postgres://postgres@127.0.0.1:5432/chatter_bench_analytics_… [--migrate] [--runs 10]
 *
 * `--migrate` applies pending migrations first (a new one under test).
 */
import { parseArgs } from 'node:util';
import { sql } from 'slonik';
import { z } from 'zod';
import { createAnalyticsReports, type AnalyticsScope } from '../src/analytics/analytics-reports.js';
import { resolveAnalyticsWindow } from '../src/analytics/analytics-window.js';
import { openDatabase } from '../src/db/database.js';
import { loadMigrations, migrate } from '../src/db/migrations.js';

const { values: flags } = parseArgs({
  options: {
    'database-url': { type: 'string' },
    runs: { type: 'string', default: '10' },
    migrate: { type: 'boolean', default: false },
    only: { type: 'string' },
  },
});
const url = flags['database-url'];
if (url === undefined) {
  console.error('--database-url is required (a database kept by bench:analytics --keep)');
  process.exit(2);
}
const runs = Number(flags.runs ?? '10');

const db = await openDatabase({ url, dataDir: 'memory://', poolSize: 2, statementTimeoutMs: 600_000 });
try {
  if (flags.migrate === true) {
    const started = performance.now();
    const report = await migrate(db.pool, await loadMigrations());
    console.log(`migrated ${report.applied.join(', ') || 'nothing'} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  const heavy = await db.pool.oneFirst(sql.type(z.object({ id: z.string() }))`SELECT id FROM users WHERE username = 'bench_heavy_user'`);
  const reports = createAnalyticsReports(db.pool);
  const scopes: [string, AnalyticsScope][] = [
    ['heavy user', { userId: heavy }],
    ['all users', { allUsers: true }],
  ];
  const kinds = ['usage', 'performance', 'conversations', 'dashboard'] as const;
  for (const [label, scope] of scopes) {
    for (const period of ['24h', '7d', '30d', '90d'] as const) {
      for (const kind of kinds) {
        if (flags.only !== undefined && !flags.only.split(',').includes(kind)) continue;
        const window = resolveAnalyticsWindow({ period }, Date.now());
        const once = () =>
          kind === 'usage'
            ? reports.usage(scope, window)
            : kind === 'performance'
              ? reports.performance(scope, window)
              : kind === 'conversations'
                ? reports.conversationStats(scope, window)
                : reports.dashboard(scope, window, Date.now());
        await once();
        const samples: number[] = [];
        for (let index = 0; index < runs; index += 1) {
          const started = performance.now();
          await once();
          samples.push(performance.now() - started);
        }
        samples.sort((a, b) => a - b);
        const at = (p: number) => samples[Math.min(samples.length - 1, Math.ceil(p * samples.length) - 1)] ?? Number.NaN;
        console.log(
          `${kind.padEnd(13)} ${label.padEnd(10)} ${period.padEnd(4)} p50 ${at(0.5).toFixed(1).padStart(7)} ms  p95 ${at(0.95).toFixed(1).padStart(7)} ms`,
        );
      }
    }
  }
} finally {
  await db.close();
}
