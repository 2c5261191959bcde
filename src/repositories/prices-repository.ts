import { sql, UniqueIntegrityConstraintViolationError, type CommonQueryMethods, type DatabasePool } from 'slonik';
import { ulid } from '../ids.js';
import { z } from 'zod';
import type { PriceRow } from '../providers/pricing.js';
import { insertAdminEvent } from './admin-events.js';

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

/** Every price row that is not retired, split into shipped and operator rows (on the pool or in a transaction). */
export const loadPrices = async (pool: CommonQueryMethods): Promise<{ shipped: PriceRow[]; operator: PriceRow[] }> => {
  const rows = await pool.any(sql.type(PriceDbRow)`
    SELECT id, provider, model_pattern, valid_from, input_per_mtok, cache_read_per_mtok,
           cache_write_per_mtok, output_per_mtok, source
    FROM model_prices
    WHERE retired_at IS NULL`);
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

/** A price row as the admin routes show it: the version, who added it, and its retirement. */
export const PriceVersionRow = PriceDbRow.extend({
  created_at: z.string(),
  created_by: z.string().nullable(),
  retired_at: z.string().nullable(),
  retired_by: z.string().nullable(),
});
export type PriceVersionRow = z.infer<typeof PriceVersionRow>;

const versionColumns = sql.fragment`
  id, provider, model_pattern, valid_from, input_per_mtok, cache_read_per_mtok, cache_write_per_mtok,
  output_per_mtok, source, created_at, created_by, retired_at, retired_by`;

export type PriceListFilter = {
  readonly provider?: string | undefined;
  readonly modelPattern?: string | undefined;
  readonly source?: 'shipped' | 'operator' | undefined;
  /** `active`: not retired; `retired`: retired; `all`: both. */
  readonly status: 'active' | 'retired' | 'all';
};

export type NewOperatorPrice = Omit<PriceRow, 'id'>;

/** Who changes the prices, for the row and its event. */
export type Audit = { readonly userId: string; readonly correlationId: string };

/** A version's figures as its events record them. */
const eventData = (row: PriceVersionRow): Record<string, unknown> => ({
  price_id: row.id,
  provider: row.provider,
  model_pattern: row.model_pattern,
  valid_from: row.valid_from,
  input_per_mtok: row.input_per_mtok,
  cache_read_per_mtok: row.cache_read_per_mtok,
  cache_write_per_mtok: row.cache_write_per_mtok,
  output_per_mtok: row.output_per_mtok,
  retired_at: row.retired_at,
});

/** The outcome of retiring a row. */
export type RetireOutcome =
  | { readonly kind: 'retired'; readonly row: PriceVersionRow }
  | { readonly kind: 'not_found' }
  | { readonly kind: 'shipped' }
  | { readonly kind: 'already_retired'; readonly row: PriceVersionRow };

/** PostgreSQL's unique_violation. */
const UNIQUE_VIOLATION = '23505';

const isUniqueViolation = (error: unknown): boolean => {
  for (let current: unknown = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth += 1) {
    if (current instanceof UniqueIntegrityConstraintViolationError || (current as { code?: unknown }).code === UNIQUE_VIOLATION)
      return true;
  }
  return false;
};

/**
 * The price versions as operators manage them (`/api/v1/admin/prices`). Rows are only
 * ever added, or retired once; their figures are never changed (migration 0010 enforces it).
 */
export const createPricesRepository = (pool: DatabasePool) => ({
  /** One page of versions, by provider, pattern and newest `valid_from` first, with the count of all that match. */
  list: async (
    filter: PriceListFilter,
    page: { limit: number; offset: number },
  ): Promise<{ rows: readonly PriceVersionRow[]; total: number }> => {
    const conditions = [sql.fragment`TRUE`];
    if (filter.provider !== undefined) conditions.push(sql.fragment`provider = ${filter.provider}`);
    if (filter.modelPattern !== undefined) conditions.push(sql.fragment`model_pattern = ${filter.modelPattern}`);
    if (filter.source !== undefined) conditions.push(sql.fragment`source = ${filter.source}`);
    if (filter.status === 'active') conditions.push(sql.fragment`retired_at IS NULL`);
    if (filter.status === 'retired') conditions.push(sql.fragment`retired_at IS NOT NULL`);
    const where = sql.join(conditions, sql.fragment` AND `);
    const rows = await pool.any(sql.type(PriceVersionRow)`
      SELECT ${versionColumns} FROM model_prices WHERE ${where}
      ORDER BY provider, model_pattern, valid_from DESC, created_at DESC, id
      LIMIT ${page.limit} OFFSET ${page.offset}`);
    const total = await pool.oneFirst(sql.type(z.object({ n: z.number() }))`
      SELECT count(*)::int AS n FROM model_prices WHERE ${where}`);
    return { rows, total };
  },

  findById: async (id: string): Promise<PriceVersionRow | null> =>
    pool.maybeOne(sql.type(PriceVersionRow)`SELECT ${versionColumns} FROM model_prices WHERE id = ${id}`),

  /**
   * Adds an operator version and its `price_added` event; null when a live operator row
   * has the same provider, pattern and valid_from.
   */
  addOperatorPrice: async (price: NewOperatorPrice, audit: Audit): Promise<PriceVersionRow | null> => {
    try {
      return await pool.transaction(async (tx) => {
        const row = await tx.one(sql.type(PriceVersionRow)`
          INSERT INTO model_prices (id, provider, model_pattern, valid_from, input_per_mtok, cache_read_per_mtok,
                                    cache_write_per_mtok, output_per_mtok, source, created_by)
          VALUES (${`operator:${ulid()}`}, ${price.provider}, ${price.modelPattern}, ${price.validFrom}::timestamptz,
                  ${price.inputPerMTok}, ${price.cacheReadPerMTok}, ${price.cacheWritePerMTok}, ${price.outputPerMTok},
                  'operator', ${audit.userId})
          RETURNING ${versionColumns}`);
        await insertAdminEvent(tx, { type: 'price_added', ...audit, data: eventData(row) });
        return row;
      });
    } catch (error) {
      if (isUniqueViolation(error)) return null;
      throw error;
    }
  },

  /** Retires an operator row (once), with its `price_retired` event; shipped rows are not retired (an operator row overrides them). */
  retire: async (id: string, audit: Audit): Promise<RetireOutcome> =>
    pool.transaction(async (tx) => {
      const row = await tx.maybeOne(sql.type(PriceVersionRow)`
        UPDATE model_prices SET retired_at = now(), retired_by = ${audit.userId}
        WHERE id = ${id} AND source = 'operator' AND retired_at IS NULL
        RETURNING ${versionColumns}`);
      if (row !== null) {
        await insertAdminEvent(tx, { type: 'price_retired', ...audit, data: eventData(row) });
        return { kind: 'retired', row } as const;
      }
      const existing = await tx.maybeOne(sql.type(PriceVersionRow)`SELECT ${versionColumns} FROM model_prices WHERE id = ${id}`);
      if (existing === null) return { kind: 'not_found' } as const;
      if (existing.source === 'shipped') return { kind: 'shipped' } as const;
      return { kind: 'already_retired', row: existing } as const;
    }),
});

export type PricesRepository = ReturnType<typeof createPricesRepository>;
