import { sql } from 'slonik';
import { ulid } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadShippedPrices } from '../../src/providers/pricing.js';
import {
  budgetStanding,
  createBudgetReservationsRepository,
  releaseRunReservations,
} from '../../src/repositories/budget-reservations-repository.js';
import { syncShippedPrices } from '../../src/repositories/prices-repository.js';
import type { ReservationRequest } from '../../src/runtime/budget-reservations.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createConversation, createUser } from '../helpers/fixtures.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
  await syncShippedPrices(db.pool, loadShippedPrices().prices);
});

afterAll(async () => {
  await db.drop();
});

/** gpt-4o-mini's shipped price in 1e-10 USD per token: input 0.15/MTok, output 0.60/MTok. */
const MINI = { inputUnits: 1_500, outputUnits: 6_000 };

const startRun = async (userId: string, conversationId: string): Promise<string> => {
  const id = ulid();
  await db.pool.query(sql.unsafe`
    INSERT INTO workflow_runs (id, user_id, conversation_id, workflow, status, correlation_id)
    VALUES (${id}, ${userId}, ${conversationId}, 'chat', 'running', ${ulid()})`);
  return id;
};

const ReservationRow = z.object({ id: z.string(), tokens: z.number(), cost: z.string(), state: z.string() });
const reservationsOf = async (runId: string) =>
  db.pool.any(sql.type(ReservationRow)`
    SELECT id, tokens, cost::text AS cost, state FROM budget_reservations WHERE run_id = ${runId} ORDER BY id`);

const fixture = async (budgets: { tokenBudget?: number; costBudgetUsd?: number }) => {
  const userId = await createUser(db.pool, budgets);
  const conversationId = await createConversation(db.pool, userId);
  const runId = await startRun(userId, conversationId);
  const request = (fields: Partial<ReservationRequest> = {}): ReservationRequest => ({
    id: ulid(),
    runId,
    userId,
    conversationId,
    scope: { conversation: false },
    provider: 'openai',
    inputTokens: 10,
    maxOutputTokens: null,
    price: MINI,
    ...fields,
  });
  return { userId, conversationId, runId, request };
};

