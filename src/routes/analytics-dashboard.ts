import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ulid } from '../ids.js';
import {
  buildCsvExport,
  buildJsonExport,
  EXPORT_FORMATS,
  exportFileName,
  type ExportFormat,
  type ExportInput,
} from '../analytics/analytics-export.js';
import { EMPTY_DOCUMENT_ANALYTICS, buildSystemHealth } from '../analytics/analytics-dashboard-builders.js';
import { countErroredRuns } from '../analytics/analytics-report-builders.js';
import type { AnalyticsReports, AnalyticsScope } from '../analytics/analytics-reports.js';
import type { AnalyticsWindow } from '../analytics/analytics-window.js';
import { InstanceHealth } from '../analytics/instance-health.js';
import { buildToolServerAnalytics, readToolCallTotals } from '../analytics/tool-call-analytics.js';
import { RequestValidationError } from '../http/errors.js';
import {
  AnalyticsExportQuerySchema,
  AnalyticsQuerySchema,
  SystemAnalyticsResponseSchema,
  type AnalyticsExportQuery,
  type AnalyticsQuery,
} from '../http/schemas/analytics-schemas.js';
import { bearerSecurity, errorResponses } from '../http/schemas/common-schemas.js';
import { createRunsRepository } from '../repositories/runs-repository.js';
import type { Services } from '../services.js';

export type DashboardRouteDeps = {
  readonly services: Services;
  readonly reports: AnalyticsReports;
  /** Whose figures and which window (403/422 as the report routes answer them), rollups flushed. */
  readonly prepare: (
    request: FastifyRequest<{ Querystring: AnalyticsQuery }>,
  ) => Promise<{ scope: AnalyticsScope; window: AnalyticsWindow }>;
  /** Ends the user's live analytics streams on every instance; resolves once announced. */
  readonly stopStreamsOf: (userId: string) => Promise<void>;
  readonly now: () => number;
};

/** `/system` answers the contract's body plus this instance's and its database's own figures. */
const { $id: _systemId, ...systemBody } = SystemAnalyticsResponseSchema;
const SystemReportSchema = {
  ...systemBody,
  properties: {
    ...systemBody.properties,
    instance: { type: 'object', additionalProperties: true, description: 'This instance: uptime, CPU, memory, event loop, active runs' },
    database: {
      type: 'object',
      additionalProperties: true,
      description: 'The database as this instance reaches it: reachable, latency, pool',
    },
  },
} as const;

const LIVE_FEED = { stream_url: '/api/v1/analytics/stream', event_types: ['run_completed', 'dropped'] } as const;

const rangeOf = (scope: AnalyticsScope, window: AnalyticsWindow) => ({
  from: window.from,
  to: window.to,
  userId: 'userId' in scope ? scope.userId : null,
});

/**
 * The dashboard routes besides the four reports: chart data, the integrated dashboard,
 * system, tool-server and document analytics, the export and the real-time dashboard's
 * start/stop. Figures of a window come from the same rollups and builders as `/usage`.
 */
