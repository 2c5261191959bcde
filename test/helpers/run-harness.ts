import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HumanMessage } from '@langchain/core/messages';
import { InMemorySpanExporter, type ReadableSpan, type SpanProcessor } from '@opentelemetry/sdk-trace';
import { sql } from 'slonik';
import { ulid } from 'ulid';
import { z } from 'zod';
import type { RunBudget } from '../../machines/workflow-run-types.js';
import { loadConfig, type Config } from '../../src/config.js';
import { openDatabase, type Database } from '../../src/db/database.js';
import { createLogger } from '../../src/logger.js';
import { ScriptedChatModel, type ScriptedTurn } from './scripted-chat-model.js';
import { beginTurn } from '../../src/repositories/turns-repository.js';
import type { RunHandle } from '../../src/runtime/run-runtime.js';
import { createServices, type Services } from '../../src/services.js';
import { withOtelEnv } from './otel-env.js';
import { createTestDatabase, type TestDatabase } from './database.js';
import { createConversation, createUser } from './fixtures.js';
import { GatedChatModel } from './gated-chat-model.js';

export type Harness = {
  /** The test database, reached directly (assertions, fixtures). */
  readonly db: TestDatabase;
  /** What the services and `startTurn` connect through: `db` unless `connectThrough` routes it elsewhere. */
  readonly serviceDb: Database;
  readonly services: Services;
  readonly exporter: InMemorySpanExporter;
  readonly config: Config;
  /**
   * Script the model of the runs started from now on (shared by every call of those
   * runs). With `gate`, each call waits for it before playing its turn.
   */
  script: (turns: ScriptedTurn[], options?: { gate?: Promise<void> }) => ScriptedChatModel;
  /** Saves a user message like the API does and starts a run for it. */
  startTurn: (options: TurnOptions) => Promise<RunHandle & { conversationId: string; userId: string }>;
  spans: () => ReadableSpan[];
  close: () => Promise<void>;
};

export type TurnOptions = {
  readonly userId?: string;
  readonly conversationId?: string;
  readonly message?: string;
  readonly workflow?: string;
  readonly provider?: string;
  readonly model?: string;
  readonly budget?: RunBudget;
  readonly streaming?: boolean;
  readonly onToken?: (text: string) => void;
  readonly correlationId?: string;
};

export type HarnessOptions = {
  processors?: SpanProcessor[];
  now?: () => number;
  /**
   * Use the real provider registry (API keys and base URLs from the config) instead of
   * the scripted model; `script` then throws.
   */
  realProviders?: boolean;
  /** Where the writer spools records (default: a fresh temporary directory); reuse one to play a restart. */
  spoolDir?: string;
  /** Run on this database instead of a fresh one; the harness then leaves it in place when it closes. */
  database?: TestDatabase;
  /**
   * Maps the test database's URL to the one the services connect to (e.g. a TCP proxy's),
   * so a test can cut their connections. The database itself is still created, queried
   * through `db` and dropped directly.
   */
  connectThrough?: (url: string) => string | Promise<string>;
};

// PGlite's socket server takes poolSize + 2 connections: room for the direct pool and a routed one.
const ROUTED_DATABASE_POOL_SIZE = 12;
const ROUTED_SERVICES_POOL_SIZE = 5;

/**
 * The real stack below the HTTP layer: a fresh database, the services (runtime,
 * span processors, writer) and an in-memory span exporter; only the chat model is
 * scripted (unless `realProviders`).
 */
