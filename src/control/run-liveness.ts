import type { DatabasePool } from 'slonik';
import type { Logger } from 'pino';
import type { Notifier } from '../db/notifications.js';
import { heartbeatRuns, interruptOrphanedRuns } from '../repositories/run-recovery-repository.js';

export type RunLivenessOptions = {
  readonly pool: DatabasePool;
  /** This instance's live runs (their rows get the heartbeat). */
  readonly liveRunIds: () => readonly string[];
  readonly heartbeatIntervalMs: number;
  readonly staleAfterMs: number;
  /** Announces the takeovers' events to every instance's event streams. */
  readonly notifier?: Notifier;
  readonly logger: Logger;
};

/**
 * Every instance, every `heartbeatIntervalMs`: heartbeats the rows of its own live runs,
 * then takes over as `interrupted` the runs whose owner (any instance) has not
 * heartbeated for `staleAfterMs` — a killed or hung instance's runs end on a live one.
 * The takeover is one `UPDATE … WHERE status IN ('queued','running')`: of several
 * instances sweeping at once each stale run is taken by exactly one (the others' UPDATE
 * re-checks the row after the winner's commit and skips it), so it gets one
 * `workflow_interrupted` event.
 */
export class RunLiveness {
  private readonly options: RunLivenessOptions;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;

  public constructor(options: RunLivenessOptions) {
    this.options = options;
  }

  public start(): void {
    this.timer ??= setInterval(() => {
      // A tick slower than the interval (a slow database) is not stacked up.
      this.ticking ??= this.tick().finally(() => {
        this.ticking = undefined;
      });
    }, this.options.heartbeatIntervalMs);
    this.timer.unref();
  }

  /** Takes over the runs whose owner stopped heartbeating; returns their ids. */
  public async sweep(): Promise<string[]> {
    // By staleness only: never a live instance's own runs.
    const taken = await interruptOrphanedRuns(this.options.pool, {
      staleAfterMs: this.options.staleAfterMs,
      ...(this.options.notifier === undefined ? {} : { notifier: this.options.notifier }),
    });
    if (taken.length > 0) {
      this.options.logger.warn({ runs: taken }, 'took over as interrupted the runs of an instance that stopped heartbeating');
    }
    return taken;
  }

  public async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.ticking;
  }

  private async tick(): Promise<void> {
    const { pool, logger } = this.options;
    try {
      // Own runs first, so that a slow tick never finds them stale.
      await heartbeatRuns(pool, this.options.liveRunIds());
      await this.sweep();
    } catch (error) {
      logger.warn({ err: error }, 'run heartbeat or stale-run sweep failed');
    }
  }
}
