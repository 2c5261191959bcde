import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { sql, type DatabasePool } from 'slonik';
import { sleep } from './http-support.js';

/**
 * Counting a benchmark window's database transactions on PostgreSQL, three ways:
 *
 * 1. The xid counter (`pg_current_xact_id()` before/after): every transaction that
 *    writes gets one xid, read-only ones none. It is server-wide: on a shared server,
 *    other databases' writes land in it too.
 * 2. `pg_stat_database.xact_commit` of the bench database: every committed transaction
 *    there, read-only ones included (auth lookups, history reads, …). Backends report it
 *    lazily (about once a second when idle), so a snapshot waits until it is stable.
 * 3. The write-ahead log of the window (`pg_waldump`), when the server's files are
 *    readable from here: the distinct committed xids whose records touch a user table
 *    of the bench database. That is the exact figure of (1) for this database alone,
 *    whoever else uses the server. A temporary physical replication slot keeps the
 *    window's WAL from being recycled until it is read.
 */

export type TxSnapshot = {
  readonly xid: bigint;
  readonly lsn: string;
  readonly xactCommit: number;
  readonly xactRollback: number;
};

export type WalCount = {
  /** Committed transactions that wrote to a user table of the bench database. */
  readonly benchWrites: number;
  /** Committed transactions with an xid in the whole cluster (all databases). */
  readonly clusterWrites: number;
  readonly records: number;
};

export type WalReader = {
  readonly available: boolean;
  readonly reason: string | undefined;
  readonly count: (from: string, to: string) => Promise<WalCount>;
  readonly release: () => Promise<void>;
};

const statsOf = async (admin: DatabasePool, database: string): Promise<{ commit: number; rollback: number }> => {
  // A fresh statement each time: stats are cached per transaction otherwise.
  await admin.query(sql.unsafe`SELECT pg_stat_clear_snapshot()`);
  const row = (await admin.one(sql.unsafe`
    SELECT xact_commit::text AS commit, xact_rollback::text AS rollback FROM pg_stat_database WHERE datname = ${database}`)) as {
    commit: string;
    rollback: string;
  };
  return { commit: Number(row.commit), rollback: Number(row.rollback) };
};

/** Waits until the database's commit count has not moved for `quietMs` (backends flushed their stats). */
export const waitForStableStats = async (admin: DatabasePool, database: string, quietMs = 2_000, timeoutMs = 20_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  let last = await statsOf(admin, database);
  let since = Date.now();
  while (Date.now() < deadline) {
    await sleep(250);
    const now = await statsOf(admin, database);
    if (now.commit !== last.commit || now.rollback !== last.rollback) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) {
      return;
    }
  }
};

/** Takes the three counters. The xid call itself consumes one xid (in the admin database). */
export const snapshot = async (admin: DatabasePool, database: string): Promise<TxSnapshot> => {
  const stats = await statsOf(admin, database);
  const lsn = String(await admin.oneFirst(sql.unsafe`SELECT pg_current_wal_lsn()::text`));
  const xid = BigInt(String(await admin.oneFirst(sql.unsafe`SELECT pg_current_xact_id()::text`)));
  return { xid, lsn, xactCommit: stats.commit, xactRollback: stats.rollback };
};

/** Write transactions between two snapshots by the xid counter, less the xid `after` consumed. */
export const xidDelta = (before: TxSnapshot, after: TxSnapshot): number => Number(after.xid - before.xid) - 1;

const REL = /rel (\d+)\/(\d+)\/(\d+)/g;
const LINE = /^rmgr: (\S+)\s+len.*?tx:\s+(\d+), lsn: [0-9A-F/]+, prev [0-9A-F/]+, desc: (\S+)/;
/** OIDs below this are the system catalogs' (FirstNormalObjectId): autoanalyze writes there. */
const FIRST_USER_OID = 16384;

/**
 * Opens a WAL reader for the bench database, or an unavailable one (with the reason)
 * when pg_waldump or the WAL directory cannot be reached from this process.
 */
