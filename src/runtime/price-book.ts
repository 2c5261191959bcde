import { findPrice, type PriceRow } from '../providers/pricing.js';

/** Finds the price a model call is costed with. */
export type PriceBook = {
  readonly find: (provider: string, model: string, at: Date) => PriceRow | null;
};

/**
 * Operator prices override shipped ones: a model the operator priced is costed only
 * from the operator's rows; anything else from the shipped list.
 */
export const createPriceBook = (shipped: readonly PriceRow[], operator: readonly PriceRow[] = []): PriceBook => ({
  find: (provider, model, at) => findPrice(operator, provider, model, at) ?? findPrice(shipped, provider, model, at),
});
