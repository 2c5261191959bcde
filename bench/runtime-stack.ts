import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { cpus, loadavg, platform, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { HumanMessage } from '@langchain/core/messages';
import { createPool, sql, type DatabasePool } from 'slonik';
import { ulid } from 'ulid';
import { z } from 'zod';
import { loadConfig, type Config } from '../src/config.js';
import { openDatabase, type Database } from '../src/db/database.js';
import { loadMigrations, migrate } from '../src/db/migrations.js';
import { createLogger } from '../src/logger.js';
import { beginTurn } from '../src/repositories/turns-repository.js';
import type { ChatModelFactory, RunHandle, RunRequest } from '../src/runtime/run-runtime.js';
import { createServices, type Services } from '../src/services.js';

/**
 * Shared by bench/overhead.ts and bench/concurrency.ts: a fresh PostgreSQL database
 * with every migration, the production services on it (runtime, span processors,
 * writer) with a scripted model, and the turn flow the chat routes use below HTTP.
 */

export const DEFAULT_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
export const BENCH_PROVIDER = 'openai';
export const BENCH_MODEL = 'gpt-4o-mini';
/** What the scripted model reports as the response model (a priced one). */
export const BENCH_RESPONSE_MODEL = 'gpt-4o-mini-2024-07-18';
export const BENCH_PROMPT = 'What is 2 + 2? Answer in one short sentence.';
export const BENCH_REPLY = 'Two plus two is four, the sum of two and two, as simple arithmetic shows.';
/** Usage shaped like OpenAI's: cached tokens inside input_tokens. */
export const BENCH_USAGE = {
  input_tokens: 28,
  output_tokens: 16,
  total_tokens: 44,
  input_token_details: { cache_read: 0 },
  output_token_details: { reasoning: 0 },
};

export type MachineInfo = {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly os: string;
  readonly node: string;
  readonly database: string;
};

export const machineInfo = async (pool: DatabasePool): Promise<MachineInfo> => {
  const version = await pool.oneFirst(sql.type(z.object({ version: z.string() }))`SELECT version() AS version`);
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${platform()} ${release()}`,
    node: process.version,
    database: version.split(' on ')[0] ?? version,
  };
};

/** The machine, with the load average now (figures on a shared machine move with it). */
export const describeMachine = (machine: MachineInfo): string =>
  `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.os}, Node ${machine.node}, ${machine.database}; ` +
  `load average ${loadavg()
    .map((load) => load.toFixed(2))
    .join(' ')}`;

export type BenchStack = {
  readonly config: Config;
  readonly db: Database;
  readonly services: Services;
  readonly databaseName: string;
  readonly machine: MachineInfo;
  /** Stops the services, closes the pool, drops the database, removes the spool dir. Idempotent. */
  readonly close: () => Promise<void>;
};

export type BenchStackOptions = {
  readonly adminUrl: string;
  /** Part of the database name: chatter_bench_<label>_<ulid>. */
  readonly label: string;
  readonly createChatModel: ChatModelFactory;
  /** Extra configuration variables (as the environment would give them). */
  readonly env?: Record<string, string>;
};

const withDatabaseName = (url: string, name: string): string => {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
};

const withAdmin = async (adminUrl: string, work: (pool: DatabasePool) => Promise<unknown>): Promise<void> => {
  const admin = await createPool(adminUrl, { maxPoolSize: 1 });
  try {
    await work(admin);
  } finally {
    await admin.end();
  }
};

/**
 * The production stack below HTTP on a fresh database: createServices with every span
 * processor (database writer, metrics, analytics), configured by loadConfig from
 * defaults plus `env` (as the server would be), logging warnings and errors only.
 */
export const createBenchStack = async (options: BenchStackOptions): Promise<BenchStack> => {
  const databaseName = `chatter_bench_${options.label}_${ulid().toLowerCase()}`;
  const url = withDatabaseName(options.adminUrl, databaseName);
  const config = loadConfig({ LOG_LEVEL: 'warn', ...options.env, DATABASE_URL: url });
  await withAdmin(options.adminUrl, (admin) => admin.query(sql.unsafe`CREATE DATABASE ${sql.identifier([databaseName])}`));
  let db: Database | undefined;
  let services: Services | undefined;
  let spoolDir: string | undefined;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      try {
        if (services !== undefined) {
          await services.runtime.shutdown(5_000);
          await services.close();
        }
      } finally {
        await db?.close();
        await withAdmin(options.adminUrl, (admin) =>
          admin.query(sql.unsafe`DROP DATABASE IF EXISTS ${sql.identifier([databaseName])} WITH (FORCE)`),
        );
        if (spoolDir !== undefined) {
          await rm(spoolDir, { recursive: true, force: true });
        }
      }
    })();
    return closing;
  };
  try {
    db = await openDatabase({
      url,
      dataDir: 'memory://',
      poolSize: config.database.poolSize,
      statementTimeoutMs: config.database.statementTimeoutMs,
      acquireTimeoutMs: config.database.acquireTimeoutMs,
    });
    await migrate(db.pool, await loadMigrations());
    spoolDir = await mkdtemp(join(tmpdir(), 'chatter-bench-spool-'));
    // The telemetry SDK reads OTEL_* from the process environment; its default exports
    // traces to localhost:4318, whose retries would load the benchmark and delay close.
    process.env['OTEL_TRACES_EXPORTER'] ??= 'none';
    services = await createServices({
      config,
      db,
      logger: createLogger(config),
      spoolDir,
      createChatModel: options.createChatModel,
    });
    const machine = await machineInfo(db.pool);
    return { config, db, services, databaseName, machine, close };
  } catch (error) {
    await close();
    throw error;
  }
};

export type Owner = { readonly userId: string; readonly conversationId: string };

/**
 * `count` users with one conversation each (a run needs a conversation of its own
 * while it is in flight), inserted in a few statements.
 */
export const createOwners = async (pool: DatabasePool, count: number): Promise<Owner[]> => {
  const owners: Owner[] = Array.from({ length: count }, () => ({ userId: ulid(), conversationId: ulid() }));
  const batch = 2_000;
  for (let index = 0; index < owners.length; index += batch) {
    const slice = owners.slice(index, index + batch);
    const userIds = slice.map((owner) => owner.userId);
    await pool.query(sql.unsafe`
      INSERT INTO users (id, email, username, password_hash)
      SELECT id, lower(id) || '@bench.example', 'bench_' || lower(id), 'not-a-real-hash'
      FROM unnest(${sql.array(userIds, 'text')}::text[]) AS t(id)`);
    await pool.query(sql.unsafe`
      INSERT INTO conversations (id, user_id, title)
      SELECT c, u, 'bench' FROM unnest(${sql.array(
        slice.map((owner) => owner.conversationId),
        'text',
      )}::text[], ${sql.array(userIds, 'text')}::text[]) AS t(c, u)`);
  }
  return owners;
};

export type TurnOptions = {
  readonly streaming?: boolean;
  readonly onToken?: (text: string) => void;
  readonly content?: string;
};

/**
 * What the chat route does before it starts a run: holds the conversation, saves the
 * user's message and the run's `running` row (beginTurn). Returns the run request,
 * ready for `runtime.start`.
 */
export const beginBenchTurn = async (stack: BenchStack, owner: Owner, options: TurnOptions = {}): Promise<RunRequest> => {
  const runId = ulid();
  const correlationId = ulid();
  const content = options.content ?? BENCH_PROMPT;
  const workflow = 'chat';
  const { runtime, instanceId } = stack.services;
  const release = runtime.reserve(owner.conversationId, runId);
  try {
    const turn = await beginTurn(stack.db.pool, {
      conversationId: owner.conversationId,
      userId: owner.userId,
      content,
      runId,
      workflow,
      provider: BENCH_PROVIDER,
      model: BENCH_MODEL,
      correlationId,
      instanceId,
    });
    return {
      runId,
      userId: owner.userId,
      conversationId: owner.conversationId,
      correlationId,
      workflow,
      provider: BENCH_PROVIDER,
      model: BENCH_MODEL,
      messages: [new HumanMessage(content)],
      budget: { tokensRemaining: null, costRemainingUsd: null },
      userMessageId: turn.userMessageId,
      assistantMessageId: ulid(),
      streaming: options.streaming ?? false,
      onToken: options.onToken,
    };
  } catch (error) {
    release();
    throw error;
  }
};

export const startBenchTurn = (stack: BenchStack, request: RunRequest): RunHandle => stack.services.runtime.start(request);

/** A run that did not complete, or whose records are not committed to the database. */
export class BenchRunError extends Error {
  public override readonly name = 'BenchRunError';
}

/** Starts the run and waits for its outcome; throws unless it completed with its records committed. */
export const runToDurable = async (stack: BenchStack, request: RunRequest): Promise<void> => {
  const outcome = await startBenchTurn(stack, request).done;
  if (outcome.status !== 'completed' || outcome.durable !== 'database') {
    throw new BenchRunError(`run ${outcome.runId}: status ${outcome.status}, durable ${outcome.durable} (${outcome.error ?? 'no error'})`);
  }
};

/** The median (NaN for none); shared with bench/http-support.ts. */
export { median } from './http-support.js';

export const round = (value: number, digits = 1): number => {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
};

/**
 * Runs `main` with the bench conventions: exit 0 when it returns true (target met),
 * 1 when false, 2 when it throws; `cleanup` runs on every path, SIGINT/SIGTERM included.
 */
export const runBench = (main: () => Promise<boolean>, cleanup: () => Promise<void>): void => {
  let exiting = false;
  const exit = async (code: number): Promise<never> => {
    if (!exiting) {
      exiting = true;
      try {
        await cleanup();
      } catch (error) {
        console.error('cleanup failed:', error);
        code = 2;
      }
    }
    process.exit(code);
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`${signal}: cleaning up`);
      void exit(2);
    });
  }
  main().then(
    (met) => exit(met ? 0 : 1),
    (error: unknown) => {
      console.error('benchmark failed:', error);
      return exit(2);
    },
  );
};

export type PhaseProfiler = {
  /** Runs `work` under the V8 CPU profiler (when a directory was given), saving `<dir>/<name>.cpuprofile`. */
  readonly profile: <T>(name: string, work: () => Promise<T>) => Promise<T>;
  readonly close: () => Promise<void>;
};

/** CPU profiles of single phases (open them in Chrome DevTools); a no-op without a directory. */
export const createPhaseProfiler = async (directory: string | undefined): Promise<PhaseProfiler> => {
  if (directory === undefined) {
    return { profile: (_name, work) => work(), close: async () => {} };
  }
  await mkdir(directory, { recursive: true });
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  return {
    profile: async (name, work) => {
      await session.post('Profiler.start');
      try {
        return await work();
      } finally {
        const { profile } = await session.post('Profiler.stop');
        await writeFile(join(directory, `${name}.cpuprofile`), JSON.stringify(profile));
      }
    },
    close: async () => {
      await session.post('Profiler.disable');
      session.disconnect();
    },
  };
};
