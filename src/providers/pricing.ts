import { z } from 'zod';
import shipped from './prices.json' with { type: 'json' };
import { unitsToCost, type Usage } from '../../machines/usage.js';

// Prices are held to 1e-4 USD per 1M tokens (the finest public price, $0.005/MTok, is
// 50 of those units). tokens × units is then an integer count of 1e-10 USD, exactly
// the contract's rounding step (machines/usage.ts), so a cost is exact to the last decimal.
const PRICE_UNITS_PER_USD = 10_000;

const pricePerMTok = z
  .number()
  .min(0)
  .refine(
    (usd) => Math.abs(usd * PRICE_UNITS_PER_USD - Math.round(usd * PRICE_UNITS_PER_USD)) < 1e-6,
    'at most 4 decimal places (units of $0.0001 per 1M tokens)',
  );

const isoDate = z.string().refine((value) => /^\d{4}-\d{2}-\d{2}/.test(value) && !Number.isNaN(Date.parse(value)), {
  message: 'an ISO 8601 date, e.g. 2025-04-14',
});

/** One versioned price: USD per 1M tokens for each usage bucket, from `validFrom` on. */
export const PriceRowSchema = z.strictObject({
  /** Stable id recorded on each costed model call; never reused for another price. */
  id: z.string().min(1),
  provider: z.string().min(1),
  /** Exact model name, or a glob where `*` matches any run of characters. */
  modelPattern: z.string().min(1),
  validFrom: isoDate,
  inputPerMTok: pricePerMTok,
  cacheReadPerMTok: pricePerMTok,
  cacheWritePerMTok: pricePerMTok,
  outputPerMTok: pricePerMTok,
});

/** A price row; see {@link PriceRowSchema}. */
export type PriceRow = z.infer<typeof PriceRowSchema>;

/** The shipped, versioned price list. */
export const PriceListSchema = z
  .object({
    version: z.string().min(1),
    /** When the prices were taken from the providers' public pages. */
    pricesAsOf: isoDate,
    currency: z.literal('USD'),
    prices: z.array(PriceRowSchema),
  })
  .superRefine((list, context) => {
    const seen = new Set<string>();
    for (const [index, row] of list.prices.entries()) {
      if (seen.has(row.id)) {
        context.addIssue({ code: 'custom', message: `duplicate price id ${row.id}`, path: ['prices', index, 'id'] });
      }
      seen.add(row.id);
    }
  });

/** A validated price list. */
export type PriceList = z.infer<typeof PriceListSchema>;

/**
 * Loads the price list shipped with the service (`prices.json`), validated.
 * @throws ZodError when the shipped file is malformed (a build defect, not a runtime state).
 */
export function loadShippedPrices(): PriceList {
  return PriceListSchema.parse(shipped);
}

type Specificity = readonly [prefix: number, exact: number, literals: number];

function specificity(pattern: string): Specificity {
  const wildcard = pattern.indexOf('*');
  if (wildcard === -1) return [pattern.length, 1, pattern.length];
  return [wildcard, 0, pattern.replaceAll('*', '').length];
}

function compareSpecificity(a: Specificity, b: Specificity): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

const globCache = new Map<string, RegExp>();

function matches(pattern: string, model: string): boolean {
  if (!pattern.includes('*')) return pattern.toLowerCase() === model.toLowerCase();
  let regex = globCache.get(pattern);
  if (regex === undefined) {
    const source = pattern
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*');
    regex = new RegExp(`^${source}$`, 'i');
    globCache.set(pattern, regex);
  }
  return regex.test(model);
}

/**
 * The price for a call to `model` of `provider` made at `at`: among rows already valid
 * at `at` whose pattern matches, the most specific pattern wins (longest literal
 * prefix before the first `*`; an exact name beats a glob with the same prefix), then
 * the latest `validFrom`. Returns `null` when no row matches (→ `price_unknown`).
 */
export function findPrice(prices: PriceList | readonly PriceRow[], provider: string, model: string, at: Date): PriceRow | null {
  const rows = 'prices' in prices ? prices.prices : prices;
  const time = at.getTime();
  let best: { row: PriceRow; specificity: Specificity; validFrom: number } | null = null;
  for (const row of rows) {
    if (row.provider !== provider || !matches(row.modelPattern, model)) continue;
    const validFrom = Date.parse(row.validFrom);
    if (!(validFrom <= time)) continue;
    const rowSpecificity = specificity(row.modelPattern);
    const order = best === null ? 1 : compareSpecificity(rowSpecificity, best.specificity) || validFrom - best.validFrom;
    if (order > 0) best = { row, specificity: rowSpecificity, validFrom };
  }
  return best?.row ?? null;
}

function priceUnits(usdPerMTok: number): bigint {
  return BigInt(Math.round(usdPerMTok * PRICE_UNITS_PER_USD));
}

/**
 * Cost of one model call in USD, rounded to 10 decimals (the contract): each bucket at
 * its own price; reasoning is part of `output` and not charged again. Computed in
 * integer units of 1e-10 USD, so the result is exact to the last decimal.
 * @throws RangeError when a bucket is not an integer (usage from normalizeUsage always is).
 */
export function computeCost(usage: Usage, price: PriceRow): number {
  return unitsToCost(computeCostUnits(usage, price));
}

/**
 * The cost of {@link computeCost} as an integer count of 1e-10 USD (the scale of the
 * database's numeric(20, 10)), for sums and differences that must stay exact.
 * @throws RangeError when a bucket is not an integer.
 */
export function computeCostUnits(usage: Usage, price: PriceRow): bigint {
  return (
    BigInt(usage.inputUncached) * priceUnits(price.inputPerMTok) +
    BigInt(usage.cacheRead) * priceUnits(price.cacheReadPerMTok) +
    BigInt(usage.cacheWrite) * priceUnits(price.cacheWritePerMTok) +
    BigInt(usage.output) * priceUnits(price.outputPerMTok)
  );
}
