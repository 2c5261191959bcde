import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAnalyticsReports } from '../../src/analytics/analytics-reports.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { insertUsers } from '../otel/helpers/analytics-rows.js';

/** Conversations and messages at known times: what the conversation statistics count. */
describe('analytics message and conversation counts', () => {
  let db: TestDatabase;
  const window = { from: new Date('2026-03-01T00:00:00Z'), to: new Date('2026-03-02T00:00:00Z'), elapsedMs: 86_400_000, days: 1 };

  beforeAll(async () => {
    db = await createTestDatabase();
    await insertUsers(db.pool, ['user-a', 'user-b']);
    // [conversation, owner, created, status, message times (user, assistant alternating)]
    const conversations: [string, string, string, string, string[]][] = [
      [
        'conv-1',
        'user-a',
        '2026-02-28T23:00:00Z',
        'active',
        ['2026-02-28T23:10:00Z', '2026-02-28T23:10:05Z', '2026-03-01T00:00:00Z', '2026-03-01T00:00:09Z'],
      ],
      ['conv-2', 'user-a', '2026-03-01T08:00:00Z', 'archived', ['2026-03-01T08:00:01Z', '2026-03-01T08:00:02Z', '2026-03-01T23:59:59Z']],
      ['conv-3', 'user-a', '2026-03-01T09:00:00Z', 'active', ['2026-03-02T00:00:00Z']],
      ['conv-4', 'user-b', '2026-03-01T10:00:00Z', 'deleted', ['2026-03-01T10:00:01Z', '2026-03-01T10:00:03Z']],
      ['conv-5', 'user-b', '2026-03-01T11:00:00Z', 'active', []],
    ];
    for (const [id, userId, createdAt, status, times] of conversations) {
      await db.pool.query(sql.unsafe`
        INSERT INTO conversations (id, user_id, title, status, created_at) VALUES (${id}, ${userId}, 't', ${status}, ${createdAt}::timestamptz)`);
      for (const [index, at] of times.entries()) {
        await db.pool.query(sql.unsafe`
          INSERT INTO messages (id, conversation_id, role, content, sequence_number, created_at)
          VALUES (${`${id}-${index}`}, ${id}, ${index % 2 === 0 ? 'user' : 'assistant'}, 'x', ${index}, ${at}::timestamptz)`);
      }
    }
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('counts one user’s messages by role and the conversations they belong to, in the window only', async () => {
    const stats = await createAnalyticsReports(db.pool).conversationStats({ userId: 'user-a' }, window);
    // conv-1: 2 in the window (00:00:00, 00:00:09); conv-2: 3; conv-3's message is at the window's end (excluded).
    expect(stats.total_messages).toBe(5);
    expect(stats.messages_by_role).toEqual({ user: 3, assistant: 2 });
    expect(stats.avg_messages_per_conversation).toBe(5 / 2);
    expect(stats.total_conversations).toBe(2); // conv-2 and conv-3 created in the window
    expect(stats.conversations_by_status).toEqual({ archived: 1, active: 1 });
    expect(stats.conversations_by_date).toEqual({ '2026-03-01': 2 });
  });

  it('counts every user’s for an all-users scope, and nothing for a user without messages', async () => {
    const reports = createAnalyticsReports(db.pool);
    const all = await reports.conversationStats({ allUsers: true }, window);
    expect(all.total_messages).toBe(7);
    expect(all.messages_by_role).toEqual({ user: 4, assistant: 3 });
    expect(all.avg_messages_per_conversation).toBe(7 / 3);
    expect(all.total_conversations).toBe(4);
    expect(all.conversations_by_status).toEqual({ archived: 1, active: 2, deleted: 1 });
    const nobody = await reports.conversationStats({ userId: 'nobody' }, window);
    expect([nobody.total_messages, nobody.avg_messages_per_conversation, nobody.total_conversations]).toEqual([0, 0, 0]);
  });
});
