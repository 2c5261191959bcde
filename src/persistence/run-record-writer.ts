import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import {
  DataIntegrityError,
  IntegrityConstraintViolationError,
  InvalidInputError,
  SchemaValidationError,
  sql,
  type DatabasePool,
  type DatabaseTransactionConnection,
} from 'slonik';
import type { RunProgressItem, RunRecordSink } from '../../otel/processors/database-writer-span-processor.js';
import type { RunProgress, RunRecord, RunRef } from '../../otel/processors/run-record.js';
import { EVENTS_CHANNEL, type Notifier } from '../db/notifications.js';
import { applyRunProgress, applyRunRecords, type CommittedReply } from '../repositories/run-records-repository.js';

/**
 * Where a run's record ended up: committed, spooled to disk (written when the database
 * is back), refused by the database for what it holds (dead-lettered), or nowhere yet
 * (the spool itself could not be written: kept in memory and retried).
 */
export type Durability = 'database' | 'spool' | 'rejected' | 'unsaved';

/** A run's settled record: what the chat answers with. */
export type Settlement =
  | { readonly durability: 'database'; readonly record: RunRecord; readonly reply: CommittedReply | null }
  | { readonly durability: 'spool' | 'rejected' | 'unsaved'; readonly record: RunRecord; readonly reply: null };

export type RunRecordWriterOptions = {
  readonly pool: DatabasePool;
  /** Announces committed event rows to every instance's event streams. */
  readonly notifier?: Notifier;
  /**
   * How long what live runs report (model calls, tool calls, events) may wait before it
   * is committed: the most a crash can lose of what providers reported. A finished run's
   * record is written at once (its chat waits for it), taking all that waits with it.
   */
  readonly flushIntervalMs?: number;
  /** Append-only file holding records the database could not take yet. */
  readonly spoolPath: string;
  /** Records that the database refuses for what they are (not for being down). */
  readonly deadLetterPath: string;
  readonly logger: Logger;
  readonly maxBatch?: number;
  /** First delay before retrying the spool after a failure; doubles up to 30 s. */
  readonly retryBaseMs?: number;
  readonly onCommitted?: (records: readonly RunRecord[]) => void;
  /** A batch transaction not done in this time counts as failed: its records are spooled. */
  readonly writeTimeoutMs?: number;
};

const DEFAULT_WRITE_TIMEOUT_MS = 5_000;

/** A batch transaction that got no answer in time (a silent partition): retried from the spool. */
export class RunRecordWriteTimeoutError extends Error {
  public constructor(timeoutMs: number) {
    super(`run record transaction not done within ${timeoutMs} ms`);
    this.name = 'RunRecordWriteTimeoutError';
  }
}

/**
 * Bounds a transaction. If it still commits after the timeout, the spooled copy's replay
 * finds the run already written (records are idempotent by run id).
 */
const withWriteTimeout = async <T>(work: Promise<T>, timeoutMs: number): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new RunRecordWriteTimeoutError(timeoutMs)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
};

type Waiter = { resolve: (durability: Durability) => void; reject: (error: Error) => void };

const emptyProgress = (run: RunRef): RunProgress => ({
  ...run,
  modelCallStarts: [],
  modelCalls: [],
  toolCalls: [],
  events: [],
  liveState: null,
});

/** A run's progress as one flush writes it: a call that started and ended is written once, ended. */
const compact = (progress: RunProgress): RunProgress => {
  const ended = new Set(progress.modelCalls.map((call) => call.sequence));
  return { ...progress, modelCallStarts: progress.modelCallStarts.filter((call) => !ended.has(call.sequence)) };
};

/** A record that failed for what it holds: retrying cannot help. */
const isPoison = (error: unknown): boolean =>
  error instanceof IntegrityConstraintViolationError ||
  error instanceof SchemaValidationError ||
  error instanceof InvalidInputError ||
  (error instanceof DataIntegrityError && !(error.message ?? '').includes('connection'));

/**
 * Writes runs to the database by group commit: what live runs report (model calls as
 * they start and end, tool calls, lifecycle events) and finished runs' records, all
 * that waits, in one transaction per flush across runs (a failing batch is retried
 * record by record so one bad record cannot hold up the rest), idempotent by run id and
 * row id. Committed events are announced on EVENTS_CHANNEL in the same transaction.
 * While the database is unreachable, records go to an append-only spool file (fsynced)
 * and are replayed with backoff, and at start-up; progress is not spooled (the record
 * carries it all). `whenDurable(runId)` resolves once a run's record is settled.
 */
