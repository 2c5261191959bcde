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
import { createLogger } from '../../src/logger.js';
import { ScriptedChatModel, type ScriptedTurn } from '../../src/providers/scripted-chat-model.js';
import { beginTurn } from '../../src/repositories/turns-repository.js';
import type { RunHandle } from '../../src/runtime/run-runtime.js';
import { createServices, type Services } from '../../src/services.js';
import { createTestDatabase, type TestDatabase } from './database.js';
import { createConversation, createUser } from './fixtures.js';

export type Harness = {
  readonly db: TestDatabase;
  readonly services: Services;
  readonly exporter: InMemorySpanExporter;
  readonly config: Config;
  /** Script the next run's model (shared by every call of that run). */
  script: (turns: ScriptedTurn[]) => ScriptedChatModel;
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

/**
 * The real stack below the HTTP layer: a fresh database, the services (runtime,
 * span processors, writer) and an in-memory span exporter; only the chat model is
 * scripted.
 */
export const createHarness = async (
  env: Record<string, string> = {},
  extra: { processors?: SpanProcessor[]; now?: () => number } = {},
): Promise<Harness> => {
  const db = await createTestDatabase();
  const config = loadConfig({
    CHATTER_ENV: 'test',
    LOG_LEVEL: 'silent',
    MODEL_RETRY_BASE_MS: '5',
    ...env,
  });
  const exporter = new InMemorySpanExporter();
  let model: ScriptedChatModel | undefined;
  const services = await createServices({
    config,
    db,
    logger: createLogger(config),
    exporters: [exporter],
    processors: extra.processors ?? [],
    spoolDir: await mkdtemp(join(tmpdir(), 'chatter-spool-')),
    createChatModel: () => {
      if (model === undefined) {
        throw new Error('script the model first');
      }
      return model;
    },
    ...(extra.now === undefined ? {} : { now: extra.now }),
  });
  return {
    db,
    services,
    exporter,
    config,
    script: (turns) => {
      model = new ScriptedChatModel({ turns, model: 'gpt-4o-mini-2024-07-18' });
      return model;
    },
    startTurn: async (options) => {
      const userId = options.userId ?? (await createUser(db.pool));
      const conversationId = options.conversationId ?? (await createConversation(db.pool, userId));
      const runId = ulid();
      const correlationId = options.correlationId ?? ulid();
      const content = options.message ?? 'What is 2 + 2?';
      const workflow = options.workflow ?? 'chat';
      const provider = options.provider ?? 'openai';
      const model = options.model ?? 'gpt-4o-mini';
      const release = services.runtime.reserve(conversationId, runId);
      const turn = await beginTurn(db.pool, {
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
      await db.drop();
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
