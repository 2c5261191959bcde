import type { RunRecord } from '../../otel/processors/run-record.js';
import { completionTokens, promptTokens, totalTokens } from '../../machines/usage.js';
import type { MessageRow } from '../repositories/messages-repository.js';

/** The assistant message a run leaves, as stored: every field but its sequence number. */
export type AssistantMessage = Omit<MessageRow, 'sequence_number'> & {
  readonly tool_calls: { tool: string; arguments: unknown; ok: boolean }[] | null;
  readonly extra_metadata: Record<string, string | number | boolean | null>;
};

/**
 * A run leaves an assistant message when it called a model or produced text, and an
 * interrupted run always does (empty, perhaps): the conversation keeps alternating, so
 * the next turn's history never holds two user messages in a row.
 */
export const writesAssistantMessage = (record: RunRecord): boolean =>
  record.assistantMessageId !== null &&
  record.conversationId !== null &&
  (record.status === 'interrupted' || record.modelCallCount > 0 || (record.output ?? '') !== '');

/**
 * The run's cost, as the machine summed it (exactly, in integer 1e-10 USD units) and the
 * root span carries it, so the message, the run row and the reply hold the same number;
 * null when a call's model had no price (also for a record spooled before that was
 * encoded as a null cost).
 */
export const runCostOf = (record: RunRecord): number | null => (record.costUnknown ? null : record.costUsd);

const finishReasonOf = (record: RunRecord): string => {
  if (record.status === 'completed') {
    return record.modelCalls.filter((call) => call.error === null).at(-1)?.finishReason ?? 'stop';
  }
  return record.terminalReason ?? record.status;
};

/**
 * The assistant message of a run's record: what the writer inserts and, while the
 * record waits in the spool, what the chat answers (the same fields from the same record).
 *
 * @throws Error when the record writes no message (see writesAssistantMessage).
 */
export const assistantMessageOf = (record: RunRecord): AssistantMessage => {
  if (record.assistantMessageId === null || record.conversationId === null) {
    throw new Error(`run ${record.runId} writes no assistant message`);
  }
  const u = record.usage;
  const lastCall = record.modelCalls.filter((call) => call.error === null).at(-1);
  return {
    id: record.assistantMessageId,
    conversation_id: record.conversationId,
    role: 'assistant',
    content: record.output ?? '',
    prompt_tokens: promptTokens(u),
    completion_tokens: completionTokens(u),
    total_tokens: totalTokens(u),
    cached_input_tokens: u.cacheRead,
    reasoning_tokens: u.reasoning,
    cost: runCostOf(record),
    model_used: lastCall?.responseModel ?? record.model,
    provider_used: record.provider,
    finish_reason: finishReasonOf(record),
    response_time_ms: Math.max(0, record.finishedAt - record.startedAt),
    run_id: record.runId,
    correlation_id: record.correlationId,
    rating: null,
    rating_count: 0,
    created_at: new Date(record.finishedAt).toISOString(),
    tool_calls:
      record.toolCalls.length === 0 ? null : record.toolCalls.map((t) => ({ tool: t.tool, arguments: t.arguments, ok: t.error === null })),
    extra_metadata: {
      run_status: record.status,
      terminal_reason: record.terminalReason,
      cache_write_tokens: u.cacheWrite,
      usage_missing_calls: record.usageMissingCalls,
      cost_unknown: record.costUnknown,
      model_calls: record.modelCallCount,
    },
  };
};