export const createHarness = async (env: Record<string, string> = {}, extra: HarnessOptions = {}): Promise<Harness> => {
  const ownsDatabase = extra.database === undefined;
  const db = extra.database ?? (await createTestDatabase(extra.connectThrough === undefined ? undefined : ROUTED_DATABASE_POOL_SIZE));
  let serviceDb: Database = db;
  if (extra.connectThrough !== undefined) {
    const routed = await openDatabase({
      url: await extra.connectThrough(db.url),
      dataDir: 'memory://',
      poolSize: ROUTED_SERVICES_POOL_SIZE,
    });
    // Same server behind the route: keep its kind (PGlite owns every run it holds).
    serviceDb = { ...routed, kind: db.kind };
  }
  const config = loadConfig({
    CHATTER_ENV: 'test',
    LOG_LEVEL: 'silent',
    MODEL_RETRY_BASE_MS: '5',
    ...env,
  });
  const exporter = new InMemorySpanExporter();
  let model: ScriptedChatModel | undefined;
  const services = await withOtelEnv(env, async () =>
    createServices({
      config,
      db: serviceDb,
      logger: createLogger(config),
      exporters: [exporter],
      processors: extra.processors ?? [],
      spoolDir: extra.spoolDir ?? (await mkdtemp(join(tmpdir(), 'chatter-spool-'))),
      ...(extra.realProviders === true
        ? {}
        : {
            createChatModel: () => {
              if (model === undefined) {
                throw new Error('script the model first');
              }
              return model;
            },
          }),
      ...(extra.now === undefined ? {} : { now: extra.now }),
    }),
  );
  return {
    db,
    serviceDb,
    services,
    exporter,
    config,
    script: (turns, options = {}) => {
      if (extra.realProviders === true) {
        throw new Error('this harness calls the real providers: there is no model to script');
      }
      model =
        options.gate === undefined
          ? new ScriptedChatModel({ turns, model: 'gpt-4o-mini-2024-07-18' })
          : new GatedChatModel({ turns, model: 'gpt-4o-mini-2024-07-18', gate: options.gate });
      return model;
    },
    startTurn: async (options) => {
      const userId = options.userId ?? (await createUser(serviceDb.pool));
      const conversationId = options.conversationId ?? (await createConversation(serviceDb.pool, userId));
      const runId = ulid();
      const correlationId = options.correlationId ?? ulid();
      const content = options.message ?? 'What is 2 + 2?';
      const workflow = options.workflow ?? 'chat';
      const provider = options.provider ?? 'openai';
      const model = options.model ?? 'gpt-4o-mini';
      const release = services.runtime.reserve(conversationId, runId);
      const turn = await beginTurn(serviceDb.pool, {
        conversationId,
        userId,
        content,
        runId,
        workflow,
        provider,
        model,
        correlationId,
        instanceId: services.instanceId,
      }).catch((error: unknown) => {
        release();
        throw error;
      });
      const handle = services.runtime.start({
        runId,
        userId,
        conversationId,
        correlationId,
        workflow,
        provider,
        model,
        messages: [new HumanMessage(content)],
        budget: options.budget ?? { tokensRemaining: null, costRemainingUsd: null },
        userMessageId: turn.userMessageId,
        assistantMessageId: ulid(),
        streaming: options.streaming ?? false,
        onToken: options.onToken,
      });
      return { ...handle, conversationId, userId };
    },
    spans: () => exporter.getFinishedSpans(),
    close: async () => {
      await services.runtime.shutdown(1_000);
      await services.close();
      if (serviceDb !== db) {
        await serviceDb.close();
      }
      if (ownsDatabase) {
        await db.drop();
      }
    },
  };
};

const Totals = z.object({
  message_count: z.number(),
  total_tokens: z.number(),
  total_cost: z.number(),
  sum_count: z.number(),
  sum_tokens: z.number(),
  sum_cost: z.number(),
});

/** A conversation's stored totals next to the sums over its messages. */
export const conversationTotals = async (db: TestDatabase, conversationId: string) =>
  db.pool.one(sql.type(Totals)`
    SELECT c.message_count, c.total_tokens, c.total_cost,
           (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) AS sum_count,
           (SELECT COALESCE(sum(total_tokens), 0) FROM messages m WHERE m.conversation_id = c.id) AS sum_tokens,
           (SELECT COALESCE(sum(cost), 0) FROM messages m WHERE m.conversation_id = c.id) AS sum_cost
    FROM conversations c WHERE c.id = ${conversationId}`);
