import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { sql } from 'slonik';
import { HttpError } from '../http/errors.js';
import { bearerSecurity, errorResponses } from '../http/schemas/common-schemas.js';
import { createEventsRepository } from '../repositories/events-repository.js';
import { MessageRow } from '../repositories/messages-repository.js';
import { createRunsRepository } from '../repositories/runs-repository.js';
import type { Services } from '../services.js';
import { presentActive, presentRun } from './executions.js';

const WINDOWS = { '15m': 15 * 60_000, '1h': 3_600_000, '24h': 86_400_000 } as const;

/**
 * `GET /api/v1/monitoring/workflows` (live runs, recent outcomes, error rate, spend per
 * provider over a window) and `GET /api/v1/monitoring/trace/{correlation_id}` (every
 * run, message and event recorded under one correlation id, with their trace ids).
 */
export const monitoringRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  const runs = createRunsRepository(app.db.pool);
  const events = createEventsRepository(app.db.pool);
  app.addHook('onRequest', app.authenticate);

  const scopeOf = async (request: FastifyRequest, allUsers: boolean | undefined): Promise<string | null> => {
    if (allUsers !== true) return request.user.id;
    if (!request.user.isSuperuser) {
      await app.securityEvents.record(request, { type: 'access_denied', userId: request.user.id, reason: 'monitoring_all_users' });
      throw new HttpError(403, 'Only superusers may see every user’s runs', 'forbidden');
    }
    return null;
  };

  app.get<{ Querystring: { window?: keyof typeof WINDOWS; all_users?: boolean } }>(
    '/workflows',
    {
      schema: {
        tags: ['Monitoring'],
        summary: 'Workflow monitoring',
        security: bearerSecurity,
        querystring: {
          type: 'object',
          properties: { window: { type: 'string', enum: Object.keys(WINDOWS), default: '1h' }, all_users: { type: 'boolean' } },
        },
        response: { 200: { type: 'object', additionalProperties: true }, ...errorResponses(401, 403) },
      },
    },
    async (request) => {
      const scope = await scopeOf(request, request.query.all_users);
      const window = request.query.window ?? '1h';
      const [{ outcomes, providers }, recent, active] = await Promise.all([
        runs.window(scope, WINDOWS[window]),
        runs.recent(scope, 20),
        runs.live(scope),
      ]);
      const finished = outcomes.filter((o) => o.status !== 'running' && o.status !== 'queued');
      const total = finished.reduce((sum, o) => sum + o.runs, 0);
      const failed = finished.filter((o) => o.status !== 'completed').reduce((sum, o) => sum + o.runs, 0);
      return {
        instance_id: services.instanceId,
        window,
        active_runs: active.map(presentActive),
        runs_by_status: Object.fromEntries(outcomes.map((o) => [o.status, o.runs])),
        error_rate: total === 0 ? 0 : failed / total,
        by_provider: providers,
        recent_runs: recent.map(presentRun),
        writer: services.writer.stats(),
      };
    },
  );

  app.get<{ Params: { correlation_id: string }; Querystring: { all_users?: boolean } }>(
    '/trace/:correlation_id',
    {
      schema: {
        tags: ['Monitoring'],
        summary: 'Everything recorded under a correlation id',
        security: bearerSecurity,
        params: {
          type: 'object',
          required: ['correlation_id'],
          properties: { correlation_id: { type: 'string', minLength: 1, maxLength: 128 } },
        },
        querystring: { type: 'object', properties: { all_users: { type: 'boolean' } } },
        response: { 200: { type: 'object', additionalProperties: true }, ...errorResponses(401, 403, 404) },
      },
    },
    async (request) => {
      const scope = request.user.isSuperuser ? null : request.user.id;
      const correlationId = request.params.correlation_id;
      const [runRows, eventRows, messageRows] = await Promise.all([
        runs.byCorrelationId(correlationId, scope),
        events.list({ userId: scope, correlationId }, { limit: 500 }),
        app.db.pool.any(sql.type(MessageRow)`
          SELECT m.id, m.conversation_id, m.role, m.content, m.sequence_number, m.prompt_tokens, m.completion_tokens,
                 m.total_tokens, m.cached_input_tokens, m.reasoning_tokens, m.cost, m.model_used, m.provider_used,
                 m.finish_reason, m.response_time_ms, m.run_id, m.correlation_id, m.rating, m.rating_count, m.created_at
          FROM messages m JOIN conversations c ON c.id = m.conversation_id
          WHERE m.correlation_id = ${correlationId} ${scope === null ? sql.fragment`` : sql.fragment`AND c.user_id = ${scope}`}
          ORDER BY m.created_at, m.sequence_number`),
      ]);
      if (runRows.length === 0 && eventRows.length === 0 && messageRows.length === 0) {
        throw new HttpError(404, 'Nothing is recorded under this correlation id', 'not_found');
      }
      return {
        correlation_id: correlationId,
        trace_ids: [...new Set(runRows.map((run) => run.trace_id).filter((id): id is string => id !== null))],
        runs: runRows.map(presentRun),
        messages: messageRows,
        events: [...eventRows].reverse(),
      };
    },
  );
};
