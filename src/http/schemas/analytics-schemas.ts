/**
 * Analytics schemas of the Chatter API contract (openapi-core.json: UsageMetricsResponse,
 * PerformanceMetricsResponse, ConversationStatsResponse, DashboardResponse and the
 * schemas they reference), plus the query string the analytics routes share.
 */

const integer = (title: string, description: string) => ({ type: 'integer', title, description }) as const;
const number = (title: string, description: string) => ({ type: 'number', title, description }) as const;
const integerMap = (title: string, description: string) =>
  ({ type: 'object', additionalProperties: { type: 'integer' }, title, description }) as const;
const numberMap = (title: string, description: string) =>
  ({ type: 'object', additionalProperties: { type: 'number' }, title, description }) as const;
const objectList = (title: string, description: string) =>
  ({ type: 'array', items: { type: 'object', additionalProperties: true }, title, description }) as const;
const nullable = (type: 'integer' | 'number' | 'string', title: string, description: string) =>
  ({ anyOf: [{ type }, { type: 'null' }], title, description }) as const;

export const UsageMetricsResponseSchema = {
  $id: 'UsageMetricsResponse',
  type: 'object',
  title: 'UsageMetricsResponse',
  description: 'Schema for usage metrics response.',
  required: [
    'total_prompt_tokens',
    'total_completion_tokens',
    'total_tokens',
    'tokens_by_model',
    'tokens_by_provider',
    'total_cost',
    'cost_by_model',
    'cost_by_provider',
    'daily_usage',
    'daily_cost',
    'avg_response_time',
    'response_times_by_model',
    'active_days',
    'peak_usage_hour',
    'conversations_per_day',
  ],
  properties: {
    total_prompt_tokens: integer('Total Prompt Tokens', 'Total prompt tokens'),
    total_completion_tokens: integer('Total Completion Tokens', 'Total completion tokens'),
    total_tokens: integer('Total Tokens', 'Total tokens used'),
    tokens_by_model: integerMap('Tokens By Model', 'Token usage by model'),
    tokens_by_provider: integerMap('Tokens By Provider', 'Token usage by provider'),
    total_cost: number('Total Cost', 'Total cost'),
    cost_by_model: numberMap('Cost By Model', 'Cost by model'),
    cost_by_provider: numberMap('Cost By Provider', 'Cost by provider'),
    daily_usage: integerMap('Daily Usage', 'Daily token usage'),
    daily_cost: numberMap('Daily Cost', 'Daily cost'),
    avg_response_time: number('Avg Response Time', 'Average response time'),
    response_times_by_model: numberMap('Response Times By Model', 'Response times by model'),
    active_days: integer('Active Days', 'Number of active days'),
    peak_usage_hour: integer('Peak Usage Hour', 'Peak usage hour'),
    conversations_per_day: number('Conversations Per Day', 'Average conversations per day'),
  },
} as const;

export const PerformanceMetricsResponseSchema = {
  $id: 'PerformanceMetricsResponse',
  type: 'object',
  title: 'PerformanceMetricsResponse',
  description: 'Schema for performance metrics response.',
  required: [
    'avg_response_time_ms',
    'median_response_time_ms',
    'p95_response_time_ms',
    'p99_response_time_ms',
    'requests_per_minute',
    'tokens_per_minute',
    'total_errors',
    'error_rate',
    'errors_by_type',
    'performance_by_model',
    'performance_by_provider',
    'database_response_time_ms',
    'vector_search_time_ms',
    'embedding_generation_time_ms',
  ],
  properties: {
    avg_response_time_ms: number('Avg Response Time Ms', 'Average response time'),
    median_response_time_ms: number('Median Response Time Ms', 'Median response time'),
    p95_response_time_ms: number('P95 Response Time Ms', '95th percentile response time'),
    p99_response_time_ms: number('P99 Response Time Ms', '99th percentile response time'),
    requests_per_minute: number('Requests Per Minute', 'Average requests per minute'),
    tokens_per_minute: number('Tokens Per Minute', 'Average tokens per minute'),
    total_errors: integer('Total Errors', 'Total number of errors'),
    error_rate: number('Error Rate', 'Error rate percentage'),
    errors_by_type: integerMap('Errors By Type', 'Errors grouped by type'),
    performance_by_model: {
      type: 'object',
      additionalProperties: { type: 'object', additionalProperties: { type: 'number' } },
      title: 'Performance By Model',
      description: 'Performance metrics by model',
    },
    performance_by_provider: {
      type: 'object',
      additionalProperties: { type: 'object', additionalProperties: { type: 'number' } },
      title: 'Performance By Provider',
      description: 'Performance metrics by provider',
    },
    database_response_time_ms: number('Database Response Time Ms', 'Average database response time'),
    vector_search_time_ms: number('Vector Search Time Ms', 'Average vector search time'),
    embedding_generation_time_ms: number('Embedding Generation Time Ms', 'Average embedding generation time'),
  },
} as const;

