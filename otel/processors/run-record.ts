import type { Attributes, AttributeValue } from '@opentelemetry/api';
import { hrTimeToMilliseconds } from '@opentelemetry/core';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace';
import { monotonicFactory } from 'ulid';
import type { Usage } from '../../machines/usage.js';
import { decodeModelResult, decodeRunEnd, numberAttribute, stringAttribute, type UsageSource } from '../run-span-codec.js';
import * as semconv from '../semconv.js';

/** Ids ordered as generated, even within one millisecond (events of one run keep their order). */
const ulid = monotonicFactory();

export type ModelCallRecord = {
  readonly id: string;
  readonly sequence: number;
  readonly provider: string;
  readonly requestModel: string;
  readonly responseModel: string | null;
  /** null: the provider reported no usage (`usage_missing`). */
  readonly usage: Usage | null;
  /** null: no price known, or nothing to price. */
  readonly costUsd: number | null;
  readonly priceId: string | null;
  readonly latencyMs: number;
  readonly timeToFirstChunkMs: number | null;
  readonly finishReason: string | null;
  readonly usageSource: UsageSource;
  readonly error: string | null;
  readonly startedAt: number;
};

export type ToolCallRecord = {
  readonly id: string;
  readonly sequence: number;
  readonly tool: string;
  readonly arguments: unknown;
  readonly resultSize: number | null;
  readonly durationMs: number;
  readonly error: string | null;
  readonly startedAt: number;
};

export type EventRecord = {
  readonly id: string;
  readonly type: string;
  readonly priority: 'low' | 'normal' | 'high' | 'critical';
  readonly data: Record<string, AttributeValue>;
  readonly at: number;
};

/**
 * Everything the database keeps about one finished run, built from its spans alone.
 * Plain JSON, so it can be spooled to disk and replayed.
 */
export type RunRecord = {
  readonly version: 1;
  readonly runId: string;
  readonly userId: string;
  readonly conversationId: string | null;
  readonly workflow: string;
  readonly status: string;
  readonly terminalReason: string | null;
  readonly error: string | null;
  readonly provider: string;
  readonly model: string;
  readonly correlationId: string;
  readonly traceId: string;
  readonly instanceId: string | null;
  readonly startedAt: number;
  readonly finishedAt: number;
  readonly usage: Usage;
  /** The machine's exact sum over the calls; null when a call's price was unknown (`costUnknown`). */
  readonly costUsd: number | null;
  readonly costUnknown: boolean;
  readonly usageMissingCalls: number;
  readonly modelCallCount: number;
  readonly toolCallCount: number;
  readonly output: string | null;
  readonly userMessageId: string | null;
  readonly assistantMessageId: string | null;
  readonly modelCalls: readonly ModelCallRecord[];
  readonly toolCalls: readonly ToolCallRecord[];
  readonly events: readonly EventRecord[];
};

const str = (attributes: Attributes, key: string): string | null => stringAttribute(attributes, key) ?? null;

const num = (attributes: Attributes, key: string): number | null => numberAttribute(attributes, key) ?? null;

const ms = (span: ReadableSpan, which: 'startTime' | 'endTime'): number => Math.round(hrTimeToMilliseconds(span[which]));

const HIGH_PRIORITY = new Set<string>([
  semconv.EVENT_WORKFLOW_FAILED,
  semconv.EVENT_WORKFLOW_TIMED_OUT,
  semconv.EVENT_WORKFLOW_INTERRUPTED,
  semconv.EVENT_BUDGET_EXCEEDED,
  semconv.EVENT_USAGE_MISSING,
  semconv.EVENT_PRICE_UNKNOWN,
]);

export const isRootRunSpan = (span: ReadableSpan): boolean =>
  span.attributes[semconv.ATTR_GEN_AI_OPERATION_NAME] === semconv.OPERATION_INVOKE_WORKFLOW;

export const isModelCallSpan = (span: ReadableSpan): boolean =>
  span.attributes[semconv.ATTR_GEN_AI_OPERATION_NAME] === semconv.OPERATION_CHAT;

export const isToolCallSpan = (span: ReadableSpan): boolean =>
  span.attributes[semconv.ATTR_GEN_AI_OPERATION_NAME] === semconv.OPERATION_EXECUTE_TOOL;

export const runIdOf = (span: ReadableSpan): string | null => str(span.attributes, semconv.ATTR_RUN_ID);

/** A model call as it begins: its row exists from then on, marked in flight. */
export type ModelCallStart = {
  readonly id: string;
  readonly sequence: number;
  readonly provider: string;
  readonly requestModel: string;
  readonly estimatedInputTokens: number | null;
  readonly startedAt: number;
};

/** Who a run is, for the rows written while it runs (from its root span). */
export type RunRef = {
  readonly runId: string;
  readonly userId: string;
  readonly conversationId: string | null;
  readonly correlationId: string;
  readonly workflow: string;
  readonly traceId: string;
};

/** What a live run reported since the last flush: committed in the next group commit. */
export type RunProgress = RunRef & {
  readonly modelCallStarts: ModelCallStart[];
  readonly modelCalls: ModelCallRecord[];
  readonly toolCalls: ToolCallRecord[];
  readonly events: EventRecord[];
  /** What the run is doing now (`callingModel`, `callingTool`, `running`). */
  liveState: string | null;
};

