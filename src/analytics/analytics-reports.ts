import { sql, type CommonQueryMethods, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { buildChartData, buildDashboard } from './analytics-dashboard-builders.js';
import type { FeedFilter } from './analytics-feed.js';
import type { AnalyticsRange } from './analytics-queries.js';
import {
  buildConversationStats,
  buildPerformanceMetrics,
  buildUsageMetrics,
  type ConversationCounts,
  type MessageCounts,
  type SystemCounts,
} from './analytics-report-builders.js';
import { readRollupSummary, type RollupSummary } from './analytics-rollup-summary.js';
import type { AnalyticsWindow } from './analytics-window.js';

/** Whose figures a report holds: one user's, or every user's (admins; the caller authorises). */
export type AnalyticsScope = FeedFilter;

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const count = z.number().int().nonnegative();
const ConversationCountRow = z.object({ status: z.string(), day: z.string(), count });
const MessageCountRow = z.object({ role: z.string().nullable(), messages: count, conversations: count });
const ConversationsWithMessagesRow = z.object({ count });
const SystemCountRow = z.object({ total_users: count, today: count, week: count, month: count });

const rangeOf = (scope: AnalyticsScope, window: AnalyticsWindow): AnalyticsRange => ({
  from: window.from,
  to: window.to,
  userId: 'userId' in scope ? scope.userId : null,
});

/**
 * Conversation and message counts for the conversation statistics (the rollups have no
 * conversations): conversations created in the range, messages written in it. Per user
 * they go through the conversations' (user_id, …) index; messages are reached through
 * their conversations, never by scanning the table for one user.
 */
const createActivityQueries = (db: CommonQueryMethods) => ({
  conversations: async (range: AnalyticsRange): Promise<ConversationCounts> => {
    // Grouped by date first: to_char on every row costs more than the count.
    const rows = await db.any(sql.type(ConversationCountRow)`
      SELECT status, to_char(day, 'YYYY-MM-DD') AS day, count
      FROM (
        SELECT status, (created_at AT TIME ZONE 'UTC')::date AS day, count(*)::int8 AS count
        FROM conversations
        WHERE created_at >= ${range.from.toISOString()}::timestamptz AND created_at < ${range.to.toISOString()}::timestamptz
          ${range.userId === null ? sql.fragment`` : sql.fragment`AND user_id = ${range.userId}`}
        GROUP BY status, day
      ) AS per_day
      ORDER BY day, status
    `);
    const byStatus: Record<string, number> = {};
    const byDate: Record<string, number> = {};
    let total = 0;
    for (const row of rows) {
      byStatus[row.status] = (byStatus[row.status] ?? 0) + row.count;
      byDate[row.day] = (byDate[row.day] ?? 0) + row.count;
      total += row.count;
    }
    return { total, byStatus, byDate };
  },

  /**
   * Messages per role, and the conversations they belong to, from the messages indexes
   * of migration 0005 alone. Counted apart: a DISTINCT inside grouping sets sorts every
   * message, a plain count per role and a hashed DISTINCT (or one probe per conversation
   * of the user) do not.
   */
  messages: async (range: AnalyticsRange): Promise<MessageCounts> => {
    const inRange = sql.fragment`m.created_at >= ${range.from.toISOString()}::timestamptz AND m.created_at < ${range.to.toISOString()}::timestamptz`;
    const rows = await db.any(sql.type(MessageCountRow)`
      SELECT m.role, count(*)::int8 AS messages, 0::int8 AS conversations
      FROM messages AS m
      ${range.userId === null ? sql.fragment`` : sql.fragment`JOIN conversations AS c ON c.id = m.conversation_id AND c.user_id = ${range.userId}`}
      WHERE ${inRange}
      GROUP BY m.role
    `);
    const conversations =
      rows.length === 0
        ? 0
        : await db.oneFirst(sql.type(ConversationsWithMessagesRow)`
            SELECT count(*)::int8 AS count FROM ${
              range.userId === null
                ? sql.fragment`(SELECT DISTINCT m.conversation_id FROM messages AS m WHERE ${inRange}) AS active`
                : sql.fragment`conversations AS c
                    WHERE c.user_id = ${range.userId}
                      AND EXISTS (SELECT 1 FROM messages AS m WHERE m.conversation_id = c.id AND ${inRange})`
            }`);
    return {
      total: rows.reduce((sum, row) => sum + row.messages, 0),
      conversations,
      byRole: Object.fromEntries(rows.flatMap((row) => (row.role === null ? [] : [[row.role, row.messages] as const]))),
    };
  },

  /** Users, and users with any rollup row since the start of today (UTC) / in the last 7 and 30 days. */
  system: async (now: number): Promise<Omit<NonNullable<SystemCounts>, 'uptimeSeconds' | 'databaseConnections'>> => {
    const since = (epochMs: number) => new Date(epochMs).toISOString();
    const hour = Math.floor(now / HOUR_MS) * HOUR_MS;
    // One probe of analytics_hourly's (user_id, bucket_start) index per user and period,
    // instead of reading a month of every user's rows (a row's user_id is always a user).
    const activeSince = (epochMs: number) => sql.fragment`(
      SELECT count(*) FROM users AS u
      WHERE EXISTS (SELECT 1 FROM analytics_hourly AS h WHERE h.user_id = u.id AND h.bucket_start >= ${since(epochMs)}::timestamptz)
    )::int8`;
    const row = await db.one(sql.type(SystemCountRow)`
      SELECT
        (SELECT count(*) FROM users)::int8 AS total_users,
        ${activeSince(Math.floor(now / DAY_MS) * DAY_MS)} AS today,
        ${activeSince(hour - 7 * DAY_MS)} AS week,
        ${activeSince(hour - 30 * DAY_MS)} AS month
    `);
    return { totalUsers: row.total_users, activeUsersToday: row.today, activeUsersWeek: row.week, activeUsersMonth: row.month };
  },
});

type Readers = {
  /** The range's rollups by day × provider × model, by hour of day and by provider × model, in one read. */
  readonly rollups: (range: AnalyticsRange) => Promise<RollupSummary>;
  readonly activity: ReturnType<typeof createActivityQueries>;
};

/**
 * The analytics bodies of the API, read from the hourly rollups (tokens, cost, latency,
 * runs, errors) plus conversation and message counts. Each report runs only the queries
 * its body needs, one after the other in one read-only REPEATABLE READ transaction: one
 * connection per request, and every figure of a body (the dashboard's four reports
 * included) from the same snapshot, even while rollups are being written.
 */
export const createAnalyticsReports = (pool: DatabasePool) => {
  const snapshot = async <T>(read: (readers: Readers) => Promise<T>): Promise<T> =>
    pool.transaction(async (tx) => {
      await tx.query(sql.unsafe`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY`);
      return read({
        rollups: (range) => readRollupSummary(tx, range),
        activity: createActivityQueries(tx),
      });
    });

  const usage = async (scope: AnalyticsScope, window: AnalyticsWindow) =>
    snapshot(async ({ rollups, activity }) => {
      const range = rangeOf(scope, window);
      const { daily, hours } = await rollups(range);
      const conversations = await activity.conversations(range);
      return buildUsageMetrics({ daily, hours, conversationsCreated: conversations.total, window });
    });

  const performance = async (scope: AnalyticsScope, window: AnalyticsWindow) =>
    snapshot(async ({ rollups }) => {
      const range = rangeOf(scope, window);
      const { daily, histograms } = await rollups(range);
      return buildPerformanceMetrics({ daily, histograms, window });
    });

  const conversationStats = async (scope: AnalyticsScope, window: AnalyticsWindow) =>
    snapshot(async ({ rollups, activity }) => {
      const range = rangeOf(scope, window);
      const { daily, hours } = await rollups(range);
      const conversations = await activity.conversations(range);
      const messages = await activity.messages(range);
      return buildConversationStats({ daily, hours, conversations, messages });
    });

  /** Every report of the scope and window, chart data, and system figures for an all-users scope. */
  const dashboard = async (scope: AnalyticsScope, window: AnalyticsWindow, now: number) =>
    snapshot(async ({ rollups, activity }) => {
      const range = rangeOf(scope, window);
      const { daily, hours, histograms } = await rollups(range);
      const conversations = await activity.conversations(range);
      const messages = await activity.messages(range);
      const system = 'allUsers' in scope ? await activity.system(now) : null;
      const usageMetrics = buildUsageMetrics({ daily, hours, conversationsCreated: conversations.total, window });
      const performanceMetrics = buildPerformanceMetrics({ daily, histograms, window });
      const poolState = pool.state();
      return buildDashboard({
        conversationStats: buildConversationStats({ daily, hours, conversations, messages }),
        usage: usageMetrics,
        performance: performanceMetrics,
        chartData: buildChartData({ hours, conversations, usage: usageMetrics, performance: performanceMetrics, window }),
        system:
          system === null
            ? null
            : {
                ...system,
                uptimeSeconds: process.uptime(),
                databaseConnections: poolState.acquiredConnections + poolState.idleConnections,
              },
        generatedAt: new Date(now),
      });
    });

  /** The dashboard's chart data alone (the same builders and rows as the dashboard's). */
  const chartData = async (scope: AnalyticsScope, window: AnalyticsWindow) =>
    snapshot(async ({ rollups, activity }) => {
      const range = rangeOf(scope, window);
      const { daily, hours, histograms } = await rollups(range);
      const conversations = await activity.conversations(range);
      const usageMetrics = buildUsageMetrics({ daily, hours, conversationsCreated: conversations.total, window });
      const performanceMetrics = buildPerformanceMetrics({ daily, histograms, window });
      return buildChartData({ hours, conversations, usage: usageMetrics, performance: performanceMetrics, window });
    });

  /**
   * Runs of the window by status, with the usage report's tokens and cost: the
   * integrated dashboard's workflow figures, from the same rollup rows as `/usage`.
   */
  const workflowTotals = async (scope: AnalyticsScope, window: AnalyticsWindow) =>
    snapshot(async ({ rollups, activity }) => {
      const range = rangeOf(scope, window);
      const { daily, hours } = await rollups(range);
      const conversations = await activity.conversations(range);
      const usageMetrics = buildUsageMetrics({ daily, hours, conversationsCreated: conversations.total, window });
      const runsByStatus: Record<string, number> = {};
      let runs = 0;
      let modelCalls = 0;
      for (const row of daily) {
        runs += row.runs_total;
        modelCalls += row.model_calls;
        for (const [status, n] of Object.entries(row.runs_by_status)) runsByStatus[status] = (runsByStatus[status] ?? 0) + n;
      }
      return { runs, runsByStatus, modelCalls, usage: usageMetrics };
    });

  /** User counts for the system report (superusers only: the caller authorises). */
  const systemCounts = async (now: number) => snapshot(async ({ activity }) => activity.system(now));

  return { usage, performance, conversationStats, dashboard, chartData, workflowTotals, systemCounts };
};

export type AnalyticsReports = ReturnType<typeof createAnalyticsReports>;
