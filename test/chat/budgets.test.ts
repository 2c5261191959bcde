import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { asUser, registerUser, type RegisteredUser } from '../helpers/api.js';
import { createChatApi, type ChatApi } from '../helpers/chat-api.js';

// Budgets through the whole service (HTTP app, chat service, runtime, span pipeline,
// writer) with the scripted model: the reservation before each model call, its cap on
// max_tokens, a run refused mid tool loop, 402 before anything is saved, and parallel
// chats of one user that never spend past the budget.

let api: ChatApi;

beforeAll(async () => {
  api = await createChatApi({ CHAT_RATE_LIMIT_PER_MINUTE: '1000', CHAT_RATE_LIMIT_PER_HOUR: '1000', OPENAI_API_KEY: 'sk-test-not-used' });
});

afterAll(async () => {
  await api.close();
});

const words = (count: number): string => Array.from({ length: count }, (_, index) => `word${index}`).join(' ');

const setBudget = async (user: RegisteredUser, budget: { tokens?: number | null; usd?: number | null }) => {
  await api.db.pool.query(sql.unsafe`
    UPDATE users SET token_budget = ${budget.tokens ?? null}, cost_budget_usd = ${budget.usd ?? null} WHERE id = ${user.id}`);
};

const Spent = z.object({
  run_tokens: z.number(),
  run_cost: z.string(),
  user_tokens: z.number(),
  user_cost: z.string(),
  message_tokens: z.number(),
  held: z.number(),
  within_usd: z.boolean().nullable(),
});

/** What the database recorded for the user: runs' sums, the user's totals, the messages' sums, reservations left. */
const spentBy = async (user: RegisteredUser, usdBudget: number | null = null) =>
  api.db.pool.one(sql.type(Spent)`
    SELECT (SELECT COALESCE(sum(total_tokens), 0) FROM workflow_runs WHERE user_id = u.id) AS run_tokens,
           (SELECT COALESCE(sum(cost), 0)::text FROM workflow_runs WHERE user_id = u.id) AS run_cost,
           u.total_tokens AS user_tokens, u.total_cost::text AS user_cost,
           (SELECT COALESCE(sum(m.total_tokens), 0) FROM messages m JOIN conversations c ON c.id = m.conversation_id
             WHERE c.user_id = u.id) AS message_tokens,
           (SELECT count(*) FROM budget_reservations r WHERE r.user_id = u.id) AS held,
           (SELECT COALESCE(sum(cost), 0) <= ${usdBudget}::numeric FROM workflow_runs WHERE user_id = u.id) AS within_usd
    FROM users u WHERE u.id = ${user.id}`);

const RunRow = z.object({
  status: z.string(),
  terminal_reason: z.string().nullable(),
  model_call_count: z.number(),
  total_tokens: z.number(),
});