export const runRefOf = (root: ReadableSpan): RunRef => {
  const a = root.attributes;
  return {
    runId: str(a, semconv.ATTR_RUN_ID) ?? '',
    userId: str(a, semconv.ATTR_USER_ID) ?? '',
    conversationId: str(a, semconv.ATTR_GEN_AI_CONVERSATION_ID),
    correlationId: str(a, semconv.ATTR_CORRELATION_ID) ?? '',
    workflow: str(a, semconv.ATTR_WORKFLOW_NAME) ?? 'unknown',
    traceId: root.spanContext().traceId,
  };
};

/** A `chat` span as it starts. */
export const modelCallStartOf = (span: ReadableSpan): ModelCallStart => {
  const c = span.attributes;
  const startedAt = ms(span, 'startTime');
  return {
    id: str(c, semconv.ATTR_MODEL_CALL_ID) ?? ulid(startedAt),
    sequence: num(c, semconv.ATTR_MODEL_CALL_SEQUENCE) ?? 0,
    provider: str(c, semconv.ATTR_GEN_AI_PROVIDER_NAME) ?? 'unknown',
    requestModel: str(c, semconv.ATTR_GEN_AI_REQUEST_MODEL) ?? 'unknown',
    estimatedInputTokens: num(c, semconv.ATTR_ESTIMATED_INPUT_TOKENS),
    startedAt,
  };
};

/** An ended `chat` span. */
export const modelCallOf = (span: ReadableSpan): ModelCallRecord => {
  const start = modelCallStartOf(span);
  return {
    id: start.id,
    sequence: start.sequence,
    provider: start.provider,
    requestModel: start.requestModel,
    ...decodeModelResult(span.attributes),
    latencyMs: ms(span, 'endTime') - start.startedAt,
    error: span.status.code === 2 ? (span.status.message ?? 'error') : null,
    startedAt: start.startedAt,
  };
};

/** An ended `execute_tool` span. */
export const toolCallOf = (span: ReadableSpan): ToolCallRecord => {
  const c = span.attributes;
  const rawArguments = str(c, semconv.ATTR_CONTENT_TOOL_ARGUMENTS);
  let parsed: unknown;
  try {
    parsed = rawArguments === null ? null : JSON.parse(rawArguments);
  } catch {
    parsed = rawArguments;
  }
  const startedAt = ms(span, 'startTime');
  return {
    id: str(c, semconv.ATTR_TOOL_CALL_RECORD_ID) ?? ulid(startedAt),
    sequence: num(c, semconv.ATTR_TOOL_CALL_SEQUENCE) ?? 0,
    tool: str(c, semconv.ATTR_GEN_AI_TOOL_NAME) ?? 'unknown',
    arguments: parsed,
    resultSize: num(c, semconv.ATTR_TOOL_RESULT_SIZE),
    durationMs: ms(span, 'endTime') - startedAt,
    error: span.status.code === 2 ? (span.status.message ?? 'error') : null,
    startedAt,
  };
};

/** A lifecycle event of a root span; its id was chosen when it was added. */
export const eventOf = (event: TimedEvent): EventRecord => {
  const at = Math.round(hrTimeToMilliseconds(event.time));
  const attributes = event.attributes ?? {};
  const id = attributes[semconv.ATTR_EVENT_ID];
  return {
    id: typeof id === 'string' ? id : ulid(at),
    type: event.name,
    priority: HIGH_PRIORITY.has(event.name) ? 'high' : 'normal',
    data: Object.fromEntries(
      Object.entries(attributes).filter(
        (entry): entry is [string, AttributeValue] => entry[1] !== undefined && entry[0] !== semconv.ATTR_EVENT_ID,
      ),
    ),
    at,
  };
};

/**
 * Builds a run's record from its ended root span and its model and tool calls (decoded
 * from their spans as each ended, by `modelCallOf` and `toolCallOf`).
 */
export const buildRunRecord = (
  root: ReadableSpan,
  calls: { readonly modelCalls: readonly ModelCallRecord[]; readonly toolCalls: readonly ToolCallRecord[] },
): RunRecord => {
  const a = root.attributes;
  const runId = str(a, semconv.ATTR_RUN_ID) ?? '';
  const modelCalls = [...calls.modelCalls].sort((x, y) => x.sequence - y.sequence);
  const toolCalls = [...calls.toolCalls].sort((x, y) => x.sequence - y.sequence);
  const events = root.events.map(eventOf);
  const end = decodeRunEnd(a);
  return {
    version: 1,
    runId,
    userId: str(a, semconv.ATTR_USER_ID) ?? '',
    conversationId: str(a, semconv.ATTR_GEN_AI_CONVERSATION_ID),
    workflow: str(a, semconv.ATTR_WORKFLOW_NAME) ?? 'unknown',
    status: end.status,
    terminalReason: end.terminalReason,
    error: end.error,
    provider: str(a, semconv.ATTR_GEN_AI_PROVIDER_NAME) ?? 'unknown',
    model: str(a, semconv.ATTR_GEN_AI_REQUEST_MODEL) ?? 'unknown',
    correlationId: str(a, semconv.ATTR_CORRELATION_ID) ?? '',
    traceId: root.spanContext().traceId,
    instanceId: str(a, semconv.ATTR_RUN_INSTANCE_ID),
    startedAt: ms(root, 'startTime'),
    finishedAt: ms(root, 'endTime'),
    usage: end.usage,
    costUsd: end.costUsd,
    costUnknown: end.costUnknown,
    usageMissingCalls: end.usageMissingCalls,
    modelCallCount: end.modelCalls,
    toolCallCount: end.toolCalls,
    output: end.output,
    userMessageId: str(a, semconv.ATTR_USER_MESSAGE_ID),
    assistantMessageId: str(a, semconv.ATTR_ASSISTANT_MESSAGE_ID),
    modelCalls,
    toolCalls,
    events,
  };
};
