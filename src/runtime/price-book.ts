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

/** The price rows a book is built from (`loadPrices` in src/repositories/prices-repository.ts). */
export type PriceSource = () => Promise<{ shipped: readonly PriceRow[]; operator: readonly PriceRow[] }>;

/** A price book that follows the database: the rows are a cache of `model_prices`, reloaded on demand and periodically. */
export type ReloadablePriceBook = PriceBook & {
  /** Reads the rows again; the book answers from the new rows once this resolves. */
  readonly reload: () => Promise<void>;
  /** Reloads every `intervalMs` (a failed reload keeps the previous rows and goes to `onError`). */
  readonly reloadEvery: (intervalMs: number, onError: (error: unknown) => void) => void;
  readonly stop: () => void;
};

/**
 * Loads a price book from `source` and keeps it reloadable. Several instances each hold
 * one: an instance that changes a price reloads at once, the others at their next
 * periodic reload. Overlapping reloads cannot go back in time: a load that started
 * before the one last applied is dropped.
 */
export const loadPriceBook = async (source: PriceSource): Promise<ReloadablePriceBook> => {
  let book = createPriceBook([], []);
  let started = 0;
  let applied = 0;
  let timer: NodeJS.Timeout | undefined;
  const reload = async (): Promise<void> => {
    started += 1;
    const generation = started;
    const { shipped, operator } = await source();
    if (generation > applied) {
      applied = generation;
      book = createPriceBook(shipped, operator);
    }
  };
  await reload();
  return {
    find: (provider, model, at) => book.find(provider, model, at),
    reload,
    reloadEvery: (intervalMs, onError) => {
      clearInterval(timer);
      timer = setInterval(() => {
        reload().catch(onError);
      }, intervalMs);
      timer.unref();
    },
    stop: () => clearInterval(timer),
  };
};
