import { sql, type DatabasePool, type FragmentSqlToken } from 'slonik';
import { z } from 'zod';

export const RunRow = z.object({
  id: z.string(),
  user_id: z.string(),
  conversation_id: z.string().nullable(),
  workflow: z.string(),
  status: z.string(),
  terminal_reason: z.string().nullable(),
  provider: z.string().nullable(),
  model: z.string().nullable(),
  error: z.string().nullable(),
  input_tokens: z.number(),
  cache_read_tokens: z.number(),
  cache_write_tokens: z.number(),
  output_tokens: z.number(),
  reasoning_tokens: z.number(),
  total_tokens: z.number(),
  cost: z.number().nullable(),
  cost_unknown: z.boolean(),
  usage_missing: z.boolean(),
  model_call_count: z.number(),
  tool_call_count: z.number(),
  started_at: z.string(),
  finished_at: z.string().nullable(),
  duration_ms: z.number().nullable(),
  correlation_id: z.string(),
  trace_id: z.string().nullable(),
  instance_id: z.string().nullable(),
  last_heartbeat_at: z.string().nullable(),
  /** What a live run is doing as its owner last recorded it (`running.callingModel`, …). */
  live_state: z.string().nullable(),
  /** The stored workflow definition the run executed (from its input), or null. */
  workflow_definition_id: z.string().nullable(),
});
export type RunRow = z.infer<typeof RunRow>;

const columns = sql.fragment`
  id, user_id, conversation_id, workflow, status, terminal_reason, provider, model, error, input_tokens,
  cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, total_tokens, cost, cost_unknown,
  usage_missing, model_call_count, tool_call_count, started_at, finished_at, duration_ms, correlation_id,
  trace_id, instance_id, last_heartbeat_at, live_state, input ->> 'workflow_definition_id' AS workflow_definition_id`;

/** The statuses of a run that has not ended (the ones the one-live-run index covers). */
export const isLive = (status: string): boolean => status === 'queued' || status === 'running';

export const ModelCallRow = z.object({
  id: z.string(),
  sequence: z.number(),
  provider: z.string(),
  request_model: z.string(),
  response_model: z.string().nullable(),
  input_tokens: z.number().nullable(),
  cache_read_tokens: z.number().nullable(),
  cache_write_tokens: z.number().nullable(),
  output_tokens: z.number().nullable(),
  reasoning_tokens: z.number().nullable(),
  cost: z.number().nullable(),
  price_id: z.string().nullable(),
  latency_ms: z.number().nullable(),
  time_to_first_token_ms: z.number().nullable(),
  finish_reason: z.string().nullable(),
  usage_source: z.string(),
  error: z.string().nullable(),
  started_at: z.string(),
});

export const ToolCallRow = z.object({
  id: z.string(),
  sequence: z.number(),
  tool: z.string(),
  arguments: z.unknown(),
  result_size: z.number().nullable(),
  duration_ms: z.number().nullable(),
  error: z.string().nullable(),
  started_at: z.string(),
});

const Outcome = z.object({
  status: z.string(),
  runs: z.number(),
  tokens: z.number(),
  cost: z.number(),
});

const ProviderTotals = z.object({
  provider: z.string(),
  model: z.string(),
  runs: z.number(),
  tokens: z.number(),
  cost: z.number(),
});

