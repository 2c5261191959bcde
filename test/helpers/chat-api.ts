import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { ScriptedChatModel, type ScriptedTurn } from './scripted-chat-model.js';
import type { ChatModelRequest } from '../../src/providers/provider-registry.js';
import { createServices, type Services } from '../../src/services.js';
import { TEST_JWT_SECRET } from './api.js';
import { withOtelEnv } from './otel-env.js';
import { createTestDatabase, type TestDatabase } from './database.js';

export type ChatApi = {
  readonly app: FastifyInstance;
  readonly db: TestDatabase;
  readonly config: Config;
  readonly services: Services;
  readonly exporter: InMemorySpanExporter;
  /** What the runtime asked the model factory for, one entry per run (provider, model, temperature, maxTokens). */
  readonly modelRequests: ChatModelRequest[];
  /** Scripts the model of the next runs (shared by all calls until scripted again). */
  readonly script: (turns: ScriptedTurn[]) => ScriptedChatModel;
  readonly close: () => Promise<void>;
};

/**
 * The whole service as `npm start` builds it (app, runtime, span processors, writer)
 * on a fresh database, with the chat model scripted and an in-memory span exporter.
 */
export const createChatApi = async (env: Record<string, string> = {}): Promise<ChatApi> => {
  const db = await createTestDatabase();
  const config = loadConfig({ CHATTER_ENV: 'test', LOG_LEVEL: 'silent', JWT_SECRET: TEST_JWT_SECRET, ...env });
  const logger = createLogger(config);
  const exporter = new InMemorySpanExporter();
  let model: ScriptedChatModel | undefined;
  const modelRequests: ChatModelRequest[] = [];
  const services = await withOtelEnv(env, async () =>
    createServices({
      config,
      db,
      logger,
      exporters: [exporter],
      spoolDir: await mkdtemp(join(tmpdir(), 'chatter-spool-')),
      createChatModel: (request) => {
        modelRequests.push({ ...request });
        if (model === undefined) {
          throw new Error('script the model first');
        }
        return model;
      },
    }),
  );
  const app = await buildApp({ config, db, logger, services });
  return {
    app,
    db,
    config,
    services,
    exporter,
    modelRequests,
    script: (turns) => {
      model = new ScriptedChatModel({ turns, model: 'gpt-4o-mini-2024-07-18' });
      return model;
    },
    close: async () => {
      await app.close();
      await services.runtime.shutdown(1_000);
      await services.close();
      await db.drop();
    },
  };
};

/** Parses a Server-Sent Events body into its `data:` payloads (comments and other fields skipped). */
export const sseData = (body: string): unknown[] =>
  body
    .split('\n\n')
    .map((block) => block.split('\n').find((line) => line.startsWith('data: ')))
    .filter((line): line is string => line !== undefined)
    .map((line) => {
      const data = line.slice('data: '.length);
      return data === '[DONE]' ? data : (JSON.parse(data) as unknown);
    });
