import { sql } from 'slonik';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { databaseForServer } from '../helpers/server-database.js';
import { registerThrough, requestJson, startServerProcess } from '../helpers/server-process.js';

const CHATS = 200;

describe('a crash during 200 concurrent chats', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups) await cleanup();
  });

  it('keeps every answered chat exactly once and marks the rest interrupted after a restart', async () => {
    const where = await databaseForServer('chatter-crash-');
    cleanups.push(where.cleanup);
    const env = {
      ...where.env,
      JWT_SECRET: 'crash-test-secret-0123456789-abcdefghijkl',
      LOCAL_MODEL_LATENCY_MS: '15',
      CHAT_RATE_LIMIT_PER_MINUTE: '100000',
      CHAT_RATE_LIMIT_PER_HOUR: '100000',
      CHATTER_INSTANCE_ID: 'crash-test-instance',
    };
    const first = await startServerProcess(env, { timeoutMs: 60_000 });
    const { token } = await registerThrough(first);

    const answered: { runId: string; messageId: string; conversationId: string; totalTokens: number }[] = [];
    let finished = 0;
    const chats = Array.from({ length: CHATS }, (_, index) =>
      requestJson(first, 'POST', '/api/v1/workflows/execute/chat', {
        token,
        body: { message: `chat number ${index}: tell me a little story` },
      })
        .then((response) => {
          if (response.status === 200) {
            const message = response.body!['message'] as { id: string; total_tokens: number };
            answered.push({
              runId: response.body!['run_id'] as string,
              messageId: message.id,
              conversationId: response.body!['conversation_id'] as string,
              totalTokens: message.total_tokens,
            });
          }
        })
        .catch(() => undefined)
        .finally(() => {
          finished += 1;
        }),
    );
    // Kill once some chats were answered and many are still in flight.
    const deadline = Date.now() + 60_000;
    while (answered.length < 20 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(await first.stop('SIGKILL')).toBeNull();
    await Promise.all(chats);
    expect(answered.length).toBeGreaterThanOrEqual(20);
    expect(answered.length).toBeLessThan(CHATS);
    expect(finished).toBe(CHATS);

    const second = await startServerProcess(env, { timeoutMs: 60_000 });
    expect((await fetch(`${second.baseUrl}/readyz`)).status).toBe(200);
    expect(await second.stop('SIGTERM')).toBe(0);

    const db = await where.open();
    try {
      const pool = db.pool;
      for (const chat of answered) {
        const rows = await pool.any(sql.type(z.object({ id: z.string(), total_tokens: z.number().nullable() }))`
          SELECT id, total_tokens FROM messages WHERE run_id = ${chat.runId} AND role = 'assistant'`);
        expect(rows).toEqual([{ id: chat.messageId, total_tokens: chat.totalTokens }]);
        const run = await pool.one(sql.type(z.object({ status: z.string(), total_tokens: z.number() }))`
          SELECT status, total_tokens FROM workflow_runs WHERE id = ${chat.runId}`);
        expect(run).toEqual({ status: 'completed', total_tokens: chat.totalTokens });
      }
      const statuses = await pool.any(sql.type(z.object({ status: z.string(), n: z.number() }))`
        SELECT status, count(*) AS n FROM workflow_runs GROUP BY status ORDER BY status`);
      const byStatus = Object.fromEntries(statuses.map((row) => [row.status, row.n]));
      console.log(
        `crash test: ${answered.length}/${CHATS} chats answered before SIGKILL; runs by status after restart: ${JSON.stringify(byStatus)}`,
      );
      expect(byStatus['running']).toBeUndefined();
      expect(byStatus['queued']).toBeUndefined();
      expect(byStatus['completed']).toBeGreaterThanOrEqual(answered.length);
      // Every run has exactly one start and one terminal lifecycle event (interrupted
      // runs get theirs from the restart's recovery).
      const unbalanced = await pool.any(sql.type(z.object({ run_id: z.string(), terminal: z.number() }))`
        SELECT r.id AS run_id,
               (SELECT count(*) FROM events e WHERE e.run_id = r.id AND e.type IN
                  ('workflow_completed', 'workflow_failed', 'workflow_cancelled', 'workflow_timed_out',
                   'budget_exceeded', 'workflow_interrupted')) AS terminal
        FROM workflow_runs r`);
      expect(unbalanced.filter((row) => row.terminal !== 1)).toEqual([]);
      const interruptedEvents = await pool.oneFirst(sql.type(z.object({ n: z.number() }))`
        SELECT count(*) AS n FROM events WHERE type = 'workflow_interrupted'`);
      expect(interruptedEvents).toBe(byStatus['interrupted'] ?? 0);
      const drift = await pool.any(sql.type(z.object({ id: z.string() }))`
        SELECT c.id FROM conversations c
        WHERE c.message_count <> (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id)
           OR c.total_tokens <> (SELECT COALESCE(sum(total_tokens), 0) FROM messages m WHERE m.conversation_id = c.id)
           OR c.total_cost <> (SELECT COALESCE(sum(cost), 0) FROM messages m WHERE m.conversation_id = c.id)`);
      expect(drift).toEqual([]);
    } finally {
      await db.close();
    }
  }, 240_000);
});
