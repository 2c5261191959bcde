import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPool, sql, type DatabasePool } from 'slonik';
import { ulid } from 'ulid';
import { openDatabase, type Database } from '../src/db/database.js';

/** Shared parts of bench/http.ts and bench/freshness.ts: database, server process, users, figures. */

export const DEFAULT_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** Cleanups run in reverse order on success, failure and Ctrl-C alike. */
const cleanups: Array<() => Promise<void>> = [];
export const onCleanup = (cleanup: () => Promise<void>): void => {
  cleanups.push(cleanup);
};
export const cleanupAll = async (): Promise<void> => {
  while (cleanups.length > 0) {
    const cleanup = cleanups.pop();
    try {
      await cleanup?.();
    } catch (error) {
      console.error('cleanup failed:', error instanceof Error ? error.message : error);
    }
  }
};

/**
 * Runs `main` and exits 0 (target met), 1 (missed) or 2 (error), cleaning up first.
 */
/**
 * Runs a benchmark's main: cleans up whatever it started, then prints its summary as
 * the last line (one JSON object) and exits 0 when the target is met, 1 when missed,
 * 2 when the benchmark failed.
 */
export const runMain = (main: () => Promise<{ met: boolean; summary: object }>): void => {
  let interrupted = false;
  const onSignal = (): void => {
    if (interrupted) return;
    interrupted = true;
    console.error('interrupted; cleaning up');
    void cleanupAll().finally(() => process.exit(2));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  main()
    .then(async ({ met, summary }) => {
      await cleanupAll();
      console.log(JSON.stringify(summary));
      process.exit(met ? 0 : 1);
    })
    .catch(async (error: unknown) => {
      console.error('benchmark failed:', error instanceof Error ? (error.stack ?? error.message) : error);
      await cleanupAll();
      process.exit(2);
    });
};

export const positiveInt = (name: string, value: string | undefined): number => {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed <= 0) {
    throw new Error(`--${name} must be a positive integer, got ${value}`);
  }
  return parsed;
};

export const nonNegativeNumber = (name: string, value: string | undefined): number => {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0) {
    throw new Error(`--${name} must be a non-negative number, got ${value}`);
  }
  return parsed;
};

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export const round = (value: number, digits = 2): number => {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
};

/** The median of a list, its non-finite values left out (NaN when none is left). */
export const median = (values: readonly number[]): number => {
  const sorted = values.filter((value) => Number.isFinite(value)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

/** Nearest-rank percentile of an unsorted list (NaN when empty). */
export const percentile = (values: readonly number[], p: number): number => {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] ?? Number.NaN;
};

export type Machine = {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly node: string;
  readonly database: string;
};

export const describeMachine = (databaseVersion: string): Machine => ({
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  memoryGiB: round(totalmem() / 2 ** 30, 1),
  node: process.version,
  database: databaseVersion,
});

/** The machine's 1-minute load average (other work on a shared machine shows here). */
export const loadAverage = (): number => round(loadavg()[0] ?? Number.NaN, 2);

/** CPU seconds (user + system) a process has used so far, from /proc; NaN where unreadable. */
export const processCpuSeconds = (pid: number | undefined): number => {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command name.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
};

/**
 * CPU seconds used so far by the PostgreSQL backends connected to `database` (from
 * pg_stat_activity and /proc, so only when the server runs on this host), by pid.
 */
export const databaseBackendCpu = async (admin: DatabasePool, database: string): Promise<Map<number, number>> => {
  const pids = (await admin.anyFirst(sql.unsafe`
    SELECT pid FROM pg_stat_activity WHERE datname = ${database} AND backend_type = 'client backend'`)) as readonly number[];
  const cpu = new Map<number, number>();
  for (const pid of pids) {
    const seconds = processCpuSeconds(pid);
    if (!Number.isNaN(seconds)) cpu.set(pid, seconds);
  }
  return cpu;
};

/**
 * CPU seconds the backends used between two `databaseBackendCpu` readings: a backend
 * that connected meanwhile counts from zero, one that disconnected is lost (pools keep
 * their connections under a steady load). NaN when /proc was not readable.
 */
export const backendCpuDelta = (before: ReadonlyMap<number, number>, after: ReadonlyMap<number, number>): number => {
  if (after.size === 0) return Number.NaN;
  let total = 0;
  for (const [pid, seconds] of after) total += seconds - (before.get(pid) ?? 0);
  return total;
};

export const log = (message: string): void => {
  console.log(`[${new Date().toISOString().slice(11, 23)}] ${message}`);
};

const withDatabaseName = (url: string, name: string): string => {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
};

export type BenchDatabase = {
  readonly name: string;
  readonly url: string;
  /** The admin connection (server-wide views: xid counter, pg_stat_database). */
  readonly admin: DatabasePool;
  /** A small pool on the bench database itself (typed like the service's). */
  readonly db: Database;
  readonly version: string;
  readonly oid: number;
};

/**
 * Creates `chatter_bench_<prefix>_<ulid>` on the server of `adminUrl` (dropped by
 * cleanupAll). The service migrates it when it starts.
 */
export const createBenchDatabase = async (adminUrl: string, prefix: string): Promise<BenchDatabase> => {
  const name = `chatter_bench_${prefix}_${ulid().toLowerCase()}`;
  const admin = await createPool(adminUrl, { maxPoolSize: 3, resetConnection: async () => {} });
  onCleanup(() => admin.end());
  await admin.query(sql.unsafe`CREATE DATABASE ${sql.identifier([name])}`);
  onCleanup(async () => {
    await admin.query(sql.unsafe`DROP DATABASE IF EXISTS ${sql.identifier([name])} WITH (FORCE)`);
    log(`dropped database ${name}`);
  });
  const version = String(await admin.oneFirst(sql.unsafe`SELECT version()`));
  const oid = Number(await admin.oneFirst(sql.unsafe`SELECT oid FROM pg_database WHERE datname = ${name}`));
  const url = withDatabaseName(adminUrl, name);
  const db = await openDatabase({ url, dataDir: 'memory://', poolSize: 2 });
  onCleanup(() => db.close());
  return { name, url, admin, db, version, oid };
};

const freePort = async (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });

