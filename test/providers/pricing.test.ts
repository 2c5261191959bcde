import { describe, expect, it } from 'vitest';
import { computeCost, findPrice, loadShippedPrices, PriceListSchema, type PriceRow } from '../../src/providers/pricing.js';
import { sumCosts, type Usage } from '../../machines/usage.js';

const row = (id: string, modelPattern: string, validFrom: string, inputPerMTok: number): PriceRow => ({
  id,
  provider: 'openai',
  modelPattern,
  validFrom,
  inputPerMTok,
  cacheReadPerMTok: inputPerMTok / 2,
  cacheWritePerMTok: inputPerMTok,
  outputPerMTok: inputPerMTok * 4,
});

const usage = (fields: Partial<Usage>): Usage => ({
  inputUncached: 0,
  cacheRead: 0,
  cacheWrite: 0,
  output: 0,
  reasoning: 0,
  ...fields,
});

describe('findPrice', () => {
  const rows = [
    row('family', 'gpt-4o*', '2024-01-01', 5),
    row('mini', 'gpt-4o-mini*', '2024-01-01', 0.15),
    row('mini-snapshot', 'gpt-4o-mini-2024-07-18', '2024-01-01', 0.1),
    row('family-cut', 'gpt-4o*', '2024-10-01', 2.5),
  ];

  it('picks the pattern with the longest literal prefix', () => {
    expect(findPrice(rows, 'openai', 'gpt-4o-mini-2025-01-01', new Date('2025-01-01'))?.id).toBe('mini');
    expect(findPrice(rows, 'openai', 'gpt-4o-2024-08-06', new Date('2025-01-01'))?.id).toBe('family-cut');
  });

  it('prefers an exact name over any glob', () => {
    expect(findPrice(rows, 'openai', 'gpt-4o-mini-2024-07-18', new Date('2025-01-01'))?.id).toBe('mini-snapshot');
    const tie = [row('glob', 'gpt-4o*', '2024-01-01', 1), row('exact', 'gpt-4o', '2024-01-01', 2)];
    expect(findPrice(tie, 'openai', 'gpt-4o', new Date('2025-01-01'))?.id).toBe('exact');
  });

  it('picks the row valid at the time of the call', () => {
    expect(findPrice(rows, 'openai', 'gpt-4o', new Date('2024-09-30T23:59:59Z'))?.id).toBe('family');
    expect(findPrice(rows, 'openai', 'gpt-4o', new Date('2024-10-01T00:00:00Z'))?.id).toBe('family-cut');
  });

  it('keeps an older, more specific row over a newer, less specific one', () => {
    expect(findPrice(rows, 'openai', 'gpt-4o-mini', new Date('2025-01-01'))?.id).toBe('mini');
  });

  it('returns null for an unknown model, another provider, or a time before any price', () => {
    expect(findPrice(rows, 'openai', 'gpt-3.5-turbo', new Date('2025-01-01'))).toBeNull();
    expect(findPrice(rows, 'anthropic', 'gpt-4o', new Date('2025-01-01'))).toBeNull();
    expect(findPrice(rows, 'openai', 'gpt-4o', new Date('2023-12-31'))).toBeNull();
  });

  it('versions the shipped o3 price across its June 2025 price cut', () => {
    const prices = loadShippedPrices();
    expect(findPrice(prices, 'openai', 'o3', new Date('2025-05-01'))?.inputPerMTok).toBe(10);
    expect(findPrice(prices, 'openai', 'o3-2025-04-16', new Date('2025-07-01'))?.inputPerMTok).toBe(2);
    expect(findPrice(prices, 'openai', 'o3-mini', new Date('2025-07-01'))?.inputPerMTok).toBe(1.1);
    expect(findPrice(prices, 'openai', 'o3', new Date('2025-03-01'))).toBeNull();
  });

  it('does not price a differently priced sibling with a family glob', () => {
    const prices = loadShippedPrices();
    const now = new Date('2026-01-01');
    expect(findPrice(prices, 'openai', 'gpt-4o-mini-2024-07-18', now)?.id).toBe('openai:gpt-4o-mini-20*@2024-07-18');
    expect(findPrice(prices, 'openai', 'gpt-4o-2024-05-13', now)?.inputPerMTok).toBe(5);
    expect(findPrice(prices, 'openai', 'gpt-4o-realtime-preview', now)).toBeNull();
    expect(findPrice(prices, 'anthropic', 'claude-opus-4-1-20250805', now)?.inputPerMTok).toBe(15);
    expect(findPrice(prices, 'anthropic', 'claude-opus-4-5-20251101', now)?.inputPerMTok).toBe(5);
    expect(findPrice(prices, 'anthropic', 'claude-opus-4-20250514', now)?.inputPerMTok).toBe(15);
  });
});

