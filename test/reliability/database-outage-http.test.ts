import { sql } from 'slonik';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { messageColumns, MessageRow } from '../../src/repositories/messages-repository.js';
import { startProxiedStack, type ProxiedStack } from '../helpers/proxied-stack.js';

const OUTAGE_MS = 20_000;

describe('a 20 s database outage under load', () => {
  let stack: ProxiedStack | undefined;
  afterAll(async () => {
    await stack?.close();
  });

  it('loses and double-counts no completed run, says not ready meanwhile and refuses new chats with 503', async () => {
    stack = await startProxiedStack({
      pool: { poolSize: 5, statementTimeoutMs: 3_000 },
      // Every run: a slow answer with known usage.
      reply: { content: 'slow but sure', latencyMs: 1_500, usage: { input_tokens: 11, output_tokens: 4 } },
    });
    const { app, services, proxy, direct, chat } = stack;

    // Load: 25 chats in flight when the database goes away.
    const inFlight = Array.from({ length: 25 }, (_, index) => chat(`before the outage ${index}`));
    // Cut the database once every run is in flight (each user message saved).
    await stack.untilActive(25);
    expect(services.runtime.active()).toHaveLength(25);
    proxy.setDown(true);
    const outageStarted = Date.now();

    const answered = await Promise.all(inFlight);
    expect(answered.map((response) => response.statusCode)).toEqual(answered.map(() => 200));
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({
      status: 'not_ready',
      checks: { database: { status: 'unhealthy' }, run_records: { status: 'degraded' } },
    });
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
      const body = response.json<{
        message: MessageRow;
        conversation: { message_count: number; total_tokens: number; total_cost: number };
      }>();
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
