import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadMigrations, migrate } from '../../src/db/migrations.js';
import { findPostgresServer, requirePostgres, startInstances, type Instance, type Instances } from '../helpers/instances.js';

// Three real server processes on one fresh PostgreSQL database: 12 chats of one user at
// once, spread over the instances, never spend past the user's token budget or USD budget
// (sums of recorded usage ≤ budget, exactly, from the database). Budgets are PostgreSQL's
// to enforce: no instance knows what the others reserved.

const server = await findPostgresServer();
/** The local model's price for these runs (an operator row): USD per 1M tokens. */
const LOCAL_PRICE = { input: 1, output: 2 };

describe.skipIf(!requirePostgres(server, 'the multi-instance budget tests'))('budgets across three instances on one PostgreSQL', () => {
  let cluster: Instances;
  let servers: readonly Instance[] = [];

  beforeAll(async () => {
    cluster = await startInstances(server as { url: string }, {
      count: 3,
      // About 25 chunks a reply: runs of half a second, so the twelve overlap.
      env: { LOCAL_MODEL_LATENCY_MS: '20' },
      // The local model is free as shipped: an operator price, there before the instances
      // load their prices, makes its runs cost USD.
      prepare: async ({ pool }) => {
        await migrate(pool, await loadMigrations());
        await pool.query(sql.unsafe`
          INSERT INTO model_prices (id, provider, model_pattern, valid_from, input_per_mtok, cache_read_per_mtok,
                                    cache_write_per_mtok, output_per_mtok, source)
          VALUES ('operator:local:*@2024-01-01', 'local', '*', '2024-01-01', ${LOCAL_PRICE.input}, ${LOCAL_PRICE.input},
                  ${LOCAL_PRICE.input}, ${LOCAL_PRICE.output}, 'operator')`);
      },
    });
    servers = cluster.instances;
  }, 180_000);

  afterAll(async () => {
    await cluster?.close();
  }, 60_000);

  /** A new user (registered on instance A), its budget set by a superuser through instance B. */
  const budgetedUser = async (budget: { token_budget: number | null; cost_budget_usd: number | null }) => {
    const user = await cluster.register(servers[0]!);
    const admin = await cluster.register(servers[0]!);
    await cluster.db.pool.query(sql.unsafe`UPDATE users SET is_superuser = true WHERE id = ${admin.id}`);
    const set = await cluster.request(servers[1]!, 'PUT', `/api/v1/admin/users/${user.id}/budget`, { token: admin.token, body: budget });
    expect(set.status).toBe(200);
    return user;
  };

  /** 12 chats at once, chat i on instance i mod 3; returns the answers' statuses. */
  const twelveChats = async (token: string) =>
    Promise.all(
      Array.from({ length: 12 }, async (_, index) => {
        const answer = await cluster.chat(
          servers[index % 3]!,
          { token },
          { message: `hello number ${index}, how are you today?`, max_tokens: 30 },
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
    cluster.db.pool.one(sql.type(Recorded)`
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
    const within = await cluster.db.pool.oneFirst(sql.type(z.object({ ok: z.boolean() }))`
      SELECT COALESCE(sum(cost), 0) <= ${budget}::numeric AS ok FROM workflow_runs WHERE user_id = ${user.id}`);
    expect(within).toBe(true);
    expect(figures.user_cost).toBe(figures.run_cost);
    expect(Number(figures.run_cost)).toBeGreaterThan(0);
    expect(figures.completed).toBeGreaterThan(1);
    expect(figures.over_budget + statuses.filter((status) => status === 402).length).toBeGreaterThan(0);
    expect(figures.held).toBe(0);
  }, 120_000);
});
