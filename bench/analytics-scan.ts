import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { LATENCY_BOUNDS_MS, percentileFromBuckets } from '../src/analytics/latency-histogram.js';

/**
 * The analytics figures computed the way the replaced system did: aggregates over the
 * messages (tokens, cost), workflow_runs (requests, statuses) and model_calls (latency),
 * no rollups. Costs are summed as numeric and kept as exact 1e-10 USD units (bigint).
 */

export type ScanScope = { readonly userId: string } | { readonly allUsers: true };
export type ScanWindow = { readonly from: Date; readonly to: Date };

const MessageSums = z.object({
  day: z.string(),
  provider: z.string(),
  model: z.string(),
  prompt: z.number(),
  completion: z.number(),
  total: z.number(),
  cost: z.string(),
});
const RunCounts = z.object({ provider: z.string(), model: z.string(), status: z.string(), runs: z.number() });
const CallSums = z.object({
  provider: z.string(),
  model: z.string(),
  calls: z.number(),
  failed: z.number(),
  latency_sum: z.number(),
  buckets: z.array(z.number()),
});
const RoleCounts = z.object({ role: z.string().nullable(), messages: z.number(), conversations: z.number() });
const ConversationCounts = z.object({ status: z.string(), n: z.number() });

export type Scan = {
  readonly messages: readonly z.infer<typeof MessageSums>[];
  readonly runs: readonly z.infer<typeof RunCounts>[];
  readonly calls: readonly z.infer<typeof CallSums>[];
  readonly roles: readonly z.infer<typeof RoleCounts>[];
  readonly conversations: readonly z.infer<typeof ConversationCounts>[];
};

export type ScanPart = keyof Scan;

const range = (column: ReturnType<typeof sql.fragment>, window: ScanWindow) =>
  sql.fragment`${column} >= ${window.from.toISOString()}::timestamptz AND ${column} < ${window.to.toISOString()}::timestamptz`;

/** Runs the scans `parts` names for one scope and window. */
export const scanFigures = async (
  db: CommonQueryMethods,
  scope: ScanScope,
  window: ScanWindow,
  parts: readonly ScanPart[],
): Promise<Scan> => {
  const userId = 'userId' in scope ? scope.userId : null;
  const want = new Set(parts);
  const messages = want.has('messages')
    ? await db.any(sql.type(MessageSums)`
        SELECT to_char(m.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, r.provider, r.model,
          sum(m.prompt_tokens)::int8 AS prompt, sum(m.completion_tokens)::int8 AS completion, sum(m.total_tokens)::int8 AS total,
          coalesce(sum(m.cost), 0)::text AS cost
        FROM messages m
        JOIN conversations c ON c.id = m.conversation_id
        JOIN workflow_runs r ON r.id = m.run_id
        WHERE m.role = 'assistant' AND ${range(sql.fragment`m.created_at`, window)}
          ${userId === null ? sql.fragment`` : sql.fragment`AND c.user_id = ${userId}`}
        GROUP BY 1, 2, 3`)
    : [];
  const runs = want.has('runs')
    ? await db.any(sql.type(RunCounts)`
        SELECT provider, model, status, count(*)::int8 AS runs FROM workflow_runs
        WHERE ${range(sql.fragment`finished_at`, window)} ${userId === null ? sql.fragment`` : sql.fragment`AND user_id = ${userId}`}
        GROUP BY 1, 2, 3`)
    : [];
  const bounds = LATENCY_BOUNDS_MS.filter((bound) => bound !== Number.POSITIVE_INFINITY);
  const calls = want.has('calls')
    ? await db.any(sql.type(CallSums)`
        SELECT mc.provider, mc.request_model AS model, count(*)::int8 AS calls, count(mc.error)::int8 AS failed,
          sum(mc.latency_ms)::int8 AS latency_sum,
          ARRAY[${sql.join(
            [
              ...bounds.map(
                (bound, index) =>
                  sql.fragment`count(*) FILTER (WHERE mc.latency_ms <= ${bound}::int ${index === 0 ? sql.fragment`` : sql.fragment`AND mc.latency_ms > ${bounds[index - 1] ?? 0}::int`})`,
              ),
              sql.fragment`count(*) FILTER (WHERE mc.latency_ms > ${bounds.at(-1) ?? 0}::int)`,
            ],
            sql.fragment`, `,
          )}]::int8[] AS buckets
        FROM model_calls mc JOIN workflow_runs r ON r.id = mc.run_id
        WHERE ${range(sql.fragment`(mc.started_at + mc.latency_ms * interval '1 millisecond')`, window)}
          ${userId === null ? sql.fragment`` : sql.fragment`AND r.user_id = ${userId}`}
        GROUP BY 1, 2`)
    : [];
  const roles = want.has('roles')
    ? await db.any(sql.type(RoleCounts)`
        SELECT CASE WHEN grouping(m.role) = 1 THEN NULL ELSE m.role END AS role,
          count(*)::int8 AS messages, count(DISTINCT m.conversation_id)::int8 AS conversations
        FROM messages m JOIN conversations c ON c.id = m.conversation_id
        WHERE ${range(sql.fragment`m.created_at`, window)} ${userId === null ? sql.fragment`` : sql.fragment`AND c.user_id = ${userId}`}
        GROUP BY GROUPING SETS ((m.role), ())`)
    : [];
  const conversations = want.has('conversations')
    ? await db.any(sql.type(ConversationCounts)`
        SELECT status, count(*)::int8 AS n FROM conversations
        WHERE ${range(sql.fragment`created_at`, window)} ${userId === null ? sql.fragment`` : sql.fragment`AND user_id = ${userId}`}
        GROUP BY 1`)
    : [];
  return { messages, runs, calls, roles, conversations };
};

