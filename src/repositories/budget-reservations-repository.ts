import { sql, type DatabasePool, type DatabaseTransactionConnection } from 'slonik';
import { z } from 'zod';
import { costToUnits } from '../../machines/usage.js';
import type { BudgetReason, RunBudget } from '../../machines/workflow-run-types.js';
import type { BudgetReservations, BudgetScope, ReservationResult } from '../runtime/budget-reservations.js';

/** Fewer output tokens than this left after the input: the call is not made. */
const MIN_OUTPUT_TOKENS = 1;

const ReserveRow = z.object({
  granted: z.boolean(),
  output_tokens: z.number().int().nullable(),
  reason: z.enum(['budget_tokens', 'budget_cost']).nullable(),
});

/**
 * Budget reservations in PostgreSQL, where instances agree (migration 0008): one row per
 * model call of a budgeted run, from before the call until the run's record is written.
 */
export const createBudgetReservationsRepository = (pool: DatabasePool): BudgetReservations => ({
  reserve: async (request): Promise<ReservationResult> => {
    const row = await pool.one(sql.type(ReserveRow)`
      SELECT granted, output_tokens, reason FROM reserve_budget(
        ${request.id}, ${request.runId}, ${request.userId}, ${request.conversationId},
        ${request.scope.conversation}, ${request.provider}, ${request.inputTokens}, ${request.maxOutputTokens},
        ${request.price?.inputUnits ?? null}, ${request.price?.outputUnits ?? null}, ${MIN_OUTPUT_TOKENS})`);
    return row.granted ? { granted: true, maxOutputTokens: row.output_tokens } : { granted: false, reason: row.reason ?? 'budget_tokens' };
  },
  settle: async (id, tokens, costUsd) => {
    await pool.query(sql.unsafe`
      UPDATE budget_reservations SET tokens = ${tokens}, cost = ${costUsd}, state = 'settled', settled_at = now()
      WHERE id = ${id}`);
  },
  release: async (id) => {
    await pool.query(sql.unsafe`DELETE FROM budget_reservations WHERE id = ${id}`);
  },
});

/**
 * Drops the reservations of runs whose record is being written, in the writer's
 * transaction: their usage moves into the totals at the same commit, so spent
 * (totals + reservations) never counts a call twice or not at all.
 */
export const releaseRunReservations = async (tx: DatabaseTransactionConnection, runIds: readonly string[]): Promise<void> => {
  if (runIds.length === 0) {
    return;
  }
  await tx.query(sql.unsafe`DELETE FROM budget_reservations WHERE run_id = ANY(${sql.array([...runIds], 'text')})`);
};

/** The budget a conversation carries, as its row holds it. */
export type ConversationBudget = {
  readonly id: string;
  readonly token_budget: number | null;
  readonly cost_budget_usd: number | null;
  readonly total_tokens: number;
  readonly total_cost: number;
};

/**
 * A user's budget columns and the reservations of their runs in flight, for a query on
 * `users u` (`FROM users u ${userBudgetJoin}`): the sums are only taken when a budget is
 * set. Read with the credential check (one statement for both) and by budgetStanding.
 */
export const userBudgetColumns = sql.fragment`
  u.token_budget, u.cost_budget_usd, u.total_tokens AS spent_tokens, u.total_cost AS spent_cost_usd,
  COALESCE(ur.tokens, 0) AS reserved_tokens, COALESCE(ur.cost, 0) AS reserved_cost_usd`;
export const userBudgetJoin = sql.fragment`
  LEFT JOIN LATERAL (
    SELECT sum(r.tokens) AS tokens, sum(r.cost) AS cost FROM budget_reservations r
    WHERE r.user_id = u.id AND (u.token_budget IS NOT NULL OR u.cost_budget_usd IS NOT NULL)
  ) ur ON true`;

const StandingRow = z.object({
  token_budget: z.number().nullable(),
  cost_budget_usd: z.number().nullable(),
  spent_tokens: z.number(),
  spent_cost_usd: z.number(),
  reserved_tokens: z.number(),
  reserved_cost_usd: z.number(),
  conversation_reserved_tokens: z.number(),
  conversation_reserved_cost: z.number(),
});

export type BudgetStanding = {
  /** What the run may spend by the stored totals alone (the machine's check on each response). */
  readonly budget: RunBudget;
  /** Null: no budget applies, the run reserves nothing. */
  readonly scope: BudgetScope | null;
  /** The budget that is used up (spent and reserved), if one is. */
  readonly exhausted: BudgetReason | null;
};

const remainingOf = (values: readonly (number | null)[]): number | null => {
  const known = values.filter((value): value is number => value !== null);
  return known.length === 0 ? null : Math.min(...known);
};

