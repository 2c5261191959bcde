import { CheckIntegrityConstraintViolationError, sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadShippedPrices, type PriceRow } from '../../src/providers/pricing.js';
import { createPricesRepository, loadPrices, syncShippedPrices } from '../../src/repositories/prices-repository.js';
import { loadPriceBook } from '../../src/runtime/price-book.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createUser } from '../helpers/fixtures.js';

const at = new Date('2025-06-01T00:00:00Z');

describe('the reloadable price book', () => {
  let db: TestDatabase;
  let operatorId: string;
  beforeAll(async () => {
    db = await createTestDatabase();
    await syncShippedPrices(db.pool, loadShippedPrices().prices);
    operatorId = await createUser(db.pool);
  });
  afterAll(async () => {
    await db.drop();
  });

  it('picks up a price another instance added, at its next periodic reload, and drops a retired one', async () => {
    // Two instances' books on one database; the change goes through the other one's repository.
    const book = await loadPriceBook(async () => loadPrices(db.pool));
    expect(book.find('openai', 'gpt-4o-mini', at)?.id).toBe('openai:gpt-4o-mini@2024-07-18');
    const errors: unknown[] = [];
    book.reloadEvery(25, (error) => errors.push(error));
    try {
      const added = await createPricesRepository(db.pool).addOperatorPrice(
        {
          provider: 'openai',
          modelPattern: 'gpt-4o-mini',
          validFrom: '2025-01-01T00:00:00Z',
          inputPerMTok: 1,
          cacheReadPerMTok: 1,
          cacheWritePerMTok: 1,
          outputPerMTok: 2,
        },
        { userId: operatorId, correlationId: 'price-book-test' },
      );
      expect(added).not.toBeNull();
      await expect.poll(() => book.find('openai', 'gpt-4o-mini', at)?.id, { timeout: 5_000 }).toBe(added?.id);
      // Before its valid_from the shipped version still prices the model.
      expect(book.find('openai', 'gpt-4o-mini', new Date('2024-12-31T00:00:00Z'))?.id).toBe('openai:gpt-4o-mini@2024-07-18');

      const retired = await createPricesRepository(db.pool).retire(added?.id ?? '', {
        userId: operatorId,
        correlationId: 'price-book-test',
      });
      expect(retired.kind).toBe('retired');
      await expect.poll(() => book.find('openai', 'gpt-4o-mini', at)?.id, { timeout: 5_000 }).toBe('openai:gpt-4o-mini@2024-07-18');
      expect(errors).toEqual([]);
    } finally {
      book.stop();
    }
  });

  it('never goes back to rows older than the ones it applied when reloads overlap', async () => {
    const row = (id: string): PriceRow => ({
      id,
      provider: 'p',
      modelPattern: 'm',
      validFrom: '2020-01-01',
      inputPerMTok: 1,
      cacheReadPerMTok: 1,
      cacheWritePerMTok: 1,
      outputPerMTok: 1,
    });
    const pending: ((rows: PriceRow[]) => void)[] = [];
    let loads = 0;
    const book = await loadPriceBook(async () => {
      loads += 1;
      if (loads === 1) return { shipped: [row('initial')], operator: [] };
      const rows = await new Promise<PriceRow[]>((resolve) => pending.push(resolve));
      return { shipped: rows, operator: [] };
    });
    const older = book.reload();
    const newer = book.reload();
    pending[1]?.([row('newer')]);
    await newer;
    pending[0]?.([row('older')]);
    await older;
    expect(book.find('p', 'm', at)?.id).toBe('newer');
  });

  it('refuses to change the figures of a stored price version', async () => {
    await expect(
      db.pool.query(sql.unsafe`UPDATE model_prices SET output_per_mtok = 99 WHERE id = 'openai:gpt-4o-mini@2024-07-18'`),
    ).rejects.toThrow(CheckIntegrityConstraintViolationError);
  });
});
