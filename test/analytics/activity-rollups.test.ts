import { sql, type CommonQueryMethods } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { compareRoute, expectedFigures, scanFigures, SCAN_PARTS, type ScanScope } from '../../bench/analytics-scan.js';
import { seedAnalytics } from '../../bench/analytics-seed.js';
import { createAnalyticsReports } from '../../src/analytics/analytics-reports.js';
import { resolveAnalyticsWindow, type AnalyticsWindow } from '../../src/analytics/analytics-window.js';
import { beginTurn } from '../../src/repositories/turns-repository.js';
import { interruptOrphanedRuns } from '../../src/repositories/run-recovery-repository.js';
import { asUser, registerUser, type RegisteredUser } from '../helpers/api.js';
import { createChatApi, type ChatApi } from '../helpers/chat-api.js';
import type { ScriptedTurn } from '../helpers/scripted-chat-model.js';

/*
 * The activity rollups of migration 0014 (messages per role, conversations per status,
 * distinct active conversations, the day level of the token/run rollups) through the
 * whole service: chat turns, tool runs, an orphaned run's recovery, status changes, a
 * backdated conversation and hard deletes. After each step, every report equals the
 * scans over messages, runs and model calls for several windows, and what the triggers
 * kept equals a rebuild from scratch (activity_rollups_rebuild, the migration's backfill).
 */

let api: ChatApi;
let alice: RegisteredUser;
let bob: RegisteredUser;

beforeAll(async () => {
  api = await createChatApi({ CHAT_RATE_LIMIT_PER_MINUTE: '1000', CHAT_RATE_LIMIT_PER_HOUR: '1000', OPENAI_API_KEY: 'sk-test-not-used' });
  alice = await registerUser(api.app);
  bob = await registerUser(api.app);
});

afterAll(async () => {
  await api?.close();
});

const USAGE = { input_tokens: 40, output_tokens: 7, total_tokens: 47 };

const REPLY: ScriptedTurn[] = [{ content: 'Hello there.', usage: USAGE }];

/** One chat turn through the API, the model scripted with `turns`. */
const chat = async (user: RegisteredUser, payload: Record<string, unknown>, turns: ScriptedTurn[] = REPLY) => {
  api.script(turns);
  const response = await asUser(api.app, user)({ method: 'POST', url: '/api/v1/workflows/execute/chat', payload });
  expect(response.statusCode, response.body).toBe(200);
  return response.json<{ conversation_id: string }>();
};

const conversations = async (user: RegisteredUser, method: 'POST' | 'PUT' | 'DELETE', path: string, payload?: Record<string, unknown>) => {
  const response = await asUser(
    api.app,
    user,
  )({ method, url: `/api/v1/conversations${path}`, ...(payload === undefined ? {} : { payload }) });
  expect(response.statusCode, response.body).toBeLessThan(300);
  return response.statusCode === 204 ? null : response.json<{ id: string }>();
};

/** The windows every check reads: the periods, and custom ranges with whole days and partial ends. */
const windows = (now: number): AnalyticsWindow[] => [
  ...(['24h', '7d', '30d', '90d'] as const).map((period) => resolveAnalyticsWindow({ period }, now)),
  resolveAnalyticsWindow(
    { start_date: new Date(now - 4 * 86_400_000).toISOString(), end_date: new Date(now - 2 * 86_400_000).toISOString() },
    now,
  ),
  resolveAnalyticsWindow({ start_date: new Date(now - 5 * 86_400_000 - 7 * 3_600_000).toISOString() }, now),
  resolveAnalyticsWindow({ start_date: new Date(now - 3_600_000).toISOString() }, now),
];

