import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareRoute, expectedFigures, scanFigures, SCAN_PARTS, type ScanScope } from '../../bench/analytics-scan.js';
import { seedAnalytics } from '../../bench/analytics-seed.js';
import { createAnalyticsReports } from '../../src/analytics/analytics-reports.js';
import { resolveAnalyticsWindow } from '../../src/analytics/analytics-window.js';
import { loadMigrations, migrate } from '../../src/db/migrations.js';
import { loadShippedPrices } from '../../src/providers/pricing.js';
import { syncShippedPrices } from '../../src/repositories/prices-repository.js';
import { createEmptyTestDatabase, type TestDatabase } from '../helpers/database.js';
import { insertUsers } from '../otel/helpers/analytics-rows.js';

/** Migration 0014 on a database that already holds conversations, messages, runs and rollups. */
describe('migration 0014 (activity rollups)', () => {
  let db: TestDatabase;
  const now = Date.now();

  beforeAll(async () => {
    db = await createEmptyTestDatabase();
    const migrations = await loadMigrations();
    await migrate(
      db.pool,
      migrations.filter((migration) => migration.version < 14),
    );
    await syncShippedPrices(db.pool, loadShippedPrices().prices);
    await insertUsers(db.pool, ['heavy-user']);
    await seedAnalytics(db.pool, {
      messages: 2_000,
      users: 5,
      days: 12,
      heavyUserId: 'heavy-user',
      heavyShare: 0.3,
      batchConversations: 50,
      now,
      log: () => undefined,
    });
    await migrate(db.pool, migrations);
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('fills the new rollups from the rows written before it, so the reports read right at once', async () => {
    const reports = createAnalyticsReports(db.pool);
    const problems: string[] = [];
    const scopes: ScanScope[] = [{ userId: 'heavy-user' }, { userId: 'bench-user-000002' }, { allUsers: true }];
    for (const scope of scopes) {
      for (const period of ['24h', '7d', '30d'] as const) {
        const window = resolveAnalyticsWindow({ period }, now);
        const expected = expectedFigures(await scanFigures(db.pool, scope, window, SCAN_PARTS.dashboard));
        expect(expected.messages).toBeGreaterThan(0);
        const body = await reports.dashboard(scope, window, now);
        problems.push(
          ...compareRoute('dashboard', `${JSON.stringify(scope)} ${period}`, body as unknown as Record<string, unknown>, expected),
        );
      }
    }
    expect(problems).toEqual([]);
  });
});
