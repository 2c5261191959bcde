import { diag, type Counter, type Meter } from '@opentelemetry/api';
import type { DatabasePool } from 'slonik';
import {
  ATTR_ERROR_TYPE,
  ATTR_TELEMETRY_PROCESSOR,
  METRIC_ANALYTICS_BACKLOG,
  METRIC_ANALYTICS_DROPPED,
  METRIC_PROCESSOR_ERRORS,
} from '../../otel/semconv.js';
import {
  addDelta,
  emptyRollup,
  hourBucket,
  invalidDeltaReason,
  mergeRollup,
  rollupKey,
  type AnalyticsDelta,
  type Rollup,
} from './analytics-rollup.js';
import { createRollupWriter } from './analytics-rollup-writer.js';

export type { AnalyticsDelta } from './analytics-rollup.js';

export type AnalyticsStoreOptions = {
  /** The pool, or a function returning the pool to use for each flush (swappable). */
  readonly pool: DatabasePool | (() => DatabasePool);
  /** How long a delta may wait before it is written (default 250 ms). */
  readonly flushIntervalMs?: number;
  /** Rows waiting that trigger a flush before the interval ends (default 500). */
  readonly maxPending?: number;
  /** Rows held in memory at most (pending + unconfirmed); beyond, new rows are dropped (default 50 000). */
  readonly maxPendingRows?: number;
  /** Rows per transaction (default 500). */
  readonly maxBatchRows?: number;
  /** Counts errors, drops and the backlog when given. */
  readonly meter?: Meter;
};

export type FlushResult = {
  /** Rows this flush confirmed committed (including earlier unconfirmed commits). */
  readonly applied: number;
  /** Rows still waiting for a later flush. */
  readonly pending: number;
  /** Rows whose transaction's outcome is not known yet (resolved on a later flush). */
  readonly inDoubt: number;
  /** Why the flush stopped early (database unreachable…), when it did. */
  readonly error?: unknown;
};

export type AnalyticsStoreStats = {
  readonly pending: number;
  readonly inDoubt: number;
  readonly dropped: number;
  readonly applied: number;
};

export type AnalyticsStore = {
  /** Merges a delta into the pending rollups. Never throws, never does I/O. */
  readonly add: (delta: AnalyticsDelta) => void;
  /** Writes everything added before the call. Never rejects: see `FlushResult.error`. */
  readonly flush: () => Promise<FlushResult>;
  /** Stops the timer and flushes a last time. */
  readonly shutdown: () => Promise<FlushResult>;
  readonly stats: () => AnalyticsStoreStats;
};

const PROCESSOR = 'analytics';

/**
 * Hourly analytics rollups, batched: deltas merge in memory per (hour, user, provider,
 * model) and are upserted every `flushIntervalMs` (or as soon as `maxPending` rows
 * wait), each batch in one transaction. A batch leaves memory only once it is known to
 * have committed (see {@link createRollupWriter}): a failed flush keeps everything for
 * the next interval, and nothing is applied twice.
 */
