import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPool, sql } from 'slonik';
import { ulid } from 'ulid';
import { loadConfig } from '../../src/config.js';
import { openDatabase, type Database } from '../../src/db/database.js';
import { createDatabaseOnServer } from './database.js';
import {
  registerThrough,
  requestJson,
  startServerProcess,
  type JsonResponse,
  type ServerProcess,
  type ServerUser,
} from './server-process.js';

/** The server the instances' database is created on, when none is configured. */
const DEFAULT_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export type PostgresServer = { readonly url: string; readonly reason?: undefined } | { readonly url?: undefined; readonly reason: string };

/**
 * The PostgreSQL server for multi-instance tests: DATABASE_URL when set, else the local
 * default when it answers. Unreachable → `reason` (the test file skips, stating it;
 * with CI=true the caller fails instead, see {@link requirePostgres}).
 */
export const findPostgresServer = async (): Promise<PostgresServer> => {
  const url = loadConfig().database.url ?? DEFAULT_ADMIN_URL;
  try {
    const pool = await createPool(url, { maxPoolSize: 1, connectionTimeout: 2_000 });
    try {
      await pool.query(sql.unsafe`SELECT 1`);
    } finally {
      await pool.end();
    }
    return { url };
  } catch (error) {
    return { reason: `no PostgreSQL server answers at ${new URL(url).host} (${error instanceof Error ? error.message : String(error)})` };
  }
};

/**
 * True when the server is there. Without one: under CI=true throws (a missing server is a
 * failure there), else warns with the reason and returns false (the caller skips).
 */
export const requirePostgres = (server: PostgresServer, what: string): server is { url: string } => {
  if (server.url !== undefined) return true;
  if (process.env['CI'] === 'true') {
    throw new Error(`cannot run ${what} (CI=true): ${server.reason}`);
  }
  console.warn(`skipping ${what}: ${server.reason}`);
  return false;
};

export type Instance = {
  /** Its CHATTER_INSTANCE_ID. */
  readonly id: string;
  readonly baseUrl: string;
  readonly process: ServerProcess;
  /** Its pino log lines so far, parsed (LOG_LEVEL warn unless `env` says otherwise). */
  readonly logs: () => Record<string, unknown>[];
};

export type Response = JsonResponse;

export type TestUser = ServerUser;

export type Instances = {
  readonly instances: readonly Instance[];
  /** The shared database's URL. */
  readonly url: string;
  /** A small pool on the shared database, for the test's own assertions. */
  readonly db: Database;
  readonly request: (instance: Instance, method: string, path: string, options?: { token?: string; body?: unknown }) => Promise<Response>;
  /** Registers a user through `instance`. */
  readonly register: (instance: Instance) => Promise<TestUser>;
  /** Logs `user` in through `instance` (tokens of one instance are good on all). */
  readonly login: (instance: Instance, user: Pick<TestUser, 'username' | 'password'>) => Promise<string>;
  /** `POST /api/v1/workflows/execute/chat` as `user`. */
  readonly chat: (instance: Instance, user: Pick<TestUser, 'token'>, body: Record<string, unknown>) => Promise<Response>;
  /** Sends `signal` (SIGKILL by default: no shutdown, no last writes) and waits for the exit. */
  readonly kill: (instance: Instance, signal?: NodeJS.Signals) => Promise<void>;
  /** SIGSTOP: the process stays, silent (no answers, no heartbeats) until `resume`. */
  readonly pause: (instance: Instance) => void;
  /** SIGCONT after `pause`. */
  readonly resume: (instance: Instance) => void;
  /** Kills what still runs, drops the database and the data folders. */
  readonly close: () => Promise<void>;
};

const parseLogs = (output: string): Record<string, unknown>[] =>
  output.split('\n').flatMap((line) => {
    if (!line.startsWith('{')) return [];
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch {
      return [];
    }
  });

/**
 * Starts `count` real server processes (`src/server.ts`) on one fresh PostgreSQL database
 * of `server`, each with its own CHATTER_INSTANCE_ID (`instance-1`…) and data folder and
 * one shared JWT_SECRET; `env` is added to every instance's environment. `prepare` runs
 * on the fresh, empty database before any instance starts (rows the instances must find
 * at start-up, e.g. prices).
 */
export const startInstances = async (
  server: { url: string },
  { count, env = {}, prepare }: { count: number; env?: Record<string, string>; prepare?: (db: Database) => Promise<void> },
): Promise<Instances> => {
  const database = await createDatabaseOnServer(server.url);
  const { url } = database;
  const dataDirs: string[] = [];
  const started: Instance[] = [];
  const cleanup = async () => {
    await Promise.all(started.map((instance) => instance.process.stop('SIGKILL')));
    await Promise.all(dataDirs.map((dir) => rm(dir, { recursive: true, force: true })));
    await database.drop();
  };
  let db: Database | undefined;
  try {
    db = await openDatabase({ url, dataDir: 'memory://', poolSize: 2 });
    await prepare?.(db);
    const jwtSecret = `instances-${ulid()}-0123456789-abcdefghijkl`;
    await Promise.all(
      Array.from({ length: count }, async (_, index) => {
        const id = `instance-${index + 1}`;
        const dataDir = await mkdtemp(join(tmpdir(), `chatter-${id}-`));
        dataDirs.push(dataDir);
        const child = await startServerProcess(
          {
            DATABASE_URL: url,
            DATABASE_POOL_SIZE: '4',
            CHATTER_INSTANCE_ID: id,
            CHATTER_DATA_DIR: dataDir,
            CHATTER_ENV: 'test',
            JWT_SECRET: jwtSecret,
            CHAT_RATE_LIMIT_PER_MINUTE: '100000',
            CHAT_STREAMING_RATE_LIMIT_PER_MINUTE: '100000',
            CHAT_RATE_LIMIT_PER_HOUR: '100000',
            ...env,
          },
          { timeoutMs: 90_000 },
        );
        started.push({ id, baseUrl: child.baseUrl, process: child, logs: () => parseLogs(child.output()) });
      }),
    );
    started.sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
  } catch (error) {
    await db?.close();
    await cleanup();
    throw error;
  }
  const pool = db;

  return {
    instances: started,
    url,
    db: pool,
    request: (instance, method, path, options) => requestJson(instance, method, path, options),
    register: (instance) => registerThrough(instance),
    login: async (instance, user) => {
      const response = await requestJson(instance, 'POST', '/api/v1/auth/login', {
        body: { username: user.username, password: user.password },
      });
      if (response.status !== 200) throw new Error(`login failed: ${response.status} ${JSON.stringify(response.body)}`);
      return (response.body as { access_token: string }).access_token;
    },
    chat: (instance, user, body) => requestJson(instance, 'POST', '/api/v1/workflows/execute/chat', { token: user.token, body }),
    kill: async (instance, signal = 'SIGKILL') => {
      await instance.process.stop(signal);
    },
    pause: (instance) => {
      instance.process.child.kill('SIGSTOP');
    },
    resume: (instance) => {
      instance.process.child.kill('SIGCONT');
    },
    close: async () => {
      await pool.close();
      await cleanup();
    },
  };
};
