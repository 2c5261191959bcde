import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { createPool, type DatabasePool } from 'slonik';
import { lockDataDir, type DataDirLock } from './data-dir-lock.js';
import { createResultParserInterceptor } from './result-parser-interceptor.js';
import { createTypeParsers } from './type-parsers.js';

export type DatabaseKind = 'postgres' | 'pglite';

export type Database = {
  readonly kind: DatabaseKind;
  readonly pool: DatabasePool;
  /** The URL slonik connects to (for PGlite, the loopback socket server). */
  readonly connectionUri: string;
  /** Ends the pool, then (PGlite) stops the socket server and closes the database files. */
  readonly close: () => Promise<void>;
};

export type DatabaseOptions = {
  /** A PostgreSQL server; unset → embedded PGlite. */
  readonly url?: string | undefined;
  /** Where PGlite keeps its files; `memory://` keeps nothing. */
  readonly dataDir: string;
  readonly poolSize: number;
  readonly statementTimeoutMs?: number;
  /** How long a caller may wait for a pool connection before failing. */
  readonly acquireTimeoutMs?: number;
  /** What opens the embedded database (`server`, `migrate`), named to a second process that tries. */
  readonly role?: string;
};

/** Closing twice (a test, then a shutdown hook) must not fail the second time. */
const once = (close: () => Promise<void>): (() => Promise<void>) => {
  let closing: Promise<void> | undefined;
  return () => {
    closing ??= close();
    return closing;
  };
};

/** No pool connection could be had in time (the database is unreachable or saturated). */
export class ConnectionAcquireTimeoutError extends Error {
  public constructor(timeoutMs: number) {
    super(`no database connection within ${timeoutMs} ms`);
    this.name = 'ConnectionAcquireTimeoutError';
  }
}

const QUERY_METHODS = ['any', 'anyFirst', 'exists', 'many', 'manyFirst', 'maybeOne', 'maybeOneFirst', 'one', 'oneFirst', 'query', 'transaction'] as const;

/**
 * Bounds the wait for a pool connection. When connections die while callers queue for
 * one (a database restart, a network cut), slonik 49 can leave the queued callers
 * waiting forever; here they fail after `acquireTimeoutMs` instead. A caller that gave
 * up and is served later does no work: its routine throws before touching the
 * connection, so nothing runs (or commits) after its caller was told it failed.
 */
const withAcquireTimeout = (pool: DatabasePool, acquireTimeoutMs: number): DatabasePool => {
  const wrapped = Object.create(pool) as Record<string, unknown>;
  for (const method of QUERY_METHODS) {
    wrapped[method] = (...args: unknown[]) => {
      let abandoned = false;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => {
          abandoned = true;
          reject(new ConnectionAcquireTimeoutError(acquireTimeoutMs));
        }, acquireTimeoutMs);
      });
      const work = pool.connect(async (connection) => {
        clearTimeout(timer);
        if (abandoned) {
          throw new ConnectionAcquireTimeoutError(acquireTimeoutMs);
        }
        return (connection[method] as (...a: unknown[]) => Promise<unknown>)(...args);
      });
      return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
    };
  }
  return wrapped as unknown as DatabasePool;
};

const createSlonikPool = async (connectionUri: string, options: DatabaseOptions): Promise<DatabasePool> =>
  withAcquireTimeout(await createRawPool(connectionUri, options), options.acquireTimeoutMs ?? 5_000);

const createRawPool = async (
  connectionUri: string,
  options: DatabaseOptions,
): Promise<DatabasePool> =>
  createPool(connectionUri, {
    interceptors: [createResultParserInterceptor()],
    typeParsers: createTypeParsers(),
    maxPoolSize: options.poolSize,
    statementTimeout: options.statementTimeoutMs ?? 30_000,
    connectionTimeout: 5_000,
    // No session state is ever set, so the default `DISCARD ALL` on every release
    // is a wasted round trip (and on PGlite it would reset the one shared session).
    resetConnection: async () => {},
  });

const PGLITE_POOL_SIZE = 1;

const startPglite = async (options: DatabaseOptions): Promise<Database> => {
  let dataUri = 'memory://';
  let lock: DataDirLock | undefined;
  if (options.dataDir !== 'memory://') {
    const directory = resolve(options.dataDir, 'pgdata');
    await mkdir(directory, { recursive: true });
    // The files belong to one process: a second one opening them would lose data.
    lock = await lockDataDir(resolve(options.dataDir), options.role ?? 'chatter');
    dataUri = directory;
  }
  try {
    return await startPgliteLocked(options, dataUri, lock);
  } catch (error) {
    await lock?.release();
    throw error;
  }
};

const startPgliteLocked = async (options: DatabaseOptions, dataUri: string, lock: DataDirLock | undefined): Promise<Database> => {
  const pglite = await PGlite.create(dataUri);
  // PGlite is a single session; the socket server multiplexes the pool's
  // connections onto it and keeps a transaction's statements together.
  const server = new PGLiteSocketServer({
    db: pglite,
    host: '127.0.0.1',
    port: 0,
    // Room for tools and tests that open their own pool on the same database.
    maxConnections: 16,
  });
  await server.start();
  const connectionUri = `postgres://postgres@${server.getServerConn()}/postgres`;
  // One connection: the socket server queues each protocol message on its own, so the
  // Parse/Bind/Execute messages of statements from two connections can interleave on
  // PGlite's single session outside a transaction ("bind message supplies 5
  // parameters, but prepared statement requires 3"). PGlite runs one statement at a
  // time anyway; waiting callers queue in the pool, so they get a longer wait bound.
  const pool = await createSlonikPool(connectionUri, {
    ...options,
    poolSize: PGLITE_POOL_SIZE,
    acquireTimeoutMs: Math.max(options.acquireTimeoutMs ?? 0, 60_000),
  });
  return {
    kind: 'pglite',
    pool,
    connectionUri,
    close: once(async () => {
      await pool.end();
      await server.stop();
      await pglite.close();
      await lock?.release();
    }),
  };
};

/**
 * Opens the database: the PostgreSQL server at `url`, or an embedded PGlite stored
 * under `dataDir` when no URL is given. Both are reached through slonik with the same
 * SQL, row validation and type parsers.
 */
export const openDatabase = async (options: DatabaseOptions): Promise<Database> => {
  if (options.url === undefined) {
    return startPglite(options);
  }
  const pool = await createSlonikPool(options.url, options);
  return { kind: 'postgres', pool, connectionUri: options.url, close: once(() => pool.end()) };
};

/** PGlite's data folder inside the service's data dir (for docs and tests). */
export const pgliteDataPath = (dataDir: string): string => join(dataDir, 'pgdata');
