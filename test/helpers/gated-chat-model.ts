import type { CallbackManagerForLLMRun } from '@langchain/core/callbacks/manager';
import type { BaseMessage } from '@langchain/core/messages';
import type { ChatGenerationChunk, ChatResult } from '@langchain/core/outputs';
import { createAbortError } from '../../src/providers/abort.js';
import { ScriptedChatModel, type ScriptedChatModelFields } from './scripted-chat-model.js';

/**
 * A scripted model whose calls wait until `gate` resolves before playing their turn
 * (its latency then counts from there), so a test can hold a burst of runs in flight
 * for as long as it needs, whatever the machine's speed. An abort still stops a
 * waiting call at once.
 */
export class GatedChatModel extends ScriptedChatModel {
  private readonly gate: Promise<void>;

  static override lc_name(): string {
    return 'GatedChatModel';
  }

  constructor(fields: ScriptedChatModelFields & { gate: Promise<void> }) {
    const { gate, ...rest } = fields;
    super(rest);
    this.gate = gate;
  }

  private async opened(signal: AbortSignal | undefined): Promise<void> {
    if (signal === undefined) {
      await this.gate;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => reject(createAbortError(signal));
      if (signal.aborted) {
        onAbort();
        return;
      }
      signal.addEventListener('abort', onAbort, { once: true });
      void this.gate.then(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  override async _generate(
    messages: BaseMessage[],
    options: this['ParsedCallOptions'],
    runManager?: CallbackManagerForLLMRun,
  ): Promise<ChatResult> {
    await this.opened(options.signal);
    return super._generate(messages, options, runManager);
  }

  override async *_streamResponseChunks(
    messages: BaseMessage[],
    options: this['ParsedCallOptions'],
    runManager?: CallbackManagerForLLMRun,
  ): AsyncGenerator<ChatGenerationChunk> {
    await this.opened(options.signal);
    yield* super._streamResponseChunks(messages, options, runManager);
  }
}
