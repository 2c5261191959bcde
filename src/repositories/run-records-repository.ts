import { sql, type DatabaseTransactionConnection } from 'slonik';
import { z } from 'zod';
import type { RunRecord } from '../../otel/processors/run-record.js';
import { applyRollups } from '../analytics/analytics-upsert.js';
import { rollupsFromRecords } from '../analytics/run-record-rollups.js';

const ts = (ms: number) => sql.timestamp(new Date(ms));
const totalInput = (u: RunRecord['usage']) => u.inputUncached + u.cacheRead + u.cacheWrite;
const totalTokens = (u: RunRecord['usage']) => totalInput(u) + u.output;

/** The assistant message a run leaves behind: only runs that called a model write one. */
const writesMessage = (record: RunRecord): boolean =>
  record.assistantMessageId !== null &&
  record.conversationId !== null &&
  (record.modelCallCount > 0 || (record.output ?? '') !== '');

const finishReason = (record: RunRecord): string => {
  if (record.status === 'completed') {
    return record.modelCalls.at(-1)?.finishReason ?? 'stop';
  }
  return record.terminalReason ?? record.status;
};

const upsertRun = async (tx: DatabaseTransactionConnection, r: RunRecord): Promise<void> => {
  const u = r.usage;
  await tx.query(sql.unsafe`
    INSERT INTO workflow_runs (
      id, user_id, conversation_id, workflow, status, terminal_reason, provider, model, output, error,
      input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, total_tokens,
      cost, cost_unknown, usage_missing, model_call_count, tool_call_count,
      started_at, finished_at, duration_ms, correlation_id, trace_id, instance_id, last_heartbeat_at
    ) VALUES (
      ${r.runId}, ${r.userId}, ${r.conversationId}, ${r.workflow}, ${r.status}, ${r.terminalReason},
      ${r.provider}, ${r.model}, ${r.output}, ${r.error},
      ${totalInput(u)}, ${u.cacheRead}, ${u.cacheWrite}, ${u.output}, ${u.reasoning}, ${totalTokens(u)},
      ${r.costUnknown ? null : r.costUsd}, ${r.costUnknown}, ${r.usageMissingCalls > 0},
      ${r.modelCallCount}, ${r.toolCallCount},
      ${ts(r.startedAt)}, ${ts(r.finishedAt)}, ${Math.max(0, r.finishedAt - r.startedAt)},
      ${r.correlationId}, ${r.traceId}, ${r.instanceId}, ${ts(r.finishedAt)}
    )
    ON CONFLICT (id) DO UPDATE SET
      status = EXCLUDED.status, terminal_reason = EXCLUDED.terminal_reason, provider = EXCLUDED.provider,
      model = EXCLUDED.model, output = EXCLUDED.output, error = EXCLUDED.error,
      input_tokens = EXCLUDED.input_tokens, cache_read_tokens = EXCLUDED.cache_read_tokens,
      cache_write_tokens = EXCLUDED.cache_write_tokens, output_tokens = EXCLUDED.output_tokens,
      reasoning_tokens = EXCLUDED.reasoning_tokens, total_tokens = EXCLUDED.total_tokens,
      cost = EXCLUDED.cost, cost_unknown = EXCLUDED.cost_unknown, usage_missing = EXCLUDED.usage_missing,
      model_call_count = EXCLUDED.model_call_count, tool_call_count = EXCLUDED.tool_call_count,
      finished_at = EXCLUDED.finished_at, duration_ms = EXCLUDED.duration_ms,
      trace_id = EXCLUDED.trace_id, last_heartbeat_at = EXCLUDED.last_heartbeat_at`);
};

const insertChildren = async (tx: DatabaseTransactionConnection, r: RunRecord): Promise<void> => {
  if (r.modelCalls.length > 0) {
    await tx.query(sql.unsafe`
      INSERT INTO model_calls (
        id, run_id, sequence, provider, request_model, response_model, input_tokens, cache_read_tokens,
        cache_write_tokens, output_tokens, reasoning_tokens, cost, price_id, latency_ms,
        time_to_first_token_ms, finish_reason, usage_source, error, started_at
      ) VALUES ${sql.join(
        r.modelCalls.map(
          (c) => sql.fragment`(
            ${c.id}, ${r.runId}, ${c.sequence}, ${c.provider}, ${c.requestModel}, ${c.responseModel},
            ${c.usage === null ? null : totalInput(c.usage)}, ${c.usage?.cacheRead ?? null},
            ${c.usage?.cacheWrite ?? null}, ${c.usage?.output ?? null}, ${c.usage?.reasoning ?? null},
            ${c.costUsd}, ${c.priceId}, ${c.latencyMs}, ${c.timeToFirstChunkMs}, ${c.finishReason},
            ${c.usageSource}, ${c.error}, ${ts(c.startedAt)})`,
        ),
        sql.fragment`, `,
      )}
      ON CONFLICT (run_id, sequence) DO NOTHING`);
  }
  if (r.toolCalls.length > 0) {
    await tx.query(sql.unsafe`
      INSERT INTO tool_calls (id, run_id, sequence, tool, arguments, result_size, duration_ms, error, started_at)
      VALUES ${sql.join(
        r.toolCalls.map(
          (t) => sql.fragment`(
            ${t.id}, ${r.runId}, ${t.sequence}, ${t.tool}, ${sql.jsonb(t.arguments as never)}, ${t.resultSize},
            ${t.durationMs}, ${t.error}, ${ts(t.startedAt)})`,
        ),
        sql.fragment`, `,
      )}
      ON CONFLICT (run_id, sequence) DO NOTHING`);
  }
  if (r.events.length > 0) {
    await tx.query(sql.unsafe`
      INSERT INTO events (id, category, type, priority, user_id, conversation_id, run_id, correlation_id, data, created_at)
      VALUES ${sql.join(
        r.events.map(
          (e) => sql.fragment`(
            ${e.id}, 'workflow', ${e.type}, ${e.priority}, ${r.userId}, ${r.conversationId}, ${r.runId},
            ${r.correlationId}, ${sql.jsonb({ ...e.data, workflow: r.workflow } as never)}, ${ts(e.at)})`,
        ),
        sql.fragment`, `,
      )}
      ON CONFLICT (id) DO NOTHING`);
  }
};

