import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPool, sql, type DatabasePool } from 'slonik';
import { ulid } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadConfig } from '../../src/config.js';
import { openDatabase } from '../../src/db/database.js';
import { loadMigrations, migrate } from '../../src/db/migrations.js';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.js';

// Three real server processes on one fresh PostgreSQL database: 12 chats of one user at
// once, spread over the instances, never spend past the user's token budget or USD budget
// (sums of recorded usage ≤ budget, exactly, from the database). Budgets are PostgreSQL's
// to enforce: no instance knows what the others reserved.

const DEFAULT_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const ADMIN_URL = loadConfig().database.url ?? DEFAULT_ADMIN_URL;
const IN_CI = process.env['CI'] === 'true';
const JWT_SECRET = 'multi-instance-budgets-0123456789-abcdefghijklmnop';
/** The local model's price for these runs (an operator row): USD per 1M tokens. */
const LOCAL_PRICE = { input: 1, output: 2 };

const reachable = async (url: string): Promise<string | null> => {
  try {
    const pool = await createPool(url, { maxPoolSize: 1, connectionTimeout: 2_000 });
    try {
      await pool.query(sql.unsafe`SELECT 1`);
    } finally {
      await pool.end();
    }
    return null;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
};

const unreachable = await reachable(ADMIN_URL);
if (unreachable !== null && !IN_CI) {
  console.warn(`budgets-multi-instance: skipped, no PostgreSQL at ${ADMIN_URL} (${unreachable}); set DATABASE_URL to run it`);
}

const withDatabaseName = (url: string, name: string): string => {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
};

describe.skipIf(unreachable !== null && !IN_CI)('budgets across three instances on one PostgreSQL', () => {
  const name = `chatter_test_${ulid().toLowerCase()}`;
  let pool: DatabasePool;
  let servers: ServerProcess[] = [];
  const dataDirs: string[] = [];
  let closeDb: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    if (unreachable !== null) throw new Error(`CI=true but no PostgreSQL at ${ADMIN_URL}: ${unreachable}`);
    const admin = await createPool(ADMIN_URL, { maxPoolSize: 1 });
    try {
      await admin.query(sql.unsafe`CREATE DATABASE ${sql.identifier([name])}`);
    } finally {
      await admin.end();
    }
    const url = withDatabaseName(ADMIN_URL, name);
    const db = await openDatabase({ url, dataDir: 'memory://', poolSize: 2 });
    closeDb = db.close;
    pool = db.pool;
    await migrate(pool, await loadMigrations());
    // The local model is free as shipped: an operator price makes its runs cost USD.
    await pool.query(sql.unsafe`
      INSERT INTO model_prices (id, provider, model_pattern, valid_from, input_per_mtok, cache_read_per_mtok,
                                cache_write_per_mtok, output_per_mtok, source)
      VALUES ('operator:local:*@2024-01-01', 'local', '*', '2024-01-01', ${LOCAL_PRICE.input}, ${LOCAL_PRICE.input},
              ${LOCAL_PRICE.input}, ${LOCAL_PRICE.output}, 'operator')`);
    servers = await Promise.all(
      ['a', 'b', 'c'].map(async (instance) => {
        const dataDir = await mkdtemp(join(tmpdir(), `chatter-budgets-${instance}-`));
        dataDirs.push(dataDir);
        return startServerProcess(
          {
            DATABASE_URL: url,
            DATABASE_POOL_SIZE: '4',
            CHATTER_ENV: 'test',
            CHATTER_INSTANCE_ID: `budgets-${instance}`,
            CHATTER_DATA_DIR: dataDir,
            JWT_SECRET,
            // About 25 chunks a reply: runs of half a second, so the twelve overlap.
            LOCAL_MODEL_LATENCY_MS: '20',
            CHAT_RATE_LIMIT_PER_MINUTE: '1000',
            CHAT_RATE_LIMIT_PER_HOUR: '1000',
          },
          { timeoutMs: 60_000 },
        );
      }),
    );
  }, 120_000);

  afterAll(async () => {
    await Promise.all(servers.map((server) => server.stop()));
    await closeDb?.();
    const admin = await createPool(ADMIN_URL, { maxPoolSize: 1 });
    try {
      await admin.query(sql.unsafe`DROP DATABASE IF EXISTS ${sql.identifier([name])} WITH (FORCE)`);
    } finally {
      await admin.end();
    }
    await Promise.all(dataDirs.map((dir) => rm(dir, { recursive: true, force: true })));
  }, 60_000);

  const post = async (server: ServerProcess, path: string, body: unknown, token?: string) => {
    const response = await fetch(`${server.baseUrl}${path}`, {
      method: path.includes('/budget') ? 'PUT' : 'POST',
      headers: { 'content-type': 'application/json', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  /** A new user (registered on instance A), its budget set by a superuser through instance B. */
  const budgetedUser = async (budget: { token_budget: number | null; cost_budget_usd: number | null }) => {
    const suffix = ulid().toLowerCase().slice(-10);
    const register = async (username: string) => {
      const answer = await post(servers[0]!, '/api/v1/auth/register', {
        email: `${username}@example.com`,
        username,
        password: 'correct horse battery staple',
      });
      expect(answer.status).toBe(201);
      return { id: (answer.body['user'] as { id: string }).id, token: answer.body['access_token'] as string };
    };
    const user = await register(`user_${suffix}`);
    const admin = await register(`admin_${suffix}`);
    await pool.query(sql.unsafe`UPDATE users SET is_superuser = true WHERE id = ${admin.id}`);
    const set = await post(servers[1]!, `/api/v1/admin/users/${user.id}/budget`, budget, admin.token);
    expect(set.status).toBe(200);
    return user;
  };

  /** 12 chats at once, chat i on instance i mod 3; returns the answers' statuses. */
  const twelveChats = async (token: string) =>
    Promise.all(
      Array.from({ length: 12 }, async (_, index) => {
        const answer = await post(
          servers[index % 3]!,
          '/api/v1/workflows/execute/chat',
          { message: `hello number ${index}, how are you today?`, max_tokens: 30 },
          token,
        );
        return answer.status;
      }),
    );

  const Recorded = z.object({
    runs: z.number(),
    completed: z.number(),
    over_budget: z.number(),
    instances: z.number(),
    run_tokens: z.number(),
    user_tokens: z.number(),
    run_cost: z.string(),
    user_cost: z.string(),
    held: z.number(),
  });
  const recorded = async (userId: string) =>
    pool.one(sql.type(Recorded)`
      SELECT count(*) AS runs,
             count(*) FILTER (WHERE r.status = 'completed') AS completed,
             count(*) FILTER (WHERE r.status = 'budgetExceeded') AS over_budget,
             count(DISTINCT r.instance_id) AS instances,
             COALESCE(sum(r.total_tokens), 0) AS run_tokens,
             (SELECT total_tokens FROM users WHERE id = ${userId}) AS user_tokens,
             COALESCE(sum(r.cost), 0)::text AS run_cost,
             (SELECT total_cost::text FROM users WHERE id = ${userId}) AS user_cost,
             (SELECT count(*) FROM budget_reservations WHERE user_id = ${userId}) AS held
      FROM workflow_runs r WHERE r.user_id = ${userId}`);

  it('never spends past a token budget', async () => {
    const budget = 400;
    const user = await budgetedUser({ token_budget: budget, cost_budget_usd: null });
    const statuses = await twelveChats(user.token);
    expect(statuses.every((status) => status === 200 || status === 402)).toBe(true);
    const figures = await recorded(user.id);
    console.info(`token budget ${budget}: answers ${statuses.join(',')}; recorded ${JSON.stringify(figures)}`);
    expect(figures.run_tokens).toBeLessThanOrEqual(budget);
    expect(figures.user_tokens).toBe(figures.run_tokens);
    expect(figures.completed).toBeGreaterThan(1);
    expect(figures.over_budget + statuses.filter((status) => status === 402).length).toBeGreaterThan(0);
    expect(figures.instances).toBeGreaterThan(1);
    expect(figures.held).toBe(0);
  }, 120_000);

  it('never spends past a USD budget', async () => {
    // A run is about 50 input and 25 output tokens: about 0.0001 USD at 1 and 2 USD per 1M.
    const budget = '0.0004';
    const user = await budgetedUser({ token_budget: null, cost_budget_usd: Number(budget) });
    const statuses = await twelveChats(user.token);
    expect(statuses.every((status) => status === 200 || status === 402)).toBe(true);
    const figures = await recorded(user.id);
    console.info(`USD budget ${budget}: answers ${statuses.join(',')}; recorded ${JSON.stringify(figures)}`);
    const within = await pool.oneFirst(sql.type(z.object({ ok: z.boolean() }))`
      SELECT COALESCE(sum(cost), 0) <= ${budget}::numeric AS ok FROM workflow_runs WHERE user_id = ${user.id}`);
    expect(within).toBe(true);
    expect(figures.user_cost).toBe(figures.run_cost);
    expect(Number(figures.run_cost)).toBeGreaterThan(0);
    expect(figures.completed).toBeGreaterThan(1);
    expect(figures.over_budget + statuses.filter((status) => status === 402).length).toBeGreaterThan(0);
    expect(figures.held).toBe(0);
  }, 120_000);
});
