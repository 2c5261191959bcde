import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApp } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import { openDatabase, type Database, type DatabaseOptions } from '../../src/db/database.js';
import { createLogger } from '../../src/logger.js';
import { ScriptedChatModel, type ScriptedTurn } from './scripted-chat-model.js';
import { createServices, type Services } from '../../src/services.js';
import { createTcpProxy, targetOf, type TcpProxy } from '../otel/helpers/tcp-proxy.js';
import { registerUser, TEST_JWT_SECRET, type RegisteredUser } from './api.js';
import { createTestDatabase, type TestDatabase } from './database.js';

/** The real services and app on one database, a registered user, and the chats it sends. */
export type Stack = {
  readonly config: Config;
  readonly services: Services;
  readonly app: FastifyInstance;
  readonly user: RegisteredUser;
  /** `POST /api/v1/workflows/execute/chat` as `user`. */
  readonly chat: (message: string) => Promise<LightMyRequestResponse>;
  /** Resolves once `count` runs are active, or after 10 s: the caller asserts the count. */
  readonly untilActive: (count: number) => Promise<void>;
  readonly close: () => Promise<void>;
};

export type StackOptions = {
  /** What the model answers in every run. */
  readonly reply: ScriptedTurn;
  /** Where the writer spools records; a fresh folder (removed by `close`) unless given. */
  readonly spoolDir?: string;
  /** Added to the test config's environment (CHATTER_ENV=test, LOG_LEVEL=silent, chat limits out of the way). */
  readonly env?: Record<string, string>;
};

/** The real services and app on `db` (no HTTP listener: driven with `app.inject`), every run answered by `reply`. */
export const startStack = async (db: Database, { reply, spoolDir, env = {} }: StackOptions): Promise<Stack> => {
  const config = loadConfig({
    CHATTER_ENV: 'test',
    LOG_LEVEL: 'silent',
    JWT_SECRET: TEST_JWT_SECRET,
    CHAT_RATE_LIMIT_PER_MINUTE: '10000',
    CHAT_RATE_LIMIT_PER_HOUR: '10000',
    ...env,
  });
  const logger = createLogger(config);
  const ownSpool = spoolDir === undefined ? await mkdtemp(join(tmpdir(), 'chatter-stack-spool-')) : undefined;
  const services = await createServices({
    config,
    db,
    logger,
    spoolDir: spoolDir ?? ownSpool,
    createChatModel: () => new ScriptedChatModel({ turns: [reply] }),
  });
  const app = await buildApp({ config, db, logger, services });
  const user = await registerUser(app);
  return {
    config,
    services,
    app,
    user,
    chat: (message) => app.inject({ method: 'POST', url: '/api/v1/workflows/execute/chat', headers: user.auth, payload: { message } }),
    untilActive: async (count) => {
      const deadline = Date.now() + 10_000;
      while (services.runtime.active().length < count && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    close: async () => {
      await app.close();
      await services.runtime.shutdown(1_000);
      await services.close();
      if (ownSpool !== undefined) await rm(ownSpool, { recursive: true, force: true });
    },
  };
};

export type ProxiedStack = Stack & {
  /** The fresh test database, reached directly (assertions, fixtures). */
  readonly direct: TestDatabase;
  /** Between the stack and `direct`: cut or silence it to play an outage or a partition. */
  readonly proxy: TcpProxy;
};

type PoolOptions = Pick<DatabaseOptions, 'poolSize' | 'statementTimeoutMs' | 'acquireTimeoutMs'>;

/**
 * A fresh test database behind a real TCP proxy, and the stack on it through the proxy
 * (a pool of `pool`, which may depend on the database's kind). `close` mends the link first.
 */
export const startProxiedStack = async (
  options: StackOptions & { readonly pool: PoolOptions | ((direct: TestDatabase) => PoolOptions) },
): Promise<ProxiedStack> => {
  const direct = await createTestDatabase();
  let proxy: TcpProxy | undefined;
  let viaProxy: Database | undefined;
  try {
    proxy = await createTcpProxy(targetOf(direct.url));
    viaProxy = await openDatabase({
      url: proxy.urlThrough(direct.url),
      dataDir: 'memory://',
      ...(typeof options.pool === 'function' ? options.pool(direct) : options.pool),
    });
    const stack = await startStack(viaProxy, options);
    const [link, connection] = [proxy, viaProxy];
    return {
      ...stack,
      direct,
      proxy: link,
      close: async () => {
        link.setDown(false);
        link.setBlackholed(false);
        await stack.close();
        await connection.close();
        await link.close();
        await direct.drop();
      },
    };
  } catch (error) {
    await viaProxy?.close();
    await proxy?.close();
    await direct.drop();
    throw error;
  }
};
