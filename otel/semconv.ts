/**
 * Every span, attribute, event and metric name the service emits, in one place.
 * The GenAI semantic conventions are still "development" status upstream, so the
 * names are copied here (as opentelemetry-js recommends for unstable conventions)
 * rather than imported from @opentelemetry/semantic-conventions/incubating.
 */

// --- Which GenAI semantic conventions the service writes ---
/**
 * `released` (the default): the names of the released semantic conventions. `latest`: the
 * newest names of the GenAI drafts (open-telemetry/semantic-conventions-genai,
 * docs/gen-ai/client-inference.md and gen-ai-token-metrics.md), which users opt into with
 * `OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental`. Decoding reads both.
 */
export type GenAiConventions = 'released' | 'latest';
/** The `OTEL_SEMCONV_STABILITY_OPT_IN` entry that selects the `latest` GenAI names. */
export const SEMCONV_OPT_IN_GEN_AI_LATEST = 'gen_ai_latest_experimental';

// --- Span names (`{operation} {target}`) ---
export const SPAN_INVOKE_WORKFLOW = 'invoke_workflow';
export const SPAN_CHAT = 'chat';
export const SPAN_EXECUTE_TOOL = 'execute_tool';

// --- GenAI attributes (OTel semantic conventions) ---
export const ATTR_GEN_AI_OPERATION_NAME = 'gen_ai.operation.name';
export const ATTR_GEN_AI_PROVIDER_NAME = 'gen_ai.provider.name';
export const ATTR_GEN_AI_REQUEST_MODEL = 'gen_ai.request.model';
export const ATTR_GEN_AI_RESPONSE_MODEL = 'gen_ai.response.model';
export const ATTR_GEN_AI_USAGE_INPUT_TOKENS = 'gen_ai.usage.input_tokens';
export const ATTR_GEN_AI_USAGE_OUTPUT_TOKENS = 'gen_ai.usage.output_tokens';
export const ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = 'gen_ai.usage.cache_read.input_tokens';
export const ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = 'gen_ai.usage.cache_creation.input_tokens';
/** The `latest` conventions' name for cache writes (instead of `cache_creation`). */
export const ATTR_GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS = 'gen_ai.usage.cache_write.input_tokens';
/** `latest` conventions: time to the first streamed chunk, in seconds (released: `chatter.time_to_first_chunk_ms`). */
export const ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = 'gen_ai.response.time_to_first_chunk';
export const ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = 'gen_ai.usage.reasoning.output_tokens';
export const ATTR_GEN_AI_RESPONSE_FINISH_REASONS = 'gen_ai.response.finish_reasons';
export const ATTR_GEN_AI_CONVERSATION_ID = 'gen_ai.conversation.id';
export const ATTR_GEN_AI_TOOL_NAME = 'gen_ai.tool.name';
export const ATTR_GEN_AI_TOOL_CALL_ID = 'gen_ai.tool.call.id';
export const ATTR_GEN_AI_TOKEN_TYPE = 'gen_ai.token.type';
/** Cost in USD; no convention name exists yet. */
export const ATTR_GEN_AI_USAGE_COST = 'gen_ai.usage.cost';
export const ATTR_ERROR_TYPE = 'error.type';

export const OPERATION_INVOKE_WORKFLOW = 'invoke_workflow';
export const OPERATION_CHAT = 'chat';
export const OPERATION_EXECUTE_TOOL = 'execute_tool';

