import { sql } from 'slonik';
import { ulid } from 'ulid';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadMigrations, migrate } from '../../src/db/migrations.js';
import { beginTurn, ConversationBusyError, type BeginTurnInput } from '../../src/repositories/turns-repository.js';
import { createEmptyTestDatabase, createTestDatabase, type TestDatabase } from '../helpers/database.js';

const insertUserAndConversation = async (db: TestDatabase) => {
  const userId = ulid();
  const conversationId = ulid();
  await db.pool.query(sql.unsafe`
    INSERT INTO users (id, email, username, password_hash) VALUES (${userId}, ${`${userId}@example.com`}, ${userId}, 'x')`);
  await db.pool.query(sql.unsafe`INSERT INTO conversations (id, user_id, title) VALUES (${conversationId}, ${userId}, 't')`);
  return { userId, conversationId };
};

const turn = (ids: { userId: string; conversationId: string }, content: string): BeginTurnInput => ({
  ...ids,
  content,
  runId: ulid(),
  workflow: 'chat',
  provider: 'local',
  model: 'local-echo-1',
  correlationId: ulid(),
  instanceId: 'test',
});

const Counts = z.object({ messages: z.number(), message_count: z.number(), live: z.number() });
const counts = (db: TestDatabase, conversationId: string) =>
  db.pool.one(sql.type(Counts)`
    SELECT (SELECT count(*) FROM messages WHERE conversation_id = ${conversationId}) AS messages,
           (SELECT message_count FROM conversations WHERE id = ${conversationId}) AS message_count,
           (SELECT count(*) FROM workflow_runs WHERE conversation_id = ${conversationId} AND status = 'running') AS live`);

describe('one live run per conversation', () => {
  let db: TestDatabase | undefined;
  afterEach(async () => {
    await db?.drop();
    db = undefined;
  });

  it('lets exactly one of two racing turns in a conversation commit, and saves nothing of the other', async () => {
    db = await createTestDatabase();
    const ids = await insertUserAndConversation(db);
    const results = await Promise.allSettled([beginTurn(db.pool, turn(ids, 'first')), beginTurn(db.pool, turn(ids, 'second'))]);
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
    const [rejected] = results.filter((result) => result.status === 'rejected');
    expect(rejected?.reason).toBeInstanceOf(ConversationBusyError);
    expect(await counts(db, ids.conversationId)).toEqual({ messages: 1, message_count: 1, live: 1 });
  });

  it('takes the next turn once the live run has ended', async () => {
    db = await createTestDatabase();
    const ids = await insertUserAndConversation(db);
    const first = turn(ids, 'first');
    await beginTurn(db.pool, first);
    await expect(beginTurn(db.pool, turn(ids, 'too soon'))).rejects.toBeInstanceOf(ConversationBusyError);
    await db.pool.query(sql.unsafe`UPDATE workflow_runs SET status = 'completed' WHERE id = ${first.runId}`);
    await beginTurn(db.pool, turn(ids, 'next'));
    expect(await counts(db, ids.conversationId)).toEqual({ messages: 2, message_count: 2, live: 1 });
  });

  it('ends all but the earliest of the live runs already in a conversation when the constraint is added', async () => {
    db = await createEmptyTestDatabase();
    const migrations = await loadMigrations();
    await migrate(
      db.pool,
      migrations.filter((migration) => migration.version < 7),
    );
    const ids = await insertUserAndConversation(db);
    const other = await insertUserAndConversation(db);
    const runs = [
      { id: 'run_a', conversation: ids.conversationId, startedAt: '2026-01-01T00:00:00Z' },
      { id: 'run_b', conversation: ids.conversationId, startedAt: '2026-01-01T00:00:01Z' },
      { id: 'run_c', conversation: ids.conversationId, startedAt: '2026-01-01T00:00:02Z' },
      { id: 'run_d', conversation: other.conversationId, startedAt: '2026-01-01T00:00:00Z' },
    ];
    for (const run of runs) {
      const userId = run.conversation === ids.conversationId ? ids.userId : other.userId;
      await db.pool.query(sql.unsafe`
        INSERT INTO workflow_runs (id, user_id, conversation_id, workflow, status, correlation_id, started_at)
        VALUES (${run.id}, ${userId}, ${run.conversation}, 'chat', 'running', ${`c_${run.id}`}, ${run.startedAt})`);
    }
    await migrate(db.pool, migrations);

    const statuses = await db.pool.any(sql.type(z.object({ id: z.string(), status: z.string() }))`
      SELECT id, status FROM workflow_runs ORDER BY id`);
    expect(statuses).toEqual([
      { id: 'run_a', status: 'running' },
      { id: 'run_b', status: 'interrupted' },
      { id: 'run_c', status: 'interrupted' },
      { id: 'run_d', status: 'running' },
    ]);
    const events = await db.pool.any(sql.type(z.object({ run_id: z.string(), type: z.string() }))`
      SELECT run_id, type FROM events ORDER BY run_id`);
    expect(events).toEqual([
      { run_id: 'run_b', type: 'workflow_interrupted' },
      { run_id: 'run_c', type: 'workflow_interrupted' },
    ]);
    const applied = await db.pool.anyFirst(sql.type(z.object({ run_id: z.string() }))`SELECT run_id FROM applied_runs ORDER BY run_id`);
    expect(applied).toEqual(['run_b', 'run_c']);
    await expect(beginTurn(db.pool, turn(ids, 'busy'))).rejects.toBeInstanceOf(ConversationBusyError);
  });
});
