import { request as httpRequest } from 'node:http';
import { ulid } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPostgresServer, requirePostgres, startInstances, type Instance, type Instances } from '../helpers/instances.js';
import { redisAvailability } from '../helpers/redis.js';
import { waitUntil } from '../helpers/wait.js';

const postgres = await findPostgresServer();
const postgresSkip = requirePostgres(postgres, 'the shared-limits tests') ? undefined : postgres.reason;
const redis = await redisAvailability();
const redisSkip = postgresSkip ?? (redis.url === undefined ? redis.reason : undefined);
if (postgresSkip === undefined && redisSkip !== undefined) console.warn(`skipping the shared-limits tests on Redis: ${redisSkip}`);

const LIMITS = {
  CHAT_RATE_LIMIT_PER_MINUTE: '4',
  CHAT_STREAMING_RATE_LIMIT_PER_MINUTE: '4',
  LOGIN_MAX_FAILURES_PER_IP: '6',
  REGISTER_MAX_PER_EMAIL: '2',
  STREAM_LEASE_TTL_SECONDS: '3',
};

/** Opens a stream and answers its status; the connection stays open until `close`. */
const openStream = (server: Instance, path: string, token: string) =>
  new Promise<{ status: number; close: () => void }>((resolve, reject) => {
    const req = httpRequest(`${server.baseUrl}${path}`, { headers: { authorization: `Bearer ${token}` } });
    req.on('response', (response) => {
      response.resume();
      resolve({ status: response.statusCode ?? 0, close: () => req.destroy() });
    });
    req.on('error', (error) => (error.message.includes('socket hang up') ? undefined : reject(error)));
    req.end();
  });

/**
 * Three real server processes on one PostgreSQL database: each limit holds once for the
 * whole fleet, not once per instance, counted in PostgreSQL and (second run) in Redis.
 */
describe.each([
  { store: 'postgres', skip: postgresSkip },
  { store: 'redis', skip: redisSkip },
])('limits shared by 3 instances ($store)', ({ store, skip }) => {
  let cluster: Instances | undefined;
  let token = '';

  beforeAll(async () => {
    if (skip !== undefined) return;
    cluster = await startInstances(postgres as { url: string }, {
      count: 3,
      env: {
        LOCAL_MODEL_LATENCY_MS: '0',
        ...LIMITS,
        ...(store === 'redis' ? { REDIS_URL: redis.url ?? '', REDIS_KEY_PREFIX: `test:${ulid()}:` } : {}),
      },
    });
    token = (await cluster.register(at(0))).token;
  }, 240_000);

  afterAll(async () => {
    await cluster?.close();
  });

  const at = (index: number): Instance => {
    const instances = cluster?.instances ?? [];
    const instance = instances[index % instances.length];
    if (instance === undefined) throw new Error('no instance');
    return instance;
  };
  const post = (instance: Instance, path: string, body: unknown) => cluster!.request(instance, 'POST', path, { body });

  it.skipIf(skip !== undefined)(
    'allows the chat limit once across instances: 4 of 9 chats sent round-robin',
    async () => {
      const statuses: number[] = [];
      for (let index = 0; index < 9; index += 1) {
        statuses.push((await cluster!.chat(at(index), { token }, { message: `hello ${index}` })).status);
      }
      expect(statuses.filter((status) => status === 200)).toHaveLength(4);
      expect(statuses.filter((status) => status === 429)).toHaveLength(5);
    },
    60_000,
  );

  it.skipIf(skip !== undefined)(
    'caps event and analytics streams per user across instances; a closed stream frees its slot everywhere',
    async () => {
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
      await waitUntil(
        async () => {
          const next = await openStream(at(2), '/api/v1/events/stream', token);
          if (next.status === 200) streams.push(next);
          else next.close();
          return next.status === 200;
        },
        { timeoutMs: 5_000, what: 'a freed slot', intervalMs: 250 },
      );
      // The analytics live feed has its own cap of 5, counted the same way.
      const feeds = [];
      for (let index = 0; index < 5; index += 1) feeds.push(await openStream(at(index), '/api/v1/analytics/stream', token));
      expect(feeds.map((feed) => feed.status)).toEqual([200, 200, 200, 200, 200]);
      const sixth = await openStream(at(1), '/api/v1/analytics/stream', token);
      expect(sixth.status).toBe(429);
      sixth.close();
      for (const feed of feeds) feed.close();
      for (const stream of streams) stream.close();
    },
    60_000,
  );

  it.skipIf(skip !== undefined)(
    'throttles failed logins per address and registrations per email across instances',
    async () => {
      const logins: number[] = [];
      for (let index = 0; index < 8; index += 1) {
        logins.push((await post(at(index), '/api/v1/auth/login', { username: `nobody_${index}`, password: 'not a password' })).status);
      }
      expect(logins).toEqual([401, 401, 401, 401, 401, 401, 429, 429]);
      const registrations: number[] = [];
      for (let index = 0; index < 4; index += 1) {
        registrations.push(
          (
            await post(at(index), '/api/v1/auth/register', {
              email: 'probe@example.com',
              username: `probe_${index}`,
              password: 'correct horse battery staple',
            })
          ).status,
        );
      }
      expect(registrations).toEqual([201, 409, 429, 429]);
    },
    60_000,
  );

  it.skipIf(skip !== undefined)(
    'gives back the stream slots of a killed instance once its leases lapse',
    async () => {
      const held = [];
      for (let index = 0; index < 5; index += 1) held.push(await openStream(at(0), '/api/v1/events/stream', token));
      expect(held.map((stream) => stream.status)).toEqual([200, 200, 200, 200, 200]);
      expect((await openStream(at(1), '/api/v1/events/stream', token)).status).toBe(429);
      await cluster!.kill(at(0));
      // STREAM_LEASE_TTL_SECONDS=3: the slots come back without the dead instance's help.
      await waitUntil(
        async () => {
          const next = await openStream(at(1), '/api/v1/events/stream', token);
          next.close();
          return next.status === 200;
        },
        { timeoutMs: 10_000, what: "the killed instance's slots", intervalMs: 250 },
      );
      for (const stream of held) stream.close();
    },
    60_000,
  );
});
