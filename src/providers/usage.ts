import { diag } from '@opentelemetry/api';
import type { UsageMetadata } from '@langchain/core/messages';
import type { Usage } from '../../machines/usage.js';

/** A token count as a provider must report it: a non-negative safe integer; anything else is unusable. */
function reportedCount(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

/** A detail bucket (cache, reasoning): absent means none; present, it must be a usable count. */
function reportedDetail(value: unknown): number | undefined {
  return value === undefined || value === null ? 0 : reportedCount(value);
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
 *   A JSON response without `usage` still gets a usage_metadata object there (detail
 *   objects of `undefined`s, no input_tokens or output_tokens), and a count that is a
 *   string is concatenated rather than added (`0 + "12"` is `"012"`).
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
 * So a usable report has whole, non-negative input and output counts, cache buckets
 * that fit inside the input, reasoning that fits inside the output, and a total (when
 * given) equal to input + output. Anything else is a report this code cannot read
 * without guessing which of its numbers is wrong: it is treated as no report at all,
 * so the call is flagged `usage_missing` like a call without usage, never repaired
 * (clamped, rounded, re-based) into plausible figures.
 */

/**
 * Why a usage report is unusable, or `null` when it can be counted as it stands.
 * `undefined`/`null` (no report) is not a problem here: {@link normalizeUsage} returns
 * `null` for it too.
 */
export function usageReportProblem(usageMetadata: UsageMetadata): string | null {
  const input = reportedCount(usageMetadata.input_tokens);
  const output = reportedCount(usageMetadata.output_tokens);
  if (input === undefined) return `input_tokens is not a token count (${JSON.stringify(usageMetadata.input_tokens) ?? 'absent'})`;
  if (output === undefined) return `output_tokens is not a token count (${JSON.stringify(usageMetadata.output_tokens) ?? 'absent'})`;
  const cacheRead = reportedDetail(usageMetadata.input_token_details?.cache_read);
  const cacheWrite = reportedDetail(usageMetadata.input_token_details?.cache_creation);
  const reasoning = reportedDetail(usageMetadata.output_token_details?.reasoning);
  if (cacheRead === undefined || cacheWrite === undefined) return 'a cache bucket is not a token count';
  if (reasoning === undefined) return 'the reasoning detail is not a token count';
  if (cacheRead + cacheWrite > input) return `cache tokens (${cacheRead + cacheWrite}) exceed input_tokens (${input})`;
  if (reasoning > output) return `reasoning tokens (${reasoning}) exceed output_tokens (${output})`;
  const total: unknown = usageMetadata.total_tokens;
  if (total !== undefined && total !== null && total !== input + output) {
    return `total_tokens (${JSON.stringify(total)}) is not input_tokens + output_tokens (${input + output})`;
  }
  return null;
}

/**
 * Normalises LangChain `usage_metadata` into the contract's non-overlapping buckets.
 * Returns `null` when the provider reported no usage, or a report that is unusable (see
 * {@link usageReportProblem}; it is logged through OTel's diag), so the call is flagged
 * (`usage_missing`) rather than counted as zero or as a guess.
 */
export function normalizeUsage(usageMetadata: UsageMetadata | undefined | null): Usage | null {
  if (usageMetadata === undefined || usageMetadata === null) return null;
  const problem = usageReportProblem(usageMetadata);
  if (problem !== null) {
    diag.warn(`usage report unusable, counted as missing: ${problem}`);
    return null;
  }
  // Every count was checked above.
  const input = usageMetadata.input_tokens;
  const cacheRead = usageMetadata.input_token_details?.cache_read ?? 0;
  const cacheWrite = usageMetadata.input_token_details?.cache_creation ?? 0;
  return {
    inputUncached: input - cacheRead - cacheWrite,
    cacheRead,
    cacheWrite,
    output: usageMetadata.output_tokens,
    reasoning: usageMetadata.output_token_details?.reasoning ?? 0,
  };
}
