import type { UsageMetadata } from '@langchain/core/messages';
import { z } from 'zod';

/**
 * Token usage of one model call in non-overlapping buckets (docs/run-contract.md).
 * prompt_tokens = inputUncached + cacheRead + cacheWrite; completion_tokens = output;
 * `reasoning` is the part of `output` spent on reasoning, never counted on top of it.
 */
export type Usage = {
  inputUncached: number;
  cacheRead: number;
  cacheWrite: number;
  output: number;
  reasoning: number;
};

const tokens = z.number().int().min(0);

/** Validates a {@link Usage} read back from storage or received over the wire. */
export const UsageSchema = z.strictObject({
  inputUncached: tokens,
  cacheRead: tokens,
  cacheWrite: tokens,
  output: tokens,
  reasoning: tokens,
});

/** The usage of nothing. Frozen so a shared accumulator start can't be mutated. */
export const ZERO_USAGE: Readonly<Usage> = Object.freeze({
  inputUncached: 0,
  cacheRead: 0,
  cacheWrite: 0,
  output: 0,
  reasoning: 0,
});

/** Token counts from a provider: anything but a finite non-negative number counts as 0. */
function count(value: number | undefined): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? Math.round(value) : 0;
}

/*
 * What the installed LangChain provider packages put into `usage_metadata`
 * (read from their dist sources, @langchain/openai 1.5.8, @langchain/anthropic 1.5.11):
 *
 * - @langchain/openai, dist/chat_models/completions.js (`_generate` and the final usage
 *   chunk of `_streamResponseChunks`): input_tokens = usage.prompt_tokens, which OpenAI
 *   reports *including* cached tokens; input_token_details.cache_read =
 *   prompt_tokens_details.cached_tokens; output_tokens = completion_tokens, which
 *   *includes* reasoning; output_token_details.reasoning =
 *   completion_tokens_details.reasoning_tokens. OpenAI never reports cache writes.
 * - @langchain/anthropic, dist/utils/message_outputs.js (`buildUsageMetadata`, used for
 *   invoke and the message_start stream chunk) and dist/utils/stream_events.js:
 *   input_tokens = usage.input_tokens + cache_creation_input_tokens +
 *   cache_read_input_tokens, i.e. LangChain *adds* the cache buckets that Anthropic's
 *   API reports outside input_tokens; input_token_details.cache_creation / cache_read
 *   carry them. So both packages report input_tokens inclusive of cache, which is what
 *   LangChain's UsageMetadata documents ("sum of all input token types").
 *   (The same package over-counts streamed output by message_start's output_tokens;
 *   anthropic-chat-model.ts corrects that before it gets here.)
 *
 * A report where the cache buckets exceed input_tokens can only come from a source that
 * counts input *excluding* cache (Anthropic's raw API shape, or a hand-written fake):
 * then input_tokens is taken as the uncached part instead of clamping it to zero, which
 * would lose tokens that were billed.
 */

/**
 * Normalises LangChain `usage_metadata` into the contract's non-overlapping buckets.
 * Returns `null` when the provider reported no usage, so a missing report is flagged
 * (`usage_missing`) rather than counted as zero.
 */
export function normalizeUsage(usageMetadata: UsageMetadata | undefined | null): Usage | null {
  if (usageMetadata === undefined || usageMetadata === null) return null;
  const input = count(usageMetadata.input_tokens);
  const cacheRead = count(usageMetadata.input_token_details?.cache_read);
  const cacheWrite = count(usageMetadata.input_token_details?.cache_creation);
  const inclusiveRemainder = input - cacheRead - cacheWrite;
  const inputUncached = inclusiveRemainder >= 0 ? inclusiveRemainder : input;

  let output = count(usageMetadata.output_tokens);
  const reasoning = count(usageMetadata.output_token_details?.reasoning);
  // Same reasoning as for input: reasoning can only exceed output when the source
  // counted output without it, and then the reasoning tokens were billed on top.
  if (reasoning > output) output += reasoning;

  return { inputUncached, cacheRead, cacheWrite, output, reasoning };
}

/** All input tokens: uncached, cache-read and cache-write (the contract's prompt_tokens). */
export function promptTokens(usage: Usage): number {
  return usage.inputUncached + usage.cacheRead + usage.cacheWrite;
}

/** All output tokens, reasoning included (the contract's completion_tokens). */
export function completionTokens(usage: Usage): number {
  return usage.output;
}

/** prompt_tokens + completion_tokens. */
export function totalTokens(usage: Usage): number {
  return promptTokens(usage) + completionTokens(usage);
}

/** Bucket-wise sum, e.g. of a run's model calls (tool loops included). */
export function addUsage(a: Usage, b: Usage): Usage {
  return {
    inputUncached: a.inputUncached + b.inputUncached,
    cacheRead: a.cacheRead + b.cacheRead,
    cacheWrite: a.cacheWrite + b.cacheWrite,
    output: a.output + b.output,
    reasoning: a.reasoning + b.reasoning,
  };
}