export class RunRecordWriter implements RunRecordSink {
  private readonly options: RunRecordWriterOptions;
  private readonly maxBatch: number;
  private queue: RunRecord[] = [];
  private progressByRun = new Map<string, RunProgress>();
  private readonly waiters = new Map<string, Waiter[]>();
  private readonly settled = new Map<string, Settlement>();
  private readonly flushIntervalMs: number;
  private flushing: Promise<void> | undefined;
  private scheduled: 'now' | 'later' | undefined;
  private laterTimer: NodeJS.Timeout | undefined;
  /** Records neither committed nor spooled (the spool could not be written). */
  private unsaved: RunRecord[] = [];
  private spoolError: string | null = null;
  private progressCommitted = 0;
  private spoolLock: Promise<unknown> = Promise.resolve();
  private spooledCount = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs: number;
  private lastError: string | null = null;
  /**
   * Set when a flush found the database unreachable (a connection error or the write
   * timeout): records then go straight to the spool instead of each waiting out the
   * timeout again, until a replay reaches the database.
   */
  private unreachable = false;
  private closed = false;
  private committed = 0;
  private deadLettered = 0;
  private transactions = 0;

  public constructor(options: RunRecordWriterOptions) {
    this.options = options;
    this.maxBatch = options.maxBatch ?? 200;
    this.retryDelayMs = options.retryBaseMs ?? 500;
    this.flushIntervalMs = options.flushIntervalMs ?? 50;
  }

  /** Replays records spooled by an earlier process (after a crash or an outage). */
  public async start(): Promise<void> {
    await this.replaySpool();
  }

  public enqueue(record: RunRecord): void {
    this.queue.push(record);
    this.schedule('now');
  }

  public progress(run: RunRef, item: RunProgressItem): void {
    if (this.closed) {
      return;
    }
    let progress = this.progressByRun.get(run.runId);
    if (progress === undefined) {
      progress = emptyProgress(run);
      this.progressByRun.set(run.runId, progress);
    }
    switch (item.kind) {
      case 'modelCallStarted':
        progress.modelCallStarts.push(item.call);
        progress.liveState = 'running.callingModel';
        break;
      case 'modelCallEnded':
        progress.modelCalls.push(item.call);
        progress.liveState = 'running.stepping';
        break;
      case 'toolCallStarted':
        progress.liveState = 'running.callingTool';
        break;
      case 'toolCallEnded':
        progress.toolCalls.push(item.call);
        progress.liveState = 'running.stepping';
        break;
      case 'event':
        progress.events.push(item.event);
        break;
    }
    this.schedule('later');
  }

  /**
   * `now`: in the next turn of the event loop (everything that ends in the same tick
   * goes together); `later`: within the flush interval. Never two flushes at once:
   * what arrives during one waits for the next (group commit).
   */
  private schedule(when: 'now' | 'later'): void {
    if (this.scheduled === 'now' || (this.scheduled === 'later' && when === 'later')) {
      return;
    }
    clearTimeout(this.laterTimer);
    this.scheduled = when;
    const run = () => {
      this.scheduled = undefined;
      void this.flush().catch((error: unknown) => this.options.logger.error({ err: error }, 'run record flush failed'));
    };
    if (when === 'now') {
      setImmediate(run);
    } else {
      this.laterTimer = setTimeout(run, this.flushIntervalMs);
      this.laterTimer.unref();
    }
  }

  /** The run's settled record (after `whenDurable` resolved), or undefined. */
  public settlement(runId: string): Settlement | undefined {
    return this.settled.get(runId);
  }

