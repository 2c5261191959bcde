import type { Attributes, Meter } from '@opentelemetry/api';
import { promptTokens, type Usage } from '../../machines/usage.js';
import {
  ATTR_GEN_AI_TOKEN_MODALITY,
  ATTR_GEN_AI_TOKEN_TYPE,
  METRIC_INFERENCE_OPERATION_INPUT_TOKENS,
  METRIC_INFERENCE_OPERATION_OUTPUT_TOKENS,
  METRIC_INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS,
  METRIC_INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS,
  METRIC_INFERENCE_USAGE_INPUT_TOKENS,
  METRIC_INFERENCE_USAGE_OUTPUT_TOKENS,
  METRIC_INFERENCE_USAGE_REASONING_OUTPUT_TOKENS,
  METRIC_TOKEN_USAGE,
  TOKEN_MODALITY_TEXT,
  TOKEN_TYPE_INPUT,
  TOKEN_TYPE_OUTPUT,
  type GenAiConventions,
} from '../semconv.js';

/** Records one model call's usage on the GenAI token instruments, with the call's operation attributes. */
export type TokenUsageRecorder = (usage: Usage, operation: Attributes) => void;

const TOKEN = '{token}';

/** Released conventions: one histogram, input (cache included) and output told apart by `gen_ai.token.type`. */
const releasedRecorder = (meter: Meter): TokenUsageRecorder => {
  const tokenUsage = meter.createHistogram(METRIC_TOKEN_USAGE, {
    description: 'Number of input and output tokens used per model call.',
    unit: TOKEN,
  });
  return (usage, operation) => {
    tokenUsage.record(promptTokens(usage), { ...operation, [ATTR_GEN_AI_TOKEN_TYPE]: TOKEN_TYPE_INPUT });
    tokenUsage.record(usage.output, { ...operation, [ATTR_GEN_AI_TOKEN_TYPE]: TOKEN_TYPE_OUTPUT });
  };
};

/**
 * The latest GenAI conventions: a counter per token category by `gen_ai.token.modality`
 * (cache and reasoning counters are subsets of input and output, as the drafts define
 * them), and histograms of one call's input and output. A call without usage records
 * nothing: its tokens are unknown (`chatter.llm.calls{chatter_usage_source="missing"}`
 * counts it), never a 0.
 */
const latestRecorder = (meter: Meter): TokenUsageRecorder => {
  const counter = (name: string, description: string) => meter.createCounter(name, { description, unit: TOKEN });
  const input = counter(METRIC_INFERENCE_USAGE_INPUT_TOKENS, 'Input tokens used, cached tokens included.');
  const output = counter(METRIC_INFERENCE_USAGE_OUTPUT_TOKENS, 'Output tokens used, reasoning tokens included.');
  const cacheRead = counter(METRIC_INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS, 'Input tokens served from a provider-managed cache.');
  const cacheWrite = counter(METRIC_INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS, 'Input tokens written to a provider-managed cache.');
  const reasoning = counter(METRIC_INFERENCE_USAGE_REASONING_OUTPUT_TOKENS, 'Output tokens used for reasoning.');
  const perCallInput = meter.createHistogram(METRIC_INFERENCE_OPERATION_INPUT_TOKENS, {
    description: 'Input tokens of one model call.',
    unit: TOKEN,
  });
  const perCallOutput = meter.createHistogram(METRIC_INFERENCE_OPERATION_OUTPUT_TOKENS, {
    description: 'Output tokens of one model call.',
    unit: TOKEN,
  });
  return (usage, operation) => {
    const byModality = { ...operation, [ATTR_GEN_AI_TOKEN_MODALITY]: TOKEN_MODALITY_TEXT };
    input.add(promptTokens(usage), byModality);
    output.add(usage.output, byModality);
    cacheRead.add(usage.cacheRead, byModality);
    cacheWrite.add(usage.cacheWrite, byModality);
    reasoning.add(usage.reasoning, byModality);
    perCallInput.record(promptTokens(usage), operation);
    perCallOutput.record(usage.output, operation);
  };
};

/** The GenAI token instruments of `conventions`, created on `meter`. */
export const createTokenUsageRecorder = (meter: Meter, conventions: GenAiConventions): TokenUsageRecorder =>
  conventions === 'latest' ? latestRecorder(meter) : releasedRecorder(meter);
