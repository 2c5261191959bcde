import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

describe('health routes', () => {
  let db: TestDatabase;
  let app: FastifyInstance;
  beforeAll(async () => {
    db = await createTestDatabase();
    const config = loadConfig({ CHATTER_ENV: 'test', LOG_LEVEL: 'silent' });
    app = await buildApp({ config, db, logger: createLogger(config) });
  });
  afterAll(async () => {
    await app.close();
    await db.drop();
  });

  it('answers /healthz with the contract body', async () => {
    const response = await app.inject({ method: 'GET', url: '/healthz' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'healthy', service: 'chatter', version: expect.any(String), environment: 'test' });
  });

  it('answers /live without touching dependencies', async () => {
    const response = await app.inject({ method: 'GET', url: '/live' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ status: 'alive' });
  });

  it('reports ready with a database check', async () => {
    const response = await app.inject({ method: 'GET', url: '/readyz' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({
      status: 'ready',
      checks: { database: { status: 'healthy', kind: db.kind } },
    });
  });

  it('answers unknown paths with 404 and no internals', async () => {
    const response = await app.inject({ method: 'GET', url: '/does-not-exist' });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toEqual({ detail: 'Not Found' });
  });

  it('reports not_ready with 503 once the database is gone', async () => {
    await db.close();
    const response = await app.inject({ method: 'GET', url: '/readyz' });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toMatchObject({ status: 'not_ready', checks: { database: { status: 'unhealthy' } } });
    expect(response.body).not.toMatch(/at .*\.ts:\d+/);
  });
});