export const ConversationStatsResponseSchema = {
  $id: 'ConversationStatsResponse',
  type: 'object',
  title: 'ConversationStatsResponse',
  description: 'Schema for conversation statistics response.',
  required: [
    'total_conversations',
    'conversations_by_status',
    'total_messages',
    'messages_by_role',
    'avg_messages_per_conversation',
    'total_tokens_used',
    'total_cost',
    'avg_response_time_ms',
    'conversations_by_date',
    'most_active_hours',
    'popular_models',
    'popular_providers',
  ],
  properties: {
    total_conversations: integer('Total Conversations', 'Total number of conversations'),
    conversations_by_status: integerMap('Conversations By Status', 'Conversations grouped by status'),
    total_messages: integer('Total Messages', 'Total number of messages'),
    messages_by_role: integerMap('Messages By Role', 'Messages grouped by role'),
    avg_messages_per_conversation: number('Avg Messages Per Conversation', 'Average messages per conversation'),
    total_tokens_used: integer('Total Tokens Used', 'Total tokens used'),
    total_cost: number('Total Cost', 'Total cost incurred'),
    avg_response_time_ms: number('Avg Response Time Ms', 'Average response time in milliseconds'),
    conversations_by_date: integerMap('Conversations By Date', 'Conversations by date'),
    most_active_hours: integerMap('Most Active Hours', 'Most active hours'),
    popular_models: integerMap('Popular Models', 'Popular LLM models'),
    popular_providers: integerMap('Popular Providers', 'Popular LLM providers'),
    total_ratings: { ...integer('Total Ratings', 'Total number of message ratings'), default: 0 },
    avg_message_rating: { ...number('Avg Message Rating', 'Average message rating'), default: 0 },
    messages_with_ratings: { ...integer('Messages With Ratings', 'Number of messages with ratings'), default: 0 },
    rating_distribution: integerMap('Rating Distribution', 'Distribution of ratings (1-5 stars)'),
  },
} as const;

export const DocumentAnalyticsResponseSchema = {
  $id: 'DocumentAnalyticsResponse',
  type: 'object',
  title: 'DocumentAnalyticsResponse',
  description: 'Schema for document analytics response.',
  required: [
    'total_documents',
    'documents_by_status',
    'documents_by_type',
    'avg_processing_time_seconds',
    'processing_success_rate',
    'total_chunks',
    'avg_chunks_per_document',
    'total_storage_bytes',
    'avg_document_size_bytes',
    'storage_by_type',
    'total_searches',
    'avg_search_results',
    'popular_search_terms',
    'total_views',
    'most_viewed_documents',
    'documents_by_access_level',
  ],
  properties: {
    total_documents: integer('Total Documents', 'Total number of documents'),
    documents_by_status: integerMap('Documents By Status', 'Documents by processing status'),
    documents_by_type: integerMap('Documents By Type', 'Documents by file type'),
    avg_processing_time_seconds: number('Avg Processing Time Seconds', 'Average processing time'),
    processing_success_rate: number('Processing Success Rate', 'Processing success rate'),
    total_chunks: integer('Total Chunks', 'Total number of chunks'),
    avg_chunks_per_document: number('Avg Chunks Per Document', 'Average chunks per document'),
    total_storage_bytes: integer('Total Storage Bytes', 'Total storage used'),
    avg_document_size_bytes: number('Avg Document Size Bytes', 'Average document size'),
    storage_by_type: integerMap('Storage By Type', 'Storage usage by document type'),
    total_searches: integer('Total Searches', 'Total number of searches'),
    avg_search_results: number('Avg Search Results', 'Average search results returned'),
    popular_search_terms: integerMap('Popular Search Terms', 'Popular search terms'),
    total_views: integer('Total Views', 'Total document views'),
    most_viewed_documents: objectList('Most Viewed Documents', 'Most viewed documents'),
    documents_by_access_level: integerMap('Documents By Access Level', 'Documents by access level'),
  },
} as const;