/** numeric text → 1e-10 USD units. */
export const costUnitsOf = (text: string): bigint => {
  const [integer = '0', fraction = ''] = text.split('.');
  const negative = integer.startsWith('-');
  const units = BigInt(integer.replace('-', '')) * 10_000_000_000n + BigInt((fraction + '0000000000').slice(0, 10));
  return negative ? -units : units;
};

/** A route's USD figure (a float from exact units) → 1e-10 USD units. */
export const routeUnitsOf = (usd: number): bigint => BigInt(Math.round(usd * 1e10));

const add = <K>(map: Map<K, bigint>, key: K, value: bigint) => map.set(key, (map.get(key) ?? 0n) + value);
const addN = (map: Map<string, number>, key: string, value: number) => map.set(key, (map.get(key) ?? 0) + value);

const ERROR_STATUSES = ['failed', 'timedOut', 'budgetExceeded', 'interrupted'];

/** The figures a scan gives, in the routes' terms (costs as units). */
export const expectedFigures = (scan: Scan) => {
  const tokensByModel = new Map<string, number>();
  const tokensByProvider = new Map<string, number>();
  const dailyTokens = new Map<string, number>();
  const costByModel = new Map<string, bigint>();
  const costByProvider = new Map<string, bigint>();
  const dailyCost = new Map<string, bigint>();
  let prompt = 0;
  let completion = 0;
  let total = 0;
  let cost = 0n;
  for (const row of scan.messages) {
    prompt += row.prompt;
    completion += row.completion;
    total += row.total;
    const units = costUnitsOf(row.cost);
    cost += units;
    addN(tokensByModel, row.model, row.total);
    addN(tokensByProvider, row.provider, row.total);
    addN(dailyTokens, row.day, row.total);
    add(costByModel, row.model, units);
    add(costByProvider, row.provider, units);
    add(dailyCost, row.day, units);
  }
  const runsByStatus = new Map<string, number>();
  const runsByModel = new Map<string, number>();
  let runs = 0;
  for (const row of scan.runs) {
    runs += row.runs;
    addN(runsByStatus, row.status, row.runs);
    addN(runsByModel, row.model, row.runs);
  }
  const erroredRuns = ERROR_STATUSES.reduce((sum, status) => sum + (runsByStatus.get(status) ?? 0), 0);
  let calls = 0;
  let latencySum = 0;
  let failedCalls = 0;
  const buckets = LATENCY_BOUNDS_MS.map(() => 0);
  const callsByModel = new Map<string, number>();
  for (const row of scan.calls) {
    calls += row.calls;
    latencySum += row.latency_sum;
    failedCalls += row.failed;
    addN(callsByModel, row.model, row.calls);
    row.buckets.forEach((count, index) => {
      buckets[index] = (buckets[index] ?? 0) + count;
    });
  }
  const totalRow = scan.roles.find((row) => row.role === null);
  return {
    prompt,
    completion,
    total,
    cost,
    tokensByModel,
    tokensByProvider,
    dailyTokens,
    costByModel,
    costByProvider,
    dailyCost,
    runs,
    runsByStatus,
    runsByModel,
    erroredRuns,
    errorsByType: new Map(ERROR_STATUSES.map((status) => [status, runsByStatus.get(status) ?? 0] as const).filter(([, n]) => n > 0)),
    calls,
    failedCalls,
    callsByModel,
    meanLatency: calls === 0 ? 0 : latencySum / calls,
    p50: percentileFromBuckets(buckets, 0.5) ?? 0,
    p95: percentileFromBuckets(buckets, 0.95) ?? 0,
    p99: percentileFromBuckets(buckets, 0.99) ?? 0,
    messages: totalRow?.messages ?? 0,
    messagesByRole: new Map(scan.roles.flatMap((row) => (row.role === null ? [] : [[row.role, row.messages] as const]))),
    messageConversations: totalRow?.conversations ?? 0,
    conversations: scan.conversations.reduce((sum, row) => sum + row.n, 0),
    conversationsByStatus: new Map(scan.conversations.map((row) => [row.status, row.n] as const)),
  };
};