// --- Chatter attributes ---
export const ATTR_CORRELATION_ID = 'chatter.correlation_id';
export const ATTR_RUN_ID = 'chatter.run.id';
export const ATTR_WORKFLOW_NAME = 'chatter.workflow.name';
export const ATTR_USER_ID = 'chatter.user.id';
export const ATTR_RUN_STATUS = 'chatter.run.status';
export const ATTR_RUN_TERMINAL_REASON = 'chatter.run.terminal_reason';
export const ATTR_RUN_ERROR = 'chatter.run.error';
export const ATTR_RUN_MODEL_CALLS = 'chatter.run.model_calls';
export const ATTR_RUN_TOOL_CALLS = 'chatter.run.tool_calls';
export const ATTR_RUN_COST_UNKNOWN = 'chatter.run.cost_unknown';
export const ATTR_RUN_USAGE_MISSING_CALLS = 'chatter.run.usage_missing_calls';
export const ATTR_RUN_INSTANCE_ID = 'chatter.run.instance_id';
/** Ids of the messages the run answers and writes (set by the API). */
export const ATTR_USER_MESSAGE_ID = 'chatter.message.user.id';
export const ATTR_ASSISTANT_MESSAGE_ID = 'chatter.message.assistant.id';
/** Content attributes: kept on spans for the database writer, never exported. */
export const ATTR_CONTENT_PREFIX = 'chatter.content.';
export const ATTR_CONTENT_OUTPUT = 'chatter.content.output';
export const ATTR_CONTENT_TOOL_ARGUMENTS = 'chatter.content.tool_arguments';

export const ATTR_MODEL_CALL_SEQUENCE = 'chatter.model_call.sequence';
/** Row ids chosen when a call, tool call or lifecycle event begins, so that what is
 * committed while the run goes on and the run's final record name the same rows. */
export const ATTR_MODEL_CALL_ID = 'chatter.model_call.id';
export const ATTR_TOOL_CALL_RECORD_ID = 'chatter.tool_call.id';
export const ATTR_EVENT_ID = 'chatter.event.id';
/** The runtime's rough estimate of a call's input tokens, made at its start (never summed into exact usage). */
export const ATTR_ESTIMATED_INPUT_TOKENS = 'chatter.usage.estimated_input_tokens';
export const ATTR_USAGE_SOURCE = 'chatter.usage.source';
export const ATTR_PRICE_ID = 'chatter.price.id';
export const ATTR_TIME_TO_FIRST_CHUNK_MS = 'chatter.time_to_first_chunk_ms';
export const ATTR_TOOL_CALL_SEQUENCE = 'chatter.tool_call.sequence';
export const ATTR_TOOL_RESULT_SIZE = 'chatter.tool.result_size';
export const ATTR_TOOL_OK = 'chatter.tool.ok';
export const ATTR_UNCACHED_INPUT_TOKENS = 'chatter.usage.uncached_input_tokens';

// --- Lifecycle span events on the root span ---
export const EVENT_WORKFLOW_STARTED = 'workflow_started';
export const EVENT_MODEL_RESPONSE = 'model_response';
export const EVENT_TOOL_CALLED = 'tool_called';
export const EVENT_RETRY_SCHEDULED = 'retry_scheduled';
export const EVENT_WORKFLOW_COMPLETED = 'workflow_completed';
export const EVENT_WORKFLOW_FAILED = 'workflow_failed';
export const EVENT_WORKFLOW_CANCELLED = 'workflow_cancelled';
export const EVENT_WORKFLOW_TIMED_OUT = 'workflow_timed_out';
export const EVENT_WORKFLOW_INTERRUPTED = 'workflow_interrupted';
export const EVENT_BUDGET_EXCEEDED = 'budget_exceeded';
export const EVENT_USAGE_MISSING = 'usage_missing';
export const EVENT_PRICE_UNKNOWN = 'price_unknown';

export const TERMINAL_EVENT_BY_STATUS = {
  completed: EVENT_WORKFLOW_COMPLETED,
  failed: EVENT_WORKFLOW_FAILED,
  cancelled: EVENT_WORKFLOW_CANCELLED,
  timedOut: EVENT_WORKFLOW_TIMED_OUT,
  budgetExceeded: EVENT_BUDGET_EXCEEDED,
  interrupted: EVENT_WORKFLOW_INTERRUPTED,
} as const;

// --- Baggage ---
export const BAGGAGE_CORRELATION_ID = 'chatter.correlation_id';

