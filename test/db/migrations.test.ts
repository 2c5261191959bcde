import { mkdtemp, readdir, copyFile, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'slonik';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MIGRATIONS_DIR, loadMigrations, migrate, MigrationError } from '../../src/db/migrations.js';
import { createEmptyTestDatabase, type TestDatabase } from '../helpers/database.js';

const copyMigrations = async (): Promise<string> => {
  const directory = await mkdtemp(join(tmpdir(), 'chatter-migrations-'));
  for (const file of await readdir(MIGRATIONS_DIR)) {
    await copyFile(join(MIGRATIONS_DIR, file), join(directory, file));
  }
  return directory;
};

describe('migrations', () => {
  let db: TestDatabase | undefined;
  afterEach(async () => {
    await db?.drop();
    db = undefined;
  });

  it('applies every migration in version order and records each with its checksum', async () => {
    db = await createEmptyTestDatabase();
    const directory = await copyMigrations();
    await writeFile(join(directory, '9001_zeta.sql'), 'CREATE TABLE zeta (id int);');
    await writeFile(join(directory, '9000_alpha.sql'), 'CREATE TABLE alpha (id int);\nINSERT INTO alpha VALUES (1);');
    const migrations = await loadMigrations(directory);
    expect(migrations.map((migration) => migration.version)).toEqual(
      [...migrations.map((migration) => migration.version)].sort((a, b) => a - b),
    );

    const report = await migrate(db.pool, migrations);
    expect(report.applied.slice(-2)).toEqual(['9000_alpha.sql', '9001_zeta.sql']);

    const rows = await db.pool.any(
      sql.type(z.object({ version: z.number(), checksum: z.string() }))`
        SELECT version, checksum FROM schema_migrations ORDER BY applied_at, version`,
    );
    expect(rows.map((row) => row.version)).toEqual(migrations.map((migration) => migration.version));
    expect(rows.map((row) => row.checksum)).toEqual(migrations.map((migration) => migration.checksum));
    expect(await db.pool.oneFirst(sql.type(z.object({ id: z.number() }))`SELECT id FROM alpha`)).toBe(1);
  });

  it('applies nothing the second time', async () => {
    db = await createEmptyTestDatabase();
    const migrations = await loadMigrations();
    await migrate(db.pool, migrations);
    const again = await migrate(db.pool, migrations);
    expect(again).toEqual({ applied: [], alreadyApplied: migrations.length });
  });

  it('refuses to start when an applied migration was edited', async () => {
    db = await createEmptyTestDatabase();
    const directory = await copyMigrations();
    await migrate(db.pool, await loadMigrations(directory));
    const [first] = (await readdir(directory)).sort();
    await appendFile(join(directory, first!), '\n-- an innocent-looking edit\n');
    await expect(migrate(db.pool, await loadMigrations(directory))).rejects.toThrow(/was edited after it was applied/);
  });

  it('refuses a migration older than the newest applied one', async () => {
    db = await createEmptyTestDatabase();
    const directory = await copyMigrations();
    await writeFile(join(directory, '9000_late.sql'), 'SELECT 1;');
    await migrate(db.pool, await loadMigrations(directory));
    await writeFile(join(directory, '8999_forgotten.sql'), 'SELECT 1;');
    await expect(migrate(db.pool, await loadMigrations(directory))).rejects.toThrow(MigrationError);
  });

  it('rolls back a failing migration entirely', async () => {
    db = await createEmptyTestDatabase();
    const directory = await copyMigrations();
    await writeFile(join(directory, '9000_broken.sql'), 'CREATE TABLE half (id int);\nSELECT no_such_function();');
    await expect(migrate(db.pool, await loadMigrations(directory))).rejects.toThrow();
    const tables = await db.pool.anyFirst(
      sql.type(z.object({ name: z.string() }))`
        SELECT table_name AS name FROM information_schema.tables WHERE table_name IN ('half', 'schema_migrations', 'users')`,
    );
    expect(tables).toEqual([]);
  });

  it('rejects misnamed migration files', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'chatter-migrations-'));
    await writeFile(join(directory, 'initial.sql'), 'SELECT 1;');
    await expect(loadMigrations(directory)).rejects.toThrow(/NNNN_name\.sql/);
  });
});