export const openWalReader = async (admin: DatabasePool, databaseOid: number, slotName: string): Promise<WalReader> => {
  const unavailable = (reason: string): WalReader => ({
    available: false,
    reason,
    count: () => Promise.reject(new Error(reason)),
    release: async () => {},
  });
  let dataDirectory: string;
  let major: number;
  try {
    dataDirectory = String(await admin.oneFirst(sql.unsafe`SELECT current_setting('data_directory')`));
    major = Math.floor(Number(await admin.oneFirst(sql.unsafe`SELECT current_setting('server_version_num')::int`)) / 10_000);
  } catch (error) {
    return unavailable(`cannot read the server's settings: ${error instanceof Error ? error.message : String(error)}`);
  }
  const walDir = join(dataDirectory, 'pg_wal');
  const waldump = `/usr/lib/postgresql/${major}/bin/pg_waldump`;
  try {
    await access(waldump, constants.X_OK);
    await access(walDir, constants.R_OK);
  } catch {
    return unavailable(`${waldump} or ${walDir} is not reachable from this process`);
  }
  // Hold one connection for the slot's lifetime: a temporary slot lives as long as its session.
  let releaseSlot: () => void = () => {};
  const held = new Promise<void>((resolve) => {
    releaseSlot = resolve;
  });
  let slotReady: (error?: unknown) => void = () => {};
  const ready = new Promise<void>((resolve, reject) => {
    slotReady = (error) => (error === undefined ? resolve() : reject(error instanceof Error ? error : new Error(String(error))));
  });
  const session = admin
    .connect(async (connection) => {
      try {
        await connection.query(sql.unsafe`SELECT pg_create_physical_replication_slot(${slotName}, true, true)`);
      } catch (error) {
        slotReady(error);
        return;
      }
      slotReady();
      await held;
    })
    .catch(() => {});
  try {
    await ready;
  } catch (error) {
    releaseSlot();
    await session;
    return unavailable(`cannot reserve the WAL: ${error instanceof Error ? error.message : String(error)}`);
  }

  const count = async (from: string, to: string): Promise<WalCount> => {
    const benchXids = new Set<string>();
    // A subtransaction's records carry its own xid; the commit record lists it under the top one.
    const topOf = new Map<string, string>();
    let records = 0;
    const child = spawn(waldump, ['-p', walDir, '-s', from, '-e', to], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    for await (const line of createInterface({ input: child.stdout })) {
      const match = LINE.exec(line);
      if (match === null) continue;
      records += 1;
      const [, rmgr, tx, desc] = match;
      if (tx === undefined || tx === '0') continue;
      if (rmgr === 'Transaction' && desc?.startsWith('COMMIT') === true) {
        topOf.set(tx, tx);
        for (const sub of /subxacts: ([\d ]+)/.exec(line)?.[1]?.trim().split(/\s+/) ?? []) {
          topOf.set(sub, tx);
        }
        continue;
      }
      for (const rel of line.matchAll(REL)) {
        if (Number(rel[2]) === databaseOid && Number(rel[3]) >= FIRST_USER_OID) {
          benchXids.add(tx);
          break;
        }
      }
    }
    const code = await exited;
    // "error in WAL record at <end>" at the very end is normal: -e stops mid-stream.
    if (code !== 0 && !/end of WAL|error in WAL record/i.test(stderr)) {
      throw new Error(`pg_waldump exited with ${code}: ${stderr.slice(0, 500)}`);
    }
    const benchTops = new Set<string>();
    for (const xid of benchXids) {
      const top = topOf.get(xid);
      if (top !== undefined) benchTops.add(top);
    }
    return { benchWrites: benchTops.size, clusterWrites: new Set(topOf.values()).size, records };
  };

  return {
    available: true,
    reason: undefined,
    count,
    release: async () => {
      releaseSlot();
      await session;
    },
  };
};
