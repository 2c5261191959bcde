import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql, type DatabasePool, type DatabaseTransactionConnection } from 'slonik';
import { z } from 'zod';
import { splitStatements } from './split-statements.js';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

export type Migration = {
  readonly version: number;
  readonly name: string;
  readonly checksum: string;
  readonly sql: string;
};

/** A migration file is wrong or was edited after it was applied. */
export class MigrationError extends Error {
  public constructor(message: string) {
    super(message);
    this.name = 'MigrationError';
  }
}

const FILE_PATTERN = /^(\d{4})_([a-z0-9_-]+)\.sql$/;

/**
 * Reads the numbered `.sql` files of a folder, in version order.
 *
 * @throws MigrationError on a misnamed `.sql` file or two files with one version.
 */
export const loadMigrations = async (directory: string = MIGRATIONS_DIR): Promise<readonly Migration[]> => {
  const files = (await readdir(directory)).filter((file) => file.endsWith('.sql')).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const match = FILE_PATTERN.exec(file);
    if (match === null) {
      throw new MigrationError(`migration file ${file} is not named NNNN_name.sql`);
    }
    const version = Number(match[1]);
    if (migrations.some((migration) => migration.version === version)) {
      throw new MigrationError(`two migration files have version ${version}`);
    }
    const text = await readFile(join(directory, file), 'utf8');
    migrations.push({
      version,
      name: file,
      checksum: createHash('sha256').update(text).digest('hex'),
      sql: text,
    });
  }
  return migrations;
};

/**
 * A migration statement is text from a file, which slonik's tag cannot express;
 * a frozen template array of one part is what the tag accepts.
 */
const rawStatement = (text: string) => {
  const parts = Object.freeze(Object.assign([text], { raw: Object.freeze([text]) })) as TemplateStringsArray;
  return sql.unsafe(parts);
};

const AppliedSchema = z.object({ version: z.number().int(), name: z.string(), checksum: z.string() });

export type MigrationReport = { readonly applied: readonly string[]; readonly alreadyApplied: number };

const ensureTable = async (connection: DatabaseTransactionConnection): Promise<void> => {
  await connection.query(sql.unsafe`
    CREATE TABLE IF NOT EXISTS schema_migrations (
      version    integer PRIMARY KEY,
      name       text NOT NULL,
      checksum   text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
};

/**
 * Applies pending migrations in order, in one transaction, under an advisory lock so
 * that several instances starting together apply each migration once.
 *
 * @throws MigrationError when an applied migration's file changed or disappeared.
 */
export const migrate = async (pool: DatabasePool, migrations: readonly Migration[]): Promise<MigrationReport> =>
  pool.transaction(async (connection) => {
    await connection.query(sql.unsafe`SELECT pg_advisory_xact_lock(872364001)`);
    await ensureTable(connection);
    const applied = await connection.any(sql.type(AppliedSchema)`SELECT version, name, checksum FROM schema_migrations ORDER BY version`);
    const byVersion = new Map(migrations.map((migration) => [migration.version, migration]));
    for (const row of applied) {
      const file = byVersion.get(row.version);
      if (file === undefined) {
        throw new MigrationError(`migration ${row.name} was applied but its file is missing`);
      }
      if (file.checksum !== row.checksum) {
        throw new MigrationError(
          `migration ${row.name} was edited after it was applied (checksum ${row.checksum.slice(0, 12)}… in the database, ${file.checksum.slice(0, 12)}… on disk); add a new migration instead`,
        );
      }
    }
    const appliedVersions = new Set(applied.map((row) => row.version));
    const newest = Math.max(0, ...appliedVersions);
    const done: string[] = [];
    for (const migration of migrations) {
      if (appliedVersions.has(migration.version)) {
        continue;
      }
      if (migration.version < newest) {
        throw new MigrationError(
          `migration ${migration.name} is older than the newest applied migration (${newest}); migrations are applied in order`,
        );
      }
      for (const statement of splitStatements(migration.sql)) {
        await connection.query(rawStatement(statement));
      }
      await connection.query(sql.unsafe`
        INSERT INTO schema_migrations (version, name, checksum)
        VALUES (${migration.version}, ${migration.name}, ${migration.checksum})`);
      done.push(migration.name);
    }
    return { applied: done, alreadyApplied: applied.length };
  });
