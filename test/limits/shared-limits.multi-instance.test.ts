import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ulid } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_JWT_SECRET } from '../helpers/api.js';
import { createServerDatabase, postgresServerAvailability, type ServerDatabase } from '../helpers/postgres-server.js';
import { redisAvailability } from '../helpers/redis.js';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.js';

const postgres = await postgresServerAvailability();
const redis = await redisAvailability();

const LIMITS = {
  CHAT_RATE_LIMIT_PER_MINUTE: '4',
  CHAT_STREAMING_RATE_LIMIT_PER_MINUTE: '4',
  LOGIN_MAX_FAILURES_PER_IP: '6',
  REGISTER_MAX_PER_EMAIL: '2',
  STREAM_LEASE_TTL_SECONDS: '3',
};

const post = async (server: ServerProcess, path: string, body: unknown, token?: string) => {
  const response = await fetch(`${server.baseUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
    body: JSON.stringify(body),
  });
  await response.arrayBuffer();
  return response;
};

/** Opens a stream and answers its status; the connection stays open until `close`. */
const openStream = (server: ServerProcess, path: string, token: string) =>
  new Promise<{ status: number; close: () => void }>((resolve, reject) => {
    const req = httpRequest(`${server.baseUrl}${path}`, { headers: { authorization: `Bearer ${token}` } });
    req.on('response', (response) => {
      response.resume();
      resolve({ status: response.statusCode ?? 0, close: () => req.destroy() });
    });
    req.on('error', (error) => (error.message.includes('socket hang up') ? undefined : reject(error)));
    req.end();
  });

const eventually = async (check: () => Promise<boolean>, timeoutMs: number): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
};

/**
 * Three real server processes on one PostgreSQL database: each limit holds once for the
 * whole fleet, not once per instance, counted in PostgreSQL and (second run) in Redis.
 */
describe.each([
  { store: 'postgres', skip: postgres.adminUrl === undefined ? postgres.reason : undefined },
  {
    store: 'redis',
    skip: postgres.adminUrl === undefined ? postgres.reason : redis.url === undefined ? redis.reason : undefined,
  },
])('limits shared by 3 instances ($store)', ({ store, skip }) => {
  let database: ServerDatabase | undefined;
  const servers: ServerProcess[] = [];
  const dataDirs: string[] = [];
  let token = '';

  beforeAll(async () => {
    if (skip !== undefined) return;
    database = await createServerDatabase(postgres.adminUrl ?? '');
    const shared = {
      DATABASE_URL: database.url,
      JWT_SECRET: TEST_JWT_SECRET,
      CHATTER_ENV: 'test',
      LOCAL_MODEL_LATENCY_MS: '0',
      ...LIMITS,
      ...(store === 'redis' ? { REDIS_URL: redis.url ?? '', REDIS_KEY_PREFIX: `test:${ulid()}:` } : {}),
    };
    // One first (it migrates), then the other two together.
    for (const batch of [[0], [1, 2]]) {
      await Promise.all(
        batch.map(async (index) => {
          const dataDir = await mkdtemp(join(tmpdir(), `chatter-limits-${index}-`));
          dataDirs.push(dataDir);
          servers[index] = await startServerProcess({ ...shared, CHATTER_DATA_DIR: dataDir, CHATTER_INSTANCE_ID: `limits-${store}-${index}` }, { timeoutMs: 90_000 });
        }),
      );
    }
    const registered = await fetch(`${servers[0]?.baseUrl}/api/v1/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'fleet@example.com', username: 'fleet_user', password: 'correct horse battery staple' }),
    });
    expect(registered.status).toBe(201);
    token = (await registered.json() as { access_token: string }).access_token;
  }, 240_000);

  afterAll(async () => {
    await Promise.all(servers.map((server) => server.stop('SIGKILL')));
    await database?.drop();
    await Promise.all(dataDirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  const at = (index: number): ServerProcess => {
    const server = servers[index % servers.length];
    if (server === undefined) throw new Error('no server');
    return server;
  };

  it.skipIf(skip !== undefined)('allows the chat limit once across instances: 4 of 9 chats sent round-robin', async () => {
    const statuses: number[] = [];
    for (let index = 0; index < 9; index += 1) {
      statuses.push((await post(at(index), '/api/v1/workflows/execute/chat', { message: `hello ${index}` }, token)).status);
    }
    expect(statuses.filter((status) => status === 200)).toHaveLength(4);
    expect(statuses.filter((status) => status === 429)).toHaveLength(5);
  }, 60_000);

  it.skipIf(skip !== undefined)('caps event and analytics streams per user across instances; a closed stream frees its slot everywhere', async () => {
    const streams = [];
    for (let index = 0; index < 5; index += 1) {
      const stream = await openStream(at(index), '/api/v1/events/stream', token);
      expect(stream.status, `stream ${index}`).toBe(200);
      streams.push(stream);
    }
    for (let index = 0; index < 3; index += 1) {
      const refused = await openStream(at(index), '/api/v1/events/stream', token);
      expect(refused.status).toBe(429);
      refused.close();
    }
    // Closing one on instance 0 frees a slot for instance 2.
    streams[0]?.close();
    await eventually(async () => {
      const next = await openStream(at(2), '/api/v1/events/stream', token);
      if (next.status === 200) streams.push(next);
      else next.close();
      return next.status === 200;
    }, 5_000);
    // The analytics live feed has its own cap of 5, counted the same way.
    const feeds = [];
    for (let index = 0; index < 5; index += 1) feeds.push(await openStream(at(index), '/api/v1/analytics/stream', token));
    expect(feeds.map((feed) => feed.status)).toEqual([200, 200, 200, 200, 200]);
    const sixth = await openStream(at(1), '/api/v1/analytics/stream', token);
    expect(sixth.status).toBe(429);
    sixth.close();
    for (const feed of feeds) feed.close();
    for (const stream of streams) stream.close();
  }, 60_000);

  it.skipIf(skip !== undefined)('throttles failed logins per address and registrations per email across instances', async () => {
    const logins: number[] = [];
    for (let index = 0; index < 8; index += 1) {
      logins.push((await post(at(index), '/api/v1/auth/login', { username: `nobody_${index}`, password: 'not a password' })).status);
    }
    expect(logins).toEqual([401, 401, 401, 401, 401, 401, 429, 429]);
    const registrations: number[] = [];
    for (let index = 0; index < 4; index += 1) {
      registrations.push(
        (await post(at(index), '/api/v1/auth/register', { email: 'probe@example.com', username: `probe_${index}`, password: 'correct horse battery staple' })).status,
      );
    }
    expect(registrations).toEqual([201, 409, 429, 429]);
  }, 60_000);

  it.skipIf(skip !== undefined)('gives back the stream slots of a killed instance once its leases lapse', async () => {
    const held = [];
    for (let index = 0; index < 5; index += 1) held.push(await openStream(at(0), '/api/v1/events/stream', token));
    expect(held.map((stream) => stream.status)).toEqual([200, 200, 200, 200, 200]);
    expect((await openStream(at(1), '/api/v1/events/stream', token)).status).toBe(429);
    await at(0).stop('SIGKILL');
    // STREAM_LEASE_TTL_SECONDS=3: the slots come back without the dead instance's help.
    await eventually(async () => {
      const next = await openStream(at(1), '/api/v1/events/stream', token);
      next.close();
      return next.status === 200;
    }, 10_000);
    for (const stream of held) stream.close();
  }, 60_000);
});