const insertAssistantMessage = async (tx: DatabaseTransactionConnection, r: RunRecord): Promise<void> => {
  const u = r.usage;
  const cost = r.costUnknown ? null : r.costUsd;
  // Lock the conversation row first: the totals and the sequence number change together.
  const updated = await tx.maybeOneFirst(sql.type(z.object({ id: z.string() }))`
    UPDATE conversations
    SET message_count = message_count + 1,
        total_tokens = total_tokens + ${totalTokens(u)},
        total_cost = total_cost + ${cost ?? 0},
        last_message_at = ${ts(r.finishedAt)},
        updated_at = now()
    WHERE id = ${r.conversationId}
    RETURNING id`);
  if (updated === null) {
    return; // the conversation was deleted while the run was in flight
  }
  const lastCall = r.modelCalls.filter((call) => call.error === null).at(-1);
  await tx.query(sql.unsafe`
    INSERT INTO messages (
      id, conversation_id, role, content, sequence_number, prompt_tokens, completion_tokens, total_tokens,
      cached_input_tokens, reasoning_tokens, cost, model_used, provider_used, finish_reason, response_time_ms,
      run_id, correlation_id, tool_calls, extra_metadata, created_at
    ) VALUES (
      ${r.assistantMessageId}, ${r.conversationId}, 'assistant', ${r.output ?? ''},
      (SELECT COALESCE(MAX(sequence_number), -1) + 1 FROM messages WHERE conversation_id = ${r.conversationId}),
      ${totalInput(u)}, ${u.output}, ${totalTokens(u)}, ${u.cacheRead}, ${u.reasoning}, ${cost},
      ${lastCall?.responseModel ?? r.model}, ${r.provider}, ${finishReason(r)},
      ${Math.max(0, r.finishedAt - r.startedAt)}, ${r.runId}, ${r.correlationId},
      ${r.toolCalls.length === 0 ? null : sql.jsonb(r.toolCalls.map((t) => ({ tool: t.tool, arguments: t.arguments, ok: t.error === null })) as never)},
      ${sql.jsonb({
        run_status: r.status,
        terminal_reason: r.terminalReason,
        cache_write_tokens: u.cacheWrite,
        usage_missing_calls: r.usageMissingCalls,
        cost_unknown: r.costUnknown,
        model_calls: r.modelCallCount,
      })},
      ${ts(r.finishedAt)}
    )`);
  await tx.query(sql.unsafe`
    UPDATE users SET total_tokens = total_tokens + ${totalTokens(u)}, total_cost = total_cost + ${cost ?? 0}
    WHERE id = ${r.userId}`);
};

/**
 * Writes finished runs' records in the caller's transaction, each at most once: a run
 * id already in `applied_runs` is skipped, so replays (spool, retries) change nothing.
 * Returns the run ids written now.
 */
export const applyRunRecords = async (
  tx: DatabaseTransactionConnection,
  records: readonly RunRecord[],
): Promise<string[]> => {
  if (records.length === 0) {
    return [];
  }
  const fresh = new Set(
    await tx.anyFirst(sql.type(z.object({ run_id: z.string() }))`
      INSERT INTO applied_runs (run_id)
      SELECT * FROM ${sql.unnest(
        records.map((record) => [record.runId]),
        ['text'],
      )}
      ON CONFLICT (run_id) DO NOTHING
      RETURNING run_id`),
  );
  const applied: string[] = [];
  for (const record of records) {
    if (!fresh.has(record.runId)) {
      continue;
    }
    fresh.delete(record.runId); // a record listed twice in one batch is written once
    await upsertRun(tx, record);
    await insertChildren(tx, record);
    if (writesMessage(record)) {
      await insertAssistantMessage(tx, record);
    }
    applied.push(record.runId);
  }
  const rollups = rollupsFromRecords(records.filter((record) => applied.includes(record.runId)));
  if (rollups.length > 0) {
    await applyRollups(tx, rollups, () => {});
  }
  return applied;
};
