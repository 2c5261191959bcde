import { costToUnits, unitsToCost } from '../../machines/usage.js';
import type { DailyTotalsRow, HourOfDayTotalsRow, LatencyHistogram } from './analytics-queries.js';
import type { AnalyticsWindow } from './analytics-window.js';
import { LATENCY_BOUNDS_MS, percentileFromBuckets } from './latency-histogram.js';

/**
 * Pure functions from rollup and count rows to the contract's analytics bodies. No I/O:
 * `analytics-reports.ts` runs the queries. Conventions:
 * - "requests" are runs (one chat turn each); "response time" is a model call's latency
 *   (failed attempts included), the only latency the rollups keep;
 * - an errored request is a run that ended failed, timed out, over budget or
 *   interrupted (a cancelled run is the client's choice, not an error);
 * - figures this service does not track are 0, {} or [], never estimates;
 * - days and hours are UTC.
 */

/** Run statuses counted as errors, by their names in `runs_by_status`. */
export const ERROR_RUN_STATUSES: readonly string[] = ['failed', 'timedOut', 'budgetExceeded', 'interrupted'];

/** Runs that ended in an error status. */
export const countErroredRuns = (runsByStatus: Readonly<Record<string, number>>): number =>
  ERROR_RUN_STATUSES.reduce((sum, status) => sum + (runsByStatus[status] ?? 0), 0);

export type ConversationCounts = {
  readonly total: number;
  readonly byStatus: Readonly<Record<string, number>>;
  /** Conversations created per UTC day (YYYY-MM-DD). */
  readonly byDate: Readonly<Record<string, number>>;
};

export type MessageCounts = {
  readonly total: number;
  readonly byRole: Readonly<Record<string, number>>;
  /** Conversations those messages belong to. */
  readonly conversations: number;
};

/** System-wide figures (admins viewing every user), or null for a one-user scope. */
export type SystemCounts = {
  readonly totalUsers: number;
  readonly activeUsersToday: number;
  readonly activeUsersWeek: number;
  readonly activeUsersMonth: number;
  readonly uptimeSeconds: number;
  readonly databaseConnections: number;
} | null;

/** Sums USD amounts stored as numeric(20, 10) exactly, in 1e-10 USD units. */
class CostSum {
  private units = 0n;
  add(usd: number): void {
    this.units += costToUnits(usd);
  }
  get usd(): number {
    return unitsToCost(this.units);
  }
}

/** Everything the bodies report about one group of rollup rows (all, one model, one provider, one day). */
class Totals {
  promptTokens = 0;
  completionTokens = 0;
  totalTokens = 0;
  readonly cost = new CostSum();
  modelCalls = 0;
  runs = 0;
  readonly runsByStatus: Record<string, number> = {};
  /** The rollups' `errors`: failed model calls plus failed runs. */
  errorColumn = 0;
  latencySumMs = 0;
  latencyCount = 0;

  add(row: DailyTotalsRow): void {
    this.promptTokens += row.prompt_tokens;
    this.completionTokens += row.output_tokens;
    this.totalTokens += row.total_tokens;
    this.cost.add(row.cost);
    this.modelCalls += row.model_calls;
    this.runs += row.runs_total;
    addCounts(this.runsByStatus, row.runs_by_status);
    this.errorColumn += row.errors;
    this.latencySumMs += row.latency_sum_ms;
    this.latencyCount += row.latency_count;
  }

  get meanLatencyMs(): number {
    return this.latencyCount === 0 ? 0 : this.latencySumMs / this.latencyCount;
  }

  get erroredRuns(): number {
    return countErroredRuns(this.runsByStatus);
  }

  /** Failed model call attempts: the rollups count each failed run once in `errors` too. */
  get failedModelCalls(): number {
    return Math.max(0, this.errorColumn - (this.runsByStatus['failed'] ?? 0));
  }

  get errorRate(): number {
    return this.runs === 0 ? 0 : (100 * this.erroredRuns) / this.runs;
  }
}