export type Expected = ReturnType<typeof expectedFigures>;

type Body = Record<string, unknown>;

/** Collects disagreements between a route body and the scan's figures. */
class Checker {
  readonly problems: string[] = [];
  constructor(private readonly label: string) {}
  eq(name: string, got: unknown, want: unknown): void {
    if (got !== want) this.problems.push(`${this.label} ${name}: route ${String(got)} scan ${String(want)}`);
  }
  cost(name: string, got: unknown, want: bigint): void {
    if (typeof got !== 'number' || routeUnitsOf(got) !== want) {
      this.problems.push(`${this.label} ${name}: route ${String(got)} scan ${Number(want) / 1e10} (units ${want})`);
    }
  }
  near(name: string, got: unknown, want: number): void {
    if (typeof got !== 'number' || Math.abs(got - want) > 1e-9 * Math.max(1, Math.abs(want))) {
      this.problems.push(`${this.label} ${name}: route ${String(got)} scan ${want}`);
    }
  }
  /** Maps compared key by key, a missing key as 0. */
  map(name: string, got: unknown, want: ReadonlyMap<string, number | bigint>, kind: 'count' | 'cost'): void {
    const body = (got ?? {}) as Record<string, number>;
    const keys = new Set([...Object.keys(body), ...want.keys()]);
    for (const key of keys) {
      const value = want.get(key) ?? (kind === 'cost' ? 0n : 0);
      if (kind === 'cost') this.cost(`${name}[${key}]`, body[key] ?? 0, value as bigint);
      else this.eq(`${name}[${key}]`, body[key] ?? 0, value);
    }
  }
}

