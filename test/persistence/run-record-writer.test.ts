import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPool, sql } from 'slonik';
import { ulid } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { RunRecord } from '../../otel/processors/run-record.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { RunRecordWriter } from '../../src/persistence/run-record-writer.js';
import { appendToSpool } from '../helpers/spool.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createConversation, createUser } from '../helpers/fixtures.js';

const logger = createLogger(loadConfig({ LOG_LEVEL: 'silent' }));

const record = (userId: string, conversationId: string, tokens: { input: number; output: number }, cost: number): RunRecord => {
  const runId = ulid();
  const now = Date.now();
  return {
    version: 1,
    runId,
    userId,
    conversationId,
    workflow: 'chat',
    status: 'completed',
    terminalReason: 'completed',
    error: null,
    provider: 'openai',
    model: 'gpt-4o-mini',
    correlationId: ulid(),
    traceId: '0'.repeat(32),
    instanceId: 'test',
    startedAt: now - 50,
    finishedAt: now,
    usage: { inputUncached: tokens.input, cacheRead: 0, cacheWrite: 0, output: tokens.output, reasoning: 0 },
    costUsd: cost,
    costUnknown: false,
    usageMissingCalls: 0,
    modelCallCount: 1,
    toolCallCount: 0,
    output: 'answer',
    userMessageId: null,
    assistantMessageId: ulid(),
    modelCalls: [
      {
        id: ulid(),
        sequence: 0,
        provider: 'openai',
        requestModel: 'gpt-4o-mini',
        responseModel: 'gpt-4o-mini',
        usage: { inputUncached: tokens.input, cacheRead: 0, cacheWrite: 0, output: tokens.output, reasoning: 0 },
        costUsd: cost,
        priceId: null,
        latencyMs: 50,
        timeToFirstChunkMs: null,
        finishReason: 'stop',
        usageSource: 'provider',
        error: null,
        startedAt: now - 50,
      },
    ],
    toolCalls: [],
    events: [{ id: ulid(), type: 'workflow_completed', priority: 'normal', data: {}, at: now }],
  };
};

const Sums = z.object({ runs: z.number(), messages: z.number(), tokens: z.number(), total_tokens: z.number(), message_count: z.number() });