export type ServerProcess = {
  readonly baseUrl: string;
  readonly child: ChildProcess;
  readonly output: () => string;
  /** SIGTERM (graceful drain), SIGKILL after 15 s; resolves with the exit code. */
  readonly stop: () => Promise<number | null>;
};

/** Far above anything a benchmark sends, so no request is refused with 429. */
export const UNLIMITED_RATE = '100000000';

/**
 * Starts the real service in its own process, as `npm start` does
 * (`node --import tsx src/server.ts`), with `env` plus PATH and a private data dir
 * (no trace export unless `env` sets OTEL_TRACES_EXPORTER), and waits until `/healthz`
 * answers. `root` is the checkout whose server runs (default: this one; another
 * checkout's, e.g. the code before a change, measured by the same harness); `entry` the
 * script and arguments it runs (default: the service, `src/server.ts`).
 */
export const startServer = async (
  env: Record<string, string>,
  timeoutMs = 60_000,
  root = ROOT,
  entry: (port: number) => readonly string[] = () => ['src/server.ts'],
): Promise<ServerProcess> => {
  const port = await freePort();
  const dataDir = await mkdtemp(join(tmpdir(), 'chatter-bench-'));
  onCleanup(() => rm(dataDir, { recursive: true, force: true }));
  const child = spawn(process.execPath, ['--import', 'tsx', ...entry(port)], {
    cwd: root,
    env: {
      PATH: process.env['PATH'] ?? '',
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'warn',
      CHATTER_ENV: 'development',
      CHATTER_DATA_DIR: dataDir,
      CHATTER_INSTANCE_ID: `bench-${port}`,
      DEFAULT_PROVIDER: 'local',
      CHAT_RATE_LIMIT_PER_MINUTE: UNLIMITED_RATE,
      CHAT_STREAMING_RATE_LIMIT_PER_MINUTE: UNLIMITED_RATE,
      CHAT_RATE_LIMIT_PER_HOUR: UNLIMITED_RATE,
      // The SDK's default exports traces to localhost:4318; with nothing listening there,
      // export retries would load the server and hold up its shutdown.
      OTEL_TRACES_EXPORTER: 'none',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stopping: Promise<number | null> | undefined;
  const stop = (): Promise<number | null> => {
    stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    })();
    return stopping;
  };
  onCleanup(async () => {
    await stop();
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`server exited with ${child.exitCode}:\n${output}`);
    }
    try {
      const response = await fetch(`${baseUrl}/healthz`);
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      throw new Error(`server did not answer /healthz within ${timeoutMs} ms:\n${output}`);
    }
    await sleep(100);
  }
  return { baseUrl, child, output: () => output, stop };
};

export type BenchUser = { readonly id: string; readonly accessToken: string; readonly authorization: string };

/** Registers a user through the API (POST /api/v1/auth/register). */
export const registerUser = async (baseUrl: string, label = 'bench'): Promise<BenchUser> => {
  const username = `${label}_${ulid().toLowerCase().slice(-12)}`;
  const response = await fetch(`${baseUrl}/api/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: `${username}@example.com`, username, password: 'correct horse battery staple' }),
  });
  if (response.status !== 201) {
    throw new Error(`register failed: ${response.status} ${await response.text()}`);
  }
  const body = (await response.json()) as { access_token: string; user: { id: string } };
  return { id: body.user.id, accessToken: body.access_token, authorization: `Bearer ${body.access_token}` };
};

/** Waits until the server has no run in flight (GET /api/v1/workflows/executions/active). */
export const waitForNoActiveRuns = async (baseUrl: string, user: BenchUser, timeoutMs = 60_000): Promise<number> => {
  const deadline = Date.now() + timeoutMs;
  let requests = 0;
  for (;;) {
    requests += 1;
    const response = await fetch(`${baseUrl}/api/v1/workflows/executions/active`, { headers: { authorization: user.authorization } });
    const body = (await response.json()) as { count?: number };
    const active = body.count ?? -1;
    if (response.ok && active === 0) return requests;
    if (Date.now() > deadline) throw new Error(`runs still in flight after ${timeoutMs} ms`);
    await sleep(100);
  }
};

/** Conversations whose totals differ from the sums over their messages (invariant 3). */
export const mismatchedConversations = async (bench: BenchDatabase): Promise<{ checked: number; mismatched: number }> => {
  const row = (await bench.db.pool.one(sql.unsafe`
    WITH sums AS (
      SELECT c.id, c.message_count, c.total_tokens, c.total_cost,
             count(m.id)::int AS n, COALESCE(sum(m.total_tokens), 0)::bigint AS tokens, COALESCE(sum(m.cost), 0) AS cost
      FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id
      GROUP BY c.id)
    SELECT count(*)::int AS checked,
           count(*) FILTER (WHERE message_count <> n OR total_tokens <> tokens OR abs(total_cost - cost) > 1e-9)::int AS mismatched
    FROM sums`)) as { checked: number; mismatched: number };
  return row;
};
