import { appendFile, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import {
  DataIntegrityError,
  IntegrityConstraintViolationError,
  InvalidInputError,
  SchemaValidationError,
  type DatabasePool,
} from 'slonik';
import type { RunRecordSink } from '../../otel/processors/database-writer-span-processor.js';
import type { RunRecord } from '../../otel/processors/run-record.js';
import { applyRunRecords } from '../repositories/run-records-repository.js';

export type Durability = 'database' | 'spool';

export type RunRecordWriterOptions = {
  readonly pool: DatabasePool;
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

/** A record that failed for what it holds: retrying cannot help. */
const isPoison = (error: unknown): boolean =>
  error instanceof IntegrityConstraintViolationError ||
  error instanceof SchemaValidationError ||
  error instanceof InvalidInputError ||
  (error instanceof DataIntegrityError && !(error.message ?? '').includes('connection'));

/**
 * Writes run records to the database: batched across runs (one transaction per batch;
 * a failing batch is retried record by record so one bad record cannot hold up the
 * rest), idempotent by run id. While the database is unreachable, records go to an
 * append-only spool file (fsynced) and are replayed with backoff, and at start-up.
 * `whenDurable(runId)` resolves once a run's record is committed or spooled.
 */
export class RunRecordWriter implements RunRecordSink {
  private readonly options: RunRecordWriterOptions;
  private readonly maxBatch: number;
  private queue: RunRecord[] = [];
  private readonly waiters = new Map<string, Waiter[]>();
  private readonly settled = new Map<string, Durability>();
  private flushing: Promise<void> | undefined;
  private scheduled = false;
  private spoolLock: Promise<unknown> = Promise.resolve();
  private spooledCount = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs: number;
  private lastError: string | null = null;
  private closed = false;
  private committed = 0;
  private deadLettered = 0;
  private transactions = 0;

  public constructor(options: RunRecordWriterOptions) {
    this.options = options;
    this.maxBatch = options.maxBatch ?? 200;
    this.retryDelayMs = options.retryBaseMs ?? 500;
  }

  /** Replays records spooled by an earlier process (after a crash or an outage). */
  public async start(): Promise<void> {
    await this.replaySpool();
  }

  public enqueue(record: RunRecord): void {
    this.queue.push(record);
    if (!this.scheduled) {
      this.scheduled = true;
      // Batch everything that ends in the same tick.
      setImmediate(() => {
        this.scheduled = false;
        void this.flush();
      });
    }
  }

  /**
   * Resolves when the run's record is committed or safely spooled.
   *
   * @throws Error after `timeoutMs` if the record never arrived.
   */
  public whenDurable(runId: string, timeoutMs = 60_000): Promise<Durability> {
    const done = this.settled.get(runId);
    if (done !== undefined) {
      return Promise.resolve(done);
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
  } {
    return {
      queued: this.queue.length,
      spooled: this.spooledCount,
      committed: this.committed,
      deadLettered: this.deadLettered,
      transactions: this.transactions,
      lastError: this.lastError,
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
  }

  private settle(records: readonly RunRecord[], durability: Durability): void {
    for (const record of records) {
      this.settled.set(record.runId, durability);
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
      return this.flushing;
    }
    if (this.queue.length === 0) {
      return Promise.resolve();
    }
    const drain = async (): Promise<void> => {
      // Yield first, so `flushing` is set before the loop can finish and clear it.
      await Promise.resolve();
      try {
        while (this.queue.length > 0) {
          const batch = this.queue.splice(0, this.maxBatch);
          await this.writeBatch(batch);
        }
      } finally {
        this.flushing = undefined;
      }
    };
    this.flushing = drain();
    return this.flushing;
  }

  private async transaction(records: readonly RunRecord[]): Promise<void> {
    this.transactions += 1;
    await withWriteTimeout(
      this.options.pool.transaction((tx) => applyRunRecords(tx, records)),
      this.options.writeTimeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS,
    );
  }

  private async writeBatch(batch: RunRecord[]): Promise<void> {
    if (this.spooledCount > 0) {
      // Keep order: while older records wait in the spool, newer ones join them.
      await this.spool(batch);
      return;
    }
    try {
      await this.transaction(batch);
      this.committedBatch(batch);
      return;
    } catch (error) {
      // Only a record the database refuses is worth isolating; an unreachable (or
      // unanswering) database would fail, and wait out its timeout, once per record.
      if (batch.length === 1 || !isPoison(error)) {
        await this.handleFailure(batch, error);
        return;
      }
    }
    for (const record of batch) {
      try {
        await this.transaction([record]);
        this.committedBatch([record]);
      } catch (error) {
        await this.handleFailure([record], error);
      }
    }
  }

  private committedBatch(records: readonly RunRecord[]): void {
    this.committed += records.length;
    this.lastError = null;
    this.settle(records, 'database');
    this.options.onCommitted?.(records);
  }

  private async handleFailure(records: RunRecord[], error: unknown): Promise<void> {
    const message = error instanceof Error ? error.message : String(error);
    if (isPoison(error)) {
      this.deadLettered += records.length;
      this.options.logger.error({ err: error, runIds: records.map((r) => r.runId) }, 'run record rejected; dead-lettered');
      await this.appendLines(this.options.deadLetterPath, records);
      this.settle(records, 'spool');
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

  private async spool(records: RunRecord[]): Promise<void> {
    await this.withSpoolLock(async () => {
      await this.appendLines(this.options.spoolPath, records);
      this.spooledCount += records.length;
    });
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
   * Writes every spooled record (idempotently, so a record written just before a
   * crash is skipped), then removes the spool. Returns false if the database is
   * still unreachable.
   */
  private replaySpool(): Promise<boolean> {
    return this.withSpoolLock(async () => {
      let text: string;
      try {
        text = await readFile(this.options.spoolPath, 'utf8');
      } catch {
        this.spooledCount = 0;
        return true;
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
      this.options.onCommitted?.(records);
      this.options.logger.info({ runs: records.length }, 'replayed spooled run records');
      return true;
    });
  }
}

/** Appends without the writer (tests simulate a crash right after a spool write). */
export const appendToSpool = (path: string, records: readonly RunRecord[]): Promise<void> =>
  appendFile(path, records.map((record) => `${JSON.stringify(record)}\n`).join(''));