describe('RunRecordWriter', () => {
  let db: TestDatabase;
  let userId: string;
  let conversationId: string;
  beforeAll(async () => {
    db = await createTestDatabase();
    userId = await createUser(db.pool);
    conversationId = await createConversation(db.pool, userId);
  });
  afterAll(async () => {
    await db.drop();
  });

  const sums = () =>
    db.pool.one(sql.type(Sums)`
      SELECT (SELECT count(*) FROM workflow_runs WHERE conversation_id = ${conversationId}) AS runs,
             (SELECT count(*) FROM messages WHERE conversation_id = ${conversationId}) AS messages,
             (SELECT COALESCE(sum(total_tokens), 0) FROM messages WHERE conversation_id = ${conversationId}) AS tokens,
             total_tokens, message_count
      FROM conversations WHERE id = ${conversationId}`);

  const newWriter = async (pool = db.pool) => {
    const directory = await mkdtemp(join(tmpdir(), 'chatter-writer-'));
    return {
      directory,
      spoolPath: join(directory, 'spool.jsonl'),
      writer: new RunRecordWriter({
        pool,
        spoolPath: join(directory, 'spool.jsonl'),
        deadLetterPath: join(directory, 'dead.jsonl'),
        logger,
        retryBaseMs: 20,
      }),
    };
  };

  it('writes a batch of runs in one transaction and each record once, however often it is replayed', async () => {
    const before = await sums();
    const { writer } = await newWriter();
    const records = [1, 2, 3].map((n) => record(userId, conversationId, { input: 10 * n, output: n }, 0.001 * n));
    for (const r of records) {
      writer.enqueue(r);
    }
    await expect(Promise.all(records.map((r) => writer.whenDurable(r.runId)))).resolves.toEqual(['database', 'database', 'database']);
    expect(writer.stats().transactions).toBe(1);
    // Replays: the same records again, singly and in a batch.
    writer.enqueue(records[0]!);
    writer.enqueue(records[1]!);
    writer.enqueue(records[1]!);
    await writer.forceFlush();
    const after = await sums();
    expect(after.runs - before.runs).toBe(3);
    expect(after.messages - before.messages).toBe(3);
    expect(after.tokens - before.tokens).toBe(66);
    expect(after.total_tokens).toBe(after.tokens);
    expect(after.message_count).toBe(after.messages);
  });

  it('numbers the messages of a batch in run order per conversation and keeps every total equal to the sums', async () => {
    const other = await createConversation(db.pool, userId);
    const { writer } = await newWriter();
    // Interleaved: two runs of each conversation in one batch.
    const records = [conversationId, other, conversationId, other].map((id, n) =>
      record(userId, id, { input: 100 + n, output: n + 1 }, 0.0001 * (n + 1)),
    );
    records.forEach((r) => writer.enqueue(r));
    await Promise.all(records.map((r) => writer.whenDurable(r.runId)));
    expect(writer.stats().transactions).toBe(1);
    const rows = await db.pool.any(sql.type(z.object({ run_id: z.string(), conversation_id: z.string(), sequence_number: z.number() }))`
      SELECT run_id, conversation_id, sequence_number FROM messages
      WHERE run_id = ANY(${sql.array(
        records.map((r) => r.runId),
        'text',
      )}) ORDER BY conversation_id, sequence_number`);
    for (const id of [conversationId, other]) {
      const runsInOrder = records.filter((r) => r.conversationId === id).map((r) => r.runId);
      expect(rows.filter((row) => row.conversation_id === id).map((row) => row.run_id)).toEqual(runsInOrder);
    }
    const mismatched = await db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`
      SELECT count(*)::int AS n FROM conversations c
      WHERE c.message_count <> (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id)
         OR c.total_tokens <> (SELECT COALESCE(sum(total_tokens), 0) FROM messages m WHERE m.conversation_id = c.id)
         OR c.total_cost <> (SELECT COALESCE(sum(cost), 0) FROM messages m WHERE m.conversation_id = c.id)`);
    expect(mismatched).toBe(0);
    const user = await db.pool.one(sql.type(
      z.object({ tokens: z.number(), cost: z.number(), message_tokens: z.number(), message_cost: z.number() }),
    )`
      SELECT u.total_tokens AS tokens, u.total_cost AS cost,
             (SELECT COALESCE(sum(m.total_tokens), 0) FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE c.user_id = u.id) AS message_tokens,
             (SELECT COALESCE(sum(m.cost), 0) FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE c.user_id = u.id) AS message_cost
      FROM users u WHERE u.id = ${userId}`);
    expect(user.tokens).toBe(user.message_tokens);
    expect(user.cost).toBe(user.message_cost);
  });

  it('keeps writing after a flush of an empty queue', async () => {
    const { writer } = await newWriter();
    await writer.forceFlush();
    const later = record(userId, conversationId, { input: 1, output: 1 }, 0);
    writer.enqueue(later);
    await expect(writer.whenDurable(later.runId, 5_000)).resolves.toBe('database');
  });

  it('spools records while the database is unreachable and writes them once it is back', async () => {
    const before = await sums();
    // A pool that has been ended stands for a database that is down: every query fails.
    const deadPool = await createPool(db.url, { maxPoolSize: 1 });
    await deadPool.end();
    const { writer: downWriter, spoolPath } = await newWriter(deadPool);
    const records = [
      record(userId, conversationId, { input: 7, output: 3 }, 0.01),
      record(userId, conversationId, { input: 5, output: 5 }, 0.02),
    ];
    records.forEach((r) => downWriter.enqueue(r));
    await expect(downWriter.whenDurable(records[0]!.runId)).resolves.toBe('spool');
    await expect(downWriter.whenDurable(records[1]!.runId)).resolves.toBe('spool');
    expect(downWriter.stats().spooled).toBe(2);
    expect((await readFile(spoolPath, 'utf8')).trim().split('\n')).toHaveLength(2);
    await downWriter.shutdown();
    expect((await sums()).runs).toBe(before.runs);

    // "Restart": a writer on the same spool, with the database reachable, replays it.
    const writer = new RunRecordWriter({ pool: db.pool, spoolPath, deadLetterPath: `${spoolPath}.dead`, logger });
    await writer.start();
    const after = await sums();
    expect(after.runs - before.runs).toBe(2);
    expect(after.tokens - before.tokens).toBe(20);
    expect(writer.stats().spooled).toBe(0);
    await expect(readFile(spoolPath, 'utf8')).rejects.toThrow();
  });

  it('replays a spool written just before a crash once, even if some records had reached the database', async () => {
    const before = await sums();
    const { writer, spoolPath } = await newWriter();
    const committed = record(userId, conversationId, { input: 3, output: 1 }, 0.003);
    writer.enqueue(committed);
    await writer.whenDurable(committed.runId);
    const pending = record(userId, conversationId, { input: 8, output: 2 }, 0.004);
    // The crash: both records are in the spool; one of them was also committed.
    await appendToSpool(spoolPath, [committed, pending]);
    const restarted = new RunRecordWriter({ pool: db.pool, spoolPath, deadLetterPath: `${spoolPath}.dead`, logger });
    await restarted.start();
    await restarted.start();
    const after = await sums();
    expect(after.runs - before.runs).toBe(2);
    expect(after.tokens - before.tokens).toBe(14);
    expect(after.total_tokens).toBe(after.tokens);
  });

  it('dead-letters a record the database refuses and still writes the rest of its batch', async () => {
    const before = await sums();
    const { writer, directory } = await newWriter();
    const good = record(userId, conversationId, { input: 2, output: 2 }, 0.001);
    const bad = { ...record(userId, conversationId, { input: 1, output: 1 }, 0.001), userId: 'no-such-user' };
    writer.enqueue(bad);
    writer.enqueue(good);
    await expect(writer.whenDurable(good.runId)).resolves.toBe('database');
    await writer.whenDurable(bad.runId);
    expect(writer.stats().deadLettered).toBe(1);
    expect(await readFile(join(directory, 'dead.jsonl'), 'utf8')).toContain('no-such-user');
    expect((await sums()).runs - before.runs).toBe(1);
  });
});
