import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'slonik';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { openDatabase } from '../src/db/database.js';
import { startServerProcess } from './helpers/server-process.js';

describe('the service process (npm start)', () => {
  const dataDirs: string[] = [];
  afterAll(async () => {
    await Promise.all(dataDirs.map((directory) => rm(directory, { recursive: true, force: true })));
  });

  it('serves on embedded PGlite with no DATABASE_URL and keeps its data across restarts', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'chatter-data-'));
    dataDirs.push(dataDir);

    const first = await startServerProcess({ CHATTER_DATA_DIR: dataDir });
    const ready = await fetch(`${first.baseUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ checks: { database: { kind: 'pglite' } } });
    expect(await first.stop('SIGTERM')).toBe(0);

    // Between runs, write a row straight into the data folder the service uses.
    const db = await openDatabase({ dataDir, poolSize: 1 });
    const migrations = await db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*) AS n FROM schema_migrations`);
    expect(migrations).toBeGreaterThan(0);
    await db.pool.query(sql.unsafe`
      INSERT INTO users (id, email, username, password_hash) VALUES ('01PERSIST', 'keep@example.com', 'keep', 'x')`);
    await db.close();

    const second = await startServerProcess({ CHATTER_DATA_DIR: dataDir });
    expect((await fetch(`${second.baseUrl}/healthz`)).status).toBe(200);
    expect(await second.stop('SIGINT')).toBe(0);

    const reopened = await openDatabase({ dataDir, poolSize: 1 });
    const email = await reopened.pool.maybeOneFirst(
      sql.type(z.object({ email: z.string() }))`SELECT email FROM users WHERE id = '01PERSIST'`,
    );
    await reopened.close();
    expect(email).toBe('keep@example.com');
  }, 90_000);

  it('exits with a clear message on a bad configuration value', async () => {
    await expect(startServerProcess({ DATABASE_POOL_SIZE: 'many' }, { timeoutMs: 15_000 })).rejects.toThrow(/DATABASE_POOL_SIZE="many"/);
  }, 30_000);
});
