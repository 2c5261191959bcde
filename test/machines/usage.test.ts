import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  addUsage,
  completionTokens,
  costToUnits,
  decimalToUnits,
  promptTokens,
  roundCost,
  runCostOfCalls,
  sumCosts,
  sumUsage,
  totalTokens,
  unitsToCost,
  unitsToDecimal,
  zeroUsage,
} from '../../machines/usage.js';

describe('usage arithmetic', () => {
  const a = { inputUncached: 10, cacheRead: 20, cacheWrite: 30, output: 40, reasoning: 5 };
  const b = { inputUncached: 1, cacheRead: 2, cacheWrite: 3, output: 4, reasoning: 1 };

  it('counts prompt tokens over all three input buckets, and reasoning inside output', () => {
    expect(promptTokens(a)).toBe(60);
    expect(completionTokens(a)).toBe(40);
    expect(totalTokens(a)).toBe(100);
  });

  it('adds usage bucket by bucket', () => {
    expect(addUsage(a, b)).toEqual({ inputUncached: 11, cacheRead: 22, cacheWrite: 33, output: 44, reasoning: 6 });
    expect(addUsage(zeroUsage(), a)).toEqual(a);
  });

  it('sums reported usage only: a missing report adds nothing', () => {
    expect(sumUsage([a, null, b, null])).toEqual(addUsage(a, b));
    expect(sumUsage([null])).toEqual(zeroUsage());
  });
});

describe('cost arithmetic', () => {
  it('sums costs exactly in 1e-10 USD units', () => {
    const parts = Array.from({ length: 10_000 }, () => 0.0000006);
    expect(parts.reduce((sum, cost) => sum + cost, 0)).not.toBe(0.006);
    expect(sumCosts(parts)).toBe(0.006);
    expect(roundCost(0.1 + 0.2)).toBe(0.3);
  });

  it('gives the sum of the rounded parts for any costs (property)', () => {
    const cost = fc.integer({ min: 0, max: 10_000_000_000_000 }).map((units) => units / 1e10);
    fc.assert(
      fc.property(fc.array(cost, { maxLength: 50 }), (costs) => {
        const units = costs.reduce((sum, usd) => sum + costToUnits(usd), 0n);
        expect(costToUnits(sumCosts(costs))).toBe(units);
      }),
    );
  });

  it('prices a run with an unknown price as unknown, not as the partial sum', () => {
    const usage = { inputUncached: 1, cacheRead: 0, cacheWrite: 0, output: 1, reasoning: 0 };
    expect(
      runCostOfCalls([
        { usage, costUsd: 0.1 },
        { usage, costUsd: 0.2 },
      ]),
    ).toEqual({ costUsd: 0.3, costUnknown: false });
    expect(
      runCostOfCalls([
        { usage, costUsd: 0.1 },
        { usage, costUsd: null },
      ]),
    ).toEqual({ costUsd: null, costUnknown: true });
    // A call without usage has nothing to price (usage_missing): the price is not unknown.
    expect(
      runCostOfCalls([
        { usage, costUsd: 0.1 },
        { usage: null, costUsd: null },
      ]),
    ).toEqual({ costUsd: 0.1, costUnknown: false });
  });

  it('writes and reads numeric(20, 10) text exactly', () => {
    expect(unitsToDecimal(123n)).toBe('0.0000000123');
    expect(unitsToDecimal(-10_000_000_001n)).toBe('-1.0000000001');
    expect(decimalToUnits('0.0000123000')).toBe(123_000n);
    expect(decimalToUnits('2')).toBe(20_000_000_000n);
    expect(() => decimalToUnits('0.00000000001')).toThrow(RangeError);
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 19n), max: 10n ** 19n }), (units) => {
        expect(decimalToUnits(unitsToDecimal(units))).toBe(units);
      }),
    );
    expect(unitsToCost(costToUnits(0.0002832))).toBe(0.0002832);
  });
});
