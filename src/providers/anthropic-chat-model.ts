import { ChatAnthropic } from '@langchain/anthropic';
import type { CallbackManagerForLLMRun } from '@langchain/core/callbacks/manager';
import type { ChatModelStreamEvent } from '@langchain/core/language_models/event';
import { AIMessageChunk, type BaseMessage, type UsageMetadata } from '@langchain/core/messages';
import type { ChatGenerationChunk } from '@langchain/core/outputs';

/*
 * Why this subclass exists. Anthropic's stream reports usage twice: `message_start`
 * carries input (and cache) tokens plus an initial output_tokens (usually 1), and
 * `message_delta` carries the *cumulative* output_tokens of the whole message.
 * @langchain/anthropic 1.5.11 turns both into usage_metadata (dist/utils/
 * message_outputs.js `_makeMessageChunkFromAnthropicEvent`: the message_delta chunk has
 * input_tokens 0 and output_tokens = the cumulative count) and LangChain sums chunk usage
 * when chunks are merged, so a streamed reply's output came out as
 * message_start.output_tokens + final output_tokens: one token (or more) higher than the
 * same reply fetched with invoke, and higher than what Anthropic bills. The same sum is
 * made for the content-block event protocol (dist/utils/stream_events.js
 * `convertAnthropicStream`). The fix: the message_start usage keeps its input and cache
 * buckets but reports output 0, leaving the output count to message_delta.
 * test/providers/anthropic-acceptance.test.ts proves it against a loopback Messages API
 * and will flag it when an upgrade changes this behaviour.
 */

function withoutStartOutput(usage: UsageMetadata): UsageMetadata {
  return { ...usage, output_tokens: 0, total_tokens: usage.input_tokens };
}

/**
 * `ChatAnthropic` whose streamed usage matches what Anthropic bills (and what invoke
 * reports): output tokens are counted once, from `message_delta`. Everything else is
 * inherited unchanged.
 */
export class AnthropicChatModel extends ChatAnthropic {
  static override lc_name(): string {
    return 'AnthropicChatModel';
  }

  /** Takes `maxTokens` per call too (LangChain reads it only from the constructor): a budget's cap. */
  override invocationParams(options?: this['ParsedCallOptions']): ReturnType<ChatAnthropic['invocationParams']> {
    const params = super.invocationParams(options);
    const cap = (options as { maxTokens?: unknown } | undefined)?.maxTokens;
    if (typeof cap === 'number') params.max_tokens = Math.min(cap, params.max_tokens ?? cap);
    return params;
  }

  override async *_streamResponseChunks(
    messages: BaseMessage[],
    options: this['ParsedCallOptions'],
    runManager?: CallbackManagerForLLMRun,
  ): AsyncGenerator<ChatGenerationChunk> {
    let sawUsage = false;
    for await (const chunk of super._streamResponseChunks(messages, options, runManager)) {
      const message = chunk.message;
      // The first usage-bearing chunk is message_start's (the only one with the message
      // id). The parent reports the chunk to handleLLMNewToken only after we pass it on,
      // and by reference, so correcting it in place corrects the callbacks' view too.
      if (!sawUsage && AIMessageChunk.isInstance(message) && message.usage_metadata !== undefined) {
        sawUsage = true;
        if (message.id !== undefined) message.usage_metadata = withoutStartOutput(message.usage_metadata);
      }
      yield chunk;
    }
  }

  override async *_streamChatModelEvents(
    messages: BaseMessage[],
    options: this['ParsedCallOptions'],
    runManager?: CallbackManagerForLLMRun,
  ): AsyncGenerator<ChatModelStreamEvent> {
    // Usage here travels as snapshots; later snapshots are message_start's output plus
    // the cumulative delta, so message_start's output is subtracted from each.
    let startOutput = 0;
    for await (const event of super._streamChatModelEvents(messages, options, runManager)) {
      if (event.event === 'message-start' && event.usage !== undefined) {
        startOutput = event.usage.output_tokens ?? 0;
        yield { ...event, usage: { ...event.usage, output_tokens: 0, total_tokens: event.usage.input_tokens ?? 0 } };
      } else if ((event.event === 'usage' || event.event === 'message-finish') && event.usage !== undefined) {
        const output = Math.max(0, (event.usage.output_tokens ?? 0) - startOutput);
        yield {
          ...event,
          usage: { ...event.usage, output_tokens: output, total_tokens: (event.usage.input_tokens ?? 0) + output },
        };
      } else {
        yield event;
      }
    }
  }
}
