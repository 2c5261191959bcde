import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createEmptyTestDatabase } from '../helpers/database.js';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.js';

// The chat schema's documented maximum (`message` maxLength, counted in characters).
const MAX_MESSAGE_CHARACTERS = 100_000;

/** The service's database: a fresh PostgreSQL database when DATABASE_URL is set, else a PGlite folder. */
const databaseForServer = async (): Promise<{ env: Record<string, string>; cleanup: () => Promise<void> }> => {
  if (loadConfig().database.url !== undefined) {
    const db = await createEmptyTestDatabase(1);
    await db.close();
    return { env: { DATABASE_URL: db.url }, cleanup: db.drop };
  }
  const dataDir = await mkdtemp(join(tmpdir(), 'chatter-long-message-'));
  return { env: { CHATTER_DATA_DIR: dataDir }, cleanup: () => rm(dataDir, { recursive: true, force: true }) };
};

const call = async (server: ServerProcess, method: string, path: string, token: string | undefined, body?: unknown) => {
  const response = await fetch(`${server.baseUrl}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json().catch(() => null)) as (Record<string, unknown> & unknown[]) | null };
};

/** GET /healthz back to back on a keep-alive connection of its own; every answer's status and latency. */
const pollHealth = (baseUrl: string) => {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const answers: { status: number; ms: number }[] = [];
  let running = true;
  const once = () =>
    new Promise<{ status: number; ms: number }>((resolve, reject) => {
      const started = performance.now();
      const req = request(`${baseUrl}/healthz`, { agent }, (response) => {
        response.resume();
        response.on('end', () => resolve({ status: response.statusCode ?? 0, ms: performance.now() - started }));
      });
      req.on('error', reject);
      req.end();
    });
  const loop = (async () => {
    while (running) {
      answers.push(await once());
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      agent.destroy();
      return answers;
    },
  };
};

describe('a chat of the longest allowed message', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('is answered with its usage stored while /healthz keeps answering', async () => {
    const where = await databaseForServer();
    cleanups.push(where.cleanup);
    const server = await startServerProcess(
      { ...where.env, JWT_SECRET: 'long-message-secret-0123456789-abcdefghij', LOCAL_MODEL_LATENCY_MS: '0' },
      { timeoutMs: 60_000 },
    );
    cleanups.push(async () => {
      await server.stop();
    });
    const registered = await call(server, 'POST', '/api/v1/auth/register', undefined, {
      email: 'long@example.com',
      username: 'long_message',
      password: 'correct horse battery staple',
    });
    expect(registered.status).toBe(201);
    const token = registered.body!['access_token'] as string;

    // One run without whitespace: the shape that made token counting quadratic.
    const message = 'a'.repeat(MAX_MESSAGE_CHARACTERS);
    const poller = pollHealth(server.baseUrl);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const chat = await call(server, 'POST', '/api/v1/workflows/execute/chat', token, { message });
    const health = await poller.stop();

    expect(chat.status).toBe(200);
    const reply = chat.body!['message'] as { id: string; prompt_tokens: number; total_tokens: number };
    // 100,000 'a's are 12,500 o200k tokens, plus the system prompt.
    expect(reply.prompt_tokens).toBeGreaterThanOrEqual(12_500);
    const stored = await call(server, 'GET', `/api/v1/conversations/${String(chat.body!['conversation_id'])}/messages`, token);
    expect(stored.status).toBe(200);
    const messages = stored.body as unknown as { id: string; role: string; content: string; total_tokens: number | null }[];
    expect(messages.find((row) => row.role === 'user')?.content).toBe(message);
    expect(messages.find((row) => row.id === reply.id)?.total_tokens).toBe(reply.total_tokens);

    expect(health.length).toBeGreaterThan(0);
    expect(health.filter((answer) => answer.status !== 200)).toEqual([]);
    const worst = Math.max(...health.map((answer) => answer.ms));
    console.log(`long message: /healthz answered ${health.length} times during the chat, worst ${worst.toFixed(1)} ms`);
  }, 120_000);
});
