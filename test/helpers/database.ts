import { createPool, sql } from 'slonik';
import { ulid } from 'ulid';
import { loadConfig } from '../../src/config.js';
import { openDatabase, type Database } from '../../src/db/database.js';
import { loadMigrations, migrate } from '../../src/db/migrations.js';

export type TestDatabase = Database & {
  /** The URL of the fresh database (a PostgreSQL database or the PGlite socket). */
  readonly url: string;
  readonly drop: () => Promise<void>;
};

const withDatabaseName = (url: string, name: string): string => {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
};

/** A new, empty database on the PostgreSQL server of `serverUrl` (its admin URL): the database's URL, and `drop`. */
export const createDatabaseOnServer = async (serverUrl: string): Promise<{ readonly url: string; readonly drop: () => Promise<void> }> => {
  const name = `chatter_test_${ulid().toLowerCase()}`;
  const admin = await createPool(serverUrl, { maxPoolSize: 1 });
  try {
    await admin.query(sql.unsafe`CREATE DATABASE ${sql.identifier([name])}`);
  } finally {
    await admin.end();
  }
  return {
    url: withDatabaseName(serverUrl, name),
    drop: async () => {
      const cleanup = await createPool(serverUrl, { maxPoolSize: 1 });
      try {
        await cleanup.query(sql.unsafe`DROP DATABASE IF EXISTS ${sql.identifier([name])} WITH (FORCE)`);
      } finally {
        await cleanup.end();
      }
    },
  };
};

/**
 * A fresh, empty database for one test file: a new database on the PostgreSQL server
 * named by DATABASE_URL, or an in-memory PGlite when it is unset. Never reuses data.
 */
export const createEmptyTestDatabase = async (poolSize = 5): Promise<TestDatabase> => {
  const serverUrl = loadConfig().database.url;
  if (serverUrl === undefined) {
    const db = await openDatabase({ dataDir: 'memory://', poolSize });
    return { ...db, url: db.connectionUri, drop: db.close };
  }
  const created = await createDatabaseOnServer(serverUrl);
  const db = await openDatabase({ url: created.url, dataDir: 'memory://', poolSize });
  let dropped = false;
  return {
    ...db,
    url: created.url,
    drop: async () => {
      if (dropped) {
        return;
      }
      dropped = true;
      await db.close();
      await created.drop();
    },
  };
};

/** A fresh database with every migration applied. */
export const createTestDatabase = async (poolSize = 5): Promise<TestDatabase> => {
  const db = await createEmptyTestDatabase(poolSize);
  await migrate(db.pool, await loadMigrations());
  return db;
};
