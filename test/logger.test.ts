import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { ScriptedChatModel } from './helpers/scripted-chat-model.js';
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
    // debug: the probes' lines are written too, so the test sees their level rather than nothing.
    const config = loadConfig({ CHATTER_ENV: 'development', LOG_LEVEL: 'debug', JWT_SECRET: TEST_JWT_SECRET });
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

  it('log health, readiness and metrics probes at debug only, and other requests once at info with their correlation id', async () => {
    const INFO = 30;
    const DEBUG = 20;
    const probes = ['/healthz', '/live', '/readyz', '/metrics'];
    for (const [index, url] of probes.entries()) {
      const response = await app.inject({ method: 'GET', url, headers: { 'x-correlation-id': `probe-${index}` } });
      expect(response.statusCode, url).toBe(200);
    }
    const user = await registerUser(app);
    const me = await app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { ...user.auth, 'x-correlation-id': 'me-corr-7' } });
    expect(me.statusCode).toBe(200);
    const missing = await app.inject({ method: 'GET', url: '/api/v1/nowhere', headers: { 'x-correlation-id': 'missing-corr-8' } });
    expect(missing.statusCode).toBe(404);

    for (const index of probes.keys()) {
      const mine = lines.filter((line) => line['correlation_id'] === `probe-${index}`);
      expect(mine.length, probes[index]).toBeGreaterThan(0);
      expect(
        mine.filter((line) => (line['level'] as number) >= INFO),
        probes[index],
      ).toEqual([]);
      expect(mine.map((line) => line['msg'])).toContain('request completed');
    }
    for (const id of ['me-corr-7', 'missing-corr-8']) {
      const infoLines = lines.filter((line) => line['correlation_id'] === id && (line['level'] as number) >= INFO);
      expect(
        infoLines.map((line) => line['msg']),
        id,
      ).toEqual(['request completed']);
      expect(infoLines[0]?.['level']).toBe(INFO);
      expect(infoLines[0]?.['req']).toMatchObject({ method: 'GET' });
      expect(infoLines[0]?.['res']).toMatchObject({ statusCode: id === 'me-corr-7' ? 200 : 404 });
      const incoming = lines.find((line) => line['correlation_id'] === id && line['msg'] === 'incoming request');
      expect(incoming?.['level']).toBe(DEBUG);
    }
  });
});
