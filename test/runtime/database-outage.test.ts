import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql, type DatabasePool } from 'slonik';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { ScriptedTurn } from '../helpers/scripted-chat-model.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createConversation, createUser } from '../helpers/fixtures.js';
import { createHarness, type Harness } from '../helpers/run-harness.js';
import { conversationsOutOfStep, readEventTypes } from '../helpers/run-rows.js';
import { createTcpProxy, targetOf, type TcpProxy } from '../otel/helpers/tcp-proxy.js';
import { waitUntil } from '../helpers/wait.js';

/*
 * The services reach the database through a real TCP proxy that the tests take down
 * (open connections cut, new ones refused) while runs are in flight. Records of runs
 * that end meanwhile must be spooled to disk and written exactly once afterwards.
 */

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) {
    await cleanup();
  }
});

const slowTurn = (index: number): ScriptedTurn => ({
  content: `Answer number ${index}.`,
  latencyMs: 300,
  usage: { input_tokens: 100 + index, output_tokens: 10 + index, input_token_details: { cache_read: index } },
});
const tokensOf = (turns: readonly ScriptedTurn[]): number =>
  turns.reduce((sum, turn) => sum + ('usage' in turn && turn.usage ? turn.usage.input_tokens + turn.usage.output_tokens : 0), 0);

const Sums = z.object({
  runs: z.number(),
  completed: z.number(),
  applied: z.number(),
  run_tokens: z.number(),
  run_cost: z.string(),
  calls: z.number(),
  call_tokens: z.number(),
  user_messages: z.number(),
  assistant_messages: z.number(),
  message_tokens: z.number(),
  message_cost: z.string(),
  conversation_messages: z.number(),
  conversation_tokens: z.number(),
  user_tokens: z.number(),
  events: z.number(),
});

/** Everything the database counts, so a second look can prove nothing changed. */
const sums = (pool: DatabasePool) =>
  pool.one(sql.type(Sums)`
    SELECT
      (SELECT count(*) FROM workflow_runs) AS runs,
      (SELECT count(*) FROM workflow_runs WHERE status = 'completed') AS completed,
      (SELECT count(*) FROM applied_runs) AS applied,
      (SELECT COALESCE(sum(total_tokens), 0) FROM workflow_runs) AS run_tokens,
      (SELECT COALESCE(sum(cost), 0)::text FROM workflow_runs) AS run_cost,
      (SELECT count(*) FROM model_calls) AS calls,
      (SELECT COALESCE(sum(input_tokens + output_tokens), 0) FROM model_calls) AS call_tokens,
      (SELECT count(*) FROM messages WHERE role = 'user') AS user_messages,
      (SELECT count(*) FROM messages WHERE role = 'assistant') AS assistant_messages,
      (SELECT COALESCE(sum(total_tokens), 0) FROM messages) AS message_tokens,
      (SELECT COALESCE(sum(cost), 0)::text FROM messages) AS message_cost,
      (SELECT COALESCE(sum(message_count), 0) FROM conversations) AS conversation_messages,
      (SELECT COALESCE(sum(total_tokens), 0) FROM conversations) AS conversation_tokens,
      (SELECT COALESCE(sum(total_tokens), 0) FROM users) AS user_tokens,
      (SELECT count(*) FROM events) AS events`);

const AnalyticsSums = z.object({ runs: z.number(), tokens: z.number(), cost: z.string() });
const analyticsSums = (pool: DatabasePool) =>
  pool.one(sql.type(AnalyticsSums)`
    SELECT COALESCE(sum(runs_total), 0) AS runs,
           COALESCE(sum(input_tokens + cache_read_tokens + cache_write_tokens + output_tokens), 0) AS tokens,
           COALESCE(sum(cost), 0)::text AS cost
    FROM analytics_hourly`);

const statusOf = (pool: DatabasePool, runId: string) =>
  pool.oneFirst(sql.type(z.object({ status: z.string() }))`SELECT status FROM workflow_runs WHERE id = ${runId}`);

