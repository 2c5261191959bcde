import { Agent, request } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { databaseForServer } from '../helpers/server-database.js';
import { registerThrough, requestJson, startServerProcess } from '../helpers/server-process.js';

// The chat schema's documented maximum (`message` maxLength, counted in characters).
const MAX_MESSAGE_CHARACTERS = 100_000;

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
    const where = await databaseForServer('chatter-long-message-');
    cleanups.push(where.cleanup);
    const server = await startServerProcess(
      { ...where.env, JWT_SECRET: 'long-message-secret-0123456789-abcdefghij', LOCAL_MODEL_LATENCY_MS: '0' },
      { timeoutMs: 60_000 },
    );
    cleanups.push(async () => {
      await server.stop();
    });
    const { token } = await registerThrough(server);

    // One run without whitespace: the shape that made token counting quadratic.
    const message = 'a'.repeat(MAX_MESSAGE_CHARACTERS);
    const poller = pollHealth(server.baseUrl);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const chat = await requestJson(server, 'POST', '/api/v1/workflows/execute/chat', { token, body: { message } });
    const health = await poller.stop();

    expect(chat.status).toBe(200);
    const reply = chat.body!['message'] as { id: string; prompt_tokens: number; total_tokens: number };
    // 100,000 'a's are 12,500 o200k tokens, plus the system prompt.
    expect(reply.prompt_tokens).toBeGreaterThanOrEqual(12_500);
    const stored = await requestJson(server, 'GET', `/api/v1/conversations/${String(chat.body!['conversation_id'])}/messages`, { token });
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
