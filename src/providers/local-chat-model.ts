import type { CallbackManagerForLLMRun } from '@langchain/core/callbacks/manager';
import type { BaseLanguageModelInput } from '@langchain/core/language_models/base';
import {
  BaseChatModel,
  type BaseChatModelCallOptions,
  type BaseChatModelParams,
  type BindToolsInput,
  type LangSmithParams,
} from '@langchain/core/language_models/chat_models';
import { AIMessage, type AIMessageChunk, type BaseMessage, HumanMessage, ToolMessage } from '@langchain/core/messages';
import type { ChatGenerationChunk, ChatResult } from '@langchain/core/outputs';
import type { Runnable } from '@langchain/core/runnables';
import { toJsonSchema } from '@langchain/core/utils/json_schema';
import { throwIfAborted } from './abort.js';
import { messageText } from './message-text.js';
import { generateFromPlan, streamPlannedReply, type PlannedReply } from './planned-reply.js';
import { CalculatorError, evaluateArithmetic } from '../tools/arithmetic.js';
import { formatNumber } from '../tools/calculator.js';
import { createTokenCounter, type TokenCounter } from './token-counter.js';

/** Default model name of the local provider. */
export const LOCAL_DEFAULT_MODEL = 'local-echo-1';

/** Options of {@link LocalChatModel}. */
export type LocalChatModelFields = BaseChatModelParams & {
  /** Reported as `response_metadata.model_name`. Defaults to `local-echo-1`. */
  model?: string;
  /** Delay before each streamed chunk, in ms (0 allowed). Defaults to 0. */
  latencyMs?: number;
};

/**
 * Call options: `bindTools` passes the tools through here; `maxTokens` caps the reply's
 * output tokens for this call (a longer reply is cut, finish reason `length`).
 */
export type LocalChatModelCallOptions = BaseChatModelCallOptions & {
  tools?: BindToolsInput[];
  maxTokens?: number;
};

type ToolCall = { name: string; args: Record<string, unknown>; id: string };

const ECHO_LIMIT = 200;

