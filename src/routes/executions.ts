import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { HttpError } from '../http/errors.js';
import { bearerSecurity, errorResponses, INT4_MAX } from '../http/schemas/common-schemas.js';
import { WorkflowExecutionPageSchema } from '../http/schemas/execution-schemas.js';
import { createEventsRepository } from '../repositories/events-repository.js';
import { createRunsRepository, isLive, type RunRow } from '../repositories/runs-repository.js';
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

/**
 * A live run as its row shows it, whichever instance runs it: the owner (`instance_id`),
 * its state, the usage recorded so far and the owner's last heartbeat.
 */
export const presentActive = (row: RunRow) => ({
  id: row.id,
  user_id: row.user_id,
  conversation_id: row.conversation_id,
  correlation_id: row.correlation_id,
  workflow: row.workflow,
  provider: row.provider,
  model: row.model,
  state: row.live_state ?? row.status,
  tokens: {
    uncached_input: row.input_tokens - row.cache_read_tokens - row.cache_write_tokens,
    cache_read: row.cache_read_tokens,
    cache_write: row.cache_write_tokens,
    output: row.output_tokens,
    reasoning: row.reasoning_tokens,
    total: row.total_tokens,
  },
  // Nothing recorded yet is 0 spent; null only when a call's price is unknown.
  cost: row.cost_unknown ? null : (row.cost ?? 0),
  model_calls: row.model_call_count,
  tool_calls: row.tool_call_count,
  started_at: row.started_at,
  elapsed_ms: Math.max(0, Date.now() - Date.parse(row.started_at)),
  trace_id: row.trace_id,
  instance_id: row.instance_id,
  last_heartbeat_at: row.last_heartbeat_at,
});

/** Run statuses in the frontend's execution vocabulary (it colours pending, running, completed, failed). */
const EXECUTION_STATUS: Readonly<Record<string, string>> = {
  queued: 'pending',
  running: 'running',
  completed: 'completed',
  cancelled: 'cancelled',
  // The statuses analytics count as errors (ERROR_RUN_STATUSES) are failures to the frontend.
  failed: 'failed',
  timedOut: 'failed',
  budgetExceeded: 'failed',
  interrupted: 'failed',
};

/** Why a run that ended without an error message of its own did not complete. */
const ENDING_MESSAGE: Readonly<Record<string, string>> = {
  timedOut: 'The run took longer than RUN_TIMEOUT_MS',
  budgetExceeded: 'A budget was used up',
  interrupted: 'The run was interrupted: its instance stopped before it ended',
  failed: 'The run failed',
};

/**
 * A run as the contract's `WorkflowExecutionResponse`, with this service's own fields
 * beside it (`run_status` is the stored status; `status` the frontend's name for it).
 * `cost` is a number in the contract: a run with an unknown price answers what is known
 * and `cost_unknown: true`.
 */
export const presentExecution = (row: RunRow) => ({
  id: row.id,
  definition_id: row.workflow_definition_id ?? row.workflow,
  owner_id: row.user_id,
  status: EXECUTION_STATUS[row.status] ?? row.status,
  started_at: row.started_at,
  completed_at: row.finished_at,
  execution_time_ms: row.duration_ms,
  input_data: { conversation_id: row.conversation_id, workflow: row.workflow, provider: row.provider, model: row.model },
  output_data: isLive(row.status)
    ? null
    : { terminal_reason: row.terminal_reason, model_calls: row.model_call_count, tool_calls: row.tool_call_count },
  error_message:
    row.status === 'completed' || row.status === 'cancelled' || isLive(row.status)
      ? row.error
      : (row.error ?? ENDING_MESSAGE[row.status] ?? null),
  tokens_used: row.total_tokens,
  cost: row.cost ?? 0,
  execution_log: null,
  debug_info: null,
  created_at: row.started_at,
  updated_at: row.finished_at ?? row.last_heartbeat_at ?? row.started_at,
  run_status: row.status,
  terminal_reason: row.terminal_reason,
  workflow: row.workflow,
  conversation_id: row.conversation_id,
  provider: row.provider,
  model: row.model,
  prompt_tokens: row.input_tokens,
  completion_tokens: row.output_tokens,
  cost_unknown: row.cost_unknown,
  usage_missing: row.usage_missing,
  model_call_count: row.model_call_count,
  tool_call_count: row.tool_call_count,
  correlation_id: row.correlation_id,
  trace_id: row.trace_id,
});

type Scope = { all_users?: boolean };

/**
 * The contract's `GET /api/v1/workflows/executions` (a page of `WorkflowExecutionResponse`) plus native routes: one run's
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

  /**
   * The run if the caller may see it (own, or superuser), else 404 with the same
   * `access_denied` event for a missing and for another user's run (no existence oracle).
   */
  const visibleRun = async (request: FastifyRequest, id: string): Promise<RunRow> => {
    const row = await runs.findById(id);
    if (row === null || (row.user_id !== request.user.id && !request.user.isSuperuser)) {
      await app.securityEvents.recordHidden(request, { resource: 'run', id, exists: row !== null });
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
        response: { 200: WorkflowExecutionPageSchema, ...errorResponses(401, 403) },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? 20;
      const offset = request.query.offset ?? 0;
      const scope = (await allUsers(request, request.query)) ? null : request.user.id;
      const { rows, total } = await runs.list(scope, { limit, offset });
      return { items: rows.map(presentExecution), total, offset, limit };
    },
  );

  app.get<{ Querystring: Scope }>(
    '/executions/active',
    {
      schema: {
        tags: ['Workflows'],
        summary: 'Live executions on every instance',
        security: bearerSecurity,
        querystring: { type: 'object', properties: { all_users: { type: 'boolean' } } },
        response: { 200: { type: 'object', additionalProperties: true }, ...errorResponses(401, 403) },
      },
    },
    async (request) => {
      const everyone = await allUsers(request, request.query);
      const active = await runs.live(everyone ? null : request.user.id);
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
      return {
        ...presentRun(row),
        live: isLive(row.status) ? presentActive(row) : null,
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
        response: {
          202: { type: 'object', additionalProperties: true },
          ...errorResponses(401, 404, 409),
          504: { $ref: 'ErrorResponse#' },
        },
      },
    },
    async (request, reply) => {
      const row = await visibleRun(request, request.params.id);
      const ended = (status: string) => new HttpError(409, `Cannot cancel: the run already ended (${status})`, 'not_cancellable');
      if (!isLive(row.status)) throw ended(row.status);
      // The owner (this instance or another) cancels it and acknowledges; the row decides the rest.
      const outcome = await services.runControl.cancel({ id: row.id, instanceId: row.instance_id }, `cancelled by ${request.user.id}`);
      if (outcome !== 'cancelled') {
        const now = await runs.findById(row.id);
        if (now === null || !isLive(now.status)) throw ended(now?.status ?? 'deleted');
        if (outcome === 'not_live') {
          throw new HttpError(409, 'Cannot cancel: the run is ending and its record is being saved', 'not_cancellable');
        }
        throw new HttpError(
          504,
          `The instance running this run (${row.instance_id ?? 'unknown'}) did not answer; retry, or wait for it to be taken over`,
          'owner_unreachable',
        );
      }
      return reply.status(202).send({ id: row.id, status: 'cancelling', correlation_id: row.correlation_id });
    },
  );
};
