import { diag, type Attributes, type Context, type Counter, type Histogram, type Meter, type UpDownCounter } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace';
import {
  ATTR_ERROR_TYPE,
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_TOKEN_TYPE,
  ATTR_GEN_AI_TOOL_NAME,
  ATTR_OUTCOME,
  ATTR_RUN_STATUS,
  ATTR_TELEMETRY_PROCESSOR,
  ATTR_TOOL_OK,
  ATTR_USAGE_SOURCE,
  ATTR_WORKFLOW_NAME,
  METRIC_ACTIVE_RUNS,
  METRIC_COST,
  METRIC_INFERENCE_DURATION,
  METRIC_INFERENCE_TIME_TO_FIRST_CHUNK,
  METRIC_MODEL_CALLS,
  METRIC_OPERATION_DURATION,
  METRIC_PROCESSOR_ERRORS,
  METRIC_RUN_DURATION,
  METRIC_RUNS,
  METRIC_TIME_TO_FIRST_CHUNK,
  METRIC_TOKENS,
  METRIC_TOOL_CALLS,
  OPERATION_CHAT,
  OPERATION_EXECUTE_TOOL,
  OPERATION_INVOKE_WORKFLOW,
  OUTCOME_ERROR,
  OUTCOME_OK,
  TOKEN_TYPE_CACHE_READ,
  TOKEN_TYPE_CACHE_WRITE,
  TOKEN_TYPE_INPUT,
  TOKEN_TYPE_OUTPUT,
  TOKEN_TYPE_REASONING,
  type GenAiConventions,
} from '../semconv.js';
import { booleanAttribute, decodeModelResult, decodeRunEnd, stringAttribute } from '../run-span-codec.js';
import { isErrorSpan, spanDurationSeconds, spanErrorType, spanKey, spanOperation } from './metrics-span-readers.js';
import { createTokenUsageRecorder, type TokenUsageRecorder } from './token-usage-instruments.js';

export type MetricsSpanProcessorOptions = {
  readonly meter: Meter;
  /** Root spans tracked between start and end for the active-runs gauge. */
  readonly maxActiveRuns?: number;
  /** The GenAI metric names and instruments (OTEL_SEMCONV_STABILITY_OPT_IN); the released ones by default. */
  readonly conventions?: GenAiConventions;
};

const PROCESSOR = 'metrics';
const UNKNOWN = 'unknown';

/**
 * Turns ended spans into OTel metrics (exported to Prometheus). Labels are low
 * cardinality only: provider, model, workflow, tool, status, token type, outcome —
 * never a user, run, conversation or correlation id. Sampled and RECORD_ONLY spans
 * count alike: the processor never looks at the sampled flag.
 *
 * The GenAI metrics follow the configured conventions: released (`gen_ai.client.token.usage`,
 * `gen_ai.client.operation.*`) or latest (`gen_ai.client.inference.*`); the `chatter.*`
 * metrics are the same in both.
 *
 * Recording is in-memory aggregation (no I/O), so it happens inline in onEnd.
 */
export class MetricsSpanProcessor implements SpanProcessor {
  private readonly tokenUsage: TokenUsageRecorder;
  private readonly tokens: Counter;
  private readonly cost: Counter;
  private readonly operationDuration: Histogram;
  private readonly timeToFirstChunk: Histogram;
  private readonly modelCalls: Counter;
  private readonly runs: Counter;
  private readonly runDuration: Histogram;
  private readonly activeRuns: UpDownCounter;
  private readonly toolCalls: Counter;
  private readonly errors: Counter;
  private readonly maxActiveRuns: number;
  /** Root spans counted +1 in onStart, with the attributes to count −1 with. */
  private readonly openRuns = new Map<string, Attributes>();

  constructor({ meter, maxActiveRuns = 100_000, conventions = 'released' }: MetricsSpanProcessorOptions) {
    this.maxActiveRuns = maxActiveRuns;
    const latest = conventions === 'latest';
    this.tokenUsage = createTokenUsageRecorder(meter, conventions);
    this.tokens = meter.createCounter(METRIC_TOKENS, {
      description:
        'Tokens by non-overlapping bucket (input = uncached input, cache_read, cache_write, output); ' +
        'reasoning is the part of output spent on reasoning and is not added on top of it.',
      unit: '{token}',
    });
    this.cost = meter.createCounter(METRIC_COST, {
      description: 'Cost of model calls in USD, for calls whose price is known.',
      unit: 'USD',
    });
    this.operationDuration = meter.createHistogram(latest ? METRIC_INFERENCE_DURATION : METRIC_OPERATION_DURATION, {
      description: 'Duration of model call attempts.',
      unit: 's',
    });
    this.timeToFirstChunk = meter.createHistogram(latest ? METRIC_INFERENCE_TIME_TO_FIRST_CHUNK : METRIC_TIME_TO_FIRST_CHUNK, {
      description: 'Time from the request to the first streamed chunk of a model call.',
      unit: 's',
    });
    this.modelCalls = meter.createCounter(METRIC_MODEL_CALLS, {
      description: 'Model call attempts by outcome and usage source.',
      unit: '{call}',
    });
    this.runs = meter.createCounter(METRIC_RUNS, {
      description: 'Finished workflow runs by terminal status.',
      unit: '{run}',
    });
    this.runDuration = meter.createHistogram(METRIC_RUN_DURATION, {
      description: 'Duration of workflow runs by terminal status.',
      unit: 's',
    });
    this.activeRuns = meter.createUpDownCounter(METRIC_ACTIVE_RUNS, {
      description: 'Workflow runs started and not yet finished.',
      unit: '{run}',
    });
    this.toolCalls = meter.createCounter(METRIC_TOOL_CALLS, {
      description: 'Tool calls by tool and success.',
      unit: '{call}',
    });
    this.errors = meter.createCounter(METRIC_PROCESSOR_ERRORS, {
      description: 'Failures inside telemetry span processors (never raised into the application).',
      unit: '{error}',
    });
  }

