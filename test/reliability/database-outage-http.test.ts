import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { sql } from 'slonik';
import { messageColumns, MessageRow } from '../../src/repositories/messages-repository.js';
import { afterAll, describe, expect, it } from 'vitest';
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

const OUTAGE_MS = 20_000;

describe('a 20 s database outage under load', () => {
  let direct: TestDatabase | undefined;
  let proxy: TcpProxy | undefined;
  let viaProxy: Database | undefined;
  let services: Services | undefined;
  let app: FastifyInstance | undefined;
  afterAll(async () => {
    proxy?.setDown(false);
    await app?.close();
    await services?.runtime.shutdown(1_000);
    await services?.close();
    await viaProxy?.close();
    await proxy?.close();
    await direct?.drop();
  });

  it('loses and double-counts no completed run, says not ready meanwhile and refuses new chats with 503', async () => {
    direct = await createTestDatabase();
    proxy = await createTcpProxy(targetOf(direct.url));
    viaProxy = await openDatabase({ url: proxy.urlThrough(direct.url), dataDir: 'memory://', poolSize: 5, statementTimeoutMs: 3_000 });
    const config = loadConfig({
      CHATTER_ENV: 'test',
      LOG_LEVEL: 'silent',
      JWT_SECRET: TEST_JWT_SECRET,
      CHAT_RATE_LIMIT_PER_MINUTE: '10000',
      CHAT_RATE_LIMIT_PER_HOUR: '10000',
    });
    const logger = createLogger(config);
    services = await createServices({
      config,
      db: viaProxy,
      logger,
      spoolDir: await mkdtemp(join(tmpdir(), 'chatter-outage-')),
      // Every run: a slow answer with known usage.
      createChatModel: () =>
        new ScriptedChatModel({ turns: [{ content: 'slow but sure', latencyMs: 1_500, usage: { input_tokens: 11, output_tokens: 4 } }] }),
    });
    app = await buildApp({ config, db: viaProxy, logger, services });
    const user = await registerUser(app);
    const chat = (message: string) =>
      app!.inject({ method: 'POST', url: '/api/v1/workflows/execute/chat', headers: user.auth, payload: { message } });

    // Load: 25 chats in flight when the database goes away.
    const inFlight = Array.from({ length: 25 }, (_, index) => chat(`before the outage ${index}`));
    // Cut the database once every run is in flight (each user message saved).
    const started = Date.now();
    while (services.runtime.active().length < 25 && Date.now() - started < 10_000) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(services.runtime.active()).toHaveLength(25);
    proxy.setDown(true);
    const outageStarted = Date.now();

    const answered = await Promise.all(inFlight);
    expect(answered.map((response) => response.statusCode)).toEqual(answered.map(() => 200));
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ status: 'not_ready', checks: { database: { status: 'unhealthy' }, run_records: { status: 'degraded' } } });
    expect(services.writer.stats().spooled).toBe(25);
    const refused = await chat('during the outage');
    expect(refused.statusCode).toBe(503);
    expect(refused.json()).toMatchObject({ code: 'database_unavailable' });

    await new Promise((resolve) => setTimeout(resolve, Math.max(0, OUTAGE_MS - (Date.now() - outageStarted))));
    proxy.setDown(false);
    const deadline = Date.now() + 30_000;
    while (services.writer.stats().spooled > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(services.writer.stats().spooled).toBe(0);
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    expect((await chat('after the outage')).statusCode).toBe(200);

    const runIds = answered.map((response) => response.json<{ run_id: string }>().run_id);
    const rows = await direct.pool.any(sql.type(z.object({ id: z.string(), status: z.string(), total_tokens: z.number() }))`
      SELECT id, status, total_tokens FROM workflow_runs WHERE id = ANY(${sql.array(runIds, 'text')})`);
    expect(rows).toHaveLength(25);
    expect(rows.every((row) => row.status === 'completed' && row.total_tokens === 15)).toBe(true);
    const messages = await direct.pool.oneFirst(sql.type(z.object({ n: z.number() }))`
      SELECT count(*) AS n FROM messages WHERE role = 'assistant' AND run_id = ANY(${sql.array(runIds, 'text')})`);
    expect(messages).toBe(25);
    // What each chat answered during the outage is, field by field, the row the replay wrote.
    for (const response of answered) {
      const body = response.json<{ message: MessageRow; conversation: { message_count: number; total_tokens: number; total_cost: number } }>();
      const stored = await direct.pool.one(sql.type(MessageRow)`
        SELECT ${messageColumns} FROM messages WHERE id = ${body.message.id}`);
      expect(body.message).toEqual(stored);
    }
    const drift = await direct.pool.any(sql.type(z.object({ id: z.string() }))`
      SELECT c.id FROM conversations c
      WHERE c.message_count <> (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id)
         OR c.total_tokens <> (SELECT COALESCE(sum(total_tokens), 0) FROM messages m WHERE m.conversation_id = c.id)`);
    expect(drift).toEqual([]);
    // The refused chat left nothing behind.
    const during = await direct.pool.oneFirst(sql.type(z.object({ n: z.number() }))`
      SELECT count(*) AS n FROM messages WHERE content = 'during the outage'`);
    expect(during).toBe(0);
  }, 90_000);
});
