import { AIMessage, type BaseMessage } from '@langchain/core/messages';
import { convertToOpenAITool } from '@langchain/core/utils/function_calling';
import { ulid } from '../ids.js';
import type { Logger } from 'pino';
import type { BudgetReason, ModelCallResult } from '../../machines/workflow-run-types.js';
import { totalTokens } from '../../machines/usage.js';
import { messageText } from '../providers/message-text.js';
import type { PriceRow } from '../providers/pricing.js';
import type { TokenCounter } from '../providers/token-counter.js';
import { BudgetRefusedError, type BudgetReservations, type BudgetScope } from './budget-reservations.js';
import type { PriceBook } from './price-book.js';

/**
 * Tokens a chat API adds around each message (role, separators) and to prime the reply,
 * beyond the text the tokenizer counts: OpenAI's documented figures (3 per message, 3 for
 * the reply), rounded up. Counted for every provider: a reservation may be a little high,
 * never the input it forgot.
 */
export const MESSAGE_OVERHEAD_TOKENS = 4;
export const REPLY_PRIMING_TOKENS = 3;

/** 1e-4 USD per 1M tokens (a price's unit) is 1e-10 USD per token (a cost's unit). */
const unitsPerToken = (usdPerMTok: number): number => Math.round(usdPerMTok * 10_000);

/** The runtime's count of the input a call sends: messages, their tool calls, the bound tools' schemas. */
export const countInputTokens = (tokens: TokenCounter, messages: readonly BaseMessage[], tools: readonly unknown[] = []): number => {
  let count = REPLY_PRIMING_TOKENS;
  for (const message of messages) {
    count += MESSAGE_OVERHEAD_TOKENS + tokens.count(messageText(message));
    if (AIMessage.isInstance(message)) {
      for (const call of message.tool_calls ?? []) {
        count += tokens.count(call.name) + tokens.count(JSON.stringify(call.args));
      }
    }
  }
  for (const tool of tools) {
    try {
      count += tokens.count(JSON.stringify(convertToOpenAITool(tool as Parameters<typeof convertToOpenAITool>[0])));
    } catch {
      count += tokens.count(JSON.stringify(tool) ?? '');
    }
  }
  return count;
};

/** The tools bound to a model call's runnable (`bindTools` puts them in the binding's config). */
export const boundTools = (runnable: unknown): readonly unknown[] => {
  const config = (runnable as { config?: { tools?: unknown } } | null)?.config;
  return Array.isArray(config?.tools) ? config.tools : [];
};

/** A price as the reservation counts it: input at its dearest bucket, output. */
export const reservationPrice = (price: PriceRow | null): { inputUnits: number; outputUnits: number } | null =>
  price === null
    ? null
    : {
        inputUnits: unitsPerToken(Math.max(price.inputPerMTok, price.cacheReadPerMTok, price.cacheWritePerMTok)),
        outputUnits: unitsPerToken(price.outputPerMTok),
      };

export type RunBudgetLedgerOptions = {
  readonly budgets: BudgetReservations;
  readonly scope: BudgetScope;
  readonly tokens: TokenCounter;
  readonly prices: PriceBook;
  readonly runId: string;
  readonly userId: string;
  readonly conversationId: string;
  readonly provider: string;
  readonly model: string;
  /** The run's max_tokens (null: none asked). */
  readonly maxTokens: number | null;
  readonly now: () => number;
  readonly logger: Logger;
  /** Told when a call cannot reserve, before the refusal is thrown (the machine ends the run). */
  readonly onRefused: (reason: BudgetReason) => void;
};

/**
 * The reservations of one budgeted run: one before each model call attempt, settled to the
 * call's usage when it responds, released when it fails without usage, left at its worst
 * case when it is cut short (until the run's record is written, which drops them all).
 * Calls of a run are sequential, so one reservation is open at a time; a settle is not
 * awaited by the graph, but the next reservation waits for it.
 */
export class RunBudgetLedger {
  private readonly options: RunBudgetLedgerOptions;
  private open: string | null = null;
  private pending: Promise<void> = Promise.resolve();

  public constructor(options: RunBudgetLedgerOptions) {
    this.options = options;
  }

  /**
   * Reserves the next call's worst case and returns its max_tokens cap.
   *
   * @throws BudgetRefusedError when the budget cannot cover it (the machine was told first).
   */
  public async reserve(messages: readonly BaseMessage[], tools: readonly unknown[]): Promise<number | undefined> {
    await this.pending;
    const { options } = this;
    const id = ulid();
    const result = await options.budgets.reserve({
      id,
      runId: options.runId,
      userId: options.userId,
      conversationId: options.conversationId,
      scope: options.scope,
      provider: options.provider,
      inputTokens: countInputTokens(options.tokens, messages, tools),
      maxOutputTokens: options.maxTokens,
      price: reservationPrice(options.prices.find(options.provider, options.model, new Date(options.now()))),
    });
    if (!result.granted) {
      options.onRefused(result.reason);
      throw new BudgetRefusedError(result.reason);
    }
    this.open = id;
    return result.maxOutputTokens ?? undefined;
  }

  /** The call responded: its reservation becomes what it reported (no usage: released). */
  public settle(result: ModelCallResult): void {
    const id = this.take();
    if (id === null) {
      return;
    }
    const { budgets } = this.options;
    this.track(result.usage === null ? budgets.release(id) : budgets.settle(id, totalTokens(result.usage), result.costUsd ?? 0), 'settle');
  }

  /** The call failed without usage: its reservation is released. */
  public release(): void {
    const id = this.take();
    if (id !== null) {
      this.track(this.options.budgets.release(id), 'release');
    }
  }

  /** The call was cut short (cancel, timeout): its worst case stays held until the run's record is written. */
  public keepHeld(): void {
    this.take();
  }

  private take(): string | null {
    const id = this.open;
    this.open = null;
    return id;
  }

  private track(work: Promise<void>, what: string): void {
    // A settle or release that fails leaves the worst case held until the run's record is
    // written: the budget is then stricter than needed for a moment, never exceeded.
    this.pending = work.catch((error: unknown) => {
      this.options.logger.warn({ err: error, runId: this.options.runId }, `budget reservation ${what} failed`);
    });
  }
}
