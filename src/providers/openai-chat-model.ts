import type { CallbackManagerForLLMRun } from '@langchain/core/callbacks/manager';
import { AIMessage, AIMessageChunk, type BaseMessage, type UsageMetadata } from '@langchain/core/messages';
import type { ChatGenerationChunk, ChatResult } from '@langchain/core/outputs';
import { ChatOpenAICompletions } from '@langchain/openai';
import { diag } from '@opentelemetry/api';
import { usageReportProblem } from './usage.js';

/*
 * Why this subclass exists. For a JSON (non-streamed) completion, @langchain/openai
 * 1.5.8 (dist/chat_models/completions.js `_generate`) builds usage_metadata with
 * truthiness tests: `if (completionTokens) usageMetadata.output_tokens = ...`. So a
 * reported `completion_tokens: 0` (an empty reply) leaves output_tokens out, a response
 * without any `usage` still gets a usage_metadata object (of empty details), and a count
 * sent as a string is concatenated (`0 + "12"`). The raw report is kept on the message
 * (`response_metadata.usage`), so the usage is rebuilt from it here, number for number,
 * and left undefined when the response had none; normalizeUsage (usage.ts) then decides
 * whether the numbers are usable.
 *
 * A streamed completion's usage chunk copies the raw numbers, but LangChain then merges
 * the chunks' usage_metadata with `(a ?? 0) + (b ?? 0)` per count, so a count the report
 * left out (no prompt_tokens) comes out of the merge as a true-looking 0. An unusable
 * usage chunk therefore loses its usage_metadata here, before the merge, and the call
 * is flagged usage_missing as if the stream had sent no usage at all.
 * test/reliability/provider-faults.test.ts proves both paths against a loopback server.
 */

type RawUsage = {
  prompt_tokens?: unknown;
  completion_tokens?: unknown;
  total_tokens?: unknown;
  prompt_tokens_details?: { cached_tokens?: unknown } | null;
  completion_tokens_details?: { reasoning_tokens?: unknown } | null;
};

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;

/**
 * LangChain usage_metadata carrying exactly the numbers of a Chat Completions `usage`
 * object (unchecked: the caller validates them); undefined when there is no report.
 */
export function usageMetadataFromOpenAI(raw: unknown): UsageMetadata | undefined {
  if (!isRecord(raw) || Object.keys(raw).length === 0) return undefined;
  const usage = raw as RawUsage;
  const cached = isRecord(usage.prompt_tokens_details) ? usage.prompt_tokens_details.cached_tokens : undefined;
  const reasoning = isRecord(usage.completion_tokens_details) ? usage.completion_tokens_details.reasoning_tokens : undefined;
  // The counts go through as sent, strings and negatives included, so that they can be refused.
  return {
    input_tokens: usage.prompt_tokens,
    output_tokens: usage.completion_tokens,
    total_tokens: usage.total_tokens,
    ...(cached === undefined || cached === null ? {} : { input_token_details: { cache_read: cached } }),
    ...(reasoning === undefined || reasoning === null ? {} : { output_token_details: { reasoning } }),
  } as UsageMetadata;
}

/** The `maxTokens` call option: caps one call's output (a budget's reservation sets it). */
type MaxTokensOption = { maxTokens?: unknown };

/**
 * `ChatOpenAICompletions` whose JSON completions report usage exactly as the server sent
 * it, and which takes `maxTokens` per call (LangChain reads it only from the constructor).
 */
export class OpenAIChatModel extends ChatOpenAICompletions {
  static override lc_name(): string {
    return 'OpenAIChatModel';
  }

  override invocationParams(
    ...args: Parameters<ChatOpenAICompletions['invocationParams']>
  ): ReturnType<ChatOpenAICompletions['invocationParams']> {
    const params = super.invocationParams(...args);
    const cap = (args[0] as MaxTokensOption | undefined)?.maxTokens;
    if (typeof cap === 'number') {
      // The parent sets the key the model takes (reasoning models: max_completion_tokens).
      if ('max_completion_tokens' in params) params.max_completion_tokens = Math.min(cap, params.max_completion_tokens ?? cap);
      else params.max_tokens = Math.min(cap, params.max_tokens ?? cap);
    }
    return params;
  }

  override async _generate(
    messages: BaseMessage[],
    options: this['ParsedCallOptions'],
    runManager?: CallbackManagerForLLMRun,
  ): Promise<ChatResult> {
    const result = await super._generate(messages, options, runManager);
    if (this.streaming) return result; // a streamed completion: built from the stream's own usage chunk
    for (const generation of result.generations) {
      if (AIMessage.isInstance(generation.message)) {
        generation.message.usage_metadata = usageMetadataFromOpenAI(generation.message.response_metadata['usage']);
      }
    }
    return result;
  }

  override async *_streamResponseChunks(
    messages: BaseMessage[],
    options: this['ParsedCallOptions'],
    runManager?: CallbackManagerForLLMRun,
  ): AsyncGenerator<ChatGenerationChunk> {
    for await (const chunk of super._streamResponseChunks(messages, options, runManager)) {
      const message = chunk.message;
      // The parent reports the chunk to handleLLMNewToken only after we pass it on, and by
      // reference, so dropping the usage here drops it from the callbacks' view too.
      if (AIMessageChunk.isInstance(message) && message.usage_metadata !== undefined) {
        const problem = usageReportProblem(message.usage_metadata);
        if (problem !== null) {
          diag.warn(`openai: streamed usage report unusable, counted as missing: ${problem}`);
          message.usage_metadata = undefined;
        }
      }
      yield chunk;
    }
  }
}
