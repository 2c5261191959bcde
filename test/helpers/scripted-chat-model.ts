import type { CallbackManagerForLLMRun } from '@langchain/core/callbacks/manager';
import type { BaseLanguageModelInput } from '@langchain/core/language_models/base';
import {
  BaseChatModel,
  type BaseChatModelCallOptions,
  type BaseChatModelParams,
  type BindToolsInput,
  type LangSmithParams,
} from '@langchain/core/language_models/chat_models';
import {
  type AIMessageChunk,
  type BaseMessage,
  type InputTokenDetails,
  type OutputTokenDetails,
  type UsageMetadata,
} from '@langchain/core/messages';
import type { ChatGenerationChunk, ChatResult } from '@langchain/core/outputs';
import type { Runnable } from '@langchain/core/runnables';
import { z } from 'zod';
import { throwIfAborted } from '../../src/providers/abort.js';
import { generateFromPlan, streamPlannedReply, type PlannedReply } from '../../src/providers/planned-reply.js';
import { messageText } from '../../src/providers/message-text.js';
import { toolNames } from '../../src/providers/tool-names.js';

/**
 * Usage as a provider reports it through LangChain's `usage_metadata`: `input_tokens`
 * *includes* cached tokens (`input_token_details.cache_read` / `cache_creation` are
 * parts of it) and `output_tokens` includes `output_token_details.reasoning`.
 * Assignable from LangChain's `UsageMetadata`; `total_tokens` may be left out and is
 * then reported as input + output.
 */
export type ProviderUsageReport = {
  input_tokens: number;
  output_tokens: number;
  total_tokens?: number;
  input_token_details?: InputTokenDetails;
  output_token_details?: OutputTokenDetails;
};

/** A tool call the scripted model emits. `id` defaults to `call_<turn>_<index>`. */
export type ScriptedToolCall = { name: string; args: Record<string, unknown>; id?: string };

/** A successful scripted model response. */
export type ScriptedReply = {
  content: string;
  toolCalls?: ScriptedToolCall[];
  /**
   * Usage to report. Omitted → a deterministic estimate (one token per
   * whitespace-separated word of the prompt; one per word of the reply plus one per
   * tool call). `null` → no `usage_metadata` at all, like a provider that reports none.
   */
  usage?: ProviderUsageReport | null;
  /** Defaults to `tool_calls` when the turn has tool calls, else `stop`. */
  finishReason?: string;
  /** Delay before the first chunk (time to first token). */
  latencyMs?: number;
  /** Delay between streamed chunks. */
  chunkDelayMs?: number;
};

/** A scripted provider failure, thrown before any chunk like an HTTP error would be. */
export type ScriptedFailure = {
  error: { message: string; status?: number; retryAfterMs?: number; code?: string };
};

/** One scripted turn: consumed by exactly one model call, in order. */
export type ScriptedTurn = ScriptedReply | ScriptedFailure;

/** What the model received on one call, for assertions. */
export type ScriptedCall = {
  /** Index of the turn this call consumed (equal to the call's position). */
  turn: number;
  messages: BaseMessage[];
  /** Names of the tools bound for this call. */
  tools: string[];
  streamed: boolean;
  /** The call's `maxTokens` option, if it had one. */
  maxTokens: number | undefined;
};

/** Options of {@link ScriptedChatModel}. */
export type ScriptedChatModelFields = BaseChatModelParams & {
  turns: ScriptedTurn[];
  /** Reported as `response_metadata.model_name`. Defaults to `scripted-1`. */
  model?: string;
  /** Reported as `response_metadata.model_provider`. Defaults to `scripted`. */
  provider?: string;
};

/**
 * Call options: `bindTools` passes the tools through here; `maxTokens` caps the reply's
 * output tokens for this call (a longer scripted reply is cut, as a provider cuts it).
 */
export type ScriptedChatModelCallOptions = BaseChatModelCallOptions & {
  tools?: BindToolsInput[];
  maxTokens?: number;
};