export const createAnalyticsStore = (options: AnalyticsStoreOptions): AnalyticsStore => {
  const { pool } = options;
  const getPool = typeof pool === 'function' ? pool : () => pool;
  const flushIntervalMs = options.flushIntervalMs ?? 250;
  const maxPending = options.maxPending ?? 500;
  const maxPendingRows = options.maxPendingRows ?? 50_000;
  const maxBatchRows = options.maxBatchRows ?? 500;

  const pending = new Map<string, Rollup>();
  let dropped = 0;
  let applied = 0;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let immediate: NodeJS.Immediate | undefined;
  let chain: Promise<unknown> = Promise.resolve();
  let waiting: Promise<FlushResult> | undefined;

  const meter = options.meter;
  const errorCounter: Counter | undefined = meter?.createCounter(METRIC_PROCESSOR_ERRORS, {
    description: 'Failures inside telemetry span processors (never raised into the application).',
    unit: '{error}',
  });
  const droppedCounter: Counter | undefined = meter?.createCounter(METRIC_ANALYTICS_DROPPED, {
    description: 'Analytics rollup deltas dropped (store full, or rejected by the database).',
    unit: '{delta}',
  });
  meter
    ?.createObservableGauge(METRIC_ANALYTICS_BACKLOG, {
      description: 'Analytics rollup rows waiting to be written or confirmed.',
      unit: '{row}',
    })
    .addCallback((result) => result.observe(pending.size + inDoubtRows()));

  const reportError = (reason: string, error: unknown): void => {
    diag.error(`analytics store: ${reason}`, error);
    errorCounter?.add(1, { [ATTR_TELEMETRY_PROCESSOR]: PROCESSOR, [ATTR_ERROR_TYPE]: reason });
  };
  const drop = (count: number, reason: string): void => {
    dropped += count;
    droppedCounter?.add(count, { [ATTR_ERROR_TYPE]: reason });
  };

  const putBack = (rows: readonly Rollup[]): void => {
    for (const row of rows) {
      const key = rollupKey(row.bucketStart, row.userId, row.provider, row.model);
      const current = pending.get(key);
      if (current === undefined) {
        pending.set(key, row);
      } else {
        mergeRollup(current, row);
      }
    }
  };

  const writer = createRollupWriter({ getPool, putBack, drop, reportError });
  const inDoubtRows = (): number => writer.inDoubtRows();

  const takeBatch = (size: number): Rollup[] => {
    const batch: Rollup[] = [];
    for (const [key, row] of pending) {
      if (batch.length >= size) break;
      batch.push(row);
      pending.delete(key);
    }
    return batch;
  };

  const schedule = (): void => {
    if (closed) return;
    if (pending.size >= maxPending && immediate === undefined) {
      // Off the caller's stack: add() runs inside a span's end().
      immediate = setImmediate(() => {
        immediate = undefined;
        void flush();
      });
      return;
    }
    if (timer === undefined && (pending.size > 0 || inDoubtRows() > 0)) {
      timer = setTimeout(() => {
        timer = undefined;
        void flush();
      }, flushIntervalMs);
      timer.unref();
    }
  };

  const flushNow = async (): Promise<FlushResult> => {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    let confirmed = 0;
    let failure: unknown;
    try {
      confirmed += await writer.resolveInDoubt();
      // Only the rows present now: under constant load a flush still ends.
      let remaining = pending.size;
      while (remaining > 0 && pending.size > 0) {
        const batch = takeBatch(Math.min(maxBatchRows, remaining));
        remaining -= batch.length;
        const outcome = await writer.write(batch);
        if (!outcome.ok) {
          failure = outcome.error;
          break;
        }
        confirmed += outcome.applied;
      }
    } catch (error) {
      failure = error;
    }
    applied += confirmed;
    if (failure !== undefined) {
      reportError('flush_failed', failure);
    }
    schedule();
    return { applied: confirmed, pending: pending.size, inDoubt: inDoubtRows(), ...(failure === undefined ? {} : { error: failure }) };
  };

  const flush = (): Promise<FlushResult> => {
    // A flush that has not started yet will also write whatever this caller added.
    if (waiting !== undefined) return waiting;
    const next = chain.then(() => {
      waiting = undefined;
      return flushNow();
    });
    waiting = next;
    chain = next.catch(() => undefined);
    return next;
  };

  const add = (delta: AnalyticsDelta): void => {
    try {
      const invalid = invalidDeltaReason(delta);
      if (invalid !== undefined) {
        reportError('invalid_delta', new Error(invalid));
        drop(1, 'invalid');
        return;
      }
      const bucketStart = hourBucket(delta.at);
      const key = rollupKey(bucketStart, delta.userId, delta.provider, delta.model);
      let rollup = pending.get(key);
      if (rollup === undefined) {
        if (closed || pending.size + inDoubtRows() >= maxPendingRows) {
          drop(1, closed ? 'closed' : 'overflow');
          return;
        }
        rollup = emptyRollup(bucketStart, delta.userId, delta.provider, delta.model);
        pending.set(key, rollup);
      }
      addDelta(rollup, delta);
      schedule();
    } catch (error) {
      reportError('add_failed', error);
    }
  };

  const shutdown = async (): Promise<FlushResult> => {
    const result = await flush();
    closed = true;
    if (timer !== undefined) clearTimeout(timer);
    if (immediate !== undefined) clearImmediate(immediate);
    timer = undefined;
    immediate = undefined;
    return result;
  };

  return {
    add,
    flush,
    shutdown,
    stats: () => ({ pending: pending.size, inDoubt: inDoubtRows(), dropped, applied }),
  };
};