const ASKS_FOR_TIME =
  /\b(what(?:'s| is)? the (?:time|date|day)|what time|current (?:time|date)|time is it|today'?s date|what day|date today)\b/i;

/** A bound tool: its name and, when the schema says so, the name of its main argument. */
type BoundTool = { name: string; argument: string | undefined };

function describeTool(tool: BindToolsInput): BoundTool | undefined {
  const candidate = tool as {
    name?: unknown;
    schema?: unknown;
    function?: { name?: unknown; parameters?: unknown };
    input_schema?: unknown;
  };
  const name =
    typeof candidate.name === 'string'
      ? candidate.name
      : typeof candidate.function?.name === 'string'
        ? candidate.function.name
        : undefined;
  if (name === undefined) return undefined;
  let schema: unknown = candidate.function?.parameters ?? candidate.input_schema ?? candidate.schema;
  try {
    // LangChain tools carry a zod (or JSON) schema; normalise to JSON schema.
    if (schema !== undefined && candidate.function === undefined && candidate.input_schema === undefined) {
      schema = toJsonSchema(schema as Parameters<typeof toJsonSchema>[0]);
    }
  } catch {
    schema = undefined;
  }
  return { name, argument: mainStringArgument(schema) };
}

/** `expression` if the schema has it, else its first required string property, else its first string property. */
function mainStringArgument(schema: unknown): string | undefined {
  const { properties, required } = (schema ?? {}) as { properties?: Record<string, { type?: unknown }>; required?: unknown };
  if (properties === undefined) return undefined;
  const strings = Object.entries(properties)
    .filter(([, property]) => property.type === 'string' || property.type === undefined)
    .map(([key]) => key);
  if (strings.includes('expression')) return 'expression';
  const requiredNames = Array.isArray(required) ? required.filter((key): key is string => typeof key === 'string') : [];
  return strings.find((key) => requiredNames.includes(key)) ?? strings[0];
}

const OPERATORS = '-+*/^%×÷';
const SPACE = /\s/;
const DIGIT = /[0-9]/g;

function isDigit(text: string, index: number): boolean {
  const code = text.charCodeAt(index);
  return code >= 48 && code <= 57;
}

/** End of the number starting at `index` (digits, optionally `.` and digits). */
function numberEnd(text: string, index: number): number {
  let end = index;
  while (isDigit(text, end)) end += 1;
  if (text[end] === '.' && isDigit(text, end + 1)) {
    end += 1;
    while (isDigit(text, end)) end += 1;
  }
  return end;
}

/** First index at or after `index` whose character is not in `skipped` (whitespace included when `spaces`). */
function skip(text: string, index: number, skipped: string, spaces = true): number {
  let end = index;
  while (end < text.length && (skipped.includes(text.charAt(end)) || (spaces && SPACE.test(text.charAt(end))))) end += 1;
  return end;
}

/**
 * The first arithmetic expression in `text` — "12*(3+4)", "2 + 2", "-3.5 * 2", "2^10":
 * numbers joined by at least one operator, with signs and brackets around them — or
 * undefined. One pass over the text: every character is looked at a bounded number of
 * times, so a message of 100,000 digits costs what its length does (a regex with
 * nested quantifiers here backtracked quadratically).
 */
function findArithmetic(text: string): string | undefined {
  for (let index = 0; index < text.length;) {
    // Jump to the next digit natively (a one-character class: no backtracking).
    DIGIT.lastIndex = index;
    const digit = DIGIT.exec(text);
    if (digit === null) return undefined;
    index = digit.index;
    const first = numberEnd(text, index);
    let end = skip(text, first, ')');
    let operators = 0;
    for (;;) {
      const operator = skip(text, end, '');
      if (!OPERATORS.includes(text.charAt(operator)) || operator >= text.length) break;
      const operand = skip(text, operator + 1, '-(');
      if (!isDigit(text, operand)) break;
      operators += 1;
      end = skip(text, numberEnd(text, operand), ')');
    }
    if (operators > 0) {
      // Signs and opening brackets before the first number belong to it. (Once per
      // message: the scan ends here.)
      let start = index;
      while (start > 0 && ('-('.includes(text.charAt(start - 1)) || SPACE.test(text.charAt(start - 1)))) start -= 1;
      return tidyExpression(text.slice(start, end));
    }
    // A number inside this one cannot start a longer expression: go past it.
    index = first;
  }
  return undefined;
}

function tidyExpression(found: string): string | undefined {
  let expression = found.trim();
  // "2025-06-10" is a date, not a subtraction.
  if (/^\d{4}-\d{1,2}-\d{1,2}$/.test(expression)) return undefined;
  // The scan may take a closing bracket that belongs to the sentence, or leave an
  // opening one unmatched: trim to balanced brackets (counted once, so a message of
  // thousands of brackets is not rescanned per bracket).
  let opening = count(expression, '(');
  let closing = count(expression, ')');
  let from = 0;
  let to = expression.length;
  while (to > from && expression.charAt(to - 1) === ')' && closing > opening) {
    to -= 1;
    closing -= 1;
    while (to > from && SPACE.test(expression.charAt(to - 1))) to -= 1;
  }
  while (from < to && expression.charAt(from) === '(' && opening > closing) {
    from += 1;
    opening -= 1;
    while (from < to && SPACE.test(expression.charAt(from))) from += 1;
  }
  expression = expression.slice(from, to);
  return expression.replaceAll('×', '*').replaceAll('÷', '/');
}

function count(text: string, character: string): number {
  return text.split(character).length - 1;
}

/** The built-in current_time tool answers JSON ({ utc, timezone, local, weekday }); others may answer text. */
function describeTime(output: string): string {
  try {
    const value = JSON.parse(output) as { local?: unknown; utc?: unknown; weekday?: unknown; timezone?: unknown };
    const when = typeof value.local === 'string' ? value.local : value.utc;
    if (typeof when === 'string') {
      const weekday = typeof value.weekday === 'string' ? `${value.weekday}, ` : '';
      const zone = typeof value.timezone === 'string' ? ` (${value.timezone})` : '';
      return `${weekday}${when}${zone}`;
    }
  } catch {
    // Not JSON: use the text as it is.
  }
  return snippet(output);
}

/**
 * Answers arithmetic without a calculator tool, with the calculator's own evaluator (a
 * parser, never `eval`) and number format, so both paths give the same figure.
 */
function calculate(expression: string): string {
  try {
    return `${expression} = ${formatNumber(evaluateArithmetic(expression))}.`;
  } catch (error) {
    if (!(error instanceof CalculatorError)) throw error;
    return `I can't work out ${snippet(expression)}: ${error.message}.`;
  }
}

function snippet(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > ECHO_LIMIT ? `${flat.slice(0, ECHO_LIMIT - 1)}…` : flat;
}

/**
 * The default provider, `local`: a deterministic chat model that needs no network, no
 * key and no weights. It acknowledges the user's last message and answers arithmetic in
 * it (with the calculator tool's evaluator). With tools bound it behaves like a
 * tool-calling model: arithmetic in the question → a `calculator` call, a question about
 * the time or date → a `current_time` call, tool results → an answer built from them.
 * Without the current_time tool it cannot tell the time (the same conversation always
 * gets the same reply).
 *
 * Usage is honest: prompt tokens are the o200k_base token count of the messages' text
 * (plus their tool calls' name and JSON arguments), completion tokens that of the
 * reply (likewise). It streams one token per chunk with `latencyMs` before each.
 *
 * @throws AbortError when the call's signal fires.
 */
export class LocalChatModel extends BaseChatModel<LocalChatModelCallOptions> {
  readonly model: string;
  readonly latencyMs: number;
  private readonly tokens: TokenCounter;

  static override lc_name(): string {
    return 'LocalChatModel';
  }

  constructor(fields: LocalChatModelFields = {}) {
    const { model, latencyMs, ...rest } = fields;
    super(rest);
    if (latencyMs !== undefined && !(Number.isFinite(latencyMs) && latencyMs >= 0)) {
      throw new RangeError(`latencyMs must be a non-negative number, got ${latencyMs}`);
    }
    this.model = model ?? LOCAL_DEFAULT_MODEL;
    this.latencyMs = latencyMs ?? 0;
    this.tokens = createTokenCounter();
  }

  _llmType(): string {
    return 'local';
  }

  override getLsParams(options: this['ParsedCallOptions']): LangSmithParams {
    return { ...super.getLsParams(options), ls_provider: 'local', ls_model_name: this.model };
  }

  override bindTools(
    tools: BindToolsInput[],
    kwargs?: Partial<LocalChatModelCallOptions>,
  ): Runnable<BaseLanguageModelInput, AIMessageChunk, LocalChatModelCallOptions> {
    return this.withConfig({ ...kwargs, tools });
  }

  override async _generate(
    messages: BaseMessage[],
    options: this['ParsedCallOptions'],
    _runManager?: CallbackManagerForLLMRun,
  ): Promise<ChatResult> {
    throwIfAborted(options.signal);
    return generateFromPlan(this.plan(messages, options), options.signal);
  }

  override async *_streamResponseChunks(
    messages: BaseMessage[],
    options: this['ParsedCallOptions'],
    runManager?: CallbackManagerForLLMRun,
  ): AsyncGenerator<ChatGenerationChunk> {
    throwIfAborted(options.signal);
    yield* streamPlannedReply(this.plan(messages, options), options.signal, runManager);
  }

  /** Decides the reply; pure in (messages, bound tools). */
  private plan(messages: BaseMessage[], options: this['ParsedCallOptions']): PlannedReply {
    const tools = (options.tools ?? []).map(describeTool).filter((tool) => tool !== undefined);
    const full = this.reply(messages, tools);
    const { content, toolCalls, cut } = this.limited(full, options.maxTokens);
    const promptTokens = messages.reduce((sum, message) => sum + this.messageTokens(message), 0);
    const completionTokens = this.tokens.count(content) + toolCalls.reduce((sum, call) => sum + this.toolCallTokens(call), 0);
    return {
      chunks: this.tokens.split(content),
      toolCalls,
      usage: {
        input_tokens: promptTokens,
        output_tokens: completionTokens,
        total_tokens: promptTokens + completionTokens,
      },
      responseMetadata: {
        model_name: this.model,
        model_provider: 'local',
        finish_reason: cut ? 'length' : toolCalls.length > 0 ? 'tool_calls' : 'stop',
      },
      firstChunkDelayMs: this.latencyMs,
      chunkDelayMs: this.latencyMs,
    };
  }

  /**
   * The reply as far as `maxTokens` output tokens reach, as a provider cuts one: the text
   * token by token, then each tool call only if it fits whole (a cut one would be invalid).
   */
  private limited(
    reply: { content: string; toolCalls: ToolCall[] },
    maxTokens: number | undefined,
  ): { content: string; toolCalls: ToolCall[]; cut: boolean } {
    if (maxTokens === undefined) return { ...reply, cut: false };
    const full = this.tokens.count(reply.content) + reply.toolCalls.reduce((sum, call) => sum + this.toolCallTokens(call), 0);
    if (full <= maxTokens) return { ...reply, cut: false };
    let content = '';
    for (const piece of this.tokens.split(reply.content)) {
      if (this.tokens.count(content + piece) > maxTokens) break;
      content += piece;
    }
    let used = this.tokens.count(content);
    const toolCalls: ToolCall[] = [];
    for (const call of reply.toolCalls) {
      const cost = this.toolCallTokens(call);
      if (used + cost > maxTokens) break;
      toolCalls.push(call);
      used += cost;
    }
    return { content, toolCalls, cut: true };
  }

  private reply(messages: BaseMessage[], tools: BoundTool[]): { content: string; toolCalls: ToolCall[] } {
    const last = messages.at(-1);
    if (last !== undefined && ToolMessage.isInstance(last)) {
      return { content: this.answerFromToolResults(messages), toolCalls: [] };
    }
    const lastHuman = [...messages].reverse().find((message) => HumanMessage.isInstance(message));
    if (lastHuman === undefined) return { content: 'Hello! What can I do for you?', toolCalls: [] };
    const text = messageText(lastHuman);
    // Ids only need to be unique within the conversation; deriving them from its
    // length keeps the reply deterministic.
    const id = (index: number): string => `call_local_${messages.length}_${index}`;

    const expression = findArithmetic(text);
    const calculator = tools.find((tool) => tool.name === 'calculator');
    if (expression !== undefined && calculator !== undefined) {
      return {
        content: '',
        toolCalls: [{ name: 'calculator', args: { [calculator.argument ?? 'expression']: expression }, id: id(0) }],
      };
    }
    const clock = tools.find((tool) => tool.name === 'current_time');
    if (ASKS_FOR_TIME.test(text) && clock !== undefined) {
      return { content: '', toolCalls: [{ name: 'current_time', args: {}, id: id(0) }] };
    }
    if (expression !== undefined) return { content: calculate(expression), toolCalls: [] };
    if (text.trim() === '') return { content: 'Hello! What can I do for you?', toolCalls: [] };
    return {
      content:
        `You said: "${snippet(text)}". I'm the local model: I echo messages, work out arithmetic, ` +
        'and tell the time when the current_time tool is available.',
      toolCalls: [],
    };
  }

  /** Answers from the tool results that follow the last tool-calling AI message. */
  private answerFromToolResults(messages: BaseMessage[]): string {
    const results: ToolMessage[] = [];
    for (let index = messages.length - 1; index >= 0; index -= 1) {
      const message = messages[index];
      if (message === undefined || !ToolMessage.isInstance(message)) break;
      results.unshift(message);
    }
    const calls = new Map<string, { name: string; args: Record<string, unknown> }>();
    for (const message of messages) {
      if (AIMessage.isInstance(message)) for (const call of message.tool_calls ?? []) calls.set(call.id ?? '', call);
    }
    return results
      .map((result) => {
        const call = calls.get(result.tool_call_id);
        const name = result.name ?? call?.name ?? 'tool';
        const output = snippet(messageText(result));
        if (result.status === 'error') return `The ${name} tool failed: ${output}.`;
        if (name === 'calculator') {
          const expression = call === undefined ? undefined : Object.values(call.args).find((value) => typeof value === 'string');
          return expression === undefined ? `The result is ${output}.` : `${expression} = ${output}.`;
        }
        if (name === 'current_time') return `The current time is ${describeTime(messageText(result))}.`;
        return `${name} returned: ${output}.`;
      })
      .join(' ');
  }

  private messageTokens(message: BaseMessage): number {
    const calls = AIMessage.isInstance(message) ? (message.tool_calls ?? []) : [];
    return this.tokens.count(messageText(message)) + calls.reduce((sum, call) => sum + this.toolCallTokens(call), 0);
  }

  private toolCallTokens(call: { name: string; args: Record<string, unknown> }): number {
    return this.tokens.count(call.name) + this.tokens.count(JSON.stringify(call.args));
  }
}
