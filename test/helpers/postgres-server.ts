import { createPool, sql } from 'slonik';
import { ulid } from 'ulid';

/**
 * A PostgreSQL server for tests that need one even on PGlite runs (several server
 * processes sharing one database): the server of `DATABASE_URL`, else the local one on
 * 127.0.0.1:5432. Missing locally, such tests are skipped with the reason; in CI
 * (`CI=true`, where `.ci/run` starts PostgreSQL) a missing server fails them.
 */
const ADMIN_URL = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const withDatabaseName = (url: string, name: string): string => {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
};

export type ServerDatabase = { readonly url: string; readonly drop: () => Promise<void> };

export const postgresServerAvailability = async (): Promise<{ adminUrl: string | undefined; reason: string }> => {
  try {
    const pool = await createPool(ADMIN_URL, { maxPoolSize: 1, connectionTimeout: 2_000 });
    try {
      await pool.query(sql.unsafe`SELECT 1`);
    } finally {
      await pool.end();
    }
    return { adminUrl: ADMIN_URL, reason: '' };
  } catch {
    const reason = `needs a PostgreSQL server at ${new URL(ADMIN_URL).host} (set DATABASE_URL); skipped locally, required in CI`;
    if (process.env['CI'] === 'true') throw new Error(`CI=true: ${reason}`);
    return { adminUrl: undefined, reason };
  }
};

/** A fresh, empty database on the server, dropped by `drop`. */
export const createServerDatabase = async (adminUrl: string): Promise<ServerDatabase> => {
  const name = `chatter_test_${ulid().toLowerCase()}`;
  const admin = await createPool(adminUrl, { maxPoolSize: 1 });
  try {
    await admin.query(sql.unsafe`CREATE DATABASE ${sql.identifier([name])}`);
  } finally {
    await admin.end();
  }
  return {
    url: withDatabaseName(adminUrl, name),
    drop: async () => {
      const cleanup = await createPool(adminUrl, { maxPoolSize: 1 });
      try {
        await cleanup.query(sql.unsafe`DROP DATABASE IF EXISTS ${sql.identifier([name])} WITH (FORCE)`);
      } finally {
        await cleanup.end();
      }
    },
  };
};