/** Every report of every scope and window against the scans: the list of disagreements. */
const disagreements = async (scopes: readonly ScanScope[]): Promise<string[]> => {
  const reports = createAnalyticsReports(api.db.pool);
  const now = Date.now();
  const problems: string[] = [];
  for (const scope of scopes) {
    for (const window of windows(now)) {
      const label = `${'userId' in scope ? 'user' : 'all'} ${window.from.toISOString()}–${window.to.toISOString()}`;
      const expected = expectedFigures(await scanFigures(api.db.pool, scope, window, SCAN_PARTS.dashboard));
      const body = await reports.dashboard(scope, window, now);
      problems.push(...compareRoute('dashboard', label, body as unknown as Record<string, unknown>, expected));
    }
  }
  return problems;
};

const Snapshot = z.object({ rows: z.array(z.unknown()) });

/** The rollup tables' non-empty rows, in key order. */
const snapshot = async (db: CommonQueryMethods) =>
  db.one(sql.type(Snapshot)`
    SELECT jsonb_build_array(
      (SELECT coalesce(jsonb_agg(a ORDER BY a.user_id, a.span_hours, a.bucket_start, a.shard), '[]') FROM activity_rollups AS a
        WHERE (user_messages, assistant_messages, system_messages, tool_messages, conversations_active, conversations_archived, conversations_deleted)
          <> (0, 0, 0, 0, 0, 0, 0)),
      (SELECT coalesce(jsonb_agg(h ORDER BY h.conversation_id, h.bucket_start), '[]') FROM conversation_hours AS h),
      (SELECT coalesce(jsonb_agg(c ORDER BY c.user_id, c.span_hours, c.bucket_start, c.previous_start, c.shard), '[]')
        FROM conversation_activity AS c WHERE c.conversations <> 0),
      (SELECT coalesce(jsonb_agg(s ORDER BY s.user_id, s.span_hours, s.bucket_start, s.provider, s.model), '[]')
        FROM analytics_spans AS s WHERE s.model_calls <> 0 OR s.runs_total <> 0)
    ) AS rows`);

/**
 * What the triggers kept (mostly appended turn by turn) equals every conversation's active
 * hours recomputed from its messages, and a rebuild from scratch (both rolled back).
 */
const expectRebuildEqual = async () => {
  const kept = await snapshot(api.db.pool);
  const [refreshed, rebuilt] = await api.db.pool
    .transaction(async (tx) => {
      await tx.query(sql.unsafe`SELECT conversation_hours_refresh(ARRAY(SELECT id FROM conversations ORDER BY id))`);
      const afterRefresh = await snapshot(tx);
      await tx.query(sql.unsafe`SELECT activity_rollups_rebuild()`);
      throw Object.assign(new Error('rollback'), { snapshots: [afterRefresh, await snapshot(tx)] });
    })
    .catch((error: { snapshots?: unknown[] }) => error.snapshots ?? []);
  expect(refreshed).toEqual(kept);
  expect(rebuilt).toEqual(kept);
  expect(kept.rows.every((rows) => Array.isArray(rows))).toBe(true);
};

const scopes = (): ScanScope[] => [{ userId: alice.id }, { userId: bob.id }, { allUsers: true }];

