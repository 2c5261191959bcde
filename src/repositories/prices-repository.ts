import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import type { PriceRow } from '../providers/pricing.js';

const PriceDbRow = z.object({
  id: z.string(),
  provider: z.string(),
  model_pattern: z.string(),
  valid_from: z.string(),
  input_per_mtok: z.number(),
  cache_read_per_mtok: z.number(),
  cache_write_per_mtok: z.number(),
  output_per_mtok: z.number(),
  source: z.enum(['shipped', 'operator']),
});

/**
 * Inserts the shipped price rows the database does not have yet. Rows are never
 * updated: a price change is a new row (new id, later valid_from), so costs already
 * recorded keep pointing at the row they were computed with.
 */
export const syncShippedPrices = async (pool: DatabasePool, prices: readonly PriceRow[]): Promise<void> => {
  if (prices.length === 0) {
    return;
  }
  await pool.query(sql.unsafe`
    INSERT INTO model_prices (id, provider, model_pattern, valid_from, input_per_mtok, cache_read_per_mtok,
                              cache_write_per_mtok, output_per_mtok, source)
    SELECT id, provider, model_pattern, valid_from::timestamptz, input, cache_read, cache_write, output, 'shipped'
    FROM ${sql.unnest(
      prices.map((p) => [
        p.id,
        p.provider,
        p.modelPattern,
        p.validFrom,
        p.inputPerMTok,
        p.cacheReadPerMTok,
        p.cacheWritePerMTok,
        p.outputPerMTok,
      ]),
      ['text', 'text', 'text', 'text', 'numeric', 'numeric', 'numeric', 'numeric'],
    )} AS p(id, provider, model_pattern, valid_from, input, cache_read, cache_write, output)
    ON CONFLICT DO NOTHING`);
};

/** Every price row, split into shipped and operator rows. */
export const loadPrices = async (
  pool: DatabasePool,
): Promise<{ shipped: PriceRow[]; operator: PriceRow[] }> => {
  const rows = await pool.any(sql.type(PriceDbRow)`
    SELECT id, provider, model_pattern, valid_from, input_per_mtok, cache_read_per_mtok,
           cache_write_per_mtok, output_per_mtok, source
    FROM model_prices`);
  const toPrice = (row: z.infer<typeof PriceDbRow>): PriceRow => ({
    id: row.id,
    provider: row.provider,
    modelPattern: row.model_pattern,
    validFrom: row.valid_from,
    inputPerMTok: row.input_per_mtok,
    cacheReadPerMTok: row.cache_read_per_mtok,
    cacheWritePerMTok: row.cache_write_per_mtok,
    outputPerMTok: row.output_per_mtok,
  });
  return {
    shipped: rows.filter((row) => row.source === 'shipped').map(toPrice),
    operator: rows.filter((row) => row.source === 'operator').map(toPrice),
  };
};