/** One page of the runs `where` selects, newest first, with their count. */
const pageOf = async (pool: DatabasePool, where: FragmentSqlToken, page: { limit: number; offset: number }) => {
  const [rows, total] = await Promise.all([
    pool.any(sql.type(RunRow)`
      SELECT ${columns} FROM workflow_runs WHERE ${where}
      ORDER BY started_at DESC, id DESC LIMIT ${page.limit} OFFSET ${page.offset}`),
    pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*) AS n FROM workflow_runs WHERE ${where}`),
  ]);
  return { rows, total };
};

/** Workflow runs as the executions and monitoring routes read them. */
export const createRunsRepository = (pool: DatabasePool) => ({
  /** One page, newest first; `userId` null → every user's (the route checks superuser). */
  list: async (userId: string | null, page: { limit: number; offset: number }) =>
    pageOf(pool, userId === null ? sql.fragment`TRUE` : sql.fragment`user_id = ${userId}`, page),

  /** The newest `limit` runs, without counting them all (monitoring's recent runs). */
  recent: async (userId: string | null, limit: number) => {
    const where = userId === null ? sql.fragment`TRUE` : sql.fragment`user_id = ${userId}`;
    return pool.any(sql.type(RunRow)`
      SELECT ${columns} FROM workflow_runs WHERE ${where} ORDER BY started_at DESC, id DESC LIMIT ${limit}`);
  },

  /**
   * The runs live on any instance, oldest first, from their rows (owner, usage so far,
   * heartbeat); `userId` null → every user's.
   */
  live: async (userId: string | null): Promise<readonly RunRow[]> =>
    pool.any(sql.type(RunRow)`
      SELECT ${columns} FROM workflow_runs
      WHERE status IN ('queued', 'running') -- literal, so the partial indexes on live runs apply
        ${userId === null ? sql.fragment`` : sql.fragment`AND user_id = ${userId}`}
      ORDER BY started_at, id`),

  /**
   * One page of the runs of a stored workflow definition, newest first, with their count
   * (index workflow_runs_definition_idx); `userId` null → every user's.
   */
  byDefinition: async (definitionId: string, userId: string | null, page: { limit: number; offset: number }) =>
    pageOf(
      pool,
      sql.fragment`input ? 'workflow_definition_id' AND input ->> 'workflow_definition_id' = ${definitionId}
        ${userId === null ? sql.fragment`` : sql.fragment`AND user_id = ${userId}`}`,
      page,
    ),

  findById: async (id: string): Promise<RunRow | null> =>
    pool.maybeOne(sql.type(RunRow)`SELECT ${columns} FROM workflow_runs WHERE id = ${id}`),

  modelCalls: async (runId: string) =>
    pool.any(sql.type(ModelCallRow)`
      SELECT id, sequence, provider, request_model, response_model, input_tokens, cache_read_tokens,
             cache_write_tokens, output_tokens, reasoning_tokens, cost, price_id, latency_ms,
             time_to_first_token_ms, finish_reason, usage_source, error, started_at
      FROM model_calls WHERE run_id = ${runId} ORDER BY sequence`),

  toolCalls: async (runId: string) =>
    pool.any(sql.type(ToolCallRow)`
      SELECT id, sequence, tool, arguments, result_size, duration_ms, error, started_at
      FROM tool_calls WHERE run_id = ${runId} ORDER BY sequence`),

  byCorrelationId: async (correlationId: string, userId: string | null): Promise<readonly RunRow[]> =>
    pool.any(sql.type(RunRow)`
      SELECT ${columns} FROM workflow_runs
      WHERE correlation_id = ${correlationId} ${userId === null ? sql.fragment`` : sql.fragment`AND user_id = ${userId}`}
      ORDER BY started_at`),

  /** Outcomes and spend of runs started in the last `windowMs`. */
  window: async (userId: string | null, windowMs: number) => {
    const where = sql.fragment`started_at >= now() - make_interval(secs => ${windowMs / 1000})
      ${userId === null ? sql.fragment`` : sql.fragment`AND user_id = ${userId}`}`;
    const [outcomes, providers] = await Promise.all([
      pool.any(sql.type(Outcome)`
        SELECT status, count(*) AS runs, COALESCE(sum(total_tokens), 0) AS tokens, COALESCE(sum(cost), 0) AS cost
        FROM workflow_runs WHERE ${where} GROUP BY status ORDER BY status`),
      pool.any(sql.type(ProviderTotals)`
        SELECT COALESCE(provider, 'unknown') AS provider, COALESCE(model, 'unknown') AS model, count(*) AS runs,
               COALESCE(sum(total_tokens), 0) AS tokens, COALESCE(sum(cost), 0) AS cost
        FROM workflow_runs WHERE ${where} GROUP BY 1, 2 ORDER BY 1, 2`),
    ]);
    return { outcomes, providers };
  },
});

export type RunsRepository = ReturnType<typeof createRunsRepository>;
