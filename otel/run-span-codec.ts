import type { Attributes } from '@opentelemetry/api';
import { promptTokens, zeroUsage, type Usage } from '../machines/usage.js';
import * as semconv from './semconv.js';
import type { GenAiConventions } from './semconv.js';

/*
 * The one place that turns a run's figures into span attributes and back. src/runtime's
 * RunSpans encodes with it; every span processor (database writer, metrics, analytics
 * feed) decodes with it, so they all read the same span as the same numbers (ARCHITECTURE
 * invariant 4) under the same null rules:
 *
 * - usage `null` (the provider reported none, or a failed attempt) is no usage attribute
 *   at all, never zeros; a span whose token attributes are absent, not counts, or do not
 *   add up decodes as `null` too (unusable is missing, never repaired);
 * - cost `null` (no price known, or nothing to price) is no cost attribute, never 0.
 *
 * Encoding writes the names of one GenAI convention (`released` unless told `latest`, see
 * semconv.ts GenAiConventions); decoding reads either, so every processor reads the spans
 * of any instance whatever it was configured with.
 */

/** Where a model call's usage figures came from. */
export type UsageSource = 'provider' | 'estimated' | 'missing';

/** What a `chat` span says about its call's response (set when the call ends). */
export type ModelResultAttributes = {
  readonly responseModel: string | null;
  readonly usage: Usage | null;
  readonly usageSource: UsageSource;
  /** USD; `null` when no price is known or there was no usage to price. */
  readonly costUsd: number | null;
  readonly priceId: string | null;
  readonly finishReason: string | null;
  readonly timeToFirstChunkMs: number | null;
};

/** What the root `invoke_workflow` span says about the finished run (set when it ends). */
export type RunEndAttributes = {
  readonly status: string;
  readonly terminalReason: string;
  /** The sum over the run's calls that reported usage (zeros when none did). */
  readonly usage: Usage;
  /** USD over the run's calls; `null` when a call's price was unknown (`costUnknown`). */
  readonly costUsd: number | null;
  readonly costUnknown: boolean;
  readonly usageMissingCalls: number;
  readonly modelCalls: number;
  readonly toolCalls: number;
  readonly error: string | null;
  readonly output: string | null;
};

// ── Reading single attributes ────────────────────────────────────────────────

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

/** Token counts are non-negative safe integers; anything else is not a count. */
const countAttribute = (attributes: Attributes, key: string): number | undefined => {
  const value = numberAttribute(attributes, key);
  return value !== undefined && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
};

// ── Usage and cost ───────────────────────────────────────────────────────────

/**
 * The usage attributes: OTel's `gen_ai.usage.input_tokens` counts cached tokens inside the
 * input, so the uncached bucket travels in its own attribute; none at all for `null`.
 * Cache writes are `cache_creation` in the released conventions, `cache_write` in the latest.
 */
