import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import type { AnalyticsRange } from './analytics-queries.js';

/** The server of the tools built into this service (the tool-call rows name no other yet). */
export const BUILTIN_SERVER = 'builtin';

const count = z.number().int().nonnegative();
const ToolRow = z.object({ tool: z.string(), calls: count, failed: count, duration_sum_ms: count, duration_count: count });
const ErrorRow = z.object({ error: z.string(), calls: count });
export type ToolCallTotals = z.infer<typeof ToolRow>;

/** Distinct error messages reported (the most frequent first). */
const MAX_ERROR_KINDS = 20;

const inRange = (range: AnalyticsRange) => sql.fragment`
  tc.started_at >= ${range.from.toISOString()}::timestamptz AND tc.started_at < ${range.to.toISOString()}::timestamptz
  ${
    range.userId === null
      ? sql.fragment``
      : // A tool call starts after its run: runs that started after the range cannot hold one.
        sql.fragment`AND r.user_id = ${range.userId} AND r.started_at < ${range.to.toISOString()}::timestamptz`
  }`;

/**
 * The tool calls that started in the range (one user's, through their runs, or every
 * user's), from the `tool_calls` rows the run records write: per tool, and the errors
 * by message (first line, 100 characters).
 */
export const readToolCallTotals = async (db: CommonQueryMethods, range: AnalyticsRange) => {
  const tools = await db.any(sql.type(ToolRow)`
    SELECT tc.tool, count(*)::int8 AS calls, count(*) FILTER (WHERE tc.error IS NOT NULL)::int8 AS failed,
           coalesce(sum(tc.duration_ms), 0)::int8 AS duration_sum_ms, count(tc.duration_ms)::int8 AS duration_count
    FROM tool_calls AS tc JOIN workflow_runs AS r ON r.id = tc.run_id
    WHERE ${inRange(range)}
    GROUP BY tc.tool ORDER BY tc.tool`);
  const errors = tools.some((tool) => tool.failed > 0)
    ? await db.any(sql.type(ErrorRow)`
        SELECT left(split_part(tc.error, E'\\n', 1), 100) AS error, count(*)::int8 AS calls
        FROM tool_calls AS tc JOIN workflow_runs AS r ON r.id = tc.run_id
        WHERE ${inRange(range)} AND tc.error IS NOT NULL
        GROUP BY 1 ORDER BY calls DESC, error LIMIT ${MAX_ERROR_KINDS}`)
    : [];
  return { tools, errors };
};

/**
 * The contract's `ToolServerAnalyticsResponse` from those totals. Every tool is the
 * built-in server's; `server_uptime_stats` is per server (the built-in one runs in
 * this process: its uptime is the process's).
 */
export const buildToolServerAnalytics = (input: {
  readonly tools: readonly ToolCallTotals[];
  readonly errors: readonly z.infer<typeof ErrorRow>[];
  readonly uptimeSeconds: number;
}) => {
  const calls = input.tools.reduce((sum, tool) => sum + tool.calls, 0);
  const failed = input.tools.reduce((sum, tool) => sum + tool.failed, 0);
  const durationSum = input.tools.reduce((sum, tool) => sum + tool.duration_sum_ms, 0);
  const durationCount = input.tools.reduce((sum, tool) => sum + tool.duration_count, 0);
  const average = (sum: number, n: number) => (n === 0 ? 0 : sum / n);
  return {
    total_requests: calls,
    successful_requests: calls - failed,
    failed_requests: failed,
    average_response_time_ms: average(durationSum, durationCount),
    tool_usage_stats: Object.fromEntries(input.tools.map((tool) => [tool.tool, tool.calls])),
    server_uptime_stats: {
      [BUILTIN_SERVER]: {
        status: 'enabled',
        uptime_seconds: input.uptimeSeconds,
        total_calls: calls,
        failed_calls: failed,
        success_rate: calls === 0 ? 0 : (100 * (calls - failed)) / calls,
        tools: input.tools.map((tool) => tool.tool),
      },
    },
    error_distribution: Object.fromEntries(input.errors.map((row) => [row.error, row.calls])),
    tools: input.tools.map((tool) => ({
      tool: tool.tool,
      server: BUILTIN_SERVER,
      calls: tool.calls,
      failed: tool.failed,
      avg_duration_ms: average(tool.duration_sum_ms, tool.duration_count),
    })),
  };
};