const nonNegativeInt = z.number().int().min(0);
const UsageSchema = z.object({
  input_tokens: nonNegativeInt,
  output_tokens: nonNegativeInt,
  total_tokens: nonNegativeInt.optional(),
  input_token_details: z.record(z.string(), nonNegativeInt.optional()).optional(),
  output_token_details: z.record(z.string(), nonNegativeInt.optional()).optional(),
});
const ReplySchema = z.strictObject({
  content: z.string(),
  toolCalls: z.array(z.object({ name: z.string().min(1), args: z.record(z.string(), z.unknown()), id: z.string().optional() })).optional(),
  usage: UsageSchema.nullable().optional(),
  finishReason: z.string().optional(),
  latencyMs: nonNegativeInt.optional(),
  chunkDelayMs: nonNegativeInt.optional(),
});
const FailureSchema = z.strictObject({
  error: z.object({
    message: z.string(),
    status: z.number().int().min(100).max(599).optional(),
    retryAfterMs: nonNegativeInt.optional(),
    code: z.string().optional(),
  }),
});
/** Validates a script, so a typo in a test's turn fails at construction, not mid-run. */
export const ScriptedTurnSchema = z.union([ReplySchema, FailureSchema]);

/**
 * Thrown for a scripted failure. Shaped like the OpenAI/Anthropic SDK `APIError`s
 * (`status`, a fetch `Headers` with `retry-after` / `retry-after-ms`, `error.code`),
 * so retry and error classification see exactly what they would see from a provider.
 */
export class ScriptedProviderError extends Error {
  override readonly name = 'ScriptedProviderError';
  readonly status: number | undefined;
  readonly headers: Headers;
  readonly code: string | undefined;
  readonly error: { message: string; type: string; code: string | undefined };

  constructor(failure: ScriptedFailure['error']) {
    super(failure.status === undefined ? failure.message : `${failure.status} ${failure.message}`);
    this.status = failure.status;
    this.code = failure.code;
    this.error = { message: failure.message, type: 'scripted_error', code: failure.code };
    this.headers = new Headers();
    if (failure.retryAfterMs !== undefined) {
      // Both SDKs honour `retry-after-ms` first; `retry-after` is whole seconds.
      this.headers.set('retry-after-ms', String(failure.retryAfterMs));
      this.headers.set('retry-after', String(Math.ceil(failure.retryAfterMs / 1000)));
    }
  }
}

/** Thrown when the model is called more times than it has turns. */
export class ScriptExhaustedError extends Error {
  override readonly name = 'ScriptExhaustedError';
}

function countWords(text: string): number {
  const trimmed = text.trim();
  return trimmed === '' ? 0 : trimmed.split(/\s+/).length;
}

function completeUsage(usage: ProviderUsageReport): UsageMetadata {
  return {
    ...usage,
    total_tokens: usage.total_tokens ?? usage.input_tokens + usage.output_tokens,
  };
}

/**
 * A reply cut at `maxTokens` output tokens, as a provider cuts one (finish reason
 * `length`): the first `maxTokens` word-sized chunks (a chunk is a token in this model's
 * count), no tool call (a cut one would be invalid JSON), and the usage of what was
 * generated: output `maxTokens` (reasoning no more than that).
 */
function truncated(
  reply: { chunks: string[]; toolCalls: PlannedReply['toolCalls']; usage: UsageMetadata | undefined },
  maxTokens: number,
): Pick<PlannedReply, 'chunks' | 'toolCalls' | 'usage'> {
  const { usage } = reply;
  const chunks = reply.chunks.slice(0, maxTokens);
  if (usage === undefined) return { chunks, toolCalls: [], usage };
  const reasoning = usage.output_token_details?.reasoning;
  return {
    chunks,
    toolCalls: [],
    usage: {
      ...usage,
      output_tokens: maxTokens,
      total_tokens: usage.input_tokens + maxTokens,
      ...(reasoning === undefined
        ? {}
        : { output_token_details: { ...usage.output_token_details, reasoning: Math.min(reasoning, maxTokens) } }),
    },
  };
}

/** Splits text into word-sized chunks that concatenate back to the exact text. */
function splitIntoChunks(text: string): string[] {
  return text.match(/\s*\S+\s*|\s+/g) ?? [];
}

/**
 * A chat model that plays back a fixed script of replies and failures, for tests and
 * benchmarks. It behaves like a provider-backed model where the runtime can tell:
 * streaming reports every chunk (the final usage chunk included) through
 * `handleLLMNewToken`, usage arrives as `usage_metadata` in provider shape, failures
 * look like SDK errors, and an AbortSignal stops it promptly.
 *
 * The script and the recorded calls are shared by every binding of the instance
 * (`bindTools`, `withConfig`), so a graph that binds tools still follows the script.
 *
 * @throws ScriptedProviderError for a failure turn; ScriptExhaustedError past the
 *   last turn; AbortError when the call's signal fires.
 */
