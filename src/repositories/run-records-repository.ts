import { sql, type DatabaseTransactionConnection } from 'slonik';
import { z } from 'zod';
import type { RunRecord } from '../../otel/processors/run-record.js';
import { applyRollups } from '../analytics/analytics-upsert.js';
import { rollupsFromRecords } from '../analytics/run-record-rollups.js';
import { releaseRunReservations } from './budget-reservations-repository.js';

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

/** Bind parameters one statement may carry (PostgreSQL's limit is 65,535). */
const MAX_PARAMETERS = 60_000;

/** Splits rows so that no statement carries more than MAX_PARAMETERS parameters. */
const chunked = <T>(rows: readonly T[], parametersPerRow: number): T[][] => {
  const size = Math.max(1, Math.floor(MAX_PARAMETERS / parametersPerRow));
  const chunks: T[][] = [];
  for (let index = 0; index < rows.length; index += size) {
    chunks.push(rows.slice(index, index + size));
  }
  return chunks;
};

const runValues = (r: RunRecord) => {
  const u = r.usage;
  return sql.fragment`(
      ${r.runId}, ${r.userId}, ${r.conversationId}, ${r.workflow}, ${r.status}, ${r.terminalReason},
      ${r.provider}, ${r.model}, ${r.output}, ${r.error},
      ${totalInput(u)}, ${u.cacheRead}, ${u.cacheWrite}, ${u.output}, ${u.reasoning}, ${totalTokens(u)},
      ${r.costUnknown ? null : r.costUsd}, ${r.costUnknown}, ${r.usageMissingCalls > 0},
      ${r.modelCallCount}, ${r.toolCallCount},
      ${ts(r.startedAt)}, ${ts(r.finishedAt)}, ${Math.max(0, r.finishedAt - r.startedAt)},
      ${r.correlationId}, ${r.traceId}, ${r.instanceId}, ${ts(r.finishedAt)}
    )`;
};