describe('activity rollups', () => {
  it('are filled by the benchmark’s bulk seed as a rebuild fills them (the live writes follow on top)', async () => {
    await seedAnalytics(api.db.pool, {
      messages: 3_000,
      users: 6,
      days: 9,
      heavyUserId: alice.id,
      heavyShare: 0.2,
      batchConversations: 60,
      now: Date.now(),
      log: () => undefined,
    });
    expect(await disagreements([{ userId: alice.id }, { userId: 'bench-user-000001' }, { allUsers: true }])).toEqual([]);
    await expectRebuildEqual();
  });

  it('count chat turns, a continued conversation and tool runs exactly like the scans', async () => {
    const first = await chat(alice, { message: 'hi' });
    await chat(alice, { message: 'again', conversation_id: first.conversation_id });
    await chat(alice, { message: 'another conversation' });
    await chat(bob, { message: 'what is 6*7?', enable_tools: true }, [
      { content: '', toolCalls: [{ name: 'calculator', args: { expression: '6*7' }, id: 'call_1' }], usage: USAGE },
      { content: 'It is 42.', usage: USAGE },
    ]);
    expect(await disagreements(scopes())).toEqual([]);
    await expectRebuildEqual();
  });

  it('count an orphaned run’s interrupted message once it is recovered', async () => {
    const { id } = (await conversations(bob, 'POST', '/', { title: 'left running' }))!;
    await beginTurn(api.db.pool, {
      conversationId: id,
      userId: bob.id,
      content: 'never answered',
      runId: 'run-orphan-1',
      workflow: 'chat',
      provider: 'openai',
      model: 'gpt-4o-mini',
      correlationId: 'corr-orphan-1',
      instanceId: 'gone-instance',
    });
    // The user's message counts before the run ends, the interrupted reply after the recovery.
    expect(await disagreements(scopes())).toEqual([]);
    expect(await interruptOrphanedRuns(api.db.pool, { staleAfterMs: 0, allRunning: true })).toContain('run-orphan-1');
    expect(await disagreements(scopes())).toEqual([]);
    await expectRebuildEqual();
  });

  it('follow status changes, soft deletes, backdated rows and hard deletes', async () => {
    const empty = (await conversations(alice, 'POST', '/', { title: 'never used' }))!;
    const archived = await chat(alice, { message: 'to archive' });
    await conversations(alice, 'PUT', `/${archived.conversation_id}`, { status: 'archived' });
    await conversations(alice, 'DELETE', `/${empty.id}`);
    // An operator's rows (the row-level triggers): a conversation moved back in time, an
    // imported one with system and tool messages, then one of them moved and retyped.
    const moved = await chat(alice, { message: 'to move back' });
    await api.db.pool.query(sql.unsafe`
      UPDATE conversations SET created_at = created_at - interval '3 days 5 hours' WHERE id = ${moved.conversation_id}`);
    await api.db.pool.query(sql.unsafe`
      INSERT INTO conversations (id, user_id, title, created_at) VALUES ('conv-imported', ${alice.id}, 'imported', now() - interval '3 days 5 hours')`);
    await api.db.pool.query(sql.unsafe`
      INSERT INTO messages (id, conversation_id, role, content, sequence_number, created_at) VALUES
        ('imported-0', 'conv-imported', 'system', 'be brief', 0, now() - interval '3 days 5 hours'),
        ('imported-1', 'conv-imported', 'tool', '42', 1, now() - interval '3 days 4 hours'),
        ('imported-2', 'conv-imported', 'tool', '43', 2, now() - interval '1 day'),
        ('imported-3', 'conv-imported', 'tool', '44', 3, now() - interval '1 day')`);
    await api.db.pool.query(sql.unsafe`
      UPDATE messages SET created_at = created_at - interval '2 days', role = 'system' WHERE id IN ('imported-1', 'imported-2')`);
    await api.db.pool.query(sql.unsafe`
      UPDATE conversations SET created_at = created_at - interval '1 day', status = 'archived' WHERE id = 'conv-imported'`);
    expect(await disagreements(scopes())).toEqual([]);
    await expectRebuildEqual();

    // Hard deletes (the service only soft-deletes): a conversation, a message, then a user with
    // everything of theirs. (A hard-deleted conversation's runs would stay in the token rollups.)
    await api.db.pool.query(sql.unsafe`DELETE FROM conversations WHERE id = 'conv-imported'`);
    await api.db.pool.query(sql.unsafe`DELETE FROM messages WHERE conversation_id = ${moved.conversation_id} AND role = 'user'`);
    await api.db.pool.query(sql.unsafe`DELETE FROM users WHERE id = ${bob.id}`);
    expect(await disagreements([{ userId: alice.id }, { allUsers: true }])).toEqual([]);
    await expectRebuildEqual();
  });
});