/** The standing from the user's row and, for a budgeted conversation, its row and reservations. */
const standingOf = (
  user: BudgetView,
  c: ConversationBudget | null,
  conversationReserved: { readonly tokens: number; readonly cost: number },
): BudgetStanding => {
  const userBudgeted = user.token_budget !== null || user.cost_budget_usd !== null;
  const budget: RunBudget = {
    tokensRemaining: remainingOf([
      user.token_budget === null ? null : user.token_budget - user.spent_tokens,
      c === null || c.token_budget === null ? null : c.token_budget - c.total_tokens,
    ]),
    costRemainingUsd: remainingOf([
      user.cost_budget_usd === null ? null : user.cost_budget_usd - user.spent_cost_usd,
      c === null || c.cost_budget_usd === null ? null : c.cost_budget_usd - c.total_cost,
    ]),
  };
  const tokensLeft = remainingOf([
    user.token_budget === null ? null : user.token_budget - user.spent_tokens - user.reserved_tokens,
    c === null || c.token_budget === null ? null : c.token_budget - c.total_tokens - conversationReserved.tokens,
  ]);
  // Compared in 1e-10 USD units, the figures' resolution, so float noise cannot decide it.
  const units = (usd: number): number => Number(costToUnits(usd));
  const costLeft = remainingOf([
    user.cost_budget_usd === null ? null : units(user.cost_budget_usd) - units(user.spent_cost_usd) - units(user.reserved_cost_usd),
    c === null || c.cost_budget_usd === null ? null : units(c.cost_budget_usd) - units(c.total_cost) - units(conversationReserved.cost),
  ]);
  const exhausted: BudgetReason | null =
    tokensLeft !== null && tokensLeft <= 0 ? 'budget_tokens' : costLeft !== null && costLeft <= 0 ? 'budget_cost' : null;
  return {
    budget,
    scope: userBudgeted || c !== null ? { conversation: c !== null } : null,
    exhausted,
  };
};

/**
 * A turn's budgets before anything is saved. `user`: the user's standing as the
 * credential check read it (the same statement); then no statement is needed unless the
 * conversation has a budget of its own. Otherwise one statement: the user's row, plus
 * the sums of the reservations in flight only when a budget is set. `conversation`
 * null: a new conversation (no budget of its own, nothing spent yet).
 */
export const budgetStanding = async (
  pool: DatabasePool,
  userId: string,
  conversation: ConversationBudget | null,
  user?: BudgetView,
): Promise<BudgetStanding> => {
  const conversationBudgeted = conversation !== null && (conversation.token_budget !== null || conversation.cost_budget_usd !== null);
  const c = conversationBudgeted ? conversation : null;
  if (user !== undefined && c === null) {
    return standingOf(user, null, { tokens: 0, cost: 0 });
  }
  const row = await pool.one(sql.type(StandingRow)`
    SELECT ${userBudgetColumns},
           COALESCE(cr.tokens, 0) AS conversation_reserved_tokens, COALESCE(cr.cost, 0) AS conversation_reserved_cost
    FROM users u
    ${userBudgetJoin}
    LEFT JOIN LATERAL (
      SELECT sum(r.tokens) AS tokens, sum(r.cost) AS cost FROM budget_reservations r
      WHERE ${conversationBudgeted} AND r.conversation_id = ${conversation?.id ?? null}
    ) cr ON true
    WHERE u.id = ${userId}`);
  return standingOf(row, c, { tokens: row.conversation_reserved_tokens, cost: row.conversation_reserved_cost });
};

export const BudgetViewRow = z.object({
  token_budget: z.number().nullable(),
  cost_budget_usd: z.number().nullable(),
  spent_tokens: z.number(),
  spent_cost_usd: z.number(),
  reserved_tokens: z.number(),
  reserved_cost_usd: z.number(),
});

/** A budget as the API shows it: the limits, what finished runs spent, what runs in flight reserve. */
export type BudgetView = z.infer<typeof BudgetViewRow>;

/** A user's budget and spending; null when there is no such user. */
export const findUserBudget = async (pool: DatabasePool, userId: string): Promise<BudgetView | null> =>
  pool.maybeOne(sql.type(BudgetViewRow)`
    SELECT u.token_budget, u.cost_budget_usd, u.total_tokens AS spent_tokens, u.total_cost AS spent_cost_usd,
           COALESCE(sum(r.tokens), 0) AS reserved_tokens, COALESCE(sum(r.cost), 0) AS reserved_cost_usd
    FROM users u LEFT JOIN budget_reservations r ON r.user_id = u.id
    WHERE u.id = ${userId}
    GROUP BY u.id`);

/** Sets (null: removes) a user's budgets; returns the new view, or null when there is no such user. */
export const setUserBudget = async (
  pool: DatabasePool,
  userId: string,
  budget: { readonly tokenBudget: number | null; readonly costBudgetUsd: number | null },
): Promise<BudgetView | null> => {
  const updated = await pool.maybeOneFirst(sql.type(z.object({ id: z.string() }))`
    UPDATE users SET token_budget = ${budget.tokenBudget}, cost_budget_usd = ${budget.costBudgetUsd}, updated_at = now()
    WHERE id = ${userId} RETURNING id`);
  return updated === null ? null : findUserBudget(pool, userId);
};

/** A conversation's budget and spending, if `ownerId` owns it and it is not deleted. */
export const findConversationBudget = async (pool: DatabasePool, conversationId: string, ownerId: string): Promise<BudgetView | null> =>
  pool.maybeOne(sql.type(BudgetViewRow)`
    SELECT c.token_budget, c.cost_budget_usd, c.total_tokens AS spent_tokens, c.total_cost AS spent_cost_usd,
           COALESCE(sum(r.tokens), 0) AS reserved_tokens, COALESCE(sum(r.cost), 0) AS reserved_cost_usd
    FROM conversations c LEFT JOIN budget_reservations r ON r.conversation_id = c.id
    WHERE c.id = ${conversationId} AND c.user_id = ${ownerId} AND c.status <> 'deleted'
    GROUP BY c.id`);
