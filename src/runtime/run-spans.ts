import { SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace';
import { monotonicFactory } from '../ids.js';
import type {
  ModelCallEndedParams,
  ModelCallFailedParams,
  ModelCallStartedParams,
  RetryScheduledParams,
  TerminalStatus,
  ToolCallEndedParams,
  ToolCallStartedParams,
  WorkflowRunContext,
} from '../../machines/workflow-run-types.js';
import { encodeModelResponse, encodeModelResult, encodeRunEnd } from '../../otel/run-span-codec.js';
import * as semconv from '../../otel/semconv.js';
import type { GenAiConventions } from '../../otel/semconv.js';

/** What the spans of one run say about it besides what the machine computes. */
export type RunSpanInfo = {
  readonly runId: string;
  readonly workflow: string;
  readonly userId: string;
  readonly conversationId: string;
  readonly correlationId: string;
  readonly provider: string;
  readonly model: string;
  readonly userMessageId: string | null;
  readonly assistantMessageId: string | null;
  readonly instanceId: string;
};

/** What RunSpans is built with. */
export type RunSpansOptions = {
  readonly tracer: Tracer;
  readonly info: RunSpanInfo;
  /** The context the root span is a child of (the request's). */
  readonly parentContext: Context;
  readonly listener?: RunSpanEventListener | undefined;
  /** Which GenAI names the spans carry (OTEL_SEMCONV_STABILITY_OPT_IN); released ones by default. */
  readonly conventions?: GenAiConventions | undefined;
};

/** Row ids in the order they are made, even within one millisecond (a run's events keep their order). */
const ulid = monotonicFactory();

/**
 * Told of each lifecycle event as it is added to a run's root span (span processors see
 * a span only when it starts and ends; the database writer commits events as they happen).
 */
export type RunSpanEventListener = {
  readonly onSpanEvent: (span: ReadableSpan, event: TimedEvent) => void;
};

/**
 * The spans of one run, opened and closed by the machine's actions: the root
 * `invoke_workflow` span with the lifecycle as span events, a `chat` child per model
 * call attempt and an `execute_tool` child per tool call. Times come from the events
 * (the runtime's clock), so spans line up with what the machine recorded.
 */
export class RunSpans {
  private readonly tracer: Tracer;
  private readonly info: RunSpanInfo;
  private readonly parentContext: Context;
  private root: Span | undefined;
  private rootContext: Context | undefined;
  private readonly chatSpans = new Map<string, Span>();
  private readonly toolSpans = new Map<string, Span>();
  private modelSequence = 0;
  private toolSequence = 0;
  private budgetReason: string | undefined;

  private readonly listener: RunSpanEventListener | undefined;
  private readonly conventions: GenAiConventions;

  public constructor({ tracer, info, parentContext, listener, conventions = 'released' }: RunSpansOptions) {
    this.tracer = tracer;
    this.info = info;
    this.parentContext = parentContext;
    this.listener = listener;
    this.conventions = conventions;
  }

  /** Adds a lifecycle event, with the id its row will have, and tells the listener. */
  private event(name: string, attributes: Attributes, at: number): void {
    const root = this.root;
    if (root === undefined) {
      return;
    }
    root.addEvent(name, { ...attributes, [semconv.ATTR_EVENT_ID]: ulid(at) }, at);
    const readable = root as unknown as Partial<ReadableSpan>;
    const added = readable.events?.at(-1);
    if (this.listener !== undefined && added !== undefined) {
      this.listener.onSpanEvent(readable as ReadableSpan, added);
    }
  }

  /** The root span's context: the run's own work (graph, model calls) runs inside it. */
  public get context(): Context {
    return this.rootContext ?? this.parentContext;
  }

  public get traceId(): string | undefined {
    return this.root?.spanContext().traceId;
  }

  private common(): Attributes {
    return { [semconv.ATTR_RUN_ID]: this.info.runId, [semconv.ATTR_CORRELATION_ID]: this.info.correlationId };
  }

  public runStarted(at: number): void {
    const attributes: Attributes = {
      ...this.common(),
      [semconv.ATTR_GEN_AI_OPERATION_NAME]: semconv.OPERATION_INVOKE_WORKFLOW,
      [semconv.ATTR_WORKFLOW_NAME]: this.info.workflow,
      [semconv.ATTR_USER_ID]: this.info.userId,
      [semconv.ATTR_GEN_AI_CONVERSATION_ID]: this.info.conversationId,
      [semconv.ATTR_GEN_AI_PROVIDER_NAME]: this.info.provider,
      [semconv.ATTR_GEN_AI_REQUEST_MODEL]: this.info.model,
      [semconv.ATTR_RUN_INSTANCE_ID]: this.info.instanceId,
    };
    if (this.info.userMessageId !== null) {
      attributes[semconv.ATTR_USER_MESSAGE_ID] = this.info.userMessageId;
    }
    if (this.info.assistantMessageId !== null) {
      attributes[semconv.ATTR_ASSISTANT_MESSAGE_ID] = this.info.assistantMessageId;
    }
    this.root = this.tracer.startSpan(
      `${semconv.SPAN_INVOKE_WORKFLOW} ${this.info.workflow}`,
      { kind: SpanKind.INTERNAL, startTime: at, attributes },
      this.parentContext,
    );
    this.rootContext = trace.setSpan(this.parentContext, this.root);
    this.event(semconv.EVENT_WORKFLOW_STARTED, { [semconv.ATTR_WORKFLOW_NAME]: this.info.workflow }, at);
  }

  /** `estimatedInputTokens`: the runtime's rough count of the prompt, kept apart from exact usage. */
  public modelCallStarted(params: ModelCallStartedParams, estimatedInputTokens?: number): void {
    const span = this.tracer.startSpan(
      `${semconv.SPAN_CHAT} ${params.model}`,
      {
        kind: SpanKind.CLIENT,
        startTime: params.at,
        attributes: {
          ...this.common(),
          [semconv.ATTR_GEN_AI_OPERATION_NAME]: semconv.OPERATION_CHAT,
          [semconv.ATTR_GEN_AI_PROVIDER_NAME]: params.provider,
          [semconv.ATTR_GEN_AI_REQUEST_MODEL]: params.model,
          [semconv.ATTR_GEN_AI_CONVERSATION_ID]: this.info.conversationId,
          [semconv.ATTR_MODEL_CALL_SEQUENCE]: this.modelSequence,
          [semconv.ATTR_MODEL_CALL_ID]: ulid(params.at),
          ...(estimatedInputTokens === undefined ? {} : { [semconv.ATTR_ESTIMATED_INPUT_TOKENS]: estimatedInputTokens }),
        },
      },
      this.context,
    );
    this.modelSequence += 1;
    this.chatSpans.set(params.callId, span);
  }

  public modelCallEnded(params: ModelCallEndedParams): void {
    const span = this.chatSpans.get(params.callId);
    const { result } = params;
    if (span !== undefined) {
      span.setAttributes(encodeModelResult(result, this.conventions));
      if (params.partial) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: 'stopped before the response ended' });
        span.setAttribute(semconv.ATTR_ERROR_TYPE, 'cancelled');
      }
      span.end(result.at);
      this.chatSpans.delete(params.callId);
    }
    this.event(semconv.EVENT_MODEL_RESPONSE, encodeModelResponse(result, this.conventions), result.at);
  }

  public usageMissing(params: ModelCallEndedParams): void {
    this.event(
      semconv.EVENT_USAGE_MISSING,
      {
        [semconv.ATTR_GEN_AI_PROVIDER_NAME]: params.result.provider,
        [semconv.ATTR_GEN_AI_REQUEST_MODEL]: params.result.requestModel,
      },
      params.result.at,
    );
  }

  public priceUnknown(params: ModelCallEndedParams): void {
    this.event(
      semconv.EVENT_PRICE_UNKNOWN,
      {
        [semconv.ATTR_GEN_AI_PROVIDER_NAME]: params.result.provider,
        [semconv.ATTR_GEN_AI_RESPONSE_MODEL]: params.result.responseModel,
      },
      params.result.at,
    );
  }

  public modelCallFailed(params: ModelCallFailedParams): void {
    const span = this.chatSpans.get(params.callId);
    if (span === undefined) {
      return;
    }
    span.setStatus({ code: SpanStatusCode.ERROR, message: params.error.message });
    span.setAttribute(
      semconv.ATTR_ERROR_TYPE,
      params.error.status === undefined ? (params.error.transient ? 'transient' : 'error') : String(params.error.status),
    );
    span.setAttribute(semconv.ATTR_USAGE_SOURCE, 'missing');
    span.end(params.at);
    this.chatSpans.delete(params.callId);
  }

  public retryScheduled(params: RetryScheduledParams, at: number): void {
    this.event(
      semconv.EVENT_RETRY_SCHEDULED,
      { 'chatter.retry.attempt': params.retry, 'chatter.retry.after_ms': params.retryAfterMs ?? -1 },
      at,
    );
  }

  public toolCallStarted(params: ToolCallStartedParams): void {
    let args: string;
    try {
      args = JSON.stringify(params.args) ?? 'null';
    } catch {
      args = '"[unserialisable]"';
    }
    const span = this.tracer.startSpan(
      `${semconv.SPAN_EXECUTE_TOOL} ${params.tool}`,
      {
        kind: SpanKind.INTERNAL,
        startTime: params.at,
        attributes: {
          ...this.common(),
          [semconv.ATTR_GEN_AI_OPERATION_NAME]: semconv.OPERATION_EXECUTE_TOOL,
          [semconv.ATTR_GEN_AI_TOOL_NAME]: params.tool,
          [semconv.ATTR_GEN_AI_TOOL_CALL_ID]: params.callId,
          [semconv.ATTR_TOOL_CALL_SEQUENCE]: this.toolSequence,
          [semconv.ATTR_TOOL_CALL_RECORD_ID]: ulid(params.at),
          [semconv.ATTR_CONTENT_TOOL_ARGUMENTS]: args,
        },
      },
      this.context,
    );
    this.toolSequence += 1;
    this.toolSpans.set(params.callId, span);
  }

  public toolCallEnded(params: ToolCallEndedParams): void {
    const span = this.toolSpans.get(params.callId);
    if (span !== undefined) {
      span.setAttributes({ [semconv.ATTR_TOOL_OK]: params.ok, [semconv.ATTR_TOOL_RESULT_SIZE]: params.resultSize });
      if (!params.ok) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: params.error ?? 'tool failed' });
        span.setAttribute(semconv.ATTR_ERROR_TYPE, 'tool_error');
      }
      span.end(params.at);
      this.toolSpans.delete(params.callId);
    }
    this.event(semconv.EVENT_TOOL_CALLED, { [semconv.ATTR_GEN_AI_TOOL_NAME]: params.tool, [semconv.ATTR_TOOL_OK]: params.ok }, params.at);
  }

  public budgetExceeded(reason: string): void {
    this.budgetReason = reason;
  }

  /**
   * Ends the run: closes any span still open (a call cut short), writes the totals
   * the machine computed onto the root, adds the one terminal event, ends the root.
   */
  public runEnded(status: TerminalStatus, context: WorkflowRunContext, output: string | null): void {
    const at = context.endedAt ?? Date.now();
    for (const span of this.chatSpans.values()) {
      // A call cut short with no partial result: its usage is unknown, not zero.
      span.setAttribute(semconv.ATTR_USAGE_SOURCE, 'missing');
    }
    for (const span of [...this.chatSpans.values(), ...this.toolSpans.values()]) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: `run ${status}` });
      span.setAttribute(semconv.ATTR_ERROR_TYPE, 'cancelled');
      span.end(at);
    }
    this.chatSpans.clear();
    this.toolSpans.clear();
    const root = this.root;
    if (root === undefined) {
      return;
    }
    // An unpriced run's cost is unknown: the codec leaves it off (null), never 0.
    root.setAttributes(
      encodeRunEnd(
        {
          status,
          terminalReason: context.terminalReason ?? status,
          usage: context.usage,
          costUsd: context.costUsd,
          costUnknown: context.costUnknown,
          usageMissingCalls: context.usageMissingCalls,
          modelCalls: context.modelCalls,
          toolCalls: context.toolCalls,
          error: context.error,
          output,
        },
        this.conventions,
      ),
    );
    const terminalAttributes: Attributes = { [semconv.ATTR_RUN_TERMINAL_REASON]: context.terminalReason ?? status };
    if (status === 'budgetExceeded' && this.budgetReason !== undefined) {
      terminalAttributes['chatter.budget.reason'] = this.budgetReason;
    }
    this.event(semconv.TERMINAL_EVENT_BY_STATUS[status], terminalAttributes, at);
    if (status !== 'completed') {
      root.setStatus({ code: SpanStatusCode.ERROR, message: context.error ?? context.terminalReason ?? status });
    }
    root.end(at);
  }
}