describe('budgets', () => {
  it('caps the call\u2019s max_tokens to what the budget has left, and the reply is cut there', async () => {
    const user = await registerUser(api.app);
    await setBudget(user, { tokens: 60 });
    const model = api.script([{ content: words(200) }]);
    const response = await asUser(api.app, user)({ method: 'POST', url: '/api/v1/workflows/execute/chat', payload: { message: 'hello' } });
    expect(response.statusCode).toBe(200);
    const cap = model.calls[0]?.maxTokens;
    expect(cap).toBeGreaterThan(0);
    expect(cap).toBeLessThan(60);
    const body = response.json<{ message: { content: string; completion_tokens: number; total_tokens: number; finish_reason: string } }>();
    expect(body.message.finish_reason).toBe('length');
    expect(body.message.completion_tokens).toBe(cap);
    expect(body.message.content.trim()).toBe(words(cap!));
    const spent = await spentBy(user);
    expect(spent.user_tokens).toBe(body.message.total_tokens);
    expect(spent.user_tokens).toBeLessThanOrEqual(60);
    expect(spent.held).toBe(0);
  });

  it('makes no reservation and passes no cap for a user without a budget', async () => {
    const user = await registerUser(api.app);
    const model = api.script([{ content: words(50) }]);
    const response = await asUser(api.app, user)({ method: 'POST', url: '/api/v1/workflows/execute/chat', payload: { message: 'hello' } });
    expect(response.statusCode).toBe(200);
    expect(model.calls[0]?.maxTokens).toBeUndefined();
    expect(response.json<{ message: { completion_tokens: number } }>().message.completion_tokens).toBe(50);
  });

  it('ends a tool loop budgetExceeded when its next model call cannot reserve, without making the call', async () => {
    const user = await registerUser(api.app);
    await setBudget(user, { tokens: 1000 });
    const model = api.script([
      // The first call reports almost the whole budget (within what it reserved).
      { content: '', toolCalls: [{ name: 'calculator', args: { expression: '6*7' } }], usage: { input_tokens: 900, output_tokens: 95 } },
      { content: 'never played' },
    ]);
    const response = await asUser(
      api.app,
      user,
    )({
      method: 'POST',
      url: '/api/v1/workflows/execute/chat',
      payload: { message: 'What is 6*7?', enable_tools: true },
    });
    expect(model.calls).toHaveLength(1);
    expect(model.calls[0]?.maxTokens).toBeLessThan(1000);
    const runId = response.json<{ run_id?: string; execution_id?: string }>();
    expect(runId).toBeDefined();
    const run = await api.db.pool.one(sql.type(RunRow)`
      SELECT status, terminal_reason, model_call_count, total_tokens FROM workflow_runs
      WHERE user_id = ${user.id} ORDER BY started_at DESC LIMIT 1`);
    expect(run).toEqual({ status: 'budgetExceeded', terminal_reason: 'budget_tokens', model_call_count: 1, total_tokens: 995 });
    const spent = await spentBy(user);
    expect(spent).toMatchObject({ run_tokens: 995, user_tokens: 995, message_tokens: 995, held: 0 });
    const events = await api.db.pool.anyFirst(sql.type(z.object({ type: z.string() }))`
      SELECT e.type FROM events e JOIN workflow_runs r ON r.id = e.run_id WHERE r.user_id = ${user.id} ORDER BY e.seq`);
    expect(events).toContain('budget_exceeded');
  });

  it('answers 402 once the budget is used up, and saves nothing', async () => {
    const user = await registerUser(api.app);
    await setBudget(user, { tokens: 100 });
    await api.db.pool.query(sql.unsafe`UPDATE users SET total_tokens = 100 WHERE id = ${user.id}`);
    api.script([{ content: 'never played' }]);
    const response = await asUser(api.app, user)({ method: 'POST', url: '/api/v1/workflows/execute/chat', payload: { message: 'hello' } });
    expect(response.statusCode).toBe(402);
    const saved = await api.db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`
      SELECT count(*) AS n FROM conversations WHERE user_id = ${user.id}`);
    expect(saved).toBe(0);
    await setBudget(user, { usd: 0.0001 });
    await api.db.pool.query(sql.unsafe`UPDATE users SET total_cost = 0.0001 WHERE id = ${user.id}`);
    const again = await asUser(
      api.app,
      user,
    )({
      method: 'POST',
      url: '/api/v1/workflows/execute/chat',
      payload: { message: 'hello', provider: 'openai', model: 'gpt-4o-mini' },
    });
    expect(again.statusCode).toBe(402);
  });

  /** 20 chats of one user at once; returns their statuses and the runs' statuses. */
  const parallelChats = async (user: RegisteredUser, payload: Record<string, unknown>) => {
    const as = asUser(api.app, user);
    const responses = await Promise.all(
      Array.from({ length: 20 }, () => as({ method: 'POST', url: '/api/v1/workflows/execute/chat', payload })),
    );
    const runs = await api.db.pool.anyFirst(sql.type(z.object({ status: z.string() }))`
      SELECT status FROM workflow_runs WHERE user_id = ${user.id}`);
    const odd = responses.filter((response) => response.statusCode !== 200 && response.statusCode !== 402);
    if (odd.length > 0) console.log(odd.map((r) => `${r.statusCode} ${r.body}`).join('\n'));
    return { codes: responses.map((response) => response.statusCode), runs };
  };

  it('never spends past a token budget with 20 parallel chats of one user', async () => {
    const user = await registerUser(api.app);
    await setBudget(user, { tokens: 300 });
    api.script(Array.from({ length: 20 }, () => ({ content: words(30), latencyMs: 20 })));
    const { codes, runs } = await parallelChats(user, { message: 'hello there', max_tokens: 30 });
    expect(codes.every((code) => code === 200 || code === 402)).toBe(true);
    const refused = codes.filter((code) => code === 402).length + runs.filter((status) => status === 'budgetExceeded').length;
    expect(runs.filter((status) => status === 'completed').length).toBeGreaterThan(1);
    expect(refused).toBeGreaterThan(0);
    const spent = await spentBy(user);
    expect(spent.run_tokens).toBeLessThanOrEqual(300);
    expect(spent.user_tokens).toBe(spent.run_tokens);
    expect(spent.message_tokens).toBe(spent.run_tokens);
    expect(spent.held).toBe(0);
  });

  it('never spends past a USD budget with 20 parallel chats of one user', async () => {
    const user = await registerUser(api.app);
    // gpt-4o-mini: 100 output tokens cost 0.00006 USD; the budget pays for about five replies.
    await setBudget(user, { usd: 0.0003 });
    api.script(Array.from({ length: 20 }, () => ({ content: words(100), latencyMs: 20 })));
    const { codes, runs } = await parallelChats(user, {
      message: 'hello there',
      max_tokens: 100,
      provider: 'openai',
      model: 'gpt-4o-mini',
    });
    expect(codes.every((code) => code === 200 || code === 402)).toBe(true);
    expect(runs.filter((status) => status === 'completed').length).toBeGreaterThan(1);
    expect(codes.filter((code) => code === 402).length + runs.filter((status) => status === 'budgetExceeded').length).toBeGreaterThan(0);
    const spent = await spentBy(user, 0.0003);
    expect(spent.within_usd).toBe(true);
    expect(spent.user_cost).toBe(spent.run_cost);
    expect(Number(spent.run_cost)).toBeGreaterThan(0);
    expect(spent.held).toBe(0);
  });
});
