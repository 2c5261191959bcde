import { sql, type DatabaseTransactionConnection } from 'slonik';
import { promptTokens, totalTokens, type Usage } from '../../machines/usage.js';
import { z } from 'zod';
import type { ModelCallRecord, RunProgress, RunRecord } from '../../otel/processors/run-record.js';
import { applyRollups } from '../analytics/analytics-upsert.js';
import { rollupsFromRecords } from '../analytics/run-record-rollups.js';
import { ConversationRow } from './conversations-repository.js';
import { messageColumns, MessageRow } from './messages-repository.js';
import { assistantMessageOf, runCostOf, writesAssistantMessage } from '../persistence/assistant-message.js';
import { releaseRunReservations } from './budget-reservations-repository.js';

const ts = (ms: number) => sql.timestamp(new Date(ms));

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
      ${promptTokens(u)}, ${u.cacheRead}, ${u.cacheWrite}, ${u.output}, ${u.reasoning}, ${totalTokens(u)},
      ${runCostOf(r)}, ${r.costUnknown}, ${r.usageMissingCalls > 0},
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
      trace_id = EXCLUDED.trace_id, last_heartbeat_at = EXCLUDED.last_heartbeat_at, live_state = NULL`);
  }
};

/** The token columns of a model_calls row (input_tokens counts the cache buckets in, as OTel does). */
export type CallRowTokens = {
  readonly input_tokens: number | null;
  readonly cache_read_tokens: number | null;
  readonly cache_write_tokens: number | null;
  readonly output_tokens: number | null;
  readonly reasoning_tokens: number | null;
};

/** The usage a model_calls row holds, as written by {@link modelCallValues}; null when the call reported none. */
export const usageOfCallRow = (row: CallRowTokens): Usage | null => {
  if (row.input_tokens === null || row.output_tokens === null) {
    return null;
  }
  const cacheRead = row.cache_read_tokens ?? 0;
  const cacheWrite = row.cache_write_tokens ?? 0;
  return {
    inputUncached: row.input_tokens - cacheRead - cacheWrite,
    cacheRead,
    cacheWrite,
    output: row.output_tokens,
    reasoning: row.reasoning_tokens ?? 0,
  };
};

const modelCallValues = (runId: string, c: ModelCallRecord) => sql.fragment`(
    ${c.id}, ${runId}, ${c.sequence}, ${c.provider}, ${c.requestModel}, ${c.responseModel},
    ${c.usage === null ? null : promptTokens(c.usage)}, ${c.usage?.cacheRead ?? null},
    ${c.usage?.cacheWrite ?? null}, ${c.usage?.output ?? null}, ${c.usage?.reasoning ?? null},
    ${c.costUsd}, ${c.priceId}, ${c.latencyMs}, ${c.timeToFirstChunkMs}, ${c.finishReason},
    ${c.usageSource}, ${c.error}, ${ts(c.startedAt)}, ${ts(c.startedAt + c.latencyMs)})`;

/**
 * Ended model calls: a new row, or the in-flight row their start left (never a call that
 * already ended: a replay changes nothing). One (run, sequence) at most once per call.
 */
const upsertModelCalls = async (
  tx: DatabaseTransactionConnection,
  calls: readonly { runId: string; call: ModelCallRecord }[],
): Promise<void> => {
  for (const chunk of chunked(calls, 20)) {
    await tx.query(sql.unsafe`
      INSERT INTO model_calls (
        id, run_id, sequence, provider, request_model, response_model, input_tokens, cache_read_tokens,
        cache_write_tokens, output_tokens, reasoning_tokens, cost, price_id, latency_ms,
        time_to_first_token_ms, finish_reason, usage_source, error, started_at, finished_at
      ) VALUES ${sql.join(
        chunk.map(({ runId, call }) => modelCallValues(runId, call)),
        sql.fragment`, `,
      )}
      ON CONFLICT (run_id, sequence) DO UPDATE SET
        response_model = EXCLUDED.response_model, input_tokens = EXCLUDED.input_tokens,
        cache_read_tokens = EXCLUDED.cache_read_tokens, cache_write_tokens = EXCLUDED.cache_write_tokens,
        output_tokens = EXCLUDED.output_tokens, reasoning_tokens = EXCLUDED.reasoning_tokens,
        cost = EXCLUDED.cost, price_id = EXCLUDED.price_id, latency_ms = EXCLUDED.latency_ms,
        time_to_first_token_ms = EXCLUDED.time_to_first_token_ms, finish_reason = EXCLUDED.finish_reason,
        usage_source = EXCLUDED.usage_source, error = EXCLUDED.error, finished_at = EXCLUDED.finished_at
      WHERE model_calls.finished_at IS NULL`);
  }
};

type Children = {
  readonly runs: readonly {
    readonly runId: string;
    readonly userId: string;
    readonly conversationId: string | null;
    readonly correlationId: string;
    readonly workflow: string;
  }[];
  readonly modelCalls: readonly { runId: string; call: ModelCallRecord }[];
  readonly toolCalls: readonly { runId: string; call: RunRecord['toolCalls'][number] }[];
  readonly events: readonly { runId: string; event: RunRecord['events'][number] }[];
};

/**
 * Model calls, tool calls and lifecycle events: one statement per kind (and chunk).
 * Returns the highest event sequence number inserted (null: none), which the caller
 * announces to the event streams.
 */
const insertChildren = async (tx: DatabaseTransactionConnection, children: Children): Promise<number | null> => {
  await upsertModelCalls(tx, children.modelCalls);
  for (const chunk of chunked(children.toolCalls, 9)) {
    await tx.query(sql.unsafe`
      INSERT INTO tool_calls (id, run_id, sequence, tool, arguments, result_size, duration_ms, error, started_at)
      VALUES ${sql.join(
        chunk.map(
          ({ runId, call: t }) => sql.fragment`(
            ${t.id}, ${runId}, ${t.sequence}, ${t.tool}, ${sql.jsonb(t.arguments as never)}, ${t.resultSize},
            ${t.durationMs}, ${t.error}, ${ts(t.startedAt)})`,
        ),
        sql.fragment`, `,
      )}
      ON CONFLICT (run_id, sequence) DO NOTHING`);
  }
  const runs = new Map(children.runs.map((run) => [run.runId, run]));
  let maxSeq: number | null = null;
  for (const chunk of chunked(children.events, 10)) {
    const seq = await tx.maybeOneFirst(sql.type(z.object({ max: z.number().nullable() }))`
      WITH inserted AS (
        INSERT INTO events (id, category, type, priority, user_id, conversation_id, run_id, correlation_id, data, created_at)
        VALUES ${sql.join(
          chunk.map(({ runId, event: e }) => {
            const r = runs.get(runId)!;
            return sql.fragment`(
              ${e.id}, 'workflow', ${e.type}, ${e.priority}, ${r.userId}, ${r.conversationId}, ${runId},
              ${r.correlationId}, ${sql.jsonb({ ...e.data, workflow: r.workflow } as never)}, ${ts(e.at)})`;
          }),
          sql.fragment`, `,
        )}
        ON CONFLICT (id) DO NOTHING
        RETURNING seq
      )
      SELECT max(seq)::bigint AS max FROM inserted`);
    if (seq !== null) {
      maxSeq = Math.max(maxSeq ?? 0, seq);
    }
  }
  return maxSeq;
};

const childrenOfRecords = (records: readonly RunRecord[]): Children => ({
  runs: records,
  modelCalls: records.flatMap((r) => r.modelCalls.map((call) => ({ runId: r.runId, call }))),
  toolCalls: records.flatMap((r) => r.toolCalls.map((call) => ({ runId: r.runId, call }))),
  events: records.flatMap((r) => r.events.map((event) => ({ runId: r.runId, event }))),
});

/**
 * What live runs reported since the last flush, in the caller's (group commit)
 * transaction: in-flight markers of model calls that started, the calls and tool
 * calls that ended, lifecycle events; then each run's row shows its usage so far
 * (summed from its ended model calls, so replaying changes nothing) and its state.
 * Returns the highest event sequence number inserted.
 */
export const applyRunProgress = async (tx: DatabaseTransactionConnection, reported: readonly RunProgress[]): Promise<number | null> => {
  if (reported.length === 0) {
    return null;
  }
  // Only runs still running take progress; FOR SHARE makes a takeover of one of them
  // (run-recovery-repository) wait for this commit, so it sums what this writes.
  const live = new Set(
    await tx.anyFirst(sql.type(z.object({ id: z.string() }))`
      SELECT id FROM workflow_runs
      WHERE id = ANY(${sql.array(
        reported.map((p) => p.runId),
        'text',
      )}) AND status = 'running'
      ORDER BY id FOR SHARE`),
  );
  const progress = reported.filter((p) => live.has(p.runId));
  if (progress.length === 0) {
    return null;
  }
  const starts = progress.flatMap((p) => p.modelCallStarts.map((call) => ({ runId: p.runId, call })));
  for (const chunk of chunked(starts, 7)) {
    await tx.query(sql.unsafe`
      INSERT INTO model_calls (id, run_id, sequence, provider, request_model, usage_source, estimated_input_tokens, started_at)
      SELECT v.id, v.run_id, v.sequence, v.provider, v.request_model, 'missing', v.estimate, v.started_at
      FROM (VALUES ${sql.join(
        chunk.map(
          ({ runId, call }) => sql.fragment`(${call.id}::text, ${runId}::text, ${call.sequence}::int, ${call.provider}::text,
            ${call.requestModel}::text, ${call.estimatedInputTokens}::bigint, ${ts(call.startedAt)}::timestamptz)`,
        ),
        sql.fragment`, `,
      )}) AS v(id, run_id, sequence, provider, request_model, estimate, started_at)
      ON CONFLICT (run_id, sequence) DO NOTHING`);
  }
  const maxSeq = await insertChildren(tx, {
    runs: progress,
    modelCalls: progress.flatMap((p) => p.modelCalls.map((call) => ({ runId: p.runId, call }))),
    toolCalls: progress.flatMap((p) => p.toolCalls.map((call) => ({ runId: p.runId, call }))),
    events: progress.flatMap((p) => p.events.map((event) => ({ runId: p.runId, event }))),
  });
  await tx.query(sql.unsafe`
    UPDATE workflow_runs r
    SET input_tokens = COALESCE(s.input_tokens, 0), cache_read_tokens = COALESCE(s.cache_read_tokens, 0),
        cache_write_tokens = COALESCE(s.cache_write_tokens, 0), output_tokens = COALESCE(s.output_tokens, 0),
        reasoning_tokens = COALESCE(s.reasoning_tokens, 0), total_tokens = COALESCE(s.total_tokens, 0),
        cost = s.cost, model_call_count = COALESCE(s.calls, 0),
        usage_missing = COALESCE(s.missing, false),
        live_state = COALESCE(v.state, r.live_state), trace_id = COALESCE(r.trace_id, v.trace_id),
        last_heartbeat_at = now()
    FROM (VALUES ${sql.join(
      progress.map((p) => sql.fragment`(${p.runId}::text, ${p.liveState}::text, ${p.traceId}::text)`),
      sql.fragment`, `,
    )}) AS v(id, state, trace_id)
    LEFT JOIN LATERAL (
      SELECT sum(input_tokens)::bigint AS input_tokens, sum(cache_read_tokens)::bigint AS cache_read_tokens,
             sum(cache_write_tokens)::bigint AS cache_write_tokens, sum(output_tokens)::bigint AS output_tokens,
             sum(reasoning_tokens)::bigint AS reasoning_tokens,
             sum(COALESCE(input_tokens, 0) + COALESCE(output_tokens, 0))::bigint AS total_tokens,
             sum(cost) AS cost, count(*)::int AS calls, bool_or(usage_source = 'missing') AS missing
      FROM model_calls WHERE run_id = v.id AND finished_at IS NOT NULL
    ) s ON true
    WHERE r.id = v.id AND r.status = 'running'`);
  return maxSeq;
};

const messageValues = (r: RunRecord) => {
  const m = assistantMessageOf(r);
  return sql.fragment`(
      ${m.id}, ${m.conversation_id}, 'assistant', ${m.content},
      (SELECT COALESCE(MAX(sequence_number), -1) + 1 FROM messages WHERE conversation_id = ${m.conversation_id}),
      ${m.prompt_tokens}, ${m.completion_tokens}, ${m.total_tokens}, ${m.cached_input_tokens}, ${m.reasoning_tokens},
      ${m.cost}, ${m.model_used}, ${m.provider_used}, ${m.finish_reason}, ${m.response_time_ms}, ${m.run_id},
      ${m.correlation_id}, ${m.tool_calls === null ? null : sql.jsonb(m.tool_calls as never)}, ${sql.jsonb(m.extra_metadata)},
      ${sql.timestamp(new Date(m.created_at))}
    )`;
};

/** What a run's record left in the conversation: the rows a chat answers with. */
export type CommittedReply = {
  readonly message: MessageRow | null;
  readonly conversation: ConversationRow | null;
};

/**
 * The assistant messages of runs of distinct conversations, with the conversations' and
 * users' totals: three statements for the lot. The conversation rows are locked first
 * (the totals and the sequence numbers change together); a conversation that is gone
 * gets no message. Each message's sequence number is its conversation's MAX + 1, which
 * is why a statement takes one message per conversation. Returns the rows as written.
 */
const insertMessagesOfDistinctConversations = async (
  tx: DatabaseTransactionConnection,
  records: readonly RunRecord[],
  replies: Map<string, CommittedReply>,
): Promise<void> => {
  for (const chunk of chunked(records, 24)) {
    const updated = new Map(
      (
        await tx.any(sql.type(ConversationRow)`
        UPDATE conversations c
        SET message_count = c.message_count + 1,
            total_tokens = c.total_tokens + v.tokens,
            total_cost = c.total_cost + v.cost,
            last_message_at = v.at,
            updated_at = now()
        FROM (VALUES ${sql.join(
          chunk.map(
            (r) =>
              sql.fragment`(${r.conversationId}::text, ${totalTokens(r.usage)}::bigint, ${runCostOf(r) ?? 0}::numeric, ${ts(r.finishedAt)})`,
          ),
          sql.fragment`, `,
        )}) AS v(id, tokens, cost, at)
        WHERE c.id = v.id
        RETURNING c.*`)
      ).map((row) => [row.id, row]),
    );
    const written = chunk.filter((r) => r.conversationId !== null && updated.has(r.conversationId));
    if (written.length === 0) {
      continue;
    }
    const messages = await tx.any(sql.type(MessageRow)`
      INSERT INTO messages (
        id, conversation_id, role, content, sequence_number, prompt_tokens, completion_tokens, total_tokens,
        cached_input_tokens, reasoning_tokens, cost, model_used, provider_used, finish_reason, response_time_ms,
        run_id, correlation_id, tool_calls, extra_metadata, created_at
      ) VALUES ${sql.join(written.map(messageValues), sql.fragment`, `)}
      RETURNING ${messageColumns}`);
    const byRun = new Map(messages.map((message) => [message.run_id, message]));
    for (const r of written) {
      replies.set(r.runId, { message: byRun.get(r.runId) ?? null, conversation: updated.get(r.conversationId!) ?? null });
    }
    // Summed in SQL (numeric), exactly as adding each run's figures one by one; users in id order.
    await tx.query(sql.unsafe`
      UPDATE users u
      SET total_tokens = u.total_tokens + v.tokens, total_cost = u.total_cost + v.cost
      FROM (
        SELECT id, sum(tokens)::bigint AS tokens, sum(cost) AS cost
        FROM (VALUES ${sql.join(
          written.map((r) => sql.fragment`(${r.userId}::text, ${totalTokens(r.usage)}::bigint, ${runCostOf(r) ?? 0}::numeric)`),
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
const insertAssistantMessages = async (
  tx: DatabaseTransactionConnection,
  records: readonly RunRecord[],
  replies: Map<string, CommittedReply>,
): Promise<void> => {
  let pending = [...records];
  while (pending.length > 0) {
    const seen = new Set<string | null>();
    const round: RunRecord[] = [];
    const later: RunRecord[] = [];
    for (const record of pending) {
      (seen.has(record.conversationId) ? later : round).push(record);
      seen.add(record.conversationId);
    }
    await insertMessagesOfDistinctConversations(tx, round, replies);
    pending = later;
  }
};

export type AppliedRunRecords = {
  /** The run ids written now (a replayed record is skipped). */
  readonly applied: string[];
  /** Per run written now, the message and conversation rows it left. */
  readonly replies: Map<string, CommittedReply>;
  /** The highest event sequence number inserted (null: none). */
  readonly maxEventSeq: number | null;
};

/**
 * Writes finished runs' records in the caller's transaction, each at most once: a run
 * id already in `applied_runs` is skipped, so replays (spool, retries) change nothing.
 */
export const applyRunRecords = async (tx: DatabaseTransactionConnection, records: readonly RunRecord[]): Promise<AppliedRunRecords> => {
  const replies = new Map<string, CommittedReply>();
  if (records.length === 0) {
    return { applied: [], replies, maxEventSeq: null };
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
  await releaseRunReservations(
    tx,
    records.map((record) => record.runId),
  );
  if (batch.length === 0) {
    return { applied: [], replies, maxEventSeq: null };
  }
  await upsertRuns(tx, batch);
  const maxEventSeq = await insertChildren(tx, childrenOfRecords(batch));
  await insertAssistantMessages(tx, batch.filter(writesAssistantMessage), replies);
  const rollups = rollupsFromRecords(batch);
  if (rollups.length > 0) {
    await applyRollups(tx, rollups);
  }
  return { applied: batch.map((record) => record.runId), replies, maxEventSeq };
};
