import { BaseCallbackHandler } from '@langchain/core/callbacks/base';
import type { AIMessage, BaseMessage } from '@langchain/core/messages';
import type { LLMResult } from '@langchain/core/outputs';
import type { Serialized } from '@langchain/core/load/serializable';
import type { ModelCallResult, WorkflowRunEvent } from '../../machines/workflow-run-types.js';
import { classifyProviderError } from '../providers/errors.js';
import { computeCost } from '../providers/pricing.js';
import type { TokenCounter } from '../providers/token-counter.js';
import { normalizeUsage } from '../providers/usage.js';
import type { PriceBook } from './price-book.js';

type InFlightCall = {
  readonly callId: string;
  readonly startedAt: number;
  readonly promptText: string;
  firstChunkAt: number | null;
  streamed: string;
};

export type RunCallbacksOptions = {
  readonly provider: string;
  readonly model: string;
  readonly prices: PriceBook;
  readonly tokens: TokenCounter;
  readonly now: () => number;
  /** Delivers a machine event; the actor processes it synchronously. */
  readonly send: (event: WorkflowRunEvent) => void;
  /** Use the providers' streaming APIs (chunks reach onToken as they arrive). */
  readonly streaming: boolean;
  /** Each streamed text chunk of the model, for SSE clients. */
  readonly onToken?: ((text: string) => void) | undefined;
};

const messageText = (message: BaseMessage): string =>
  typeof message.content === 'string'
    ? message.content
    : message.content.map((part) => ('text' in part && typeof part.text === 'string' ? part.text : '')).join('');

const generationMessage = (output: LLMResult): AIMessage | undefined => {
  const generation = output.generations[0]?.[0] as { message?: AIMessage } | undefined;
  return generation?.message;
};

/**
 * Turns what LangChain reports while the graph runs into machine events. These are
 * the callbacks `streamEvents` is built on, taken directly because they arrive in
 * execution order (awaited) and carry model errors, which `streamEvents` drops: a
 * retry decision needs the failed attempt's error before the next attempt starts.
 */
export class RunCallbacks extends BaseCallbackHandler {
  public override name = 'chatter-run-callbacks';
  /** Streaming runs make LangChain call the model's streaming path even on invoke(). */
  public readonly lc_prefer_streaming: boolean;
  private readonly options: RunCallbacksOptions;
  private readonly calls = new Map<string, InFlightCall>();

  public constructor(options: RunCallbacksOptions) {
    super();
    this.options = options;
    // Machine events must be delivered before the graph moves on.
    this.awaitHandlers = true;
    // Only model and tool calls become machine events: without these flags LangChain
    // also calls (and awaits) this handler for every graph step of the run. Not
    // ignoreAgent: LangChain reports tool calls only to handlers that take agent events.
    this.ignoreChain = true;
    this.ignoreRetriever = true;
    this.ignoreCustomEvent = true;
    this.lc_prefer_streaming = options.streaming;
  }

  public override handleChatModelStart(_llm: Serialized, messages: BaseMessage[][], runId: string): void {
    const at = this.options.now();
    const promptText = (messages[0] ?? []).map(messageText).join('\n');
    this.calls.set(runId, { callId: runId, startedAt: at, promptText, firstChunkAt: null, streamed: '' });
    this.options.send({ type: 'model.started', callId: runId, provider: this.options.provider, model: this.options.model, at });
  }

  public override handleLLMNewToken(token: string, _index: unknown, runId: string): void {
    const call = this.calls.get(runId);
    if (call === undefined || token === '') {
      return;
    }
    call.firstChunkAt ??= this.options.now();
    call.streamed += token;
    this.options.onToken?.(token);
  }

  public override handleLLMEnd(output: LLMResult, runId: string): void {
    const call = this.calls.get(runId);
    if (call === undefined) {
      return;
    }
    this.calls.delete(runId);
    const at = this.options.now();
    const message = generationMessage(output);
    const usage = normalizeUsage(message?.usage_metadata);
    // Streamed calls carry the finish reason and model in the generation's info, not
    // in the combined message's response_metadata.
    const metadata = {
      ...((output.generations[0]?.[0]?.generationInfo ?? {}) as Record<string, unknown>),
      ...((message?.response_metadata ?? {}) as Record<string, unknown>),
    };
    const responseModel =
      (typeof metadata['model_name'] === 'string' && metadata['model_name']) ||
      (typeof metadata['model'] === 'string' && metadata['model']) ||
      this.options.model;
    const finishReason =
      (typeof metadata['finish_reason'] === 'string' && metadata['finish_reason']) ||
      (typeof metadata['stop_reason'] === 'string' && metadata['stop_reason']) ||
      null;
    const price = this.options.prices.find(this.options.provider, this.options.model, new Date(call.startedAt));
    const result: ModelCallResult = {
      provider: this.options.provider,
      requestModel: this.options.model,
      responseModel,
      usage,
      usageSource: usage === null ? 'missing' : 'provider',
      costUsd: usage === null || price === null ? null : computeCost(usage, price),
      priceId: usage === null || price === null ? null : price.id,
      finishReason,
      hasToolCalls: (message?.tool_calls?.length ?? 0) > 0,
      latencyMs: Math.max(0, at - call.startedAt),
      timeToFirstChunkMs: call.firstChunkAt === null ? null : call.firstChunkAt - call.startedAt,
      at,
    };
    this.options.send({ type: 'model.responded', callId: runId, result });
  }

