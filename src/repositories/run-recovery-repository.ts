import { sql, type DatabasePool, type DatabaseTransactionConnection } from 'slonik';
import { ulid } from '../ids.js';
import { z } from 'zod';
import { runCostOfCalls, sumUsage } from '../../machines/usage.js';
import type { EventRecord, ModelCallRecord, RunRecord, ToolCallRecord } from '../../otel/processors/run-record.js';
import { EVENTS_CHANNEL, type Notifier } from '../db/notifications.js';
import { applyRunRecords, usageOfCallRow } from './run-records-repository.js';
import { ModelCallRow, RunRow, ToolCallRow } from './runs-repository.js';

const INTERRUPTED_ERROR = 'the service stopped while the run was in flight';

/** A run this instance just took over: its row, and the message ids its turn named. */
const ClaimedRun = RunRow.pick({
  id: true,
  user_id: true,
  conversation_id: true,
  correlation_id: true,
  workflow: true,
  provider: true,
  model: true,
  trace_id: true,
  instance_id: true,
  started_at: true,
}).extend({ input: z.record(z.string(), z.unknown()).nullable(), finished_at: z.string() });
type ClaimedRun = z.infer<typeof ClaimedRun>;

// The model and tool call rows as the run detail reads them, with the run they belong to.
const RecordedCall = ModelCallRow.extend({
  run_id: z.string(),
  usage_source: z.enum(['provider', 'estimated', 'missing']),
  finished_at: z.string().nullable(),
});
type RecordedCall = z.infer<typeof RecordedCall>;

const RecordedToolCall = ToolCallRow.extend({ run_id: z.string() });

/** A recorded model call; one still in flight was cut by the stop: its usage is missing. */
const callOfRow = (row: RecordedCall, endedAt: number): ModelCallRecord => {
  const startedAt = Date.parse(row.started_at);
  const inFlight = row.finished_at === null;
  const usage = inFlight ? null : usageOfCallRow(row);
  return {
    id: row.id,
    sequence: row.sequence,
    provider: row.provider,
    requestModel: row.request_model,
    responseModel: row.response_model,
    usage,
    costUsd: usage === null ? null : row.cost,
    priceId: usage === null ? null : row.price_id,
    latencyMs: inFlight ? Math.max(0, endedAt - startedAt) : (row.latency_ms ?? 0),
    timeToFirstChunkMs: row.time_to_first_token_ms,
    finishReason: inFlight ? 'interrupted' : row.finish_reason,
    usageSource: usage === null ? 'missing' : row.usage_source,
    error: inFlight ? 'interrupted' : row.error,
    startedAt,
  };
};

/**
 * The record of a run its owner never finished, from what was committed while it ran:
 * every model call that reported keeps its usage and cost; a call in flight is
 * usage_missing (its estimate stays in its own column, outside every sum); the run
 * leaves an (empty) interrupted assistant message so the conversation keeps alternating.
 */
const recordOfOrphan = (run: ClaimedRun, calls: readonly RecordedCall[], tools: readonly z.infer<typeof RecordedToolCall>[]): RunRecord => {
  const endedAt = Date.parse(run.finished_at);
  const modelCalls = calls.map((row) => callOfRow(row, endedAt));
  const missing = modelCalls.filter((call) => call.usage === null);
  const toolCalls: ToolCallRecord[] = tools.map((row) => ({
    id: row.id,
    sequence: row.sequence,
    tool: row.tool,
    arguments: row.arguments,
    resultSize: row.result_size,
    durationMs: row.duration_ms ?? 0,
    error: row.error,
    startedAt: Date.parse(row.started_at),
  }));
  const events: EventRecord[] = [
    ...missing
      .filter((call) => call.error === 'interrupted')
      .map((call): EventRecord => ({
        id: `mis_${run.id}_${call.sequence}`,
        type: 'usage_missing',
        priority: 'high',
        data: { 'gen_ai.provider.name': call.provider, 'gen_ai.request.model': call.requestModel, reason: 'interrupted' },
        at: endedAt,
      })),
    {
      id: `int_${run.id}`,
      type: 'workflow_interrupted',
      priority: 'high',
      data: { reason: 'process_stopped', 'chatter.run.terminal_reason': 'interrupted' },
      at: endedAt,
    },
  ];
  const input = run.input ?? {};
  const assistantMessageId = typeof input['assistant_message_id'] === 'string' ? input['assistant_message_id'] : ulid();
  const userMessageId = typeof input['user_message_id'] === 'string' ? input['user_message_id'] : null;
  return {
    version: 1,
    runId: run.id,
    userId: run.user_id,
    conversationId: run.conversation_id,
    workflow: run.workflow,
    status: 'interrupted',
    terminalReason: 'interrupted',
    error: INTERRUPTED_ERROR,
    provider: run.provider ?? 'unknown',
    model: run.model ?? 'unknown',
    correlationId: run.correlation_id,
    traceId: run.trace_id ?? '',
    instanceId: run.instance_id,
    startedAt: Date.parse(run.started_at),
    finishedAt: endedAt,
    usage: sumUsage(modelCalls.map((call) => call.usage)),
    ...runCostOfCalls(modelCalls),
    usageMissingCalls: missing.length,
    modelCallCount: modelCalls.length,
    toolCallCount: toolCalls.length,
    output: '',
    userMessageId,
    assistantMessageId,
    modelCalls,
    toolCalls,
    events,
  };
};

