import { SpanKind, SpanStatusCode, context, trace, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { ulid } from 'ulid';
import {
  ATTR_ASSISTANT_MESSAGE_ID,
  ATTR_CONTENT_OUTPUT,
  ATTR_CONTENT_TOOL_ARGUMENTS,
  ATTR_CORRELATION_ID,
  ATTR_ERROR_TYPE,
  ATTR_GEN_AI_CONVERSATION_ID,
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_RESPONSE_FINISH_REASONS,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_TOOL_CALL_ID,
  ATTR_GEN_AI_TOOL_NAME,
  ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_COST,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
  ATTR_MODEL_CALL_SEQUENCE,
  ATTR_PRICE_ID,
  ATTR_RUN_COST_UNKNOWN,
  ATTR_RUN_ERROR,
  ATTR_RUN_ID,
  ATTR_RUN_INSTANCE_ID,
  ATTR_RUN_MODEL_CALLS,
  ATTR_RUN_STATUS,
  ATTR_RUN_TERMINAL_REASON,
  ATTR_RUN_TOOL_CALLS,
  ATTR_RUN_USAGE_MISSING_CALLS,
  ATTR_TIME_TO_FIRST_CHUNK_MS,
  ATTR_TOOL_CALL_SEQUENCE,
  ATTR_TOOL_OK,
  ATTR_TOOL_RESULT_SIZE,
  ATTR_UNCACHED_INPUT_TOKENS,
  ATTR_USAGE_SOURCE,
  ATTR_USER_ID,
  ATTR_USER_MESSAGE_ID,
  ATTR_WORKFLOW_NAME,
  EVENT_MODEL_RESPONSE,
  EVENT_PRICE_UNKNOWN,
  EVENT_RETRY_SCHEDULED,
  EVENT_TOOL_CALLED,
  EVENT_USAGE_MISSING,
  EVENT_WORKFLOW_STARTED,
  OPERATION_CHAT,
  OPERATION_EXECUTE_TOOL,
  OPERATION_INVOKE_WORKFLOW,
  SPAN_CHAT,
  SPAN_EXECUTE_TOOL,
  SPAN_INVOKE_WORKFLOW,
  TERMINAL_EVENT_BY_STATUS,
} from '../../../otel/semconv.js';

/*
 * Emits a run's span tree exactly as docs/run-contract.md ("Spans") describes it:
 * an HTTP server span, the root `invoke_workflow <workflow>`, one `chat <model>` per
 * model call attempt and one `execute_tool <tool>` per tool call. Times are explicit
 * (epoch ms) so durations and hour buckets are known exactly.
 */

export type RunStatus = keyof typeof TERMINAL_EVENT_BY_STATUS;

export type EmitUsage = {
  readonly inputUncached: number;
  readonly cacheRead: number;
  readonly cacheWrite: number;
  readonly output: number;
  readonly reasoning: number;
};

export type EmitChatCall = {
  /** Defaults to the run's provider and model. */
  readonly provider?: string;
  readonly requestModel?: string;
  readonly responseModel?: string;
  /** null → no usage attributes (usage missing, or a failed attempt). */
  readonly usage: EmitUsage | null;
  readonly usageSource?: 'provider' | 'estimated' | 'missing';
  /** null → no `gen_ai.usage.cost` (price unknown). */
  readonly costUsd: number | null;
  readonly latencyMs: number;
  readonly timeToFirstChunkMs?: number | null;
  readonly finishReason?: string;
  /** A failed attempt: status ERROR with this `error.type`, no usage attributes. */
  readonly errorType?: string;
};

export type EmitToolCall = {
  readonly tool: string;
  readonly ok: boolean;
  readonly durationMs: number;
  readonly resultSize?: number;
};

export type EmitStep = { readonly chat: EmitChatCall } | { readonly tool: EmitToolCall };

export type EmitRunOptions = {
  readonly tracer: Tracer;
  readonly userId: string;
  readonly runId?: string;
  /** null: a run outside any conversation (it leaves no assistant message). */
  readonly conversationId?: string | null;
  readonly correlationId?: string;
  readonly workflow?: string;
  readonly provider?: string;
  readonly model?: string;
  /** Epoch ms of the root span's start (default: now). */
  readonly startAt?: number;
  /** Pause between consecutive child spans (default 5 ms). */
  readonly gapMs?: number;
  readonly steps: readonly EmitStep[];
  /** Wrap the run in an HTTP server span, as the API does (default true). */
  readonly httpParent?: boolean;
};

export type RunTotals = EmitUsage & {
  /** Sum of the calls' costs (exact to 10 decimals); null when a call with usage had no price. */
  readonly costUsd: number | null;
  readonly costUnknown: boolean;
  readonly usageMissingCalls: number;
  readonly modelCalls: number;
  readonly toolCalls: number;
};

export type EmittedRun = {
  readonly runId: string;
  readonly userId: string;
  readonly conversationId: string | null;
  readonly correlationId: string;
  readonly workflow: string;
  readonly provider: string;
  readonly model: string;
  readonly startAt: number;
  readonly totals: RunTotals;
  readonly chatCalls: readonly (EmitChatCall & { readonly provider: string; readonly requestModel: string; readonly endAt: number })[];
  readonly toolCalls: readonly EmitToolCall[];
};

export type RunInProgress = EmittedRun & {
  readonly root: Span;
  /** Ends the root (and HTTP) span with the contract's end attributes; returns the end time. */
  readonly finish: (status?: RunStatus, options?: { readonly endAt?: number }) => FinishedRun;
};

export type FinishedRun = EmittedRun & { readonly status: RunStatus; readonly endAt: number; readonly durationMs: number };

const sumUsage = (calls: readonly EmitChatCall[]): EmitUsage => {
  const totals = { inputUncached: 0, cacheRead: 0, cacheWrite: 0, output: 0, reasoning: 0 };
  for (const call of calls) {
    if (call.usage === null || call.errorType !== undefined) continue;
    totals.inputUncached += call.usage.inputUncached;
    totals.cacheRead += call.usage.cacheRead;
    totals.cacheWrite += call.usage.cacheWrite;
    totals.output += call.usage.output;
    totals.reasoning += call.usage.reasoning;
  }
  return totals;
};

const usageAttributes = (usage: EmitUsage) => ({
  [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: usage.inputUncached + usage.cacheRead + usage.cacheWrite,
  [ATTR_UNCACHED_INPUT_TOKENS]: usage.inputUncached,
  [ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS]: usage.cacheRead,
  [ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS]: usage.cacheWrite,
  [ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: usage.output,
  [ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS]: usage.reasoning,
});

/** Starts a run and emits all its child spans; the root stays open until `finish()`. */
export const startRun = (options: EmitRunOptions): RunInProgress => {
  const { tracer } = options;
  const runId = options.runId ?? ulid();
  const conversationId = options.conversationId === undefined ? ulid() : options.conversationId;
  const correlationId = options.correlationId ?? `corr-${ulid()}`;
  const workflow = options.workflow ?? 'chat';
  const provider = options.provider ?? 'openai';
  const model = options.model ?? 'gpt-4o-mini';
  const startAt = options.startAt ?? Date.now();
  const gapMs = options.gapMs ?? 5;
  const common = { [ATTR_RUN_ID]: runId, [ATTR_CORRELATION_ID]: correlationId };

  const http =
    options.httpParent === false
      ? undefined
      : tracer.startSpan('POST /api/v1/chat', {
          kind: SpanKind.SERVER,
          startTime: startAt - 1,
          attributes: { [ATTR_CORRELATION_ID]: correlationId },
        });
  const parent: Context = http === undefined ? context.active() : trace.setSpan(context.active(), http);
  const root = tracer.startSpan(
    `${SPAN_INVOKE_WORKFLOW} ${workflow}`,
    {
      kind: SpanKind.INTERNAL,
      startTime: startAt,
      attributes: {
        ...common,
        [ATTR_GEN_AI_OPERATION_NAME]: OPERATION_INVOKE_WORKFLOW,
        [ATTR_WORKFLOW_NAME]: workflow,
        [ATTR_USER_ID]: options.userId,
        ...(conversationId === null ? {} : { [ATTR_GEN_AI_CONVERSATION_ID]: conversationId }),
        [ATTR_GEN_AI_PROVIDER_NAME]: provider,
        [ATTR_GEN_AI_REQUEST_MODEL]: model,
        [ATTR_USER_MESSAGE_ID]: ulid(),
        [ATTR_ASSISTANT_MESSAGE_ID]: ulid(),
        [ATTR_RUN_INSTANCE_ID]: 'test-instance',
      },
    },
    parent,
  );
  root.addEvent(EVENT_WORKFLOW_STARTED, startAt);
  const inRun = trace.setSpan(parent, root);

  let cursor = startAt + gapMs;
  let modelSequence = 0;
  let toolSequence = 0;
  const chatCalls: (EmitChatCall & { provider: string; requestModel: string; endAt: number })[] = [];
  const toolCalls: EmitToolCall[] = [];
  for (const step of options.steps) {
    if ('chat' in step) {
      const call = step.chat;
      const callProvider = call.provider ?? provider;
      const requestModel = call.requestModel ?? model;
      const failed = call.errorType !== undefined;
      const span = tracer.startSpan(
        `${SPAN_CHAT} ${requestModel}`,
        {
          kind: SpanKind.CLIENT,
          startTime: cursor,
          attributes: {
            ...common,
            [ATTR_GEN_AI_OPERATION_NAME]: OPERATION_CHAT,
            [ATTR_GEN_AI_PROVIDER_NAME]: callProvider,
            [ATTR_GEN_AI_REQUEST_MODEL]: requestModel,
            [ATTR_MODEL_CALL_SEQUENCE]: modelSequence,
          },
        },
        inRun,
      );
      modelSequence += 1;
      const endAt = cursor + call.latencyMs;
      if (failed) {
        span.setAttribute(ATTR_ERROR_TYPE, call.errorType);
        span.setStatus({ code: SpanStatusCode.ERROR, message: call.errorType });
        root.addEvent(EVENT_RETRY_SCHEDULED, { [ATTR_ERROR_TYPE]: call.errorType }, endAt);
      } else {
        span.setAttributes({
          [ATTR_GEN_AI_RESPONSE_MODEL]: call.responseModel ?? requestModel,
          [ATTR_GEN_AI_RESPONSE_FINISH_REASONS]: [call.finishReason ?? 'stop'],
          [ATTR_USAGE_SOURCE]: call.usageSource ?? (call.usage === null ? 'missing' : 'provider'),
          ...(call.timeToFirstChunkMs === undefined || call.timeToFirstChunkMs === null
            ? {}
            : { [ATTR_TIME_TO_FIRST_CHUNK_MS]: call.timeToFirstChunkMs }),
          ...(call.usage === null ? {} : usageAttributes(call.usage)),
          ...(call.costUsd === null ? {} : { [ATTR_GEN_AI_USAGE_COST]: call.costUsd, [ATTR_PRICE_ID]: `price-${requestModel}` }),
        });
        root.addEvent(EVENT_MODEL_RESPONSE, endAt);
        if (call.usage === null) root.addEvent(EVENT_USAGE_MISSING, endAt);
        else if (call.costUsd === null) root.addEvent(EVENT_PRICE_UNKNOWN, endAt);
      }
      span.end(endAt);
      chatCalls.push({ ...call, provider: callProvider, requestModel, endAt });
      cursor = endAt + gapMs;
    } else {
      const call = step.tool;
      const span = tracer.startSpan(
        `${SPAN_EXECUTE_TOOL} ${call.tool}`,
        {
          kind: SpanKind.INTERNAL,
          startTime: cursor,
          attributes: {
            ...common,
            [ATTR_GEN_AI_OPERATION_NAME]: OPERATION_EXECUTE_TOOL,
            [ATTR_GEN_AI_TOOL_NAME]: call.tool,
            [ATTR_GEN_AI_TOOL_CALL_ID]: `call_${ulid()}`,
            [ATTR_TOOL_CALL_SEQUENCE]: toolSequence,
            [ATTR_CONTENT_TOOL_ARGUMENTS]: '{"expression":"2+2"}',
          },
        },
        inRun,
      );
      toolSequence += 1;
      const endAt = cursor + call.durationMs;
      span.setAttributes({ [ATTR_TOOL_OK]: call.ok, [ATTR_TOOL_RESULT_SIZE]: call.resultSize ?? 1 });
      if (!call.ok) span.setStatus({ code: SpanStatusCode.ERROR, message: 'tool failed' });
      root.addEvent(EVENT_TOOL_CALLED, { [ATTR_GEN_AI_TOOL_NAME]: call.tool }, endAt);
      span.end(endAt);
      toolCalls.push(call);
      cursor = endAt + gapMs;
    }
  }

  const accounted = chatCalls.filter((call) => call.errorType === undefined);
  const costUnknown = accounted.some((call) => call.usage !== null && call.costUsd === null);
  const costUnits = accounted.reduce((sum, call) => sum + Math.round((call.costUsd ?? 0) * 1e10), 0);
  const totals: RunTotals = {
    ...sumUsage(chatCalls),
    costUsd: costUnknown ? null : costUnits / 1e10,
    costUnknown,
    usageMissingCalls: accounted.filter((call) => call.usage === null).length,
    modelCalls: chatCalls.length,
    toolCalls: toolCalls.length,
  };
  const run: EmittedRun = {
    runId,
    userId: options.userId,
    conversationId,
    correlationId,
    workflow,
    provider,
    model,
    startAt,
    totals,
    chatCalls,
    toolCalls,
  };

  const finish = (status: RunStatus = 'completed', finishOptions: { endAt?: number } = {}): FinishedRun => {
    const endAt = finishOptions.endAt ?? cursor;
    root.setAttributes({
      [ATTR_RUN_STATUS]: status,
      [ATTR_RUN_TERMINAL_REASON]: status === 'completed' ? 'finished' : status,
      ...(status === 'failed' ? { [ATTR_RUN_ERROR]: 'model failed' } : {}),
      ...usageAttributes(totals),
      ...(totals.costUsd === null ? {} : { [ATTR_GEN_AI_USAGE_COST]: totals.costUsd }),
      [ATTR_RUN_COST_UNKNOWN]: totals.costUnknown,
      [ATTR_RUN_USAGE_MISSING_CALLS]: totals.usageMissingCalls,
      [ATTR_RUN_MODEL_CALLS]: totals.modelCalls,
      [ATTR_RUN_TOOL_CALLS]: totals.toolCalls,
      [ATTR_CONTENT_OUTPUT]: 'The answer is 4.',
    });
    root.addEvent(TERMINAL_EVENT_BY_STATUS[status], endAt);
    if (status !== 'completed') root.setStatus({ code: SpanStatusCode.ERROR, message: status });
    root.end(endAt);
    http?.end(endAt + 1);
    return { ...run, status, endAt, durationMs: endAt - startAt };
  };

  return { ...run, root, finish };
};

/** Emits a whole run: its child spans, then the root's end with `status`. */
export const emitRun = (options: EmitRunOptions & { readonly status?: RunStatus }): FinishedRun => startRun(options).finish(options.status);