// --- Metrics (OTel names; the Prometheus exporter turns dots into underscores) ---
// Released conventions.
export const METRIC_TOKEN_USAGE = 'gen_ai.client.token.usage';
export const METRIC_OPERATION_DURATION = 'gen_ai.client.operation.duration';
export const METRIC_TIME_TO_FIRST_CHUNK = 'gen_ai.client.operation.time_to_first_chunk';
// `latest` conventions: counters per token category (cache and reasoning are subsets of
// input and output), histograms of a call's input and output, the inference timings.
export const METRIC_INFERENCE_USAGE_INPUT_TOKENS = 'gen_ai.client.inference.usage.input_tokens';
export const METRIC_INFERENCE_USAGE_OUTPUT_TOKENS = 'gen_ai.client.inference.usage.output_tokens';
export const METRIC_INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS = 'gen_ai.client.inference.usage.cache_read.input_tokens';
export const METRIC_INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS = 'gen_ai.client.inference.usage.cache_write.input_tokens';
export const METRIC_INFERENCE_USAGE_REASONING_OUTPUT_TOKENS = 'gen_ai.client.inference.usage.reasoning.output_tokens';
export const METRIC_INFERENCE_OPERATION_INPUT_TOKENS = 'gen_ai.client.inference.operation.input_tokens';
export const METRIC_INFERENCE_OPERATION_OUTPUT_TOKENS = 'gen_ai.client.inference.operation.output_tokens';
export const METRIC_INFERENCE_DURATION = 'gen_ai.client.inference.duration';
export const METRIC_INFERENCE_TIME_TO_FIRST_CHUNK = 'gen_ai.client.inference.time_to_first_chunk';

/** The GenAI metrics each convention emits (the service's own `chatter.*` metrics are the same in both). */
export const GEN_AI_METRICS: Readonly<Record<GenAiConventions, readonly string[]>> = {
  released: [METRIC_TOKEN_USAGE, METRIC_OPERATION_DURATION, METRIC_TIME_TO_FIRST_CHUNK],
  latest: [
    METRIC_INFERENCE_USAGE_INPUT_TOKENS,
    METRIC_INFERENCE_USAGE_OUTPUT_TOKENS,
    METRIC_INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS,
    METRIC_INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS,
    METRIC_INFERENCE_USAGE_REASONING_OUTPUT_TOKENS,
    METRIC_INFERENCE_OPERATION_INPUT_TOKENS,
    METRIC_INFERENCE_OPERATION_OUTPUT_TOKENS,
    METRIC_INFERENCE_DURATION,
    METRIC_INFERENCE_TIME_TO_FIRST_CHUNK,
  ],
};

export const METRIC_COST = 'chatter.llm.cost';
export const METRIC_TOKENS = 'chatter.llm.tokens';
export const METRIC_RUNS = 'chatter.workflow.runs';
export const METRIC_RUN_DURATION = 'chatter.workflow.duration';
export const METRIC_TOOL_CALLS = 'chatter.tool.calls';
export const METRIC_ACTIVE_RUNS = 'chatter.workflow.active_runs';
export const METRIC_MODEL_CALLS = 'chatter.llm.calls';
export const METRIC_PROCESSOR_ERRORS = 'chatter.telemetry.processor_errors';
export const METRIC_WRITER_BACKLOG = 'chatter.telemetry.writer_backlog';

export const TOKEN_TYPE_INPUT = 'input';
export const TOKEN_TYPE_OUTPUT = 'output';
export const TOKEN_TYPE_CACHE_READ = 'cache_read';
export const TOKEN_TYPE_CACHE_WRITE = 'cache_write';
export const TOKEN_TYPE_REASONING = 'reasoning';
/** `latest` conventions: the usage counters' modality (chat here is text only). */
export const ATTR_GEN_AI_TOKEN_MODALITY = 'gen_ai.token.modality';
export const TOKEN_MODALITY_TEXT = 'text';

// --- Metric attributes and telemetry self-observation (added with the metrics and
// analytics processors) ---
export const ATTR_SERVICE_NAME = 'service.name';
/** `ok` or `error`: whether a model call attempt succeeded (span status). */
export const ATTR_OUTCOME = 'chatter.outcome';
export const OUTCOME_OK = 'ok';
export const OUTCOME_ERROR = 'error';
/** Which span processor reported a `chatter.telemetry.processor_errors` increment. */
export const ATTR_TELEMETRY_PROCESSOR = 'chatter.telemetry.processor';
/** The `error.type` value when a failed span names no error type (OTel convention). */
export const ERROR_TYPE_OTHER = '_OTHER';