/** A harness whose services connect through a proxy the test controls. */
const proxiedHarness = async (): Promise<{ h: Harness; proxy: TcpProxy }> => {
  let proxy: TcpProxy | undefined;
  const h = await createHarness(
    {},
    {
      connectThrough: async (url) => {
        proxy = await createTcpProxy(targetOf(url));
        return proxy.urlThrough(url);
      },
    },
  );
  cleanups.push(async () => {
    proxy?.setDown(false);
    await h.close();
    await proxy?.close();
  });
  return { h, proxy: proxy! };
};

describe('a database outage', () => {
  it(
    'loses no run and double-counts none when the database stops during a burst of runs and starts again',
    { timeout: 60_000 },
    async () => {
      const { h, proxy } = await proxiedHarness();
      const turns = Array.from({ length: 20 }, (_, index) => slowTurn(index));
      const userId = await createUser(h.db.pool);
      const conversations: string[] = [];
      for (const _turn of turns) {
        // One at a time: a burst of direct connections would take PGlite's connection slots.
        conversations.push(await createConversation(h.db.pool, userId));
      }
      const lateConversation = await createConversation(h.db.pool, userId);

      // One shared script: each run's single model call takes the next turn, once the gate opens.
      let open!: () => void;
      const gate = new Promise<void>((resolve) => {
        open = resolve;
      });
      h.script(turns, { gate });
      const started = await Promise.all(conversations.map((conversationId) => h.startTurn({ userId, conversationId })));
      const waiting = () => h.services.runtime.active().filter((run) => run.state === 'running.callingModel').length;
      await waitUntil(() => waiting() === 20, { timeoutMs: 10_000, what: 'every run to call its model' });
      proxy.setDown(true);

      // While it is down, a new turn cannot even be saved.
      await expect(h.startTurn({ userId, conversationId: lateConversation })).rejects.toThrow();
      open(); // the 20 slow answers now arrive, the database still down

      const outcomes = await Promise.all(started.map((turn) => turn.done));
      expect(outcomes.map((outcome) => [outcome.status, outcome.durable])).toEqual(outcomes.map(() => ['completed', 'spool']));
      expect(h.services.writer.stats()).toMatchObject({ spooled: 20, deadLettered: 0 });
      // Nothing reached the database: the runs are still `running` there.
      for (const turn of started) {
        expect(await statusOf(h.db.pool, turn.runId)).toBe('running');
      }

      proxy.setDown(false);
      await waitUntil(() => h.services.writer.stats().spooled === 0, { timeoutMs: 20_000, what: 'the spool to be replayed' });

      const s = await sums(h.db.pool);
      const scripted = tokensOf(turns);
      expect(s).toMatchObject({
        runs: 20,
        completed: 20,
        applied: 20,
        calls: 20,
        user_messages: 20,
        assistant_messages: 20,
        conversation_messages: 40,
        run_tokens: scripted,
        call_tokens: scripted,
        message_tokens: scripted,
        conversation_tokens: scripted,
        user_tokens: scripted,
      });
      expect(s.message_cost).toBe(s.run_cost);
      // The analytics rollups, written with the spooled records once the database was back, agree with the rows.
      await h.services.writer.forceFlush();
      expect(h.services.writer.stats()).toMatchObject({ queued: 0, spooled: 0 });
      expect(await analyticsSums(h.db.pool)).toEqual({ runs: 20, tokens: scripted, cost: s.run_cost });
      for (const turn of started) {
        const types = await readEventTypes(h.db.pool, turn.runId);
        expect(types.filter((type) => type === 'workflow_started')).toHaveLength(1);
        expect(types.filter((type) => type === 'workflow_completed')).toHaveLength(1);
      }
      expect(await conversationsOutOfStep(h.db.pool)).toEqual([]);
      // The refused turn left nothing behind.
      const late = await h.db.pool.oneFirst(sql.type(z.object({ message_count: z.number() }))`
      SELECT message_count FROM conversations WHERE id = ${lateConversation}`);
      expect(late).toBe(0);

      // The service works normally again.
      h.script([{ content: 'Back.', usage: { input_tokens: 5, output_tokens: 1 } }]);
      const after = await (await h.startTurn({ userId, conversationId: lateConversation })).done;
      expect(after).toMatchObject({ status: 'completed', durable: 'database' });
    },
  );

  it('replays a spool left by a crash once at start-up, and never counts it again', { timeout: 60_000 }, async () => {
    const db: TestDatabase = await createTestDatabase(12);
    const proxy = await createTcpProxy(targetOf(db.url));
    const spoolDir = await mkdtemp(join(tmpdir(), 'chatter-spool-crash-'));
    cleanups.push(async () => {
      await proxy.close();
      await db.drop();
    });

    const first = await createHarness({}, { database: db, connectThrough: proxy.urlThrough, spoolDir });
    let firstClosed = false;
    cleanups.push(async () => {
      if (!firstClosed) {
        await first.close();
      }
    });
    first.script([slowTurn(7)]);
    const turn = await first.startTurn({});
    proxy.setDown(true);
    const outcome = await turn.done;
    expect(outcome).toMatchObject({ status: 'completed', durable: 'spool' });
    const spooled = (await readFile(join(spoolDir, 'run-records.jsonl'), 'utf8')).trim().split('\n');
    expect(spooled).toHaveLength(1);

    // The process dies with the database still unreachable: the spool is all that is left.
    await first.close();
    firstClosed = true;
    expect(await readdir(spoolDir)).toContain('run-records.jsonl');
    expect(await statusOf(db.pool, turn.runId)).toBe('running');

    // A new process on the same spool directory, the database reachable again.
    const second = await createHarness({}, { database: db, spoolDir });
    await second.close();
    const once = await sums(db.pool);
    expect(await statusOf(db.pool, turn.runId)).toBe('completed');
    expect(once).toMatchObject({
      runs: 1,
      completed: 1,
      calls: 1,
      user_messages: 1,
      assistant_messages: 1,
      conversation_messages: 2,
      run_tokens: tokensOf([slowTurn(7)]),
      message_tokens: tokensOf([slowTurn(7)]),
      conversation_tokens: tokensOf([slowTurn(7)]),
      user_tokens: tokensOf([slowTurn(7)]),
    });
    const types = await readEventTypes(db.pool, turn.runId);
    expect(types.filter((type) => type === 'workflow_completed')).toHaveLength(1);
    expect(types).not.toContain('workflow_interrupted');
    expect(await readdir(spoolDir)).not.toContain('run-records.jsonl');

    // A third start changes nothing, even if the process died after the replay committed
    // but before it removed the spool (the same records are in it again).
    await writeFile(join(spoolDir, 'run-records.jsonl'), `${spooled.join('\n')}\n`);
    const third = await createHarness({}, { database: db, spoolDir });
    await third.close();
    // Replayed as an already-applied record: skipped, not rejected.
    expect(third.services.writer.stats()).toMatchObject({ spooled: 0, deadLettered: 0 });
    expect(await readdir(spoolDir)).not.toContain('run-records.jsonl');
    expect(await sums(db.pool)).toEqual(once);
    expect(await conversationsOutOfStep(db.pool)).toEqual([]);
  });

  it('counts a run spooled through a restart in the analytics rollups as in the run rows', { timeout: 60_000 }, async () => {
    const db: TestDatabase = await createTestDatabase(12);
    const proxy = await createTcpProxy(targetOf(db.url));
    const spoolDir = await mkdtemp(join(tmpdir(), 'chatter-spool-restart-'));
    cleanups.push(async () => {
      await proxy.close();
      await db.drop();
    });

    const first = await createHarness({}, { database: db, connectThrough: proxy.urlThrough, spoolDir });
    first.script([slowTurn(3)]);
    const turn = await first.startTurn({});
    proxy.setDown(true);
    expect(await turn.done).toMatchObject({ status: 'completed', durable: 'spool' });
    // Restarted while the database is still unreachable (a deploy during an outage).
    await first.close();

    const second = await createHarness({}, { database: db, spoolDir });
    await second.services.writer.forceFlush();
    await second.close();
    const rows = await sums(db.pool);
    expect(rows).toMatchObject({ runs: 1, completed: 1, run_tokens: tokensOf([slowTurn(3)]) });
    // Invariant 4: the rollups agree with the rows for the same runs.
    expect(await analyticsSums(db.pool)).toEqual({ runs: 1, tokens: rows.run_tokens, cost: rows.run_cost });
  });
});
