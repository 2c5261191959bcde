import { SpanStatusCode, type Attributes, type HrTime } from '@opentelemetry/api';
import { hrTimeToMilliseconds } from '@opentelemetry/core';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import {
  ATTR_ERROR_TYPE,
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
  ATTR_UNCACHED_INPUT_TOKENS,
  ERROR_TYPE_OTHER,
  OPERATION_CHAT,
  OPERATION_EXECUTE_TOOL,
  OPERATION_INVOKE_WORKFLOW,
  SPAN_INVOKE_WORKFLOW,
} from '../semconv.js';

/*
 * How the metrics and analytics processors read the spans of docs/run-contract.md.
 * Both must turn the same span into the same numbers (ARCHITECTURE invariant 4), so the
 * reading lives here once. (Named metrics-* only because of file ownership; it belongs
 * to otel/processors as a whole.)
 */

export type SpanOperation = typeof OPERATION_CHAT | typeof OPERATION_EXECUTE_TOOL | typeof OPERATION_INVOKE_WORKFLOW;

/** Token usage in the contract's non-overlapping buckets, plus OTel's inclusive input. */
export type SpanUsage = {
  /** All input tokens, cached included (`gen_ai.usage.input_tokens`). */
  readonly input: number;
  readonly inputUncached: number;
  readonly cacheRead: number;
  readonly cacheWrite: number;
  /** All output tokens, reasoning included. */
  readonly output: number;
  /** The part of `output` spent on reasoning. */
  readonly reasoning: number;
};

/** A string attribute, or undefined when absent or of another type. */
export const stringAttribute = (attributes: Attributes, key: string): string | undefined => {
  const value = attributes[key];
  return typeof value === 'string' ? value : undefined;
};

/** A finite number attribute, or undefined. */
export const numberAttribute = (attributes: Attributes, key: string): number | undefined => {
  const value = attributes[key];
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
};

export const booleanAttribute = (attributes: Attributes, key: string): boolean | undefined => {
  const value = attributes[key];
  return typeof value === 'boolean' ? value : undefined;
};

/** Token counts are non-negative integers; anything else is not a count. */
const tokenAttribute = (attributes: Attributes, key: string): number | undefined => {
  const value = numberAttribute(attributes, key);
  return value !== undefined && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
};

/**
 * The operation a span stands for: `gen_ai.operation.name`, or for a root span whose
 * start attributes were set after `onStart`, its name (`invoke_workflow <workflow>`).
 */
export const spanOperation = (span: { readonly name: string; readonly attributes: Attributes }): SpanOperation | undefined => {
  const operation = span.attributes[ATTR_GEN_AI_OPERATION_NAME];
  if (operation === OPERATION_CHAT || operation === OPERATION_EXECUTE_TOOL || operation === OPERATION_INVOKE_WORKFLOW) {
    return operation;
  }
  if (operation === undefined && (span.name === SPAN_INVOKE_WORKFLOW || span.name.startsWith(`${SPAN_INVOKE_WORKFLOW} `))) {
    return OPERATION_INVOKE_WORKFLOW;
  }
  return undefined;
};

/**
 * The usage a chat (or root) span reports, or null when it carries none (usage
 * missing, or a failed attempt). The uncached part is `chatter.usage.uncached_input_tokens`
 * when present, else derived from OTel's inclusive input count.
 */
export const readSpanUsage = (attributes: Attributes): SpanUsage | null => {
  const inclusiveInput = tokenAttribute(attributes, ATTR_GEN_AI_USAGE_INPUT_TOKENS);
  const uncached = tokenAttribute(attributes, ATTR_UNCACHED_INPUT_TOKENS);
  const output = tokenAttribute(attributes, ATTR_GEN_AI_USAGE_OUTPUT_TOKENS);
  if (inclusiveInput === undefined && uncached === undefined && output === undefined) {
    return null;
  }
  const cacheRead = tokenAttribute(attributes, ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS) ?? 0;
  const cacheWrite = tokenAttribute(attributes, ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS) ?? 0;
  const inputUncached = uncached ?? Math.max(0, (inclusiveInput ?? 0) - cacheRead - cacheWrite);
  return {
    input: inclusiveInput ?? inputUncached + cacheRead + cacheWrite,
    inputUncached,
    cacheRead,
    cacheWrite,
    output: output ?? 0,
    reasoning: tokenAttribute(attributes, ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS) ?? 0,
  };
};

export const isErrorSpan = (span: ReadableSpan): boolean => span.status.code === SpanStatusCode.ERROR;

/** `error.type` of a failed span, `_OTHER` when it names none. */
export const spanErrorType = (span: ReadableSpan): string =>
  stringAttribute(span.attributes, ATTR_ERROR_TYPE) ?? ERROR_TYPE_OTHER;

const hrTimeToSeconds = (time: HrTime): number => time[0] + time[1] / 1e9;

export const spanDurationSeconds = (span: ReadableSpan): number => hrTimeToSeconds(span.duration);

export const spanDurationMs = (span: ReadableSpan): number => hrTimeToMilliseconds(span.duration);

export const spanEndEpochMs = (span: ReadableSpan): number => hrTimeToMilliseconds(span.endTime);

/** A key for one span that is unique across traces. */
export const spanKey = (span: { spanContext: () => { traceId: string; spanId: string } }): string => {
  const { traceId, spanId } = span.spanContext();
  return `${traceId}/${spanId}`;
};
