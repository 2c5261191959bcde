/**
 * Token usage and cost arithmetic, in one pure module (no imports): the machine sums a
 * run's calls with it, the span codec encodes its totals, the processors, repositories
 * and routes read them. Lives in machines/ because the machine may import only xstate
 * and sibling files, and otel/ nothing from src/; everything else imports it from here.
 */

/**
 * Non-overlapping token buckets of one model call (or of a sum of calls), as
 * docs/run-contract.md defines them: prompt_tokens = inputUncached + cacheRead +
 * cacheWrite; completion_tokens = output; `reasoning` is a detail of `output`, never
 * counted on top of it.
 */
export type Usage = {
  /** Input tokens that were neither read from nor written to a cache. */
  readonly inputUncached: number;
  /** Input tokens read from the prompt cache. */
  readonly cacheRead: number;
  /** Input tokens written to the prompt cache. */
  readonly cacheWrite: number;
  /** All output tokens, reasoning included. */
  readonly output: number;
  /** Detail: the part of `output` spent on reasoning. */
  readonly reasoning: number;
};

/** The usage of nothing (a fresh object: callers may keep it). */
export const zeroUsage = (): Usage => ({ inputUncached: 0, cacheRead: 0, cacheWrite: 0, output: 0, reasoning: 0 });

/** Bucket-wise sum, e.g. of a run's model calls (tool loops included). */
export const addUsage = (a: Usage, b: Usage): Usage => ({
  inputUncached: a.inputUncached + b.inputUncached,
  cacheRead: a.cacheRead + b.cacheRead,
  cacheWrite: a.cacheWrite + b.cacheWrite,
  output: a.output + b.output,
  reasoning: a.reasoning + b.reasoning,
});

/** The sum of the usages that were reported; `null` (usage missing) adds nothing, never a guessed 0. */
export const sumUsage = (usages: Iterable<Usage | null>): Usage => {
  let sum = zeroUsage();
  for (const usage of usages) {
    if (usage !== null) {
      sum = addUsage(sum, usage);
    }
  }
  return sum;
};

/** All input tokens: uncached, cache-read and cache-write (the contract's prompt_tokens, OTel's input_tokens). */
export const promptTokens = (usage: Usage): number => usage.inputUncached + usage.cacheRead + usage.cacheWrite;

/** All output tokens, reasoning included (the contract's completion_tokens). */
export const completionTokens = (usage: Usage): number => usage.output;

/** prompt_tokens + completion_tokens (reasoning is part of output, so it is not added again). */
export const totalTokens = (usage: Usage): number => promptTokens(usage) + completionTokens(usage);

// ── Cost ─────────────────────────────────────────────────────────────────────
// A cost is USD rounded to 10 decimals (the contract, and the database's numeric(20, 10)).
// Sums are taken in integer units of 1e-10 USD, so a total equals the sum of its rounded
// parts to the last decimal, with no float drift however many parts there are.

/** Decimal places of a cost. */
export const COST_SCALE = 10;
/** Integer cost units in one USD. */
export const COST_UNITS_PER_USD = 10 ** COST_SCALE;

/** USD → integer 1e-10 USD units (rounded like each model call's cost). */
export const costToUnits = (usd: number): bigint => BigInt(Math.round(usd * COST_UNITS_PER_USD));

/** Integer 1e-10 USD units → USD (the nearest double). */
export const unitsToCost = (units: bigint): number => Number(units) / COST_UNITS_PER_USD;

/** The contract's rounding of a USD amount: 10 decimal places. */
export const roundCost = (usd: number): number => unitsToCost(costToUnits(usd));

/** Sums costs (a run's calls, a conversation's messages) in integer units: exact. */
export const sumCosts = (costs: Iterable<number>): number => {
  let units = 0n;
  for (const cost of costs) {
    units += costToUnits(cost);
  }
  return unitsToCost(units);
};

/** What accounting needs of one model call: its usage (null: usage_missing) and cost (null: none known). */
export type PricedCall = { readonly usage: Usage | null; readonly costUsd: number | null };

/**
 * A call with usage but no cost: no price is known for its model (`price_unknown`). A
 * call without usage has no cost either, but that is `usage_missing` (nothing to price).
 */
export const priceUnknown = (call: PricedCall): boolean => call.usage !== null && call.costUsd === null;

/**
 * The cost of a run's calls: the exact sum of the known costs, and whether a call's price
 * was unknown, in which case the run's cost is unknown (`null`), never the partial sum.
 */
export const runCostOfCalls = (calls: readonly PricedCall[]): { costUsd: number | null; costUnknown: boolean } => {
  const costUnknown = calls.some(priceUnknown);
  return { costUsd: costUnknown ? null : sumCosts(calls.flatMap((call) => (call.costUsd === null ? [] : [call.costUsd]))), costUnknown };
};

/** 1e-10 USD units → an exact decimal string for a numeric(20, 10) column. */
export const unitsToDecimal = (units: bigint): string => {
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(COST_SCALE + 1, '0');
  return `${negative ? '-' : ''}${digits.slice(0, -COST_SCALE)}.${digits.slice(-COST_SCALE)}`;
};

/**
 * An exact decimal (a numeric(20, 10) column read as text, e.g. `0.0000123000`) → 1e-10
 * USD units, the inverse of {@link unitsToDecimal}.
 * @throws RangeError when the text is not a decimal with at most 10 fraction digits.
 */
export const decimalToUnits = (text: string): bigint => {
  const match = /^(-?)(\d+)(?:\.(\d{0,10}))?$/.exec(text.trim());
  if (match === null) {
    throw new RangeError(`not an exact decimal of scale ${COST_SCALE}: ${text}`);
  }
  const [, sign = '', integer = '0', fraction = ''] = match;
  const units = BigInt(integer) * BigInt(COST_UNITS_PER_USD) + BigInt(fraction.padEnd(COST_SCALE, '0'));
  return sign === '-' ? -units : units;
};