  public override handleLLMError(error: unknown, runId: string): void {
    if (!this.calls.has(runId)) {
      return;
    }
    const classified = classifyProviderError(error);
    if (classified.aborted === true) {
      // A cancel, timeout or shutdown: the call stays in flight so that the stop event
      // (or a per-call timeout, see failInFlight) can account for it.
      return;
    }
    this.calls.delete(runId);
    this.options.send({
      type: 'model.failed',
      callId: runId,
      error: {
        message: classified.message,
        transient: classified.transient,
        ...(classified.retryAfterMs === undefined ? {} : { retryAfterMs: classified.retryAfterMs }),
        ...(classified.status === undefined ? {} : { status: classified.status }),
      },
      at: this.options.now(),
    });
  }

  /**
   * A rough, cheap count of a call's prompt (about four characters a token), made at
   * its start for the record of a call that a crash may cut: never summed into usage.
   */
  public estimatedInputTokens(callId: string): number | undefined {
    const call = this.calls.get(callId);
    return call === undefined ? undefined : Math.ceil(call.promptText.length / 4);
  }

  /** Fails the call in flight with a transient error (the per-call timeout fired). */
  public failInFlight(message: string): boolean {
    const [call] = this.calls.values();
    if (call === undefined) {
      return false;
    }
    this.calls.delete(call.callId);
    this.options.send({
      type: 'model.failed',
      callId: call.callId,
      error: { message, transient: true },
      at: this.options.now(),
    });
    return true;
  }

  public override handleToolStart(
    tool: Serialized,
    input: string,
    runId: string,
    _parentRunId?: string,
    _tags?: string[],
    _metadata?: Record<string, unknown>,
    runName?: string,
  ): void {
    let args: unknown = input;
    try {
      args = JSON.parse(input);
    } catch {
      // not JSON: keep the text
    }
    const name = runName ?? ('name' in tool && typeof tool.name === 'string' ? tool.name : 'tool');
    this.options.send({ type: 'tool.started', callId: runId, tool: name, args, at: this.options.now() });
    this.toolNames.set(runId, name);
  }

  private readonly toolNames = new Map<string, string>();

  public override handleToolEnd(output: unknown, runId: string): void {
    const tool = this.toolNames.get(runId);
    if (tool === undefined) {
      return;
    }
    this.toolNames.delete(runId);
    const content =
      typeof output === 'string'
        ? output
        : typeof output === 'object' && output !== null && 'content' in output
          ? String((output as { content: unknown }).content)
          : JSON.stringify(output ?? null);
    const failed = typeof output === 'object' && output !== null && (output as { status?: unknown }).status === 'error';
    this.options.send({
      type: 'tool.returned',
      callId: runId,
      tool,
      ok: !failed,
      resultSize: Buffer.byteLength(content ?? ''),
      ...(failed ? { error: content } : {}),
      at: this.options.now(),
    });
  }

  public override handleToolError(error: unknown, runId: string): void {
    const tool = this.toolNames.get(runId);
    if (tool === undefined) {
      return;
    }
    this.toolNames.delete(runId);
    const message = error instanceof Error ? error.message : String(error);
    this.options.send({ type: 'tool.returned', callId: runId, tool, ok: false, resultSize: 0, error: message, at: this.options.now() });
  }

  /**
   * The model call still in flight, with its usage estimated from the prompt and what
   * was streamed so far (the provider never reports usage for a call cut short).
   */
  public takeInFlight(): { callId: string; result: ModelCallResult } | undefined {
    const [call] = this.calls.values();
    if (call === undefined) {
      return undefined;
    }
    this.calls.clear();
    const at = this.options.now();
    const usage = {
      inputUncached: this.options.tokens.count(call.promptText),
      cacheRead: 0,
      cacheWrite: 0,
      output: this.options.tokens.count(call.streamed),
      reasoning: 0,
    };
    const price = this.options.prices.find(this.options.provider, this.options.model, new Date(call.startedAt));
    return {
      callId: call.callId,
      result: {
        provider: this.options.provider,
        requestModel: this.options.model,
        responseModel: this.options.model,
        usage,
        usageSource: 'estimated',
        costUsd: price === null ? null : computeCost(usage, price),
        priceId: price?.id ?? null,
        finishReason: 'cancelled',
        hasToolCalls: false,
        latencyMs: Math.max(0, at - call.startedAt),
        timeToFirstChunkMs: call.firstChunkAt === null ? null : call.firstChunkAt - call.startedAt,
        at,
      },
    };
  }
}