export class ScriptedChatModel extends BaseChatModel<ScriptedChatModelCallOptions> {
  readonly model: string;
  readonly provider: string;
  private readonly turns: readonly ScriptedTurn[];
  private readonly received: ScriptedCall[] = [];
  private cursor = 0;

  static override lc_name(): string {
    return 'ScriptedChatModel';
  }

  constructor(fields: ScriptedChatModelFields) {
    const { turns, model, provider, ...rest } = fields;
    super(rest);
    this.turns = z.array(ScriptedTurnSchema).parse(turns) as ScriptedTurn[];
    this.model = model ?? 'scripted-1';
    this.provider = provider ?? 'scripted';
  }

  /** Every call received so far, in order. */
  get calls(): readonly ScriptedCall[] {
    return this.received;
  }

  /** How many turns are left to play. */
  get remainingTurns(): number {
    return this.turns.length - this.cursor;
  }

  _llmType(): string {
    return 'scripted';
  }

  override getLsParams(options: this['ParsedCallOptions']): LangSmithParams {
    return { ...super.getLsParams(options), ls_provider: this.provider, ls_model_name: this.model };
  }

  override bindTools(
    tools: BindToolsInput[],
    kwargs?: Partial<ScriptedChatModelCallOptions>,
  ): Runnable<BaseLanguageModelInput, AIMessageChunk, ScriptedChatModelCallOptions> {
    return this.withConfig({ ...kwargs, tools });
  }

  override async _generate(
    messages: BaseMessage[],
    options: this['ParsedCallOptions'],
    _runManager?: CallbackManagerForLLMRun,
  ): Promise<ChatResult> {
    throwIfAborted(options.signal);
    return generateFromPlan(this.nextPlan(messages, options, false), options.signal);
  }

  override async *_streamResponseChunks(
    messages: BaseMessage[],
    options: this['ParsedCallOptions'],
    runManager?: CallbackManagerForLLMRun,
  ): AsyncGenerator<ChatGenerationChunk> {
    throwIfAborted(options.signal);
    yield* streamPlannedReply(this.nextPlan(messages, options, true), options.signal, runManager);
  }

  /** Consumes the next turn (recording the call) and turns it into a playback plan. */
  private nextPlan(messages: BaseMessage[], options: this['ParsedCallOptions'], streamed: boolean): PlannedReply {
    const turnIndex = this.cursor;
    const maxTokens = options.maxTokens;
    this.received.push({ turn: turnIndex, messages: [...messages], tools: toolNames(options.tools), streamed, maxTokens });
    const turn = this.turns[turnIndex];
    if (turn === undefined) {
      throw new ScriptExhaustedError(
        `ScriptedChatModel script exhausted: call ${turnIndex + 1} but only ${this.turns.length} turn(s) scripted`,
      );
    }
    this.cursor += 1;
    if ('error' in turn) throw new ScriptedProviderError(turn.error);

    const toolCalls = (turn.toolCalls ?? []).map((call, index) => ({
      name: call.name,
      args: call.args,
      id: call.id ?? `call_${turnIndex}_${index}`,
    }));
    let usage: UsageMetadata | undefined;
    if (turn.usage === null) usage = undefined;
    else if (turn.usage !== undefined) usage = completeUsage(turn.usage);
    else {
      usage = completeUsage({
        input_tokens: messages.reduce((sum, message) => sum + countWords(messageText(message)), 0),
        output_tokens: countWords(turn.content) + toolCalls.length,
      });
    }
    const reply = { chunks: splitIntoChunks(turn.content), toolCalls, usage };
    // Without usage the model's own count decides: a token per chunk and per tool call.
    const output = usage?.output_tokens ?? reply.chunks.length + toolCalls.length;
    const cut = maxTokens !== undefined && output > maxTokens;
    return {
      ...(cut ? truncated(reply, maxTokens) : reply),
      responseMetadata: {
        model_name: this.model,
        model_provider: this.provider,
        finish_reason: cut ? 'length' : (turn.finishReason ?? (toolCalls.length > 0 ? 'tool_calls' : 'stop')),
      },
      firstChunkDelayMs: turn.latencyMs ?? 0,
      chunkDelayMs: turn.chunkDelayMs ?? 0,
    };
  }
}