  /**
   * Resolves when the run's record is committed or safely spooled.
   *
   * @throws Error after `timeoutMs` if the record never arrived.
   */
  public whenDurable(runId: string, timeoutMs = 60_000): Promise<Durability> {
    const done = this.settled.get(runId);
    if (done !== undefined) {
      return Promise.resolve(done.durability);
    }
    return new Promise<Durability>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`run ${runId} was not saved within ${timeoutMs} ms`)), timeoutMs);
      timer.unref();
      const list = this.waiters.get(runId) ?? [];
      list.push({
        resolve: (durability) => {
          clearTimeout(timer);
          resolve(durability);
        },
        reject,
      });
      this.waiters.set(runId, list);
    });
  }

  public stats(): {
    queued: number;
    spooled: number;
    committed: number;
    deadLettered: number;
    transactions: number;
    lastError: string | null;
    /** Runs with progress waiting for the next flush. */
    progressQueued: number;
    /** Progress batches committed (one per run per flush). */
    progressCommitted: number;
    /** Records kept in memory because the spool could not be written. */
    unsaved: number;
    spoolError: string | null;
  } {
    return {
      queued: this.queue.length,
      spooled: this.spooledCount,
      committed: this.committed,
      deadLettered: this.deadLettered,
      transactions: this.transactions,
      lastError: this.lastError,
      progressQueued: this.progressByRun.size,
      progressCommitted: this.progressCommitted,
      unsaved: this.unsaved.length,
      spoolError: this.spoolError,
    };
  }

  public async forceFlush(): Promise<void> {
    await this.flush();
    await this.flushing;
  }

  public async shutdown(): Promise<void> {
    await this.forceFlush();
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.laterTimer);
  }

  private settle(records: readonly RunRecord[], durability: Durability, replies?: ReadonlyMap<string, CommittedReply>): void {
    for (const record of records) {
      const settlement: Settlement =
        durability === 'database' ? { durability, record, reply: replies?.get(record.runId) ?? null } : { durability, record, reply: null };
      this.settled.set(record.runId, settlement);
      for (const waiter of this.waiters.get(record.runId) ?? []) {
        waiter.resolve(durability);
      }
      this.waiters.delete(record.runId);
    }
    // Remember recent outcomes for late callers, boundedly.
    while (this.settled.size > 10_000) {
      const [oldest] = this.settled.keys();
      if (oldest === undefined) {
        break;
      }
      this.settled.delete(oldest);
    }
  }

  private flush(): Promise<void> {
    if (this.flushing !== undefined) {
      // What arrives meanwhile goes in the next flush.
      return this.flushing.then(() => this.flush());
    }
    if (this.queue.length === 0 && this.progressByRun.size === 0) {
      return Promise.resolve();
    }
    const drain = async (): Promise<void> => {
      // Yield first, so `flushing` is set before the loop can finish and clear it.
      await Promise.resolve();
      try {
        while (this.queue.length > 0 || this.progressByRun.size > 0) {
          const batch = this.queue.splice(0, this.maxBatch);
          await this.writeBatch(batch, this.takeProgress(batch));
        }
      } finally {
        this.flushing = undefined;
      }
    };
    this.flushing = drain();
    return this.flushing;
  }

  /** The progress to write with `batch`: a run whose record is in the batch needs none. */
  private takeProgress(batch: readonly RunRecord[]): RunProgress[] {
    const finished = new Set(batch.map((record) => record.runId));
    const progress: RunProgress[] = [];
    for (const [runId, reported] of this.progressByRun) {
      this.progressByRun.delete(runId);
      if (!finished.has(runId)) {
        progress.push(compact(reported));
      }
    }
    return progress;
  }

  private async transaction(
    records: readonly RunRecord[],
    progress: readonly RunProgress[] = [],
  ): Promise<ReadonlyMap<string, CommittedReply>> {
    this.transactions += 1;
    const work = async (tx: DatabaseTransactionConnection, notify?: (channel: string, payload: string) => void) => {
      const progressSeq = await applyRunProgress(tx, progress);
      const applied = await applyRunRecords(tx, records);
      const maxSeq = Math.max(progressSeq ?? 0, applied.maxEventSeq ?? 0);
      if (maxSeq > 0) {
        notify?.(EVENTS_CHANNEL, String(maxSeq));
      }
      return applied.replies;
    };
    const notifier = this.options.notifier;
    return withWriteTimeout(
      notifier === undefined ? this.options.pool.transaction((tx) => work(tx)) : notifier.transaction(this.options.pool, work),
      this.options.writeTimeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS,
    );
  }

  private async writeBatch(batch: RunRecord[], progress: RunProgress[]): Promise<void> {
    if (this.spooledCount > 0 || this.unsaved.length > 0 || this.unreachable) {
      // Keep order: while older records wait in the spool, newer ones join them. The
      // progress of live runs is dropped: their records will carry it.
      if (batch.length > 0) await this.spool(batch);
      return;
    }
    try {
      const replies = await this.transaction(batch, progress);
      this.progressCommitted += progress.length;
      if (batch.length > 0) this.committedBatch(batch, replies);
      return;
    } catch (error) {
      if (batch.length === 0) {
        // Only progress: the runs' records will carry it all when they end.
        this.lastError = error instanceof Error ? error.message : String(error);
        this.options.logger.warn({ err: error, runs: progress.length }, 'live run progress not written; the run records will carry it');
        if (!isPoison(error)) {
          this.unreachable = true;
          this.scheduleReplay();
        }
        return;
      }
      // Only a record the database refuses is worth isolating; an unreachable (or
      // unanswering) database would fail, and wait out its timeout, once per record.
      if ((batch.length === 1 && progress.length === 0) || !isPoison(error)) {
        await this.handleFailure(batch, error);
        return;
      }
    }
    for (const record of batch) {
      try {
        const replies = await this.transaction([record]);
        this.committedBatch([record], replies);
      } catch (error) {
        await this.handleFailure([record], error);
      }
    }
  }

  private committedBatch(records: readonly RunRecord[], replies: ReadonlyMap<string, CommittedReply>): void {
    this.committed += records.length;
    this.lastError = null;
    this.settle(records, 'database', replies);
    this.options.onCommitted?.(records);
  }

  private async handleFailure(records: RunRecord[], error: unknown): Promise<void> {
    const message = error instanceof Error ? error.message : String(error);
    if (isPoison(error)) {
      this.deadLettered += records.length;
      this.options.logger.error({ err: error, runIds: records.map((r) => r.runId) }, 'run record rejected; dead-lettered');
      try {
        await this.appendLines(this.options.deadLetterPath, records);
      } catch (appendError) {
        this.options.logger.error({ err: appendError, runIds: records.map((r) => r.runId) }, 'dead-letter file not written');
      }
      // The event first: whoever the chat's 500 reaches finds it recorded.
      await this.recordRejections(records, message);
      this.settle(records, 'rejected');
      return;
    }
    this.lastError = message;
    this.options.logger.warn({ err: error, runs: records.length }, 'database unreachable; spooling run records');
    await this.spool(records);
  }

  private async appendLines(path: string, records: readonly RunRecord[]): Promise<void> {
    await mkdir(dirname(path), { recursive: true });
    const handle = await open(path, 'a');
    try {
      await handle.appendFile(records.map((record) => `${JSON.stringify(record)}\n`).join(''));
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  private withSpoolLock<T>(work: () => Promise<T>): Promise<T> {
    const next = this.spoolLock.then(work, work);
    this.spoolLock = next.catch(() => undefined);
    return next;
  }

  /**
   * A `run_record_rejected` event per refused record, so the loss is on the record
   * (best effort: the database took the event's statement or it did not).
   */
  private async recordRejections(records: readonly RunRecord[], message: string): Promise<void> {
    try {
      await this.options.pool.query(sql.unsafe`
        INSERT INTO events (id, category, type, priority, user_id, run_id, correlation_id, data)
        SELECT 'rej_' || r.run_id, 'workflow', 'run_record_rejected', 'critical', u.id, w.id, r.correlation_id,
               jsonb_build_object('run_id', r.run_id, 'error', ${message.slice(0, 500)}::text)
        FROM ${sql.unnest(
          records.map((record) => [record.runId, record.userId, record.correlationId]),
          ['text', 'text', 'text'],
        )} AS r(run_id, user_id, correlation_id)
        LEFT JOIN users u ON u.id = r.user_id
        LEFT JOIN workflow_runs w ON w.id = r.run_id
        ON CONFLICT (id) DO NOTHING`);
    } catch (error) {
      this.options.logger.error({ err: error }, 'run_record_rejected event not written');
    }
  }

  private async spool(records: RunRecord[]): Promise<void> {
    try {
      await this.withSpoolLock(async () => {
        await this.appendLines(this.options.spoolPath, records);
        this.spooledCount += records.length;
      });
    } catch (error) {
      // Neither the database nor the disk takes the records: keep them in memory (they
      // are retried with the spool) and say so; the chats answer 503, the process lives.
      this.spoolError = error instanceof Error ? error.message : String(error);
      this.options.logger.error({ err: error, runs: records.length }, 'spool not writable; run records kept in memory');
      this.unsaved.push(...records);
      this.settle(records, 'unsaved');
      this.scheduleReplay();
      return;
    }
    this.settle(records, 'spool');
    this.scheduleReplay();
  }

  private scheduleReplay(): void {
    if (this.retryTimer !== undefined || this.closed) {
      return;
    }
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.replaySpool().then((ok) => {
        if (ok) {
          this.retryDelayMs = this.options.retryBaseMs ?? 500;
        } else {
          this.retryDelayMs = Math.min(this.retryDelayMs * 2, 30_000);
          this.scheduleReplay();
        }
      });
    }, this.retryDelayMs);
    this.retryTimer.unref();
  }

  /**
   * Records the spool could not take: to the database, else to the spool. False while
   * neither takes them. Runs under the spool lock.
   */
  private async saveUnsaved(): Promise<boolean> {
    if (this.unsaved.length === 0) {
      return true;
    }
    const records = this.unsaved;
    try {
      for (let index = 0; index < records.length; index += this.maxBatch) {
        await this.transaction(records.slice(index, index + this.maxBatch));
      }
      this.committed += records.length;
      this.options.onCommitted?.(records);
    } catch {
      try {
        await this.appendLines(this.options.spoolPath, records);
        this.spooledCount += records.length;
      } catch (error) {
        this.spoolError = error instanceof Error ? error.message : String(error);
        return false;
      }
    }
    this.unsaved = [];
    this.spoolError = null;
    return true;
  }

  /** Nothing spooled: whether the database answers again (within the write timeout). */
  private async probe(): Promise<boolean> {
    if (!this.unreachable) {
      return true;
    }
    try {
      await withWriteTimeout(this.options.pool.query(sql.unsafe`SELECT 1`), this.options.writeTimeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS);
    } catch (error) {
      this.lastError = error instanceof Error ? error.message : String(error);
      return false;
    }
    this.unreachable = false;
    this.lastError = null;
    return true;
  }

  /**
   * Writes every spooled record (idempotently, so a record written just before a
   * crash is skipped), then removes the spool. Returns false if the database is
   * still unreachable.
   */
  private replaySpool(): Promise<boolean> {
    return this.withSpoolLock(async () => {
      if (!(await this.saveUnsaved())) {
        return false;
      }
      let text: string;
      try {
        text = await readFile(this.options.spoolPath, 'utf8');
      } catch {
        this.spooledCount = 0;
        return this.probe();
      }
      const records: RunRecord[] = [];
      for (const line of text.split('\n')) {
        if (line.trim() === '') {
          continue;
        }
        try {
          records.push(JSON.parse(line) as RunRecord);
        } catch {
          // A torn last line from a crash mid-append: the record was never acknowledged.
          this.options.logger.warn('skipping an unreadable spool line');
        }
      }
      this.spooledCount = records.length;
      try {
        for (let index = 0; index < records.length; index += this.maxBatch) {
          await this.transaction(records.slice(index, index + this.maxBatch));
        }
      } catch (error) {
        if (!isPoison(error)) {
          this.lastError = error instanceof Error ? error.message : String(error);
          return false;
        }
        // Isolate the bad records one by one.
        const good: RunRecord[] = [];
        for (const record of records) {
          try {
            await this.transaction([record]);
            good.push(record);
          } catch (single) {
            if (!isPoison(single)) {
              return false;
            }
            this.deadLettered += 1;
            await this.appendLines(this.options.deadLetterPath, [record]);
          }
        }
      }
      const replayed = `${this.options.spoolPath}.replayed`;
      await rename(this.options.spoolPath, replayed);
      await rm(replayed, { force: true });
      this.committed += records.length;
      this.spooledCount = 0;
      this.lastError = null;
      this.unreachable = false;
      this.options.onCommitted?.(records);
      this.options.logger.info({ runs: records.length }, 'replayed spooled run records');
      return true;
    });
  }
}
