import type { CallbackManagerForLLMRun } from '@langchain/core/callbacks/manager';
import { AIMessage, AIMessageChunk, type UsageMetadata } from '@langchain/core/messages';
import { ChatGenerationChunk, type ChatResult } from '@langchain/core/outputs';
import { abortableSleep, throwIfAborted } from './abort.js';

/** A reply an in-process model has decided on, ready to be played out as a stream. */
export type PlannedReply = {
  /** Text pieces that concatenate to the reply's content. */
  chunks: string[];
  toolCalls: Array<{ name: string; args: Record<string, unknown>; id: string }>;
  /** `undefined` → the reply carries no usage_metadata, like a provider that reports none. */
  usage: UsageMetadata | undefined;
  responseMetadata: { model_name: string; model_provider: string; finish_reason: string };
  /** Delay before the first chunk (time to first token). */
  firstChunkDelayMs: number;
  /** Delay before every later chunk. */
  chunkDelayMs: number;
};

/**
 * Plays a planned reply out as LangChain generation chunks, the way provider
 * integrations do: one chunk per text piece, then one final chunk carrying tool calls,
 * finish reason and usage. Every chunk, the final one included, is also reported
 * through `runManager.handleLLMNewToken`: callback consumers (streamEvents when the
 * model is invoked inside a graph, LangGraph's "messages" stream) only see chunks that
 * way, so a usage chunk that skipped it would never reach them.
 * @throws AbortError as soon as `signal` fires, including during a delay.
 */
export async function* streamPlannedReply(
  plan: PlannedReply,
  signal: AbortSignal | undefined,
  runManager: CallbackManagerForLLMRun | undefined,
): AsyncGenerator<ChatGenerationChunk> {
  for (const [index, text] of plan.chunks.entries()) {
    await abortableSleep(index === 0 ? plan.firstChunkDelayMs : plan.chunkDelayMs, signal);
    const chunk = new ChatGenerationChunk({ text, message: new AIMessageChunk({ content: text }) });
    yield chunk;
    await runManager?.handleLLMNewToken(text, { prompt: 0, completion: 0 }, undefined, undefined, undefined, {
      chunk,
    });
  }
  if (plan.chunks.length === 0) await abortableSleep(plan.firstChunkDelayMs, signal);
  throwIfAborted(signal);

  // response_metadata goes on this chunk only: merging chunks concatenates string
  // fields, so a model_name on every chunk would come out repeated.
  const final = new ChatGenerationChunk({
    text: '',
    message: new AIMessageChunk({
      content: '',
      tool_call_chunks: plan.toolCalls.map((call, index) => ({
        type: 'tool_call_chunk' as const,
        name: call.name,
        args: JSON.stringify(call.args),
        id: call.id,
        index,
      })),
      response_metadata: { ...plan.responseMetadata },
      ...(plan.usage === undefined ? {} : { usage_metadata: plan.usage }),
    }),
    generationInfo: { finish_reason: plan.responseMetadata.finish_reason },
  });
  yield final;
  await runManager?.handleLLMNewToken('', { prompt: 0, completion: 0 }, undefined, undefined, undefined, {
    chunk: final,
  });
}

/**
 * Runs the same stream without token callbacks and folds it into the ChatResult that
 * `_generate` returns, so invoke and stream cannot disagree on content, tool calls or
 * usage.
 * @throws AbortError as soon as `signal` fires.
 */
export async function generateFromPlan(plan: PlannedReply, signal: AbortSignal | undefined): Promise<ChatResult> {
  let message = new AIMessageChunk({ content: '' });
  for await (const chunk of streamPlannedReply(plan, signal, undefined)) {
    if (AIMessageChunk.isInstance(chunk.message)) message = message.concat(chunk.message);
  }
  const text = typeof message.content === 'string' ? message.content : '';
  return {
    generations: [
      {
        text,
        message: new AIMessage({
          content: message.content,
          tool_calls: message.tool_calls ?? [],
          response_metadata: message.response_metadata,
          // The plan's own object: merging chunks would add empty detail objects.
          ...(plan.usage === undefined ? {} : { usage_metadata: plan.usage }),
        }),
        generationInfo: { finish_reason: plan.responseMetadata.finish_reason },
      },
    ],
  };
}