  onStart(span: Span, _parentContext: Context): void {
    try {
      if (spanOperation(span) !== OPERATION_INVOKE_WORKFLOW) {
        return;
      }
      if (this.openRuns.size >= this.maxActiveRuns) {
        this.reportError('active_runs_overflow', new Error(`more than ${this.maxActiveRuns} open runs`));
        return;
      }
      const attributes = { [ATTR_WORKFLOW_NAME]: stringAttribute(span.attributes, ATTR_WORKFLOW_NAME) ?? UNKNOWN };
      this.openRuns.set(spanKey(span), attributes);
      this.activeRuns.add(1, attributes);
    } catch (error) {
      this.reportError('on_start', error);
    }
  }

  onEnd(span: ReadableSpan): void {
    try {
      switch (spanOperation(span)) {
        case OPERATION_CHAT:
          this.recordChat(span);
          break;
        case OPERATION_INVOKE_WORKFLOW:
          this.recordRun(span);
          break;
        case OPERATION_EXECUTE_TOOL:
          this.recordTool(span);
          break;
        default:
          break;
      }
    } catch (error) {
      this.reportError('on_end', error);
    }
  }

  async forceFlush(): Promise<void> {}

  async shutdown(): Promise<void> {
    this.openRuns.clear();
  }

  private recordChat(span: ReadableSpan): void {
    const { attributes } = span;
    const provider = stringAttribute(attributes, ATTR_GEN_AI_PROVIDER_NAME) ?? UNKNOWN;
    const requestModel = stringAttribute(attributes, ATTR_GEN_AI_REQUEST_MODEL) ?? UNKNOWN;
    const responseModel = stringAttribute(attributes, ATTR_GEN_AI_RESPONSE_MODEL) ?? requestModel;
    const failed = isErrorSpan(span);
    const operation = {
      [ATTR_GEN_AI_OPERATION_NAME]: OPERATION_CHAT,
      [ATTR_GEN_AI_PROVIDER_NAME]: provider,
      [ATTR_GEN_AI_REQUEST_MODEL]: requestModel,
      [ATTR_GEN_AI_RESPONSE_MODEL]: responseModel,
    };
    const byModel = { [ATTR_GEN_AI_PROVIDER_NAME]: provider, [ATTR_GEN_AI_REQUEST_MODEL]: requestModel };

    const result = decodeModelResult(attributes);
    const { usage } = result;
    if (usage !== null) {
      this.tokenUsage(usage, operation);
      this.tokens.add(usage.inputUncached, { ...byModel, [ATTR_GEN_AI_TOKEN_TYPE]: TOKEN_TYPE_INPUT });
      this.tokens.add(usage.cacheRead, { ...byModel, [ATTR_GEN_AI_TOKEN_TYPE]: TOKEN_TYPE_CACHE_READ });
      this.tokens.add(usage.cacheWrite, { ...byModel, [ATTR_GEN_AI_TOKEN_TYPE]: TOKEN_TYPE_CACHE_WRITE });
      this.tokens.add(usage.output, { ...byModel, [ATTR_GEN_AI_TOKEN_TYPE]: TOKEN_TYPE_OUTPUT });
      this.tokens.add(usage.reasoning, { ...byModel, [ATTR_GEN_AI_TOKEN_TYPE]: TOKEN_TYPE_REASONING });
    }
    if (result.costUsd !== null) {
      this.cost.add(result.costUsd, byModel);
    }
    this.operationDuration.record(spanDurationSeconds(span), failed ? { ...operation, [ATTR_ERROR_TYPE]: spanErrorType(span) } : operation);
    if (result.timeToFirstChunkMs !== null) {
      this.timeToFirstChunk.record(result.timeToFirstChunkMs / 1000, operation);
    }
    this.modelCalls.add(1, {
      ...byModel,
      [ATTR_OUTCOME]: failed ? OUTCOME_ERROR : OUTCOME_OK,
      [ATTR_USAGE_SOURCE]: result.usageSource,
    });
  }

  private recordRun(span: ReadableSpan): void {
    const workflow = stringAttribute(span.attributes, ATTR_WORKFLOW_NAME) ?? UNKNOWN;
    const { status } = decodeRunEnd(span.attributes);
    const attributes = { [ATTR_WORKFLOW_NAME]: workflow, [ATTR_RUN_STATUS]: status };
    this.runs.add(1, attributes);
    this.runDuration.record(spanDurationSeconds(span), attributes);
    const key = spanKey(span);
    const started = this.openRuns.get(key);
    if (started !== undefined) {
      this.openRuns.delete(key);
      this.activeRuns.add(-1, started);
    }
  }

  private recordTool(span: ReadableSpan): void {
    const ok = booleanAttribute(span.attributes, ATTR_TOOL_OK) ?? !isErrorSpan(span);
    this.toolCalls.add(1, {
      [ATTR_GEN_AI_TOOL_NAME]: stringAttribute(span.attributes, ATTR_GEN_AI_TOOL_NAME) ?? UNKNOWN,
      [ATTR_TOOL_OK]: ok ? 'true' : 'false',
    });
  }

  private reportError(stage: string, error: unknown): void {
    try {
      diag.error(`MetricsSpanProcessor: ${stage} failed`, error);
      this.errors.add(1, { [ATTR_TELEMETRY_PROCESSOR]: PROCESSOR, [ATTR_ERROR_TYPE]: stage });
    } catch {
      // Reporting must not throw into the application either.
    }
  }
}