const addCounts = (into: Record<string, number>, from: Readonly<Record<string, number>>): void => {
  for (const [key, value] of Object.entries(from)) into[key] = (into[key] ?? 0) + value;
};

/** Groups rows by a key, keys in sorted order. */
const totalsBy = (rows: readonly DailyTotalsRow[], key: (row: DailyTotalsRow) => string): Map<string, Totals> => {
  const groups = new Map<string, Totals>();
  for (const row of rows) {
    const name = key(row);
    let totals = groups.get(name);
    if (totals === undefined) {
      totals = new Totals();
      groups.set(name, totals);
    }
    totals.add(row);
  }
  return new Map([...groups].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
};

const totalsOf = (rows: readonly DailyTotalsRow[]): Totals => {
  const totals = new Totals();
  for (const row of rows) totals.add(row);
  return totals;
};

const mapValues = <T, R>(groups: Map<string, T>, value: (item: T) => R): Record<string, R> =>
  Object.fromEntries([...groups].map(([key, item]) => [key, value(item)]));

/** Element-wise sum of histograms (exact: counts add). */
const mergeHistograms = (histograms: readonly LatencyHistogram[]): number[] => {
  const counts = LATENCY_BOUNDS_MS.map(() => 0);
  for (const histogram of histograms) {
    histogram.counts.forEach((count, index) => {
      counts[index] = (counts[index] ?? 0) + count;
    });
  }
  return counts;
};

type Percentiles = { readonly p50: number; readonly p95: number; readonly p99: number };
const percentilesOf = (counts: readonly number[]): Percentiles => ({
  p50: percentileFromBuckets(counts, 0.5) ?? 0,
  p95: percentileFromBuckets(counts, 0.95) ?? 0,
  p99: percentileFromBuckets(counts, 0.99) ?? 0,
});

const perMinute = (amount: number, window: AnalyticsWindow): number => (window.elapsedMs <= 0 ? 0 : amount / (window.elapsedMs / 60_000));

/** The hour of the day with the most requests (then the most tokens, then the earliest); 0 without data. */
const peakHour = (hours: readonly HourOfDayTotalsRow[]): number => {
  let best: HourOfDayTotalsRow | undefined;
  for (const row of hours) {
    if (row.runs_total === 0 && row.total_tokens === 0) continue;
    if (
      best === undefined ||
      row.runs_total > best.runs_total ||
      (row.runs_total === best.runs_total && row.total_tokens > best.total_tokens)
    ) {
      best = row;
    }
  }
  return best?.hour ?? 0;
};

export const buildUsageMetrics = (input: {
  readonly daily: readonly DailyTotalsRow[];
  readonly hours: readonly HourOfDayTotalsRow[];
  readonly conversationsCreated: number;
  readonly window: AnalyticsWindow;
}) => {
  const { daily, hours, window } = input;
  const all = totalsOf(daily);
  const byModel = totalsBy(daily, (row) => row.model);
  const byProvider = totalsBy(daily, (row) => row.provider);
  const byDay = totalsBy(daily, (row) => row.day);
  return {
    total_prompt_tokens: all.promptTokens,
    total_completion_tokens: all.completionTokens,
    total_tokens: all.totalTokens,
    tokens_by_model: mapValues(byModel, (totals) => totals.totalTokens),
    tokens_by_provider: mapValues(byProvider, (totals) => totals.totalTokens),
    total_cost: all.cost.usd,
    cost_by_model: mapValues(byModel, (totals) => totals.cost.usd),
    cost_by_provider: mapValues(byProvider, (totals) => totals.cost.usd),
    daily_usage: mapValues(byDay, (totals) => totals.totalTokens),
    daily_cost: mapValues(byDay, (totals) => totals.cost.usd),
    avg_response_time: all.meanLatencyMs,
    response_times_by_model: mapValues(byModel, (totals) => totals.meanLatencyMs),
    active_days: [...byDay.values()].filter((totals) => totals.runs > 0 || totals.modelCalls > 0).length,
    peak_usage_hour: peakHour(hours),
    conversations_per_day: input.conversationsCreated / window.days,
  };
};

const groupPerformance = (totals: Totals, counts: readonly number[]) => {
  const percentiles = percentilesOf(counts);
  return {
    requests: totals.runs,
    model_calls: totals.modelCalls,
    total_tokens: totals.totalTokens,
    total_cost: totals.cost.usd,
    avg_response_time_ms: totals.meanLatencyMs,
    median_response_time_ms: percentiles.p50,
    p95_response_time_ms: percentiles.p95,
    p99_response_time_ms: percentiles.p99,
    errors: totals.erroredRuns,
    error_rate: totals.errorRate,
    failed_model_calls: totals.failedModelCalls,
  };
};

/** Performance figures per model or per provider, keys sorted. */
const performanceBy = (daily: readonly DailyTotalsRow[], histograms: readonly LatencyHistogram[], key: 'model' | 'provider') =>
  Object.fromEntries(
    [...totalsBy(daily, (row) => row[key])].map(([name, totals]) => [
      name,
      groupPerformance(totals, mergeHistograms(histograms.filter((histogram) => histogram[key] === name))),
    ]),
  );

export const buildPerformanceMetrics = (input: {
  readonly daily: readonly DailyTotalsRow[];
  readonly histograms: readonly LatencyHistogram[];
  readonly window: AnalyticsWindow;
}) => {
  const { daily, histograms, window } = input;
  const all = totalsOf(daily);
  const percentiles = percentilesOf(mergeHistograms(histograms));
  return {
    avg_response_time_ms: all.meanLatencyMs,
    median_response_time_ms: percentiles.p50,
    p95_response_time_ms: percentiles.p95,
    p99_response_time_ms: percentiles.p99,
    requests_per_minute: perMinute(all.runs, window),
    tokens_per_minute: perMinute(all.totalTokens, window),
    total_errors: all.erroredRuns,
    error_rate: all.errorRate,
    errors_by_type: Object.fromEntries(
      ERROR_RUN_STATUSES.map((status) => [status, all.runsByStatus[status] ?? 0]).filter(([, count]) => count !== 0),
    ),
    performance_by_model: performanceBy(daily, histograms, 'model'),
    performance_by_provider: performanceBy(daily, histograms, 'provider'),
    // Not measured by this service.
    database_response_time_ms: 0,
    vector_search_time_ms: 0,
    embedding_generation_time_ms: 0,
  };
};

/** Requests per group, the most used first (then by name). */
const runsDescending = (groups: Map<string, Totals>): Record<string, number> =>
  Object.fromEntries(
    [...groups].map(([name, totals]) => [name, totals.runs] as const).sort(([a, x], [b, y]) => y - x || (a < b ? -1 : a > b ? 1 : 0)),
  );

export const buildConversationStats = (input: {
  readonly daily: readonly DailyTotalsRow[];
  readonly hours: readonly HourOfDayTotalsRow[];
  readonly conversations: ConversationCounts;
  readonly messages: MessageCounts;
}) => {
  const { daily, hours, conversations, messages } = input;
  const all = totalsOf(daily);
  return {
    total_conversations: conversations.total,
    conversations_by_status: { ...conversations.byStatus },
    total_messages: messages.total,
    messages_by_role: { ...messages.byRole },
    avg_messages_per_conversation: messages.conversations === 0 ? 0 : messages.total / messages.conversations,
    total_tokens_used: all.totalTokens,
    total_cost: all.cost.usd,
    avg_response_time_ms: all.meanLatencyMs,
    conversations_by_date: { ...conversations.byDate },
    most_active_hours: Object.fromEntries(hours.filter((row) => row.runs_total > 0).map((row) => [String(row.hour), row.runs_total])),
    popular_models: runsDescending(totalsBy(daily, (row) => row.model)),
    popular_providers: runsDescending(totalsBy(daily, (row) => row.provider)),
    // Nothing in this service rates messages yet.
    total_ratings: 0,
    avg_message_rating: 0,
    messages_with_ratings: 0,
    rating_distribution: {},
  };
};