const recover = async (
  tx: DatabaseTransactionConnection,
  options: { instanceId?: string; staleAfterMs: number; allRunning?: boolean },
): Promise<{ runIds: string[]; maxEventSeq: number | null }> => {
  // The claim is atomic: whichever instance's UPDATE gets a run takes it over, once.
  const claimed = await tx.any(sql.type(ClaimedRun)`
    UPDATE workflow_runs
    SET status = 'interrupted', terminal_reason = 'interrupted', error = ${INTERRUPTED_ERROR},
        finished_at = now(), live_state = NULL,
        duration_ms = LEAST(2147483647, GREATEST(0, EXTRACT(EPOCH FROM (now() - started_at)) * 1000))::int
    WHERE status IN ('queued', 'running')
      AND (${options.allRunning === true}
           OR instance_id = ${options.instanceId ?? null}
           OR last_heartbeat_at < now() - make_interval(secs => ${options.staleAfterMs / 1000}))
    RETURNING id, user_id, conversation_id, correlation_id, workflow, provider, model, input, trace_id,
              instance_id, started_at, finished_at`);
  if (claimed.length === 0) {
    return { runIds: [], maxEventSeq: null };
  }
  const ids = sql.array(
    claimed.map((run) => run.id),
    'text',
  );
  const calls = await tx.any(sql.type(RecordedCall)`
    SELECT id, run_id, sequence, provider, request_model, response_model, input_tokens, cache_read_tokens,
           cache_write_tokens, output_tokens, reasoning_tokens, cost, price_id, latency_ms, time_to_first_token_ms,
           finish_reason, usage_source, error, started_at, finished_at
    FROM model_calls WHERE run_id = ANY(${ids}) ORDER BY run_id, sequence`);
  const tools = await tx.any(sql.type(RecordedToolCall)`
    SELECT id, run_id, sequence, tool, arguments, result_size, duration_ms, error, started_at
    FROM tool_calls WHERE run_id = ANY(${ids}) ORDER BY run_id, sequence`);
  const records = claimed.map((run) =>
    recordOfOrphan(
      run,
      calls.filter((call) => call.run_id === run.id),
      tools.filter((tool) => tool.run_id === run.id),
    ),
  );
  // The same path as a finished run's record: run row, message, totals and rollups in
  // this transaction, exactly once (a late record of the run is skipped by applied_runs).
  const applied = await applyRunRecords(tx, records);
  return { runIds: claimed.map((run) => run.id), maxEventSeq: applied.maxEventSeq };
};

/**
 * Ends the runs a stopped process left `running`: those of this instance (it just
 * started, so none of them is live), those whose owner stopped heartbeating, or (the
 * embedded database) all of them. Each becomes `interrupted` in one transaction, keeping
 * every model call recorded while it ran (see recordOfOrphan), with one
 * `workflow_interrupted` event; the new events are announced through `notifier`.
 */
export const interruptOrphanedRuns = async (
  pool: DatabasePool,
  /** `instanceId`: this instance's own runs count as orphaned (it just started); without it, staleness only. */
  options: { instanceId?: string; staleAfterMs: number; allRunning?: boolean; notifier?: Notifier },
): Promise<string[]> => {
  if (options.notifier === undefined) {
    return (await pool.transaction((tx) => recover(tx, options))).runIds;
  }
  return options.notifier.transaction(pool, async (tx, notify) => {
    const result = await recover(tx, options);
    if (result.maxEventSeq !== null) {
      notify(EVENTS_CHANNEL, String(result.maxEventSeq));
    }
    return result.runIds;
  });
};

/** Marks live runs as still owned (the sweep above leaves them alone). */
export const heartbeatRuns = async (pool: DatabasePool, runIds: readonly string[]): Promise<void> => {
  if (runIds.length === 0) {
    return;
  }
  await pool.query(sql.unsafe`
    UPDATE workflow_runs SET last_heartbeat_at = now()
    WHERE id = ANY(${sql.array([...runIds], 'text')}) AND status = 'running'`);
};
