import type { Logger } from 'pino';
import type { DatabasePool } from 'slonik';
import { ulid } from '../ids.js';
import { z } from 'zod';
import type { Notifier } from '../db/notifications.js';

/** Cancel requests to the instance that runs a run. */
export const RUN_CONTROL_CHANNEL = 'chatter_run_control';
/** The owner's answers to them. */
export const RUN_CONTROL_ACK_CHANNEL = 'chatter_run_control_ack';

const ControlRequest = z.object({
  run_id: z.string(),
  request_id: z.string(),
  action: z.literal('cancel'),
  reason: z.string(),
  /** The run row's instance: it answers even when the run is no longer live there. */
  owner: z.string().nullable(),
});
type ControlRequest = z.infer<typeof ControlRequest>;

const ControlAck = z.object({ request_id: z.string(), ok: z.boolean(), instance_id: z.string() });
type ControlAck = z.infer<typeof ControlAck>;

/**
 * `cancelled`: the owner stopped the run (its usage so far is kept); `not_live`: the owner
 * answered that it no longer runs it; `no_answer`: no instance answered in time.
 */
export type CancelOutcome = 'cancelled' | 'not_live' | 'no_answer';

export type RunControlOptions = {
  readonly pool: DatabasePool;
  readonly notifier: Notifier;
  /** Cancels a run live on this instance; false when it is not live here. */
  readonly cancelLocal: (runId: string, reason: string) => boolean;
  readonly instanceId: string;
  readonly ackTimeoutMs: number;
  readonly logger: Logger;
};

const parse = <T>(schema: z.ZodType<T>, payload: string): T | undefined => {
  try {
    const parsed = schema.safeParse(JSON.parse(payload));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
};

/**
 * Cancels a run on whichever instance runs it: locally when it is live here, else by a
 * `chatter_run_control` notification that every instance receives; the one running it
 * cancels it and answers on `chatter_run_control_ack`. The run row stays the truth: the
 * caller checks it when the owner says the run is not live or does not answer.
 */
export class RunControl {
  private readonly options: RunControlOptions;
  private readonly waiting = new Map<string, (ack: ControlAck | undefined) => void>();
  private readonly unlisten: (() => void)[] = [];

  public constructor(options: RunControlOptions) {
    this.options = options;
  }

  /** Listens for requests and answers; resolves once listening. */
  public async start(): Promise<void> {
    const { notifier } = this.options;
    this.unlisten.push(
      await notifier.listen(RUN_CONTROL_CHANNEL, (payload) => this.onRequest(payload)),
      await notifier.listen(RUN_CONTROL_ACK_CHANNEL, (payload) => this.onAck(payload)),
    );
  }

  /**
   * Cancels the run wherever it runs.
   *
   * @throws when the request cannot be sent (the database is unreachable).
   */
  public async cancel(run: { readonly id: string; readonly instanceId: string | null }, reason: string): Promise<CancelOutcome> {
    const { cancelLocal, notifier, pool, ackTimeoutMs } = this.options;
    if (cancelLocal(run.id, reason)) {
      return 'cancelled';
    }
    const request: ControlRequest = { run_id: run.id, request_id: ulid(), action: 'cancel', reason, owner: run.instanceId };
    const answered = new Promise<ControlAck | undefined>((resolve) => {
      const timer = setTimeout(() => settle(undefined), ackTimeoutMs);
      const settle = (ack: ControlAck | undefined) => {
        clearTimeout(timer);
        this.waiting.delete(request.request_id);
        resolve(ack);
      };
      this.waiting.set(request.request_id, settle);
    });
    try {
      await notifier.transaction(pool, async (_tx, notify) => notify(RUN_CONTROL_CHANNEL, JSON.stringify(request)));
    } catch (error) {
      this.waiting.get(request.request_id)?.(undefined);
      throw error;
    }
    const ack = await answered;
    return ack === undefined ? 'no_answer' : ack.ok ? 'cancelled' : 'not_live';
  }

  public close(): void {
    for (const unlisten of this.unlisten.splice(0)) unlisten();
    for (const settle of [...this.waiting.values()]) settle(undefined);
  }

  private onRequest(payload: string): void {
    const { cancelLocal, instanceId, logger, notifier, pool } = this.options;
    const request = parse(ControlRequest, payload);
    if (request === undefined) {
      logger.warn({ payload: payload.slice(0, 200) }, 'ignored a malformed run control request');
      return;
    }
    const ok = cancelLocal(request.run_id, request.reason);
    if (!ok && request.owner !== instanceId) {
      return; // not ours: the owner answers
    }
    const ack: ControlAck = { request_id: request.request_id, ok, instance_id: instanceId };
    notifier
      .transaction(pool, async (_tx, notify) => notify(RUN_CONTROL_ACK_CHANNEL, JSON.stringify(ack)))
      .catch((error: unknown) => logger.warn({ err: error, runId: request.run_id }, 'could not acknowledge a run control request'));
  }

  private onAck(payload: string): void {
    const ack = parse(ControlAck, payload);
    if (ack !== undefined) {
      this.waiting.get(ack.request_id)?.(ack);
    }
  }
}