export const encodeUsage = (usage: Usage | null, conventions: GenAiConventions = 'released'): Attributes =>
  usage === null
    ? {}
    : {
        [semconv.ATTR_GEN_AI_USAGE_INPUT_TOKENS]: promptTokens(usage),
        [semconv.ATTR_UNCACHED_INPUT_TOKENS]: usage.inputUncached,
        [semconv.ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS]: usage.cacheRead,
        [conventions === 'latest'
          ? semconv.ATTR_GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS
          : semconv.ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS]: usage.cacheWrite,
        [semconv.ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: usage.output,
        [semconv.ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS]: usage.reasoning,
      };

/**
 * The usage a span carries, or `null` when it carries none or none that adds up. Input
 * and output counts are required; the detail buckets default to 0 (absent means none);
 * the uncached bucket is its own attribute or, on a span from elsewhere, what the
 * inclusive input leaves after the cache buckets.
 */
export const decodeUsage = (attributes: Attributes): Usage | null => {
  const input = countAttribute(attributes, semconv.ATTR_GEN_AI_USAGE_INPUT_TOKENS);
  const output = countAttribute(attributes, semconv.ATTR_GEN_AI_USAGE_OUTPUT_TOKENS);
  if (input === undefined || output === undefined) {
    return null;
  }
  const detail = (key: string): number | undefined => (attributes[key] === undefined ? 0 : countAttribute(attributes, key));
  const cacheRead = detail(semconv.ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS);
  // The released name, else the latest conventions' (this service opted in, or another instrumentation).
  const cacheWrite = detail(
    attributes[semconv.ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] === undefined
      ? semconv.ATTR_GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS
      : semconv.ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
  );
  const reasoning = detail(semconv.ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS);
  if (cacheRead === undefined || cacheWrite === undefined || reasoning === undefined || reasoning > output) {
    return null;
  }
  const inputUncached =
    attributes[semconv.ATTR_UNCACHED_INPUT_TOKENS] === undefined
      ? input - cacheRead - cacheWrite
      : countAttribute(attributes, semconv.ATTR_UNCACHED_INPUT_TOKENS);
  if (inputUncached === undefined || inputUncached < 0 || inputUncached + cacheRead + cacheWrite !== input) {
    return null;
  }
  return { inputUncached, cacheRead, cacheWrite, output, reasoning };
};

/** The cost attribute; none for an unknown cost (`null`), never 0. */
export const encodeCost = (costUsd: number | null): Attributes => (costUsd === null ? {} : { [semconv.ATTR_GEN_AI_USAGE_COST]: costUsd });

/** The cost a span carries: a finite non-negative USD amount, else `null` (unknown). */
export const decodeCost = (attributes: Attributes): number | null => {
  const cost = numberAttribute(attributes, semconv.ATTR_GEN_AI_USAGE_COST);
  return cost !== undefined && cost >= 0 ? cost : null;
};

// ── A model call's response (`chat` span, `model_response` event) ────────────

const usageSourceOf = (usage: Usage | null, source: UsageSource | string | undefined): UsageSource =>
  usage === null ? 'missing' : source === 'estimated' ? 'estimated' : 'provider';

/** What the `model_response` lifecycle event carries: the figures, without the call's details. */
export const encodeModelResponse = (
  result: Pick<ModelResultAttributes, 'responseModel' | 'usage' | 'usageSource' | 'costUsd'>,
  conventions: GenAiConventions = 'released',
): Attributes => ({
  ...(result.responseModel === null ? {} : { [semconv.ATTR_GEN_AI_RESPONSE_MODEL]: result.responseModel }),
  [semconv.ATTR_USAGE_SOURCE]: usageSourceOf(result.usage, result.usageSource),
  ...encodeUsage(result.usage, conventions),
  ...encodeCost(result.costUsd),
});

/** Released conventions have no attribute for it (the service's own, in ms); the latest name one, in seconds. */
const encodeTimeToFirstChunk = (ms: number | null, conventions: GenAiConventions): Attributes =>
  ms === null
    ? {}
    : conventions === 'latest'
      ? { [semconv.ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]: ms / 1000 }
      : { [semconv.ATTR_TIME_TO_FIRST_CHUNK_MS]: ms };

/** Milliseconds from either attribute; seconds are read to the microsecond, which gives back the ms encoded. */
const decodeTimeToFirstChunk = (attributes: Attributes): number | null => {
  const ms = numberAttribute(attributes, semconv.ATTR_TIME_TO_FIRST_CHUNK_MS);
  const seconds = numberAttribute(attributes, semconv.ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK);
  const value = ms ?? (seconds === undefined ? undefined : Math.round(seconds * 1e6) / 1e3);
  return value !== undefined && value >= 0 ? value : null;
};

/** The attributes a `chat` span gets when its call responds (or is stopped with a partial result). */
export const encodeModelResult = (result: ModelResultAttributes, conventions: GenAiConventions = 'released'): Attributes => ({
  ...encodeModelResponse(result, conventions),
  ...(result.priceId === null ? {} : { [semconv.ATTR_PRICE_ID]: result.priceId }),
  ...(result.finishReason === null ? {} : { [semconv.ATTR_GEN_AI_RESPONSE_FINISH_REASONS]: [result.finishReason] }),
  ...encodeTimeToFirstChunk(result.timeToFirstChunkMs, conventions),
});

/** A `chat` span's response figures; a failed attempt decodes as usage `null` (`missing`). */
export const decodeModelResult = (attributes: Attributes): ModelResultAttributes => {
  const usage = decodeUsage(attributes);
  const reasons = attributes[semconv.ATTR_GEN_AI_RESPONSE_FINISH_REASONS];
  return {
    responseModel: stringAttribute(attributes, semconv.ATTR_GEN_AI_RESPONSE_MODEL) ?? null,
    usage,
    usageSource: usageSourceOf(usage, stringAttribute(attributes, semconv.ATTR_USAGE_SOURCE)),
    costUsd: decodeCost(attributes),
    priceId: stringAttribute(attributes, semconv.ATTR_PRICE_ID) ?? null,
    finishReason: Array.isArray(reasons) && typeof reasons[0] === 'string' ? reasons[0] : null,
    timeToFirstChunkMs: decodeTimeToFirstChunk(attributes),
  };
};

// ── A run's end (root span) ──────────────────────────────────────────────────

/** The attributes the root span gets when the run ends: the machine's totals. */
export const encodeRunEnd = (run: RunEndAttributes, conventions: GenAiConventions = 'released'): Attributes => ({
  [semconv.ATTR_RUN_STATUS]: run.status,
  [semconv.ATTR_RUN_TERMINAL_REASON]: run.terminalReason,
  ...encodeUsage(run.usage, conventions),
  ...encodeCost(run.costUnknown ? null : run.costUsd),
  [semconv.ATTR_RUN_COST_UNKNOWN]: run.costUnknown,
  [semconv.ATTR_RUN_USAGE_MISSING_CALLS]: run.usageMissingCalls,
  [semconv.ATTR_RUN_MODEL_CALLS]: run.modelCalls,
  [semconv.ATTR_RUN_TOOL_CALLS]: run.toolCalls,
  ...(run.error === null ? {} : { [semconv.ATTR_RUN_ERROR]: run.error }),
  ...(run.output === null ? {} : { [semconv.ATTR_CONTENT_OUTPUT]: run.output }),
});

/**
 * A finished run's totals from its root span. A root without usage attributes (a run
 * that ended before it could account anything) sums to zeros: the total of no calls.
 */
export const decodeRunEnd = (attributes: Attributes): RunEndAttributes => {
  const status = stringAttribute(attributes, semconv.ATTR_RUN_STATUS) ?? 'failed';
  const costUnknown = attributes[semconv.ATTR_RUN_COST_UNKNOWN] === true;
  return {
    status,
    terminalReason: stringAttribute(attributes, semconv.ATTR_RUN_TERMINAL_REASON) ?? status,
    usage: decodeUsage(attributes) ?? zeroUsage(),
    costUsd: costUnknown ? null : decodeCost(attributes),
    costUnknown,
    usageMissingCalls: countAttribute(attributes, semconv.ATTR_RUN_USAGE_MISSING_CALLS) ?? 0,
    modelCalls: countAttribute(attributes, semconv.ATTR_RUN_MODEL_CALLS) ?? 0,
    toolCalls: countAttribute(attributes, semconv.ATTR_RUN_TOOL_CALLS) ?? 0,
    error: stringAttribute(attributes, semconv.ATTR_RUN_ERROR) ?? null,
    output: stringAttribute(attributes, semconv.ATTR_CONTENT_OUTPUT) ?? null,
  };
};
