import type { HourOfDayTotalsRow } from './analytics-queries.js';
import {
  countErroredRuns,
  type ConversationCounts,
  type SystemCounts,
  type buildConversationStats,
  type buildPerformanceMetrics,
  type buildUsageMetrics,
} from './analytics-report-builders.js';
import type { AnalyticsWindow } from './analytics-window.js';

/**
 * The dashboard's own parts (charts, system health, documents) and the dashboard body,
 * from the same rows as the other reports. Pure, like analytics-report-builders.ts.
 */

const DAY_MS = 86_400_000;

/** This service stores no documents: every document figure is zero. */
export const EMPTY_DOCUMENT_ANALYTICS = Object.freeze({
  total_documents: 0,
  documents_by_status: {},
  documents_by_type: {},
  avg_processing_time_seconds: 0,
  processing_success_rate: 0,
  total_chunks: 0,
  avg_chunks_per_document: 0,
  total_storage_bytes: 0,
  avg_document_size_bytes: 0,
  storage_by_type: {},
  total_searches: 0,
  avg_search_results: 0,
  popular_search_terms: {},
  total_views: 0,
  most_viewed_documents: [],
  documents_by_access_level: {},
});

/**
 * System health: user counts, uptime and this instance's database connections for an
 * all-users scope; zeros for one user's (system figures are not a user's data). CPU,
 * memory, API request, storage and cache figures are not measured here: zero.
 */
export const buildSystemHealth = (system: SystemCounts) => ({
  total_users: system?.totalUsers ?? 0,
  active_users_today: system?.activeUsersToday ?? 0,
  active_users_week: system?.activeUsersWeek ?? 0,
  active_users_month: system?.activeUsersMonth ?? 0,
  system_uptime_seconds: system?.uptimeSeconds ?? 0,
  avg_cpu_usage: 0,
  avg_memory_usage: 0,
  database_connections: system?.databaseConnections ?? 0,
  total_api_requests: 0,
  requests_per_endpoint: {},
  avg_api_response_time: 0,
  api_error_rate: 0,
  storage_usage_bytes: 0,
  vector_database_size_bytes: 0,
  cache_hit_rate: 0,
});

/** Every UTC day (YYYY-MM-DD) the window touches, oldest first. */
const daysOf = (window: AnalyticsWindow): string[] => {
  const days: string[] = [];
  for (let day = Math.floor(window.from.getTime() / DAY_MS) * DAY_MS; day < window.to.getTime(); day += DAY_MS) {
    days.push(new Date(day).toISOString().slice(0, 10));
  }
  return days;
};

export const buildChartData = (input: {
  readonly hours: readonly HourOfDayTotalsRow[];
  readonly conversations: ConversationCounts;
  readonly usage: ReturnType<typeof buildUsageMetrics>;
  readonly performance: ReturnType<typeof buildPerformanceMetrics>;
  readonly window: AnalyticsWindow;
}) => {
  const { hours, conversations, usage, performance, window } = input;
  const days = daysOf(window);
  const byHour = new Map(hours.map((row) => [row.hour, row]));
  return {
    // Every day of the window, days without activity as zeros, so charts have no gaps.
    conversation_chart_data: days.map((date) => ({ date, conversations: conversations.byDate[date] ?? 0 })),
    token_usage_data: days.map((date) => ({ date, tokens: usage.daily_usage[date] ?? 0, cost: usage.daily_cost[date] ?? 0 })),
    performance_chart_data: [
      { name: 'Average response time (ms)', value: performance.avg_response_time_ms },
      { name: 'Median response time (ms)', value: performance.median_response_time_ms },
      { name: 'P95 response time (ms)', value: performance.p95_response_time_ms },
      { name: 'P99 response time (ms)', value: performance.p99_response_time_ms },
    ],
    system_health_data: [],
    // The model providers are this service's integrations: requests per provider.
    integration_data: Object.entries(performance.performance_by_provider).map(([name, figures]) => ({ name, value: figures.requests })),
    hourly_performance_data: Array.from({ length: 24 }, (_, hour) => {
      const row = byHour.get(hour);
      return {
        hour,
        requests: row?.runs_total ?? 0,
        model_calls: row?.model_calls ?? 0,
        total_tokens: row?.total_tokens ?? 0,
        avg_response_time_ms: row === undefined || row.latency_count === 0 ? 0 : row.latency_sum_ms / row.latency_count,
        errors: row === undefined ? 0 : countErroredRuns(row.runs_by_status),
      };
    }),
  };
};

export const buildDashboard = (input: {
  readonly conversationStats: ReturnType<typeof buildConversationStats>;
  readonly usage: ReturnType<typeof buildUsageMetrics>;
  readonly performance: ReturnType<typeof buildPerformanceMetrics>;
  readonly chartData: ReturnType<typeof buildChartData>;
  readonly system: SystemCounts;
  readonly generatedAt: Date;
}) => ({
  conversation_stats: input.conversationStats,
  usage_metrics: input.usage,
  performance_metrics: input.performance,
  document_analytics: EMPTY_DOCUMENT_ANALYTICS,
  system_health: buildSystemHealth(input.system),
  custom_metrics: [],
  chart_data: input.chartData,
  generated_at: input.generatedAt.toISOString(),
});
