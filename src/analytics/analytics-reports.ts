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
import { spanCondition, spanRanges } from './analytics-spans.js';
import type { AnalyticsWindow } from './analytics-window.js';

/** Whose figures a report holds: one user's, or every user's (admins; the caller authorises). */
export type AnalyticsScope = FeedFilter;

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const count = z.number().int().nonnegative();
const ActivityRow = z.object({
  day: z.string(),
  user_messages: count,
  assistant_messages: count,
  system_messages: count,
  tool_messages: count,
  active: count,
  archived: count,
  deleted: count,
});
const ConversationsWithMessagesRow = z.object({ count });
const SystemCountRow = z.object({ total_users: count, today: count, week: count, month: count });

const rangeOf = (scope: AnalyticsScope, window: AnalyticsWindow): AnalyticsRange => ({
  from: window.from,
  to: window.to,
  userId: 'userId' in scope ? scope.userId : null,
});

const ROLES = [
  ['user', 'user_messages'],
  ['assistant', 'assistant_messages'],
  ['system', 'system_messages'],
  ['tool', 'tool_messages'],
] as const;
const STATUSES = ['active', 'archived', 'deleted'] as const;

/**
 * Conversation and message counts for the conversation statistics, from the activity
 * rollups that the messages' and conversations' own writes keep (migration 0014): day
 * rows for the window's whole days, hour rows for the rest, a few thousand rows at most.
 */
const createActivityQueries = (db: CommonQueryMethods) => {
  // A report's conversation and message counts read the same rows: once per range.
  const read = new Map<string, Promise<readonly z.infer<typeof ActivityRow>[]>>();
  const activity = async (range: AnalyticsRange) => {
    const key = JSON.stringify([range.userId, range.from, range.to]);
    let rows = read.get(key);
    if (rows === undefined) {
      rows = readActivity(range);
      read.set(key, rows);
    }
    return rows;
  };
  const readActivity = async (range: AnalyticsRange) =>
    db.any(sql.type(ActivityRow)`
      SELECT to_char(bucket_start AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day,
        sum(user_messages)::int8 AS user_messages, sum(assistant_messages)::int8 AS assistant_messages,
        sum(system_messages)::int8 AS system_messages, sum(tool_messages)::int8 AS tool_messages,
        sum(conversations_active)::int8 AS active, sum(conversations_archived)::int8 AS archived,
        sum(conversations_deleted)::int8 AS deleted
      FROM activity_rollups
      WHERE user_id = ${range.userId ?? ''} AND ${spanCondition(spanRanges(range))}
      GROUP BY 1
      ORDER BY 1
    `);
  return {
    /** Conversations created in the range: in total, per status and per UTC day. */
    conversations: async (range: AnalyticsRange): Promise<ConversationCounts> => {
      const byStatus: Record<string, number> = {};
      const byDate: Record<string, number> = {};
      let total = 0;
      for (const row of await activity(range)) {
        const created = row.active + row.archived + row.deleted;
        if (created === 0) continue;
        for (const status of STATUSES) if (row[status] !== 0) byStatus[status] = (byStatus[status] ?? 0) + row[status];
        byDate[row.day] = created;
        total += created;
      }
      return { total, byStatus, byDate };
    },

    /**
     * Messages written in the range per role, and the conversations they belong to: each
     * conversation counted at its first active bucket of the range, the one whose previous
     * active hour lies before the range (conversation_activity).
     */
    messages: async (range: AnalyticsRange): Promise<MessageCounts> => {
      const byRole: Record<string, number> = {};
      let total = 0;
      for (const row of await activity(range)) {
        for (const [role, column] of ROLES) {
          if (row[column] !== 0) byRole[role] = (byRole[role] ?? 0) + row[column];
          total += row[column];
        }
      }
      const conversations =
        total === 0
          ? 0
          : await db.oneFirst(sql.type(ConversationsWithMessagesRow)`
              SELECT coalesce(sum(conversations), 0)::int8 AS count FROM conversation_activity
              WHERE user_id = ${range.userId ?? ''} AND ${spanCondition(spanRanges(range))}
                AND previous_start < ${range.from.toISOString()}::timestamptz`);
      return { total, conversations, byRole };
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
  };
};

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