describe('budget reservations', () => {
  const budgets = () => createBudgetReservationsRepository(db.pool);

  it('caps the output to the tokens left and refuses once fewer than one is left', async () => {
    const { runId, request, userId } = await fixture({ tokenBudget: 100 });
    expect(await budgets().reserve(request({ inputTokens: 30 }))).toEqual({ granted: true, maxOutputTokens: 70 });
    expect((await reservationsOf(runId)).map((row) => [row.tokens, row.state])).toEqual([[100, 'held']]);
    // Everything is held: a second run of the same user (another conversation: one live run each) cannot reserve even one token.
    const other = await startRun(userId, await createConversation(db.pool, userId));
    expect(await budgets().reserve(request({ runId: other, inputTokens: 0 }))).toEqual({ granted: false, reason: 'budget_tokens' });
    expect(await reservationsOf(other)).toEqual([]);
  });

  it('settles to the actual usage, which frees the rest for the next call', async () => {
    const { runId, request } = await fixture({ tokenBudget: 100 });
    const first = request({ inputTokens: 30, maxOutputTokens: 50 });
    expect(await budgets().reserve(first)).toEqual({ granted: true, maxOutputTokens: 50 });
    await budgets().settle(first.id, 42, 0.0000123456);
    const [settled] = await reservationsOf(runId);
    expect(settled).toMatchObject({ tokens: 42, cost: '0.0000123456', state: 'settled' });
    // 100 − 42 = 58 left: 20 input, at most 38 output (max_tokens 1000 is capped).
    expect(await budgets().reserve(request({ inputTokens: 20, maxOutputTokens: 1000 }))).toEqual({ granted: true, maxOutputTokens: 38 });
    // Exactly full: 100 reserved, 0 left; an input that alone fits leaves no output token.
    expect(await budgets().reserve(request({ inputTokens: 0 }))).toEqual({ granted: false, reason: 'budget_tokens' });
    const rows = await reservationsOf(runId);
    expect(rows.reduce((sum, row) => sum + row.tokens, 0)).toBe(100);
  });

  it('releases a failed call, and counts the stored totals of finished runs', async () => {
    const { runId, request, userId } = await fixture({ tokenBudget: 100 });
    await db.pool.query(sql.unsafe`UPDATE users SET total_tokens = 90 WHERE id = ${userId}`);
    const call = request({ inputTokens: 4 });
    expect(await budgets().reserve(call)).toEqual({ granted: true, maxOutputTokens: 6 });
    expect(await budgets().reserve(request({ inputTokens: 0 }))).toEqual({ granted: false, reason: 'budget_tokens' });
    await budgets().release(call.id);
    expect(await reservationsOf(runId)).toEqual([]);
    expect(await budgets().reserve(request({ inputTokens: 9 }))).toEqual({ granted: true, maxOutputTokens: 1 });
    expect(await budgets().reserve(request({ inputTokens: 0 }))).toEqual({ granted: false, reason: 'budget_tokens' });
  });

  it('caps the output to what the USD left pays for, in exact 1e-10 USD units', async () => {
    const { runId, request } = await fixture({ costBudgetUsd: 0.001 });
    // 100 input tokens: 150,000 units; 10,000,000 − 150,000 = 9,850,000 units buy 1,641 output tokens at 6,000.
    expect(await budgets().reserve(request({ inputTokens: 100 }))).toEqual({ granted: true, maxOutputTokens: 1641 });
    const [held] = await reservationsOf(runId);
    expect(held).toMatchObject({ tokens: 1741, cost: '0.0009996000', state: 'held' });
    // 0.0000004 USD left = 4,000 units: less than one output token after any input.
    expect(await budgets().reserve(request({ inputTokens: 0 }))).toEqual({ granted: false, reason: 'budget_cost' });
    await budgets().settle(held!.id, 160, 0.000051);
    // 0.001 − 0.000051 = 0.000949 USD = 9,490,000 units: 10 input (15,000) leave 9,475,000 → 1,579 output.
    expect(await budgets().reserve(request({ inputTokens: 10 }))).toEqual({ granted: true, maxOutputTokens: 1579 });
    const costs = await db.pool.oneFirst(sql.type(z.object({ sum: z.string() }))`
      SELECT sum(cost)::text AS sum FROM budget_reservations WHERE run_id = ${runId}`);
    expect(costs).toBe('0.0009999000');
  });

  it('prices a model without a known price at the provider\u2019s highest price', async () => {
    const { runId, request } = await fixture({ costBudgetUsd: 1 });
    const rows = loadShippedPrices().prices.filter((row) => row.provider === 'anthropic' && Date.parse(row.validFrom) <= Date.now());
    const inputUnits = Math.max(
      ...rows.map((row) => Math.round(Math.max(row.inputPerMTok, row.cacheReadPerMTok, row.cacheWritePerMTok) * 1e4)),
    );
    const outputUnits = Math.max(...rows.map((row) => Math.round(row.outputPerMTok * 1e4)));
    const result = await budgets().reserve(request({ provider: 'anthropic', inputTokens: 1000, price: null }));
    const expected = Math.floor((1e10 - 1000 * inputUnits) / outputUnits);
    expect(result).toEqual({ granted: true, maxOutputTokens: expected });
    const [held] = await reservationsOf(runId);
    const units = BigInt(1000 * inputUnits) + BigInt(expected) * BigInt(outputUnits);
    expect(held?.cost).toBe(`${units / 10_000_000_000n}.${(units % 10_000_000_000n).toString().padStart(10, '0')}`);
    // The same tokens at a cheaper known price would have left far more output.
    expect(expected).toBeLessThan(Math.floor((1e10 - 1000 * MINI.inputUnits) / MINI.outputUnits));
  });

  it('checks a conversation budget of its own, and the stricter of the two', async () => {
    const { runId, request, conversationId } = await fixture({ tokenBudget: 1000 });
    await db.pool.query(sql.unsafe`UPDATE conversations SET token_budget = 50, total_tokens = 20 WHERE id = ${conversationId}`);
    // Without the conversation in scope only the user's 1000 count.
    expect(await budgets().reserve(request({ inputTokens: 10, maxOutputTokens: 5 }))).toEqual({ granted: true, maxOutputTokens: 5 });
    // 50 − 20 stored − 15 reserved = 15 left in the conversation: 10 input, 5 output.
    expect(await budgets().reserve(request({ inputTokens: 10, scope: { conversation: true } }))).toEqual({
      granted: true,
      maxOutputTokens: 5,
    });
    expect(await budgets().reserve(request({ inputTokens: 0, scope: { conversation: true } }))).toEqual({
      granted: false,
      reason: 'budget_tokens',
    });
    expect((await reservationsOf(runId)).map((row) => row.tokens)).toEqual([15, 15]);
  });

  it('reserves nothing once no budget applies any more', async () => {
    const { runId, request } = await fixture({});
    expect(await budgets().reserve(request({ maxOutputTokens: 64 }))).toEqual({ granted: true, maxOutputTokens: 64 });
    expect(await reservationsOf(runId)).toEqual([]);
  });

  it('drops every reservation of the runs whose record is written', async () => {
    const { runId, request, userId } = await fixture({ tokenBudget: 1000 });
    const other = await startRun(userId, await createConversation(db.pool, userId));
    await budgets().reserve(request({ maxOutputTokens: 10 }));
    await budgets().reserve(request({ maxOutputTokens: 10 }));
    await budgets().reserve(request({ runId: other, maxOutputTokens: 10 }));
    await db.pool.transaction((tx) => releaseRunReservations(tx, [runId]));
    expect(await reservationsOf(runId)).toEqual([]);
    expect(await reservationsOf(other)).toHaveLength(1);
  });

  it('answers a used-up budget before a turn, counting the reservations in flight', async () => {
    const { request, userId } = await fixture({ tokenBudget: 100 });
    expect(await budgetStanding(db.pool, userId, null)).toEqual({
      budget: { tokensRemaining: 100, costRemainingUsd: null },
      scope: { conversation: false },
      exhausted: null,
    });
    await budgets().reserve(request({ inputTokens: 30 }));
    // The stored totals still say 100 left (the machine's check), the reservation says none.
    expect(await budgetStanding(db.pool, userId, null)).toMatchObject({
      budget: { tokensRemaining: 100 },
      exhausted: 'budget_tokens',
    });
    const unbudgeted = await createUser(db.pool);
    expect(await budgetStanding(db.pool, unbudgeted, null)).toEqual({
      budget: { tokensRemaining: null, costRemainingUsd: null },
      scope: null,
      exhausted: null,
    });
  });
});