export const SystemAnalyticsResponseSchema = {
  $id: 'SystemAnalyticsResponse',
  type: 'object',
  title: 'SystemAnalyticsResponse',
  description: 'Schema for system analytics response.',
  required: [
    'total_users',
    'active_users_today',
    'active_users_week',
    'active_users_month',
    'system_uptime_seconds',
    'avg_cpu_usage',
    'avg_memory_usage',
    'database_connections',
    'total_api_requests',
    'requests_per_endpoint',
    'avg_api_response_time',
    'api_error_rate',
    'storage_usage_bytes',
    'vector_database_size_bytes',
    'cache_hit_rate',
  ],
  properties: {
    total_users: integer('Total Users', 'Total number of users'),
    active_users_today: integer('Active Users Today', 'Active users today'),
    active_users_week: integer('Active Users Week', 'Active users this week'),
    active_users_month: integer('Active Users Month', 'Active users this month'),
    system_uptime_seconds: number('System Uptime Seconds', 'System uptime in seconds'),
    avg_cpu_usage: number('Avg Cpu Usage', 'Average CPU usage percentage'),
    avg_memory_usage: number('Avg Memory Usage', 'Average memory usage percentage'),
    database_connections: integer('Database Connections', 'Current database connections'),
    total_api_requests: integer('Total Api Requests', 'Total API requests'),
    requests_per_endpoint: integerMap('Requests Per Endpoint', 'Requests by endpoint'),
    avg_api_response_time: number('Avg Api Response Time', 'Average API response time'),
    api_error_rate: number('Api Error Rate', 'API error rate'),
    storage_usage_bytes: integer('Storage Usage Bytes', 'Total storage usage'),
    vector_database_size_bytes: integer('Vector Database Size Bytes', 'Vector database size'),
    cache_hit_rate: number('Cache Hit Rate', 'Cache hit rate'),
  },
} as const;

export const ChartDataPointSchema = {
  $id: 'ChartDataPoint',
  type: 'object',
  title: 'ChartDataPoint',
  description: 'Schema for a single chart data point.',
  required: ['name', 'value'],
  properties: {
    name: { type: 'string', title: 'Name', description: 'Data point label' },
    value: number('Value', 'Data point value'),
    color: nullable('string', 'Color', 'Optional color for the data point'),
  },
} as const;

export const TimeSeriesDataPointSchema = {
  $id: 'TimeSeriesDataPoint',
  type: 'object',
  title: 'TimeSeriesDataPoint',
  description: 'Schema for time series chart data point.',
  required: ['date'],
  properties: {
    date: { type: 'string', title: 'Date', description: "Date label (e.g., 'Mon', 'Jan 01')" },
    conversations: nullable('integer', 'Conversations', 'Number of conversations'),
    tokens: nullable('integer', 'Tokens', 'Token usage'),
    cost: nullable('number', 'Cost', 'Cost'),
    workflows: nullable('integer', 'Workflows', 'Number of workflows'),
    agents: nullable('integer', 'Agents', 'Number of agents'),
    abTests: nullable('integer', 'Abtests', 'Number of A/B tests'),
  },
} as const;

export const ChartReadyAnalyticsSchema = {
  $id: 'ChartReadyAnalytics',
  type: 'object',
  title: 'ChartReadyAnalytics',
  description: 'Schema for chart-ready analytics data.',
  required: [
    'conversation_chart_data',
    'token_usage_data',
    'performance_chart_data',
    'system_health_data',
    'integration_data',
    'hourly_performance_data',
  ],
  properties: {
    conversation_chart_data: {
      type: 'array',
      items: { $ref: 'TimeSeriesDataPoint#' },
      title: 'Conversation Chart Data',
      description: 'Daily conversation data for charts',
    },
    token_usage_data: {
      type: 'array',
      items: { $ref: 'TimeSeriesDataPoint#' },
      title: 'Token Usage Data',
      description: 'Token usage over time for charts',
    },
    performance_chart_data: {
      type: 'array',
      items: { $ref: 'ChartDataPoint#' },
      title: 'Performance Chart Data',
      description: 'Performance metrics for charts',
    },
    system_health_data: {
      type: 'array',
      items: { $ref: 'ChartDataPoint#' },
      title: 'System Health Data',
      description: 'System health data for charts',
    },
    integration_data: {
      type: 'array',
      items: { $ref: 'ChartDataPoint#' },
      title: 'Integration Data',
      description: 'Integration usage data for charts',
    },
    hourly_performance_data: objectList('Hourly Performance Data', '24-hour performance breakdown'),
  },
} as const;

