import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';

/*
 * What the database holds about runs, read back for assertions. Costs are read as text
 * too (`*_text`), so a test can compare them digit for digit with numeric(20, 10).
 */

const RunRow = z.object({
  status: z.string(),
  terminal_reason: z.string().nullable(),
  input_tokens: z.number().nullable(),
  cache_read_tokens: z.number().nullable(),
  cache_write_tokens: z.number().nullable(),
  output_tokens: z.number().nullable(),
  reasoning_tokens: z.number().nullable(),
  total_tokens: z.number().nullable(),
  cost: z.number().nullable(),
  cost_text: z.string().nullable(),
  cost_unknown: z.boolean(),
  usage_missing: z.boolean(),
  model_call_count: z.number(),
  tool_call_count: z.number(),
});
export type RunRow = z.infer<typeof RunRow>;

export const readRun = (pool: DatabasePool, runId: string): Promise<RunRow> =>
  pool.one(sql.type(RunRow)`
    SELECT status, terminal_reason, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens,
           reasoning_tokens, total_tokens, cost, cost::text AS cost_text, cost_unknown, usage_missing,
           model_call_count, tool_call_count
    FROM workflow_runs WHERE id = ${runId}`);

const ModelCallRow = z.object({
  sequence: z.number(),
  provider: z.string(),
  request_model: z.string(),
  response_model: z.string().nullable(),
  input_tokens: z.number().nullable(),
  cache_read_tokens: z.number().nullable(),
  cache_write_tokens: z.number().nullable(),
  output_tokens: z.number().nullable(),
  reasoning_tokens: z.number().nullable(),
  cost_text: z.string().nullable(),
  price_id: z.string().nullable(),
  finish_reason: z.string().nullable(),
  usage_source: z.string(),
  error: z.string().nullable(),
});
export type ModelCallRow = z.infer<typeof ModelCallRow>;

export const readModelCalls = async (pool: DatabasePool, runId: string): Promise<ModelCallRow[]> => [
  ...(await pool.any(sql.type(ModelCallRow)`
    SELECT sequence, provider, request_model, response_model, input_tokens, cache_read_tokens, cache_write_tokens,
           output_tokens, reasoning_tokens, cost::text AS cost_text, price_id, finish_reason, usage_source, error
    FROM model_calls WHERE run_id = ${runId} ORDER BY sequence`)),
];

const MessageRow = z.object({
  content: z.string(),
  prompt_tokens: z.number().nullable(),
  completion_tokens: z.number().nullable(),
  total_tokens: z.number().nullable(),
  cached_input_tokens: z.number().nullable(),
  reasoning_tokens: z.number().nullable(),
  cost_text: z.string().nullable(),
  model_used: z.string().nullable(),
  provider_used: z.string().nullable(),
  finish_reason: z.string().nullable(),
});
export type MessageRow = z.infer<typeof MessageRow>;

/** The assistant message a run left, or null. */
export const readAssistantMessage = (pool: DatabasePool, runId: string): Promise<MessageRow | null> =>
  pool.maybeOne(sql.type(MessageRow)`
    SELECT content, prompt_tokens, completion_tokens, total_tokens, cached_input_tokens, reasoning_tokens,
           cost::text AS cost_text, model_used, provider_used, finish_reason
    FROM messages WHERE run_id = ${runId} AND role = 'assistant'`);

/**
 * A run's lifecycle event types in the order they happened. By insertion (`seq`): a
 * run's events are inserted in order when it ends, while their ULID ids are random
 * within a millisecond, so `ORDER BY created_at, id` can swap two events of one ms.
 */
export const readEventTypes = async (pool: DatabasePool, runId: string): Promise<string[]> => [
  ...(await pool.anyFirst(sql.type(z.object({ type: z.string() }))`
    SELECT type FROM events WHERE run_id = ${runId} ORDER BY seq`)),
];

/** How many times `type` occurs among a run's events. */
export const countEvents = async (pool: DatabasePool, runId: string, type: string): Promise<number> =>
  (await readEventTypes(pool, runId)).filter((each) => each === type).length;

const Mismatch = z.object({ id: z.string() });

/**
 * Conversations whose stored totals differ from the count and sums over their messages
 * (invariant 3); empty when every conversation agrees.
 */
export const conversationsOutOfStep = async (pool: DatabasePool): Promise<string[]> => [
  ...(await pool.anyFirst(sql.type(Mismatch)`
    SELECT c.id FROM conversations c
    LEFT JOIN LATERAL (
      SELECT count(*) AS n, COALESCE(sum(m.total_tokens), 0) AS tokens, COALESCE(sum(m.cost), 0) AS cost
      FROM messages m WHERE m.conversation_id = c.id
    ) s ON true
    WHERE c.message_count <> s.n OR c.total_tokens <> s.tokens OR c.total_cost <> s.cost`)),
];

/** Exact USD from integer units of 1e-10 USD, as numeric(20, 10) prints it. */
export const usdText = (units: number): string => {
  const digits = String(units).padStart(11, '0');
  return `${digits.slice(0, -10)}.${digits.slice(-10)}`;
};
