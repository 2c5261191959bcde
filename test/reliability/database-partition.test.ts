import { execFileSync } from 'node:child_process';
import { sql } from 'slonik';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DATABASE_CHECK_TIMEOUT_MS } from '../../src/routes/health.js';
import { createTestDatabase } from '../helpers/database.js';
import { startProxiedStack, type ProxiedStack } from '../helpers/proxied-stack.js';
import { binaryOnPath, requireOrSkip } from '../helpers/requires.js';
import { targetOf } from '../otel/helpers/tcp-proxy.js';

const ACQUIRE_TIMEOUT_MS = 2_000;
const STATEMENT_TIMEOUT_MS = 3_000;
/** The writer's default batch timeout (src/persistence/run-record-writer.ts). */
const WRITE_TIMEOUT_MS = 5_000;
/** Scheduling on a loaded 2-core machine. */
const SLACK_MS = 1_000;
const RUNS = 4;
const MODEL_LATENCY_MS = 1_500;

const timed = async <T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> => {
  const started = performance.now();
  const value = await work();
  return { value, ms: performance.now() - started };
};

describe('a silent network partition to the database (nothing answers, nothing is closed)', () => {
  let stack: ProxiedStack | undefined;
  afterAll(async () => {
    await stack?.close();
  });

  it('spools the runs that finish, answers 503 within the acquire timeout and /readyz 503 within 2 s, then replays each run once', async () => {
    stack = await startProxiedStack({
      pool: (direct) => ({
        // PGlite runs one session: several connections' statements may interleave on it
        // outside transactions (see src/db/database.ts), so one connection there.
        poolSize: direct.kind === 'pglite' ? 1 : 5,
        statementTimeoutMs: STATEMENT_TIMEOUT_MS,
        acquireTimeoutMs: ACQUIRE_TIMEOUT_MS,
      }),
      env: {
        LOG_LEVEL: process.env['PARTITION_LOG'] ?? 'silent',
        DATABASE_ACQUIRE_TIMEOUT_MS: String(ACQUIRE_TIMEOUT_MS),
        DATABASE_STATEMENT_TIMEOUT_MS: String(STATEMENT_TIMEOUT_MS),
      },
      reply: { content: 'through the cut', latencyMs: MODEL_LATENCY_MS, usage: { input_tokens: 9, output_tokens: 4 } },
    });
    const { app, services, proxy, direct, chat } = stack;

    // Runs in flight (each user message saved, the model answering) when the link goes silent.
    const inFlight = Array.from({ length: RUNS }, (_, index) => timed(() => chat(`before the cut ${index}`)));
    await stack.untilActive(RUNS);
    expect(services.runtime.active()).toHaveLength(RUNS);
    proxy.setBlackholed(true);
    const cutAt = performance.now();

    // Each run finishes, its record's transaction hangs, and the writer spools it within
    // the write timeout of the last run's end.
    let active = RUNS;
    let lastFinishedAt = cutAt;
    let spooledAt: number | undefined;
    const watch = setInterval(() => {
      const now = performance.now();
      const count = services.runtime.active().length;
      if (count < active) lastFinishedAt = now;
      active = count;
      if (spooledAt === undefined && services.writer.stats().spooled === RUNS) spooledAt = now;
    }, 10);
    const answered = await Promise.all(inFlight).finally(() => clearInterval(watch));
    expect(answered.map(({ value }) => value.statusCode)).toEqual(answered.map(() => 200));
    expect(services.writer.stats().spooled).toBe(RUNS);
    // A chat answers only once its record is spooled: its answer bounds the spool time
    // from above when the last spool and the answers fell between two looks of the watch.
    spooledAt ??= performance.now();
    const spoolMs = spooledAt! - lastFinishedAt;
    if (process.env['PARTITION_LOG'] !== undefined) console.log(`spooled ${Math.round(spoolMs)} ms after the last run ended`);
    expect(spoolMs, 'spooled within one write timeout of the last run ending').toBeLessThan(WRITE_TIMEOUT_MS + SLACK_MS);

    const ready = await timed(() => app.inject({ method: 'GET', url: '/readyz' }));
    expect(ready.value.statusCode).toBe(503);
    expect(ready.ms).toBeLessThan(2_000);
    expect(DATABASE_CHECK_TIMEOUT_MS).toBeLessThan(2_000);
    expect(ready.value.json()).toMatchObject({ checks: { database: { status: 'unhealthy' }, run_records: { status: 'degraded' } } });

    for (const attempt of [1, 2]) {
      const refused = await timed(() => chat(`during the cut ${attempt}`));
      expect(refused.value.statusCode, refused.value.body).toBe(503);
      expect(refused.value.json()).toMatchObject({ code: 'database_unavailable' });
      expect(refused.ms, `attempt ${attempt}`).toBeLessThan(ACQUIRE_TIMEOUT_MS + SLACK_MS);
    }
    const readyAgain = await timed(() => app.inject({ method: 'GET', url: '/readyz' }));
    expect(readyAgain.value.statusCode).toBe(503);
    expect(readyAgain.ms).toBeLessThan(2_000);

    // The link comes back: what was held is delivered, the spool replays.
    proxy.setBlackholed(false);
    const deadline = Date.now() + 40_000;
    while (services.writer.stats().spooled > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(services.writer.stats().spooled).toBe(0);
    let readyAfter = await app.inject({ method: 'GET', url: '/readyz' });
    for (let tries = 0; readyAfter.statusCode !== 200 && tries < 50; tries += 1) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      readyAfter = await app.inject({ method: 'GET', url: '/readyz' });
    }
    expect(readyAfter.statusCode).toBe(200);
    expect((await chat('after the cut')).statusCode).toBe(200);

    const runIds = answered.map(({ value }) => value.json<{ run_id: string }>().run_id);
    const rows = await direct.pool.any(sql.type(z.object({ id: z.string(), status: z.string(), total_tokens: z.number() }))`
      SELECT id, status, total_tokens FROM workflow_runs WHERE id = ANY(${sql.array(runIds, 'text')})`);
    expect(rows).toHaveLength(RUNS);
    expect(rows.every((row) => row.status === 'completed' && row.total_tokens === 13)).toBe(true);
    // Exactly once, although a timed-out transaction may have committed after the cut.
    const assistant = await direct.pool.oneFirst(sql.type(z.object({ n: z.number() }))`
      SELECT count(*)::int AS n FROM messages WHERE role = 'assistant' AND run_id = ANY(${sql.array(runIds, 'text')})`);
    expect(assistant).toBe(RUNS);
    const drift = await direct.pool.any(sql.type(z.object({ id: z.string() }))`
      SELECT c.id FROM conversations c
      WHERE c.message_count <> (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id)
         OR c.total_tokens <> (SELECT COALESCE(sum(total_tokens), 0) FROM messages m WHERE m.conversation_id = c.id)`);
    expect(drift).toEqual([]);
  }, 120_000);
});

requireOrSkip('ss', binaryOnPath('ss', "iproute2's `ss`, to read a socket's keepalive timer"))('TCP keepalives', () => {
  it('are on for every connection of the pool', async () => {
    const db = await createTestDatabase();
    try {
      await db.pool.query(sql.unsafe`SELECT 1`);
      const { port } = targetOf(db.url);
      const lines = execFileSync('ss', ['-tnopH', 'state', 'established', `( dport = :${port} )`], { encoding: 'utf8' })
        .split('\n')
        .filter((line) => line.includes(`pid=${process.pid},`));
      expect(lines.length).toBeGreaterThan(0);
      for (const line of lines) expect(line).toMatch(/timer:\(keepalive,/);
    } finally {
      await db.drop();
    }
  });
});
