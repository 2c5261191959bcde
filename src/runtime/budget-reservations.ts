import type { BudgetReason } from '../../machines/workflow-run-types.js';

// What the runtime needs of the budget reservations (implemented over PostgreSQL by
// src/repositories/budget-reservations-repository.ts). Only runs subject to a budget use
// it: a run without one makes no reservation and costs no statement.

/** Which budgets a run's model calls reserve against; the user's are always checked. */
export type BudgetScope = {
  /** The conversation has a budget of its own: its row is locked and its spending checked too. */
  readonly conversation: boolean;
};

/** One model call's worst case, to reserve before the call. */
export type ReservationRequest = {
  /** The reservation's id (the runtime makes one per model call attempt). */
  readonly id: string;
  readonly runId: string;
  readonly userId: string;
  readonly conversationId: string;
  readonly scope: BudgetScope;
  readonly provider: string;
  /** Input tokens counted for the call (the runtime's count of what it sends). */
  readonly inputTokens: number;
  /** The run's own max_tokens; null: none asked (the budget alone caps it). */
  readonly maxOutputTokens: number | null;
  /**
   * Price in units of 1e-10 USD per token: input at the dearest input bucket, output.
   * Null: the model has no known price; the provider's highest price is used instead.
   */
  readonly price: { readonly inputUnits: number; readonly outputUnits: number } | null;
};

export type ReservationResult =
  /** Reserved; `maxOutputTokens` is the call's cap (null: nothing limits it). */
  | { readonly granted: true; readonly maxOutputTokens: number | null }
  /** Fewer than one output token is left in the budget named by `reason`. */
  | { readonly granted: false; readonly reason: BudgetReason };

export type BudgetReservations = {
  /**
   * Reserves the call's worst case, atomically against what is spent and reserved, and
   * caps its output to what is left.
   */
  readonly reserve: (request: ReservationRequest) => Promise<ReservationResult>;
  /** The call ended with usage: the reservation becomes its actual tokens and cost. */
  readonly settle: (id: string, tokens: number, costUsd: number) => Promise<void>;
  /** The call failed without usage: the reservation is dropped. */
  readonly release: (id: string) => Promise<void>;
};

/** A model call could not reserve its worst case: the run ends `budgetExceeded`. */
export class BudgetRefusedError extends Error {
  public readonly reason: BudgetReason;

  public constructor(reason: BudgetReason) {
    super(reason === 'budget_tokens' ? 'the token budget is used up' : 'the cost budget is used up');
    this.name = 'BudgetRefusedError';
    this.reason = reason;
  }
}
