import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { sql } from 'slonik';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { openDatabase, type Database } from '../../src/db/database.js';
import { createLogger } from '../../src/logger.js';
import { ScriptedChatModel } from '../helpers/scripted-chat-model.js';
import { createServices, type Services } from '../../src/services.js';
import { registerUser, TEST_JWT_SECRET } from '../helpers/api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createTcpProxy, targetOf, type TcpProxy } from '../otel/helpers/tcp-proxy.js';

/*
 * A reply that reached the client is persisted: a record the database refuses is never
 * answered 2xx, and a record that neither the database nor the spool can take answers
 * 503 and keeps the process alive, the record kept and written when it can be.
 */

const config = loadConfig({
  CHATTER_ENV: 'test',
  LOG_LEVEL: 'silent',
  JWT_SECRET: TEST_JWT_SECRET,
  CHAT_RATE_LIMIT_PER_MINUTE: '10000',
  CHAT_RATE_LIMIT_PER_HOUR: '10000',
});

type Stack = { app: FastifyInstance; services: Services };

const stack = async (db: Database, spoolDir: string, content: string, latencyMs = 0): Promise<Stack> => {
  const logger = createLogger(config);
  const services = await createServices({
    config,
    db,
    logger,
    spoolDir,
    createChatModel: () => new ScriptedChatModel({ turns: [{ content, latencyMs, usage: { input_tokens: 7, output_tokens: 3 } }] }),
  });
  return { app: await buildApp({ config, db, logger, services }), services };
};

describe('replies whose records could not be kept', () => {
  const closing: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closing.splice(0).reverse()) await close();
  });

  it('answers 500 with the run id, never 2xx, when the database refuses the run record, and records run_record_rejected', async () => {
    const db: TestDatabase = await createTestDatabase();
    closing.push(db.drop);
    // The database refuses this reply for what it is (a constraint), not for being down.
    await db.pool.query(sql.unsafe`ALTER TABLE messages ADD CONSTRAINT test_refuses_poison CHECK (content <> 'POISON')`);
    const { app, services } = await stack(db, await mkdtemp(join(tmpdir(), 'chatter-rejected-')), 'POISON');
    closing.push(async () => {
      await app.close();
      await services.close();
    });
    const user = await registerUser(app);
    const response = await app.inject({ method: 'POST', url: '/api/v1/workflows/execute/chat', headers: user.auth, payload: { message: 'hello' } });
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
    expect(await db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM messages WHERE role = 'assistant'`)).toBe(0);
  });

  it('answers 503 and stays up when neither the database nor the spool takes a record, then writes it once both can', async () => {
    const direct = await createTestDatabase();
    closing.push(direct.drop);
    const proxy: TcpProxy = await createTcpProxy(targetOf(direct.url));
    closing.push(() => proxy.close());
    const viaProxy = await openDatabase({ url: proxy.urlThrough(direct.url), dataDir: 'memory://', poolSize: 3, statementTimeoutMs: 3_000 });
    closing.push(() => viaProxy.close());
    // The spool's folder is a file: every append fails.
    const blocked = join(await mkdtemp(join(tmpdir(), 'chatter-unsaved-')), 'not-a-folder');
    await writeFile(blocked, 'in the way');
    const { app, services } = await stack(viaProxy, blocked, 'kept in memory', 1_000);
    closing.push(async () => {
      proxy.setDown(false);
      await app.close();
      await services.close();
    });
    const user = await registerUser(app);

    // The database goes away while the run is in flight (its user message is saved).
    let started = false;
    const chat = app.inject({ method: 'POST', url: '/api/v1/workflows/execute/chat', headers: user.auth, payload: { message: 'hello' } });
    const deadline = Date.now() + 10_000;
    while (!started && Date.now() < deadline) {
      started = services.runtime.active().length > 0;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(started).toBe(true);
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
