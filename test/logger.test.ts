import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { ScriptedChatModel } from '../src/providers/scripted-chat-model.js';
import { createServices, type Services } from '../src/services.js';
import { registerUser, TEST_JWT_SECRET } from './helpers/api.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';

describe('log lines', () => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  let db: TestDatabase;
  let services: Services;
  let app: Awaited<ReturnType<typeof buildApp>>;
  beforeAll(async () => {
    db = await createTestDatabase();
    const config = loadConfig({ CHATTER_ENV: 'development', LOG_LEVEL: 'info', JWT_SECRET: TEST_JWT_SECRET });
    const logger = createLogger(config, sink);
    services = await createServices({
      config,
      db,
      logger,
      createChatModel: () => new ScriptedChatModel({ turns: [{ content: 'logged', usage: { input_tokens: 2, output_tokens: 1 } }] }),
    });
    app = await buildApp({ config, db, logger, services });
  });
  afterAll(async () => {
    await app.close();
    await services.close();
    await db.drop();
  });

  it('carry the correlation id, trace id and span id on every line of a request', async () => {
    const user = await registerUser(app);
    const response = await app.inject({
      method: 'POST',
      url: '/api/v1/workflows/execute/chat',
      headers: { ...user.auth, 'x-correlation-id': 'log-corr-42' },
      payload: { message: 'hello' },
    });
    expect(response.statusCode).toBe(200);
    const mine = lines.filter((line) => line['correlation_id'] === 'log-corr-42');
    expect(mine.length).toBeGreaterThanOrEqual(2);
    for (const line of mine) {
      expect(line['trace_id']).toMatch(/^[0-9a-f]{32}$/);
      expect(line['span_id']).toMatch(/^[0-9a-f]{16}$/);
    }
    expect(new Set(mine.map((line) => line['trace_id'])).size).toBe(1);
    expect(JSON.stringify(lines)).not.toContain(user.accessToken);
  });
});
