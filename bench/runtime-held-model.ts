import type { CallbackManagerForLLMRun } from '@langchain/core/callbacks/manager';
import type { BaseMessage } from '@langchain/core/messages';
import type { ChatGenerationChunk, ChatResult } from '@langchain/core/outputs';
import { createAbortError } from '../src/providers/abort.js';
import { ScriptedChatModel, type ScriptedChatModelFields } from '../test/helpers/scripted-chat-model.js';

type Waiter = { readonly wake: () => void; done: boolean };

/**
 * Holds model calls until `release()`, then answers each one `delayMs` plus its own
 * offset from the first call later: every run stays in flight until the last one has
 * started, and the answers come spread out the way the calls came (not all in one
 * timer tick). Calls made after the release wait `delayMs` plus their offset too.
 */
export class CallHold {
  private readonly delayMs: number;
  private readonly now: () => number;
  private readonly waiting: Waiter[] = [];
  private firstCallAt: number | undefined;
  private released = false;

  public constructor(delayMs: number, now: () => number = () => performance.now()) {
    this.delayMs = delayMs;
    this.now = now;
  }

  /** Resolves when the call may answer; rejects with an AbortError when `signal` fires first. */
  public wait(signal: AbortSignal | undefined): Promise<void> {
    const calledAt = this.now();
    this.firstCallAt ??= calledAt;
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(createAbortError(signal));
        return;
      }
      let timer: NodeJS.Timeout | undefined;
      const onAbort = (): void => {
        waiter.done = true;
        clearTimeout(timer);
        reject(createAbortError(signal));
      };
      const waiter: Waiter = {
        done: false,
        wake: () => {
          timer = setTimeout(() => {
            waiter.done = true;
            signal?.removeEventListener('abort', onAbort);
            resolve();
          }, this.delayFor(calledAt));
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (this.released) {
        waiter.wake();
      } else {
        this.waiting.push(waiter);
      }
    });
  }

  /** Lets every held call (and every later one) answer after its delay. */
  public release(): void {
    this.released = true;
    for (const waiter of this.waiting.splice(0)) {
      if (!waiter.done) {
        waiter.wake();
      }
    }
  }

  private delayFor(calledAt: number): number {
    return this.delayMs + Math.max(0, calledAt - (this.firstCallAt ?? calledAt));
  }
}

/** A scripted model whose calls wait for a {@link CallHold} before playing their turn. */
export class HeldChatModel extends ScriptedChatModel {
  private readonly hold: CallHold;

  static override lc_name(): string {
    return 'HeldChatModel';
  }

  public constructor(fields: ScriptedChatModelFields & { hold: CallHold }) {
    const { hold, ...rest } = fields;
    super(rest);
    this.hold = hold;
  }

  override async _generate(
    messages: BaseMessage[],
    options: this['ParsedCallOptions'],
    runManager?: CallbackManagerForLLMRun,
  ): Promise<ChatResult> {
    await this.hold.wait(options.signal);
    return super._generate(messages, options, runManager);
  }

  override async *_streamResponseChunks(
    messages: BaseMessage[],
    options: this['ParsedCallOptions'],
    runManager?: CallbackManagerForLLMRun,
  ): AsyncGenerator<ChatGenerationChunk> {
    await this.hold.wait(options.signal);
    yield* super._streamResponseChunks(messages, options, runManager);
  }
}
