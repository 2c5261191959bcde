import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'slonik';
import { createNotifier, type Notifier } from '../../src/db/notifications.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { waitUntil } from '../helpers/wait.js';

const logger = pino({ level: 'silent' });

describe('notifier', () => {
  let db: TestDatabase;
  let first: Notifier;
  let second: Notifier;

  beforeAll(async () => {
    db = await createTestDatabase();
    await db.pool.query(sql.unsafe`CREATE TABLE notes (id int PRIMARY KEY)`);
    first = createNotifier({ kind: db.kind, connectionUri: db.url }, logger);
    // On PostgreSQL a second notifier is another instance's; the embedded database has one process.
    second = db.kind === 'pglite' ? first : createNotifier({ kind: db.kind, connectionUri: db.url }, logger);
  });

  afterAll(async () => {
    await first.close();
    await second.close();
    await db.drop();
  });

  it('delivers what a committed transaction sent to every listener, in order, after the rows are visible', async () => {
    const got: string[] = [];
    const seen: number[] = [];
    const stop = await second.listen('chatter_test', (payload) => {
      got.push(payload);
      void db.pool.oneFirst(sql.unsafe`SELECT count(*)::int FROM notes WHERE id = ${Number(payload)}`).then((n) => seen.push(Number(n)));
    });
    await first.transaction(db.pool, async (tx, notify) => {
      await tx.query(sql.unsafe`INSERT INTO notes VALUES (1), (2)`);
      notify('chatter_test', '1');
      notify('chatter_test', '2');
    });
    await waitUntil(() => seen.length === 2);
    expect(got).toEqual(['1', '2']);
    expect(seen).toEqual([1, 1]);
    stop();
  });

  it('delivers nothing of a transaction that rolled back', async () => {
    const got: string[] = [];
    const stop = await second.listen('chatter_test', (payload) => got.push(payload));
    await expect(
      first.transaction(db.pool, async (tx, notify) => {
        await tx.query(sql.unsafe`INSERT INTO notes VALUES (3)`);
        notify('chatter_test', 'rolled-back');
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    await first.transaction(db.pool, async (_tx, notify) => notify('chatter_test', 'after'));
    await waitUntil(() => got.length === 1);
    expect(got).toEqual(['after']);
    stop();
  });

  it('stops delivering after unlisten and refuses oversized payloads', async () => {
    const got: string[] = [];
    const stop = await second.listen('chatter_test', (payload) => got.push(payload));
    stop();
    await first.transaction(db.pool, async (_tx, notify) => notify('chatter_test', 'unheard'));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(got).toEqual([]);
    await expect(first.transaction(db.pool, async (_tx, notify) => notify('chatter_test', 'x'.repeat(8_000)))).rejects.toThrow(/limit/);
  });
});