export const registerDashboardRoutes = (app: FastifyInstance, deps: DashboardRouteDeps): void => {
  const { services, reports, prepare, now } = deps;
  const runs = createRunsRepository(app.db.pool);
  const health = new InstanceHealth({ pool: app.db.pool, activeRuns: () => services.runtime.active().length });
  app.addHook('onClose', async () => health.close());

  const route = (summary: string, operationId: string, schema: string) => ({
    tags: ['Analytics'],
    summary,
    operationId,
    security: bearerSecurity,
    querystring: AnalyticsQuerySchema,
    response: { 200: { $ref: `${schema}#` }, ...errorResponses(401, 403) },
  });

  app.get<{ Querystring: AnalyticsQuery }>(
    '/dashboard/chart-data',
    {
      schema: route(
        'Get Dashboard Chart Data',
        'get_dashboard_chart_data_api_v1_analytics_dashboard_chart_data_get',
        'ChartReadyAnalytics',
      ),
    },
    async (request) => {
      const { scope, window } = await prepare(request);
      return reports.chartData(scope, window);
    },
  );

  app.get<{ Querystring: AnalyticsQuery }>(
    '/dashboard/integrated',
    {
      schema: route(
        'Get Integrated Dashboard Stats',
        'get_integrated_dashboard_stats_api_v1_analytics_dashboard_integrated_get',
        'IntegratedDashboardStats',
      ),
    },
    async (request) => {
      const { scope, window } = await prepare(request);
      const totals = await reports.workflowTotals(scope, window);
      const live = await runs.live('userId' in scope ? scope.userId : null);
      const completed = totals.runsByStatus['completed'] ?? 0;
      return {
        workflows: {
          total_executions: totals.runs,
          executions_by_status: totals.runsByStatus,
          successful_executions: completed,
          failed_executions: countErroredRuns(totals.runsByStatus),
          cancelled_executions: totals.runsByStatus['cancelled'] ?? 0,
          success_rate: totals.runs === 0 ? 0 : (100 * completed) / totals.runs,
          active_executions: live.length,
          model_calls: totals.modelCalls,
          total_tokens: totals.usage.total_tokens,
          total_prompt_tokens: totals.usage.total_prompt_tokens,
          total_completion_tokens: totals.usage.total_completion_tokens,
          total_cost: totals.usage.total_cost,
          start_date: window.from.toISOString(),
          end_date: window.to.toISOString(),
        },
        // Not part of this service: honest zeros.
        agents: { total_agents: 0, active_agents: 0, supported: false },
        ab_testing: { total_tests: 0, running_tests: 0, supported: false },
        system: {
          instance_id: services.instanceId,
          uptime_seconds: process.uptime(),
          active_runs_on_instance: services.runtime.active().length,
        },
        generated_at: new Date(now()).toISOString(),
      };
    },
  );

  app.get(
    '/system',
    {
      schema: {
        tags: ['Analytics'],
        summary: 'Get System Analytics',
        operationId: 'get_system_analytics_api_v1_analytics_system_get',
        description:
          'This instance (uptime, CPU and memory share, event loop, active runs) and its database (reachable, latency, ' +
          'pool). User counts only for superusers (zeros otherwise); request, storage and cache figures are not measured (0).',
        security: bearerSecurity,
        response: { 200: SystemReportSchema, ...errorResponses(401) },
      },
    },
    async (request) => {
      const counts = request.user.isSuperuser ? await reports.systemCounts(now()) : null;
      const instance = health.instance();
      const database = await health.database();
      const body = buildSystemHealth(
        counts === null
          ? null
          : { ...counts, uptimeSeconds: instance.uptime_seconds, databaseConnections: database.pool.acquired + database.pool.idle },
      );
      return {
        ...body,
        system_uptime_seconds: instance.uptime_seconds,
        avg_cpu_usage: instance.avg_cpu_usage,
        avg_memory_usage: instance.avg_memory_usage,
        database_connections: database.pool.acquired + database.pool.idle,
        instance: { instance_id: services.instanceId, ...instance },
        database: { kind: app.db.kind, ...database },
      };
    },
  );

  app.get<{ Querystring: AnalyticsQuery }>(
    '/toolservers',
    {
      schema: route(
        'Get Tool Server Analytics',
        'get_tool_server_analytics_api_v1_analytics_toolservers_get',
        'ToolServerAnalyticsResponse',
      ),
    },
    async (request) => {
      const { scope, window } = await prepare(request);
      const totals = await readToolCallTotals(app.db.pool, rangeOf(scope, window));
      return buildToolServerAnalytics({ ...totals, uptimeSeconds: process.uptime() });
    },
  );

  app.get<{ Querystring: AnalyticsQuery }>(
    '/documents',
    { schema: route('Get Document Analytics', 'get_document_analytics_api_v1_analytics_documents_get', 'DocumentAnalyticsResponse') },
    async (request) => {
      // The window is still checked (a bad date is a 422); this service stores no documents.
      await prepare(request);
      return EMPTY_DOCUMENT_ANALYTICS;
    },
  );

  app.post<{ Querystring: AnalyticsExportQuery }>(
    '/export',
    {
      schema: {
        tags: ['Analytics'],
        summary: 'Export Analytics',
        operationId: 'export_analytics_api_v1_analytics_export_post',
        description:
          'A download (`Content-Disposition: attachment`) of the reports named in `metrics` (usage, performance, ' +
          'conversations) for the window: `format=json` is the contract’s AnalyticsExportResponse with the reports in ' +
          '`data`; `format=csv` is `report,metric,key,value` rows. Same figures as the report routes.',
        security: bearerSecurity,
        querystring: AnalyticsExportQuerySchema,
        response: {
          200: {
            description: 'The export',
            content: {
              'application/json': { schema: { $ref: 'AnalyticsExportResponse#' } },
              'text/csv': { schema: { type: 'string' } },
            },
          },
          ...errorResponses(401, 403),
        },
      },
    },
    async (request, reply) => {
      const format = (request.query.format ?? 'json').toLowerCase();
      if (!(EXPORT_FORMATS as readonly string[]).includes(format)) {
        throw new RequestValidationError([
          {
            loc: ['query', 'format'],
            msg: `Unsupported export format ${JSON.stringify(format).slice(0, 40)}: use json or csv`,
            type: 'enum',
          },
        ]);
      }
      const { scope, window } = await prepare(request);
      const wanted = [...new Set(request.query.metrics)];
      const bodies = await Promise.all(
        wanted.map(async (metric) => {
          if (metric === 'usage') return reports.usage(scope, window);
          if (metric === 'performance') return reports.performance(scope, window);
          return reports.conversationStats(scope, window);
        }),
      );
      const input: ExportInput = {
        exportId: ulid(),
        createdAt: new Date(now()),
        window,
        reports: Object.fromEntries(wanted.map((metric, index) => [metric, bodies[index] as Record<string, unknown>])),
      };
      void reply.header('content-disposition', `attachment; filename="${exportFileName(input, format as ExportFormat)}"`);
      if (format === 'csv') {
        return reply.type('text/csv; charset=utf-8').send(buildCsvExport(input));
      }
      return reply.type('application/json; charset=utf-8').send(buildJsonExport(input));
    },
  );

  const control = (action: 'start' | 'stop') => ({
    tags: ['Analytics', 'real-time-analytics'],
    summary: action === 'start' ? 'Start Real Time Dashboard' : 'Stop Real Time Dashboard',
    operationId: `${action}_real_time_dashboard_api_v1_analytics_real_time_real_time_dashboard_${action}_post`,
    description:
      action === 'start'
        ? 'Where the live analytics feed is: `GET /api/v1/analytics/stream` (Server-Sent Events, one `run_completed` per finished run).'
        : 'Ends the caller’s open live analytics streams, on every instance.',
    security: bearerSecurity,
    response: { 200: { $ref: 'DashboardControlResponse#' }, ...errorResponses(401) },
  });

  app.post('/real-time/real-time/dashboard/start', { schema: control('start') }, async (request) => ({
    status: 'started',
    user_id: request.user.id,
    message: `Live dashboard updates: open ${LIVE_FEED.stream_url} (Server-Sent Events) for one run_completed event per finished run`,
    ...LIVE_FEED,
  }));

  app.post('/real-time/real-time/dashboard/stop', { schema: control('stop') }, async (request) => {
    await deps.stopStreamsOf(request.user.id);
    return {
      status: 'stopped',
      user_id: request.user.id,
      message: 'Your live analytics streams are ended on every instance',
      ...LIVE_FEED,
    };
  });
};
