import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'slonik';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createTestDatabase } from '../helpers/database.js';
import { startProxiedStack, startStack } from '../helpers/proxied-stack.js';

/*
 * A reply that reached the client is persisted: a record the database refuses is never
 * answered 2xx, and a record that neither the database nor the spool can take answers
 * 503 and keeps the process alive, the record kept and written when it can be.
 */

const usage = { input_tokens: 7, output_tokens: 3 };

describe('replies whose records could not be kept', () => {
  const closing: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closing.splice(0).reverse()) await close();
  });

  it('answers 500 with the run id, never 2xx, when the database refuses the run record, and records run_record_rejected', async () => {
    const db = await createTestDatabase();
    closing.push(db.drop);
    // The database refuses this reply for what it is (a constraint), not for being down.
    await db.pool.query(sql.unsafe`ALTER TABLE messages ADD CONSTRAINT test_refuses_poison CHECK (content <> 'POISON')`);
    const { services, chat, close } = await startStack(db, { reply: { content: 'POISON', latencyMs: 0, usage } });
    closing.push(close);
    const response = await chat('hello');
    expect(response.statusCode).toBe(500);
    const body = response.json<{ code: string; detail: string }>();
    expect(body.code).toBe('run_record_rejected');
    const runId = await db.pool.oneFirst(sql.type(z.object({ id: z.string() }))`SELECT id FROM workflow_runs`);
    expect(body.detail).toContain(runId);
    expect(services.writer.stats().deadLettered).toBe(1);
    const events = await db.pool.anyFirst(sql.type(z.object({ type: z.string() }))`
      SELECT type FROM events WHERE run_id = ${runId} AND type = 'run_record_rejected'`);
    expect(events).toEqual(['run_record_rejected']);
    // No reply was stored, and none was claimed.
    expect(
      await db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM messages WHERE role = 'assistant'`),
    ).toBe(0);
  });

  it('answers 503 and stays up when neither the database nor the spool takes a record, then writes it once both can', async () => {
    // The spool's folder is a file: every append fails.
    const blocked = join(await mkdtemp(join(tmpdir(), 'chatter-unsaved-')), 'not-a-folder');
    await writeFile(blocked, 'in the way');
    const stack = await startProxiedStack({
      pool: { poolSize: 3, statementTimeoutMs: 3_000 },
      spoolDir: blocked,
      reply: { content: 'kept in memory', latencyMs: 1_000, usage },
    });
    closing.push(stack.close);
    const { app, services, proxy, direct } = stack;

    // The database goes away while the run is in flight (its user message is saved).
    const chat = stack.chat('hello');
    await stack.untilActive(1);
    expect(services.runtime.active()).toHaveLength(1);
    proxy.setDown(true);
    const response = await chat;
    expect(response.statusCode).toBe(503);
    expect(response.json<{ code: string }>().code).toBe('run_record_unsaved');
    expect(services.writer.stats()).toMatchObject({ unsaved: 1, spooled: 0 });
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ checks: { run_records: { status: 'degraded', unsaved: 1, spool_error: 'spool not writable' } } });

    // The database is back: the record kept in memory is written, once.
    proxy.setDown(false);
    const until = Date.now() + 30_000;
    while (services.writer.stats().unsaved > 0 && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(services.writer.stats().unsaved).toBe(0);
    const stored = await direct.pool.any(sql.type(z.object({ content: z.string(), total_tokens: z.number().nullable() }))`
      SELECT content, total_tokens FROM messages WHERE role = 'assistant'`);
    expect(stored).toEqual([{ content: 'kept in memory', total_tokens: 10 }]);
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
  }, 90_000);
});