const usageProblems = (c: Checker, body: Body, e: Expected) => {
  c.eq('total_prompt_tokens', body['total_prompt_tokens'], e.prompt);
  c.eq('total_completion_tokens', body['total_completion_tokens'], e.completion);
  c.eq('total_tokens', body['total_tokens'], e.total);
  c.cost('total_cost', body['total_cost'], e.cost);
  c.map('tokens_by_model', body['tokens_by_model'], e.tokensByModel, 'count');
  c.map('tokens_by_provider', body['tokens_by_provider'], e.tokensByProvider, 'count');
  c.map('cost_by_model', body['cost_by_model'], e.costByModel, 'cost');
  c.map('cost_by_provider', body['cost_by_provider'], e.costByProvider, 'cost');
  c.map('daily_usage', body['daily_usage'], e.dailyTokens, 'count');
  c.map('daily_cost', body['daily_cost'], e.dailyCost, 'cost');
  c.near('avg_response_time', body['avg_response_time'], e.meanLatency);
};

const performanceProblems = (c: Checker, body: Body, e: Expected) => {
  c.eq('total_errors', body['total_errors'], e.erroredRuns);
  c.map('errors_by_type', body['errors_by_type'], e.errorsByType, 'count');
  c.near('avg_response_time_ms', body['avg_response_time_ms'], e.meanLatency);
  c.near('median_response_time_ms', body['median_response_time_ms'], e.p50);
  c.near('p95_response_time_ms', body['p95_response_time_ms'], e.p95);
  c.near('p99_response_time_ms', body['p99_response_time_ms'], e.p99);
  const byModel = (body['performance_by_model'] ?? {}) as Record<string, Record<string, number>>;
  const models = new Set([...Object.keys(byModel), ...e.runsByModel.keys(), ...e.callsByModel.keys()]);
  for (const model of models) {
    c.eq(`performance_by_model[${model}].requests`, byModel[model]?.['requests'] ?? 0, e.runsByModel.get(model) ?? 0);
    c.eq(`performance_by_model[${model}].model_calls`, byModel[model]?.['model_calls'] ?? 0, e.callsByModel.get(model) ?? 0);
    c.eq(`performance_by_model[${model}].total_tokens`, byModel[model]?.['total_tokens'] ?? 0, e.tokensByModel.get(model) ?? 0);
    c.cost(`performance_by_model[${model}].total_cost`, byModel[model]?.['total_cost'] ?? 0, e.costByModel.get(model) ?? 0n);
  }
};

const conversationProblems = (c: Checker, body: Body, e: Expected) => {
  c.eq('total_conversations', body['total_conversations'], e.conversations);
  c.map('conversations_by_status', body['conversations_by_status'], e.conversationsByStatus, 'count');
  c.eq('total_messages', body['total_messages'], e.messages);
  c.map('messages_by_role', body['messages_by_role'], e.messagesByRole, 'count');
  c.near(
    'avg_messages_per_conversation',
    body['avg_messages_per_conversation'],
    e.messageConversations === 0 ? 0 : e.messages / e.messageConversations,
  );
  c.eq('total_tokens_used', body['total_tokens_used'], e.total);
  c.cost('total_cost', body['total_cost'], e.cost);
  c.map('popular_models', body['popular_models'], e.runsByModel, 'count');
};

export type ReportRoute = 'usage' | 'performance' | 'conversations' | 'dashboard';

/** What each route's figures need from the scans. */
export const SCAN_PARTS: Record<ReportRoute, readonly ScanPart[]> = {
  usage: ['messages', 'calls'],
  performance: ['messages', 'runs', 'calls'],
  conversations: ['messages', 'runs', 'calls', 'roles', 'conversations'],
  dashboard: ['messages', 'runs', 'calls', 'roles', 'conversations'],
};

/** Disagreements between a route's body and the scan (empty: they agree). */
export const compareRoute = (route: ReportRoute, label: string, body: Body, e: Expected): string[] => {
  const c = new Checker(label);
  if (route === 'usage') usageProblems(c, body, e);
  if (route === 'performance') performanceProblems(c, body, e);
  if (route === 'conversations') conversationProblems(c, body, e);
  if (route === 'dashboard') {
    usageProblems(c, (body['usage_metrics'] ?? {}) as Body, e);
    performanceProblems(c, (body['performance_metrics'] ?? {}) as Body, e);
    conversationProblems(c, (body['conversation_stats'] ?? {}) as Body, e);
  }
  return c.problems;
};
