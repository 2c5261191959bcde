import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { createPool, type DatabasePool } from 'slonik';
import { lockDataDir, type DataDirLock } from './data-dir-lock.js';
import { enablePgKeepAlive } from './pg-keepalive.js';
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

/**
 * A statement (or a whole `transaction`) got no answer within its bound: the database
 * or the network to it is not answering. Its connection is destroyed, so nothing it
 * sent can be used by another caller; answered 503 like an unreachable database.
 */
export class StatementNoAnswerError extends Error {
  public constructor(timeoutMs: number) {
    super(`the database did not answer within ${timeoutMs} ms`);
    this.name = 'StatementNoAnswerError';
  }
}

const QUERY_METHODS = [
  'any',
  'anyFirst',
  'exists',
  'many',
  'manyFirst',
  'maybeOne',
  'maybeOneFirst',
  'one',
  'oneFirst',
  'query',
  'transaction',
] as const;

/** Beyond the server's own statement_timeout: the time for its error to come back. */
const STATEMENT_ANSWER_SLACK_MS = 1_000;

type Bounds = { readonly acquireTimeoutMs: number; readonly statementTimeoutMs: number };

/**
 * Bounds every call on the pool, on this side of the network (the server's
 * statement_timeout cannot fire for a query that never reaches it):
 * - the wait for a connection, by `acquireTimeoutMs`. When connections die while
 *   callers queue for one (a restart, a network cut), slonik 49 can leave the queued
 *   callers waiting forever. A caller that gave up and is served later does no work:
 *   its routine throws before touching the connection, so nothing runs (or commits)
 *   after its caller was told it failed;
 * - the call itself, by the statement timeout plus the time for its error to return.
 *   On a silent partition nothing comes back: the routine throws, which makes slonik
 *   destroy the connection (a later answer is never read by anyone).
 * After a call went unanswered, and until one is answered again, calls are bounded by
 * `acquireTimeoutMs` instead: during a partition every request fails in that time,
 * not after a full statement timeout each.
 */
const withTimeouts = (pool: DatabasePool, bounds: Bounds): DatabasePool => {
  const wrapped = Object.create(pool) as Record<string, unknown>;
  let unanswered = false;
  for (const method of QUERY_METHODS) {
    wrapped[method] = (...args: unknown[]) => {
      let abandoned = false;
      let acquireTimer: NodeJS.Timeout | undefined;
      let answerTimer: NodeJS.Timeout | undefined;
      const acquireTimeout = new Promise<never>((_resolve, reject) => {
        acquireTimer = setTimeout(() => {
          // Not a sign of a dead link by itself (the pool may just be busy).
          abandoned = true;
          reject(new ConnectionAcquireTimeoutError(bounds.acquireTimeoutMs));
        }, bounds.acquireTimeoutMs);
      });
      const work = pool.connect(async (connection) => {
        clearTimeout(acquireTimer);
        if (abandoned) {
          throw new ConnectionAcquireTimeoutError(bounds.acquireTimeoutMs);
        }
        const boundMs = unanswered ? bounds.acquireTimeoutMs : bounds.statementTimeoutMs + STATEMENT_ANSWER_SLACK_MS;
        const noAnswer = new Promise<never>((_resolve, reject) => {
          answerTimer = setTimeout(() => {
            unanswered = true;
            reject(new StatementNoAnswerError(boundMs));
          }, boundMs);
        });
        const result = await Promise.race([(connection[method] as (...a: unknown[]) => Promise<unknown>)(...args), noAnswer]);
        unanswered = false;
        return result;
      });
      return Promise.race([work, acquireTimeout]).finally(() => {
        clearTimeout(acquireTimer);
        clearTimeout(answerTimer);
      });
    };
  }
  return wrapped as unknown as DatabasePool;
};

const createSlonikPool = async (connectionUri: string, options: DatabaseOptions): Promise<DatabasePool> =>
  withTimeouts(await createRawPool(connectionUri, options), {
    acquireTimeoutMs: options.acquireTimeoutMs ?? 5_000,
    statementTimeoutMs: options.statementTimeoutMs ?? 30_000,
  });

/** Idle time before the first TCP keepalive probe, on both ends of each connection. */
const KEEPALIVE_IDLE_SECONDS = 15;
const KEEPALIVE_INTERVAL_SECONDS = 5;
const KEEPALIVE_COUNT = 3;

/**
 * The server's side of the keepalives, as startup options (`-c tcp_keepalives_…`): a
 * server whose client vanished behind a dead link ends that session (rolling back its
 * transaction and freeing its locks) within about 30 s instead of holding them for hours.
 * Options already in the URL are kept; any keepalive setting there wins.
 */
export const withServerKeepalives = (url: string): string => {
  const parsed = new URL(url);
  const options = parsed.searchParams.get('options') ?? '';
  if (/tcp_keepalives|tcp_user_timeout/.test(options)) {
    return url;
  }
  const keepalives = [
    `-c tcp_keepalives_idle=${KEEPALIVE_IDLE_SECONDS}`,
    `-c tcp_keepalives_interval=${KEEPALIVE_INTERVAL_SECONDS}`,
    `-c tcp_keepalives_count=${KEEPALIVE_COUNT}`,
  ].join(' ');
  parsed.searchParams.set('options', options === '' ? keepalives : `${options} ${keepalives}`);
  return parsed.toString();
};

const createRawPool = async (connectionUri: string, options: DatabaseOptions): Promise<DatabasePool> => {
  enablePgKeepAlive(KEEPALIVE_IDLE_SECONDS * 1_000);
  const acquireTimeoutMs = options.acquireTimeoutMs ?? 5_000;
  return createPool(connectionUri, {
    interceptors: [createResultParserInterceptor()],
    typeParsers: createTypeParsers(),
    maxPoolSize: options.poolSize,
    statementTimeout: options.statementTimeoutMs ?? 30_000,
    // Connecting is part of acquiring: it cannot usefully take longer than a caller waits.
    connectionTimeout: Math.min(5_000, acquireTimeoutMs),
    // A connection destroyed because it went unanswered (see withTimeouts) gives its
    // pool slot back after this long, not slonik's default 5 s.
    gracefulTerminationTimeout: 1_000,
    // No session state is ever set, so the default `DISCARD ALL` on every release
    // is a wasted round trip (and on PGlite it would reset the one shared session).
    resetConnection: async () => {},
  });
};

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
  const pool = await createSlonikPool(withServerKeepalives(options.url), options);
  return { kind: 'postgres', pool, connectionUri: options.url, close: once(() => pool.end()) };
};