/** The runs' rows, one statement per chunk (run ids are distinct within a batch). */
const upsertRuns = async (tx: DatabaseTransactionConnection, records: readonly RunRecord[]): Promise<void> => {
  for (const chunk of chunked(records, 28)) {
    await tx.query(sql.unsafe`
    INSERT INTO workflow_runs (
      id, user_id, conversation_id, workflow, status, terminal_reason, provider, model, output, error,
      input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, total_tokens,
      cost, cost_unknown, usage_missing, model_call_count, tool_call_count,
      started_at, finished_at, duration_ms, correlation_id, trace_id, instance_id, last_heartbeat_at
    ) VALUES ${sql.join(chunk.map(runValues), sql.fragment`, `)}
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
  }
};

/** Model calls, tool calls and lifecycle events of the runs: one statement per kind (and chunk). */
const insertChildren = async (tx: DatabaseTransactionConnection, records: readonly RunRecord[]): Promise<void> => {
  const modelCalls = records.flatMap((r) => r.modelCalls.map((c) => ({ r, c })));
  for (const chunk of chunked(modelCalls, 19)) {
    await tx.query(sql.unsafe`
      INSERT INTO model_calls (
        id, run_id, sequence, provider, request_model, response_model, input_tokens, cache_read_tokens,
        cache_write_tokens, output_tokens, reasoning_tokens, cost, price_id, latency_ms,
        time_to_first_token_ms, finish_reason, usage_source, error, started_at
      ) VALUES ${sql.join(
        chunk.map(
          ({ r, c }) => sql.fragment`(
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
  const toolCalls = records.flatMap((r) => r.toolCalls.map((t) => ({ r, t })));
  for (const chunk of chunked(toolCalls, 9)) {
    await tx.query(sql.unsafe`
      INSERT INTO tool_calls (id, run_id, sequence, tool, arguments, result_size, duration_ms, error, started_at)
      VALUES ${sql.join(
        chunk.map(
          ({ r, t }) => sql.fragment`(
            ${t.id}, ${r.runId}, ${t.sequence}, ${t.tool}, ${sql.jsonb(t.arguments as never)}, ${t.resultSize},
            ${t.durationMs}, ${t.error}, ${ts(t.startedAt)})`,
        ),
        sql.fragment`, `,
      )}
      ON CONFLICT (run_id, sequence) DO NOTHING`);
  }
  const events = records.flatMap((r) => r.events.map((e) => ({ r, e })));
  for (const chunk of chunked(events, 10)) {
    await tx.query(sql.unsafe`
      INSERT INTO events (id, category, type, priority, user_id, conversation_id, run_id, correlation_id, data, created_at)
      VALUES ${sql.join(
        chunk.map(
          ({ r, e }) => sql.fragment`(
            ${e.id}, 'workflow', ${e.type}, ${e.priority}, ${r.userId}, ${r.conversationId}, ${r.runId},
            ${r.correlationId}, ${sql.jsonb({ ...e.data, workflow: r.workflow } as never)}, ${ts(e.at)})`,
        ),
        sql.fragment`, `,
      )}
      ON CONFLICT (id) DO NOTHING`);
  }
};

const messageValues = (r: RunRecord) => {
  const u = r.usage;
  const lastCall = r.modelCalls.filter((call) => call.error === null).at(-1);
  return sql.fragment`(
      ${r.assistantMessageId}, ${r.conversationId}, 'assistant', ${r.output ?? ''},
      (SELECT COALESCE(MAX(sequence_number), -1) + 1 FROM messages WHERE conversation_id = ${r.conversationId}),
      ${totalInput(u)}, ${u.output}, ${totalTokens(u)}, ${u.cacheRead}, ${u.reasoning}, ${costOf(r)},
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
    )`;
};

const costOf = (r: RunRecord): number | null => (r.costUnknown ? null : r.costUsd);

/**
 * The assistant messages of runs of distinct conversations, with the conversations' and
 * users' totals: three statements for the lot. The conversation rows are locked first
 * (the totals and the sequence numbers change together); a conversation that is gone
 * gets no message. Each message's sequence number is its conversation's MAX + 1, which
 * is why a statement takes one message per conversation.
 */
const insertMessagesOfDistinctConversations = async (tx: DatabaseTransactionConnection, records: readonly RunRecord[]): Promise<void> => {
  for (const chunk of chunked(records, 24)) {
    const updated = new Set(
      await tx.anyFirst(sql.type(z.object({ id: z.string() }))`
        UPDATE conversations c
        SET message_count = c.message_count + 1,
            total_tokens = c.total_tokens + v.tokens,
            total_cost = c.total_cost + v.cost,
            last_message_at = v.at,
            updated_at = now()
        FROM (VALUES ${sql.join(
          chunk.map((r) => sql.fragment`(${r.conversationId}::text, ${totalTokens(r.usage)}::bigint, ${costOf(r) ?? 0}::numeric, ${ts(r.finishedAt)})`),
          sql.fragment`, `,
        )}) AS v(id, tokens, cost, at)
        WHERE c.id = v.id
        RETURNING c.id`),
    );
    const written = chunk.filter((r) => r.conversationId !== null && updated.has(r.conversationId));
    if (written.length === 0) {
      continue;
    }
    await tx.query(sql.unsafe`
      INSERT INTO messages (
        id, conversation_id, role, content, sequence_number, prompt_tokens, completion_tokens, total_tokens,
        cached_input_tokens, reasoning_tokens, cost, model_used, provider_used, finish_reason, response_time_ms,
        run_id, correlation_id, tool_calls, extra_metadata, created_at
      ) VALUES ${sql.join(written.map(messageValues), sql.fragment`, `)}`);
    // Summed in SQL (numeric), exactly as adding each run's figures one by one; users in id order.
    await tx.query(sql.unsafe`
      UPDATE users u
      SET total_tokens = u.total_tokens + v.tokens, total_cost = u.total_cost + v.cost
      FROM (
        SELECT id, sum(tokens)::bigint AS tokens, sum(cost) AS cost
        FROM (VALUES ${sql.join(
          written.map((r) => sql.fragment`(${r.userId}::text, ${totalTokens(r.usage)}::bigint, ${costOf(r) ?? 0}::numeric)`),
          sql.fragment`, `,
        )}) AS runs(id, tokens, cost)
        GROUP BY id ORDER BY id
      ) AS v
      WHERE u.id = v.id`);
  }
};

/**
 * The assistant messages of the runs, in the runs' order: the first run of each
 * conversation in the batch together, a later run of the same conversation (rare: the
 * next turn ended before the batch was written) after them, so its sequence number follows.
 */
const insertAssistantMessages = async (tx: DatabaseTransactionConnection, records: readonly RunRecord[]): Promise<void> => {
  let pending = [...records];
  while (pending.length > 0) {
    const seen = new Set<string | null>();
    const round: RunRecord[] = [];
    const later: RunRecord[] = [];
    for (const record of pending) {
      (seen.has(record.conversationId) ? later : round).push(record);
      seen.add(record.conversationId);
    }
    await insertMessagesOfDistinctConversations(tx, round);
    pending = later;
  }
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
  const batch: RunRecord[] = [];
  for (const record of records) {
    if (fresh.delete(record.runId)) {
      batch.push(record); // a record listed twice in one batch is written once
    }
  }
  // A record ends its run's reservations, written now or already (a replay, a run the
  // orphan sweep took over): its usage is in the totals from this commit on.
  await releaseRunReservations(tx, records.map((record) => record.runId));
  if (batch.length === 0) {
    return [];
  }
  await upsertRuns(tx, batch);
  await insertChildren(tx, batch);
  await insertAssistantMessages(tx, batch.filter(writesMessage));
  const applied = batch.map((record) => record.runId);
  const rollups = rollupsFromRecords(batch);
  if (rollups.length > 0) {
    await applyRollups(tx, rollups);
  }
  return applied;
};