export const DashboardResponseSchema = {
  $id: 'DashboardResponse',
  type: 'object',
  title: 'DashboardResponse',
  description: 'Schema for analytics dashboard response.',
  required: [
    'conversation_stats',
    'usage_metrics',
    'performance_metrics',
    'document_analytics',
    'system_health',
    'custom_metrics',
    'chart_data',
    'generated_at',
  ],
  properties: {
    conversation_stats: { $ref: 'ConversationStatsResponse#', description: 'Conversation statistics' },
    usage_metrics: { $ref: 'UsageMetricsResponse#', description: 'Usage metrics' },
    performance_metrics: { $ref: 'PerformanceMetricsResponse#', description: 'Performance metrics' },
    document_analytics: { $ref: 'DocumentAnalyticsResponse#', description: 'Document analytics' },
    system_health: { $ref: 'SystemAnalyticsResponse#', description: 'System health metrics' },
    custom_metrics: objectList('Custom Metrics', 'Custom metrics'),
    chart_data: { $ref: 'ChartReadyAnalytics#', description: 'Chart-ready data for frontend visualization' },
    generated_at: { type: 'string', format: 'date-time', title: 'Generated At', description: 'Dashboard generation time' },
  },
} as const;

export const ToolServerAnalyticsResponseSchema = {
  $id: 'ToolServerAnalyticsResponse',
  type: 'object',
  title: 'ToolServerAnalyticsResponse',
  description: 'Schema for tool server analytics response.',
  required: [
    'total_requests',
    'successful_requests',
    'failed_requests',
    'average_response_time_ms',
    'tool_usage_stats',
    'server_uptime_stats',
    'error_distribution',
  ],
  properties: {
    total_requests: integer('Total Requests', 'Total requests processed'),
    successful_requests: integer('Successful Requests', 'Successful requests'),
    failed_requests: integer('Failed Requests', 'Failed requests'),
    average_response_time_ms: number('Average Response Time Ms', 'Average response time in milliseconds'),
    tool_usage_stats: integerMap('Tool Usage Stats', 'Tool usage statistics'),
    server_uptime_stats: {
      type: 'object',
      additionalProperties: true,
      title: 'Server Uptime Stats',
      description: 'Server uptime statistics',
    },
    error_distribution: integerMap('Error Distribution', 'Error distribution by type'),
    tools: {
      type: 'array',
      description: 'Per tool: its server, calls, failed calls and average duration',
      items: {
        type: 'object',
        required: ['tool', 'server', 'calls', 'failed', 'avg_duration_ms'],
        properties: {
          tool: { type: 'string' },
          server: { type: 'string' },
          calls: { type: 'integer' },
          failed: { type: 'integer' },
          avg_duration_ms: { type: 'number' },
        },
      },
    },
  },
} as const;

const anyObject = (title: string, description: string) => ({ type: 'object', additionalProperties: true, title, description }) as const;

export const IntegratedDashboardStatsSchema = {
  $id: 'IntegratedDashboardStats',
  type: 'object',
  title: 'IntegratedDashboardStats',
  description: 'Schema for integrated dashboard statistics.',
  required: ['workflows', 'agents', 'ab_testing', 'system'],
  properties: {
    workflows: anyObject('Workflows', 'Workflow statistics'),
    agents: anyObject('Agents', 'Agent statistics'),
    ab_testing: anyObject('Ab Testing', 'A/B testing statistics'),
    system: anyObject('System', 'System statistics'),
    generated_at: { type: 'string', format: 'date-time' },
  },
} as const;

export const AnalyticsExportResponseSchema = {
  $id: 'AnalyticsExportResponse',
  type: 'object',
  title: 'AnalyticsExportResponse',
  description: 'Schema for analytics export response.',
  required: ['export_id', 'status', 'created_at'],
  properties: {
    export_id: { type: 'string', title: 'Export Id', description: 'Export job ID' },
    status: { type: 'string', title: 'Status', description: 'Export status' },
    download_url: nullable('string', 'Download Url', 'Download URL when ready'),
    created_at: { type: 'string', format: 'date-time', title: 'Created At', description: 'Export creation time' },
    expires_at: {
      anyOf: [{ type: 'string', format: 'date-time' }, { type: 'null' }],
      title: 'Expires At',
      description: 'Download expiration time',
    },
    format: { type: 'string', description: 'json (this document) or csv' },
    start_date: { type: 'string', format: 'date-time', description: 'Start of the window (inclusive)' },
    end_date: { type: 'string', format: 'date-time', description: 'End of the window (exclusive)' },
    metrics: { type: 'array', items: { type: 'string' } },
    data: { type: 'object', additionalProperties: true, description: 'The reports, by metric name, as their routes answer them' },
  },
} as const;

