import { IntegrityConstraintViolationError, type DatabasePool } from 'slonik';
import type { Rollup } from './analytics-rollup.js';
import { applyRollups, transactionStatus, type TransactionStatus } from './analytics-upsert.js';

export type WriteOutcome = { readonly ok: true; readonly applied: number } | { readonly ok: false; readonly error: unknown };

export type RollupWriterOptions = {
  readonly getPool: () => DatabasePool;
  /** Takes back rows that surely did not commit (merged into the pending rollups). */
  readonly putBack: (rows: readonly Rollup[]) => void;
  /** Counts rows given up for good. */
  readonly drop: (count: number, reason: string) => void;
  readonly reportError: (reason: string, error: unknown) => void;
};

export type RollupWriter = {
  /** Upserts `rows` in one transaction. */
  readonly write: (rows: readonly Rollup[]) => Promise<WriteOutcome>;
  /**
   * Settles earlier batches whose COMMIT got no reply; returns the rows confirmed
   * committed. Throws when the database can't be asked (the batches stay in doubt).
   */
  readonly resolveInDoubt: () => Promise<number>;
  readonly inDoubtRows: () => number;
};

type InDoubtBatch = { readonly xid: string; readonly rows: readonly Rollup[] };

/**
 * Writes rollup batches exactly once.
 *
 * - Success: the batch is done.
 * - Failure before COMMIT was sent: it surely did not commit → `putBack`.
 * - Failure during COMMIT (connection lost before the reply, or the server refused at
 *   commit): the outcome is unknown to the client, so the batch is kept "in doubt"
 *   under its transaction id, and `resolveInDoubt` later asks PostgreSQL
 *   (`pg_xact_status`): committed → forget it; aborted → `putBack`; still running →
 *   ask again next time.
 * - A permanent rejection (integrity violation: a user deleted meanwhile): the batch
 *   is retried row by row and only the rejected rows are dropped, so one bad row
 *   can't block the others forever.
 */
export const createRollupWriter = ({ getPool, putBack, drop, reportError }: RollupWriterOptions): RollupWriter => {
  let inDoubt: InDoubtBatch[] = [];

  const write = async (rows: readonly Rollup[]): Promise<WriteOutcome> => {
    let xid: string | undefined;
    let committing = false;
    try {
      await getPool().transaction(async (tx) => {
        committing = false; // slonik may re-run the handler on a serialization failure
        await applyRollups(tx, rows, (id) => {
          xid = id;
        });
        committing = true;
      });
      return { ok: true, applied: rows.length };
    } catch (error) {
      if (committing && xid !== undefined) {
        inDoubt.push({ xid, rows });
        return { ok: false, error };
      }
      if (!(error instanceof IntegrityConstraintViolationError)) {
        putBack(rows);
        return { ok: false, error };
      }
      if (rows.length === 1) {
        reportError('row_rejected', error);
        drop(1, 'rejected');
        return { ok: true, applied: 0 };
      }
      let applied = 0;
      for (const [index, row] of rows.entries()) {
        const outcome = await write([row]);
        if (!outcome.ok) {
          putBack(rows.slice(index + 1));
          return outcome;
        }
        applied += outcome.applied;
      }
      return { ok: true, applied };
    }
  };

  const resolveInDoubt = async (): Promise<number> => {
    let confirmed = 0;
    const batches = inDoubt;
    const unresolved: InDoubtBatch[] = [];
    for (const [index, batch] of batches.entries()) {
      let status: TransactionStatus;
      try {
        status = await transactionStatus(getPool(), batch.xid);
      } catch (error) {
        inDoubt = [...unresolved, ...batches.slice(index)];
        throw error;
      }
      if (status === 'committed') {
        confirmed += batch.rows.length;
      } else if (status === 'aborted') {
        putBack(batch.rows);
      } else if (status === 'in progress') {
        unresolved.push(batch);
      } else {
        reportError('commit_unknown', new Error(`transaction ${batch.xid} is unknown to the server`));
        drop(batch.rows.length, 'commit_unknown');
      }
    }
    inDoubt = unresolved;
    return confirmed;
  };

  return {
    write,
    resolveInDoubt,
    inDoubtRows: () => inDoubt.reduce((sum, batch) => sum + batch.rows.length, 0),
  };
};