describe('computeCost', () => {
  const prices = loadShippedPrices();
  const at = new Date('2026-01-01');

  it('costs OpenAI usage with cached input at the cache-read price (worked by hand)', () => {
    const price = findPrice(prices, 'openai', 'gpt-4o-mini', at)!;
    // 176 × $0.15 + 1024 × $0.075 + 300 × $0.60 = $283.2 per 1M tokens → $0.0002832
    expect(computeCost(usage({ inputUncached: 176, cacheRead: 1024, output: 300 }), price)).toBe(0.0002832);
  });

  it('costs Anthropic usage with cache writes and reads (worked by hand)', () => {
    const price = findPrice(prices, 'anthropic', 'claude-sonnet-4-5-20250929', at)!;
    // 50 × $3 + 3000 × $0.30 + 2000 × $3.75 + 80 × $15 = $9750 per 1M tokens → $0.00975
    expect(computeCost(usage({ inputUncached: 50, cacheRead: 3000, cacheWrite: 2000, output: 80 }), price)).toBe(0.00975);
  });

  it('does not charge reasoning tokens twice', () => {
    const price = findPrice(prices, 'openai', 'o4-mini', at)!;
    // 100 × $1.10 + 1000 × $4.40 = $4510 per 1M tokens → $0.00451, whatever the reasoning share
    expect(computeCost(usage({ inputUncached: 100, output: 1000, reasoning: 900 }), price)).toBe(0.00451);
    expect(computeCost(usage({ inputUncached: 100, output: 1000, reasoning: 0 }), price)).toBe(0.00451);
  });

  it('keeps the smallest prices exact to 10 decimals', () => {
    const price = findPrice(prices, 'openai', 'gpt-5-nano', at)!;
    // one cached token at $0.005 per 1M = $0.000000005
    expect(computeCost(usage({ cacheRead: 1 }), price)).toBe(0.000000005);
    // 3 × $0.05 where float arithmetic gives 1.5000000000000002e-7
    expect(computeCost(usage({ inputUncached: 3 }), price)).toBe(0.00000015);
  });

  it('costs local models at zero', () => {
    const price = findPrice(prices, 'local', 'local-echo-1', at)!;
    expect(computeCost(usage({ inputUncached: 1000, output: 1000 }), price)).toBe(0);
  });
});

describe('sumCosts', () => {
  it('adds many costs without float drift', () => {
    const perCall = computeCost(usage({ output: 1 }), findPrice(loadShippedPrices(), 'openai', 'gpt-4o-mini', new Date('2026-01-01'))!);
    expect(perCall).toBe(0.0000006);
    const calls = Array.from({ length: 10_000 }, () => perCall);
    // The naive float sum drifts (0.00599999999999923); the integer sum does not.
    expect(calls.reduce((sum, cost) => sum + cost, 0)).not.toBe(0.006);
    expect(sumCosts(calls)).toBe(0.006);
    expect(sumCosts(Array.from({ length: 1_000 }, () => 0.0002832))).toBe(0.2832);
  });
});

describe('the shipped price list', () => {
  const prices = loadShippedPrices();
  const at = new Date('2026-01-01');

  it('prices every model the service offers by default', () => {
    const models: Array<[string, string]> = [
      ['openai', 'gpt-4o'],
      ['openai', 'gpt-4o-mini'],
      ['openai', 'gpt-4.1'],
      ['openai', 'gpt-4.1-mini'],
      ['openai', 'gpt-4.1-nano'],
      ['openai', 'o3'],
      ['openai', 'o4-mini'],
      ['openai', 'gpt-5'],
      ['openai', 'gpt-5-mini'],
      ['openai', 'gpt-5-nano'],
      ['anthropic', 'claude-opus-4-5'],
      ['anthropic', 'claude-opus-4-1'],
      ['anthropic', 'claude-opus-4-0'],
      ['anthropic', 'claude-sonnet-4-5'],
      ['anthropic', 'claude-sonnet-4-0'],
      ['anthropic', 'claude-haiku-4-5'],
      ['anthropic', 'claude-3-7-sonnet-20250219'],
      ['anthropic', 'claude-3-5-sonnet-20241022'],
      ['anthropic', 'claude-3-5-haiku-20241022'],
      ['local', 'local-echo-1'],
    ];
    for (const [provider, model] of models) {
      expect(findPrice(prices, provider, model, at), `${provider}/${model}`).not.toBeNull();
    }
  });

  it('prices Anthropic cache writes at 1.25× and cache reads at 0.1× the input price', () => {
    for (const price of prices.prices.filter((candidate) => candidate.provider === 'anthropic')) {
      expect(price.cacheWritePerMTok, price.id).toBeCloseTo(price.inputPerMTok * 1.25, 10);
      expect(price.cacheReadPerMTok, price.id).toBeCloseTo(price.inputPerMTok * 0.1, 10);
    }
  });

  it('rejects a list with duplicate ids or sub-unit prices', () => {
    const list = { version: 'x', pricesAsOf: '2025-01-01', currency: 'USD' };
    const a = row('same', 'a', '2024-01-01', 1);
    expect(() => PriceListSchema.parse({ ...list, prices: [a, { ...a, modelPattern: 'b' }] })).toThrow(/duplicate/);
    expect(() => PriceListSchema.parse({ ...list, prices: [{ ...a, inputPerMTok: 0.00001 }] })).toThrow();
  });
});