export const DashboardControlResponseSchema = {
  $id: 'DashboardControlResponse',
  type: 'object',
  title: 'DashboardControlResponse',
  description: 'Schema for dashboard control responses.',
  required: ['status', 'user_id', 'message'],
  properties: {
    status: { type: 'string', title: 'Status', description: 'Status of the operation' },
    user_id: { type: 'string', title: 'User Id', description: 'User ID' },
    message: { type: 'string', title: 'Message', description: 'Operation message' },
    stream_url: { type: 'string', description: 'The live analytics feed (Server-Sent Events)' },
    event_types: { type: 'array', items: { type: 'string' } },
  },
} as const;

export const ANALYTICS_SCHEMAS = [
  UsageMetricsResponseSchema,
  PerformanceMetricsResponseSchema,
  ConversationStatsResponseSchema,
  DocumentAnalyticsResponseSchema,
  SystemAnalyticsResponseSchema,
  ChartDataPointSchema,
  TimeSeriesDataPointSchema,
  ChartReadyAnalyticsSchema,
  DashboardResponseSchema,
  ToolServerAnalyticsResponseSchema,
  IntegratedDashboardStatsSchema,
  AnalyticsExportResponseSchema,
  DashboardControlResponseSchema,
] as const;

/** The predefined periods of the contract, in hours. */
export const ANALYTICS_PERIOD_HOURS = { '1h': 1, '24h': 24, '7d': 7 * 24, '30d': 30 * 24, '90d': 90 * 24 } as const;
export type AnalyticsPeriod = keyof typeof ANALYTICS_PERIOD_HOURS;

/** Whose figures: the caller's own unless a superuser names another user or everyone. */
const scopeProperties = {
  user_id: {
    type: 'string',
    minLength: 1,
    maxLength: 128,
    description: "Superusers only: this user's figures instead of the caller's",
  },
  all_users: { type: 'boolean', default: false, description: "Superusers only: every user's figures together" },
} as const;

/**
 * The contract's analytics query (`start_date`, `end_date`, `period`) and the scope
 * parameters. Dates are checked in the handler (ISO 8601 date or date-time; without an
 * offset they are UTC), so a bad one gets a 422 naming the field.
 */
export const AnalyticsQuerySchema = {
  type: 'object',
  properties: {
    start_date: { type: 'string', maxLength: 64, description: 'Start date for analytics (ISO 8601; UTC unless an offset is given)' },
    end_date: { type: 'string', maxLength: 64, description: 'End date for analytics (ISO 8601, exclusive; default now)' },
    period: {
      type: 'string',
      enum: Object.keys(ANALYTICS_PERIOD_HOURS),
      default: '7d',
      description:
        'Predefined period (1h, 24h, 7d, 30d, 90d): the hours ending now, or ending at end_date when only end_date is given; ignored with start_date',
    },
    ...scopeProperties,
  },
} as const;

export type AnalyticsQuery = {
  start_date?: string;
  end_date?: string;
  period: AnalyticsPeriod;
  user_id?: string;
  all_users: boolean;
};

export const AnalyticsStreamQuerySchema = { type: 'object', properties: scopeProperties } as const;

/** The export's query: the analytics query, the reports wanted and the format (json or csv). */
export const AnalyticsExportQuerySchema = {
  type: 'object',
  required: ['metrics'],
  properties: {
    ...AnalyticsQuerySchema.properties,
    format: { type: 'string', maxLength: 16, default: 'json', description: 'Export format: json or csv (xlsx is not supported: 422)' },
    metrics: {
      type: 'array',
      minItems: 1,
      maxItems: 10,
      items: { type: 'string', enum: ['usage', 'performance', 'conversations'] },
      description: 'Reports to export: usage, performance, conversations (repeat the parameter for several)',
    },
  },
} as const;

export type AnalyticsExportQuery = AnalyticsQuery & { format: string; metrics: ('usage' | 'performance' | 'conversations')[] };
export type AnalyticsStreamQuery = { user_id?: string; all_users: boolean };
