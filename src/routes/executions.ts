import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { HttpError } from '../http/errors.js';
import { bearerSecurity, errorResponses, INT4_MAX } from '../http/schemas/common-schemas.js';
import { createEventsRepository } from '../repositories/events-repository.js';
import { createRunsRepository, type RunRow } from '../repositories/runs-repository.js';
import type { ActiveRun } from '../runtime/run-runtime.js';
import type { Services } from '../services.js';

const notFound = () => new HttpError(404, 'Execution not found', 'not_found');

/** A run as the API shows it: tokens by bucket (input here is all input, cached included). */
export const presentRun = (row: RunRow) => ({
  id: row.id,
  user_id: row.user_id,
  conversation_id: row.conversation_id,
  workflow: row.workflow,
  status: row.status,
  terminal_reason: row.terminal_reason,
  provider: row.provider,
  model: row.model,
  error: row.error,
  tokens: {
    input: row.input_tokens,
    uncached_input: row.input_tokens - row.cache_read_tokens - row.cache_write_tokens,
    cache_read: row.cache_read_tokens,
    cache_write: row.cache_write_tokens,
    output: row.output_tokens,
    reasoning: row.reasoning_tokens,
    total: row.total_tokens,
  },
  cost: row.cost,
  cost_unknown: row.cost_unknown,
  usage_missing: row.usage_missing,
  model_call_count: row.model_call_count,
  tool_call_count: row.tool_call_count,
  started_at: row.started_at,
  finished_at: row.finished_at,
  duration_ms: row.duration_ms,
  correlation_id: row.correlation_id,
  trace_id: row.trace_id,
  instance_id: row.instance_id,
});

/** A live run as the runtime sees it right now. */
export const presentActive = (run: ActiveRun) => ({
  id: run.runId,
  user_id: run.userId,
  conversation_id: run.conversationId,
  correlation_id: run.correlationId,
  workflow: run.workflow,
  provider: run.provider,
  model: run.model,
  state: run.state,
  tokens: {
    uncached_input: run.usage.inputUncached,
    cache_read: run.usage.cacheRead,
    cache_write: run.usage.cacheWrite,
    output: run.usage.output,
    reasoning: run.usage.reasoning,
    total: run.usage.inputUncached + run.usage.cacheRead + run.usage.cacheWrite + run.usage.output,
  },
  cost: run.costUsd,
  model_calls: run.modelCalls,
  tool_calls: run.toolCalls,
  started_at: new Date(run.startedAt).toISOString(),
  elapsed_ms: Date.now() - run.startedAt,
  trace_id: run.traceId ?? null,
});

type Scope = { all_users?: boolean };

/**
 * The contract's `GET /api/v1/workflows/executions` plus native routes: one run's
 * detail, its cancellation, and the live state of every running actor.
 */
export const executionRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  const runs = createRunsRepository(app.db.pool);
  const events = createEventsRepository(app.db.pool);
  app.addHook('onRequest', app.authenticate);

  const allUsers = async (request: FastifyRequest, query: Scope): Promise<boolean> => {
    if (query.all_users !== true) return false;
    if (!request.user.isSuperuser) {
      await app.securityEvents.record(request, { type: 'access_denied', userId: request.user.id, reason: 'executions_all_users' });
      throw new HttpError(403, 'Only superusers may list every user’s executions', 'forbidden');
    }
    return true;
  };

  /** The run if the caller may see it (own, or superuser), else 404 with an access_denied event. */
  const visibleRun = async (request: FastifyRequest, id: string): Promise<RunRow> => {
    const row = await runs.findById(id);
    if (row === null) throw notFound();
    if (row.user_id !== request.user.id && !request.user.isSuperuser) {
      await app.securityEvents.record(request, {
        type: 'access_denied',
        userId: request.user.id,
        reason: 'not_owner',
        details: { run_id: id },
      });
      throw notFound();
    }
    return row;
  };

  app.get<{ Querystring: { limit?: number; offset?: number } & Scope }>(
    '/executions',
    {
      schema: {
        tags: ['Workflows'],
        summary: 'List All Workflow Executions',
        operationId: 'list_all_workflow_executions_api_v1_workflows_executions_get',
        security: bearerSecurity,
        querystring: {
          type: 'object',
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
            offset: { type: 'integer', minimum: 0, maximum: INT4_MAX, default: 0 },
            all_users: { type: 'boolean' },
          },
        },
        response: { 200: { type: 'object', additionalProperties: true }, ...errorResponses(401, 403) },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? 20;
      const offset = request.query.offset ?? 0;
      const scope = (await allUsers(request, request.query)) ? null : request.user.id;
      const { rows, total } = await runs.list(scope, { limit, offset });
      return { executions: rows.map(presentRun), total_count: total, limit, offset };
    },
  );

  app.get<{ Querystring: Scope }>(
    '/executions/active',
    {
      schema: {
        tags: ['Workflows'],
        summary: 'Active executions on this instance',
        security: bearerSecurity,
        querystring: { type: 'object', properties: { all_users: { type: 'boolean' } } },
        response: { 200: { type: 'object', additionalProperties: true }, ...errorResponses(401, 403) },
      },
    },
    async (request) => {
      const everyone = await allUsers(request, request.query);
      const active = services.runtime.active().filter((run) => everyone || run.userId === request.user.id);
      return { instance_id: services.instanceId, active: active.map(presentActive), count: active.length };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/executions/:id',
    {
      schema: {
        tags: ['Workflows'],
        summary: 'Execution detail',
        security: bearerSecurity,
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 128 } } },
        response: { 200: { type: 'object', additionalProperties: true }, ...errorResponses(401, 404) },
      },
    },
    async (request) => {
      const row = await visibleRun(request, request.params.id);
      const [modelCalls, toolCalls, runEvents] = await Promise.all([
        runs.modelCalls(row.id),
        runs.toolCalls(row.id),
        events.list({ userId: null, runId: row.id }, { limit: 500 }),
      ]);
      const live = services.runtime.get(row.id);
      return {
        ...presentRun(row),
        live: live === undefined ? null : presentActive(live),
        model_calls: modelCalls,
        tool_calls: toolCalls,
        events: [...runEvents].reverse(),
      };
    },
  );

  app.post<{ Params: { id: string } }>(
    '/executions/:id/cancel',
    {
      schema: {
        tags: ['Workflows'],
        summary: 'Cancel an execution',
        security: bearerSecurity,
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 128 } } },
        response: { 202: { type: 'object', additionalProperties: true }, ...errorResponses(401, 404, 409) },
      },
    },
    async (request, reply) => {
      const row = await visibleRun(request, request.params.id);
      if (!services.runtime.cancel(row.id, `cancelled by ${request.user.id}`)) {
        const reason =
          row.status === 'running'
            ? `the run is not live on this instance (owner: ${row.instance_id ?? 'unknown'})`
            : `the run already ended (${row.status})`;
        throw new HttpError(409, `Cannot cancel: ${reason}`, 'not_cancellable');
      }
      return reply.status(202).send({ id: row.id, status: 'cancelling', correlation_id: row.correlation_id });
    },
  );
};
