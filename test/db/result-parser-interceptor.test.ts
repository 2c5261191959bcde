import { SchemaValidationError, sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

describe('row validation', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db.drop();
  });

  it('returns rows parsed by the query schema', async () => {
    const row = await db.pool.one(
      sql.type(z.object({ n: z.number(), at: z.iso.datetime(), label: z.string().transform((s) => s.toUpperCase()) }))`
        SELECT 42::int8 AS n, now() AS at, 'ok' AS label`,
    );
    expect(row).toEqual({ n: 42, at: expect.any(String), label: 'OK' });
  });

  it('fails a query whose row does not match its schema', async () => {
    await expect(db.pool.one(sql.type(z.object({ n: z.number() }))`SELECT 'not a number' AS n`)).rejects.toBeInstanceOf(
      SchemaValidationError,
    );
  });

  it('fails on a missing column and on a null where none is allowed', async () => {
    await expect(db.pool.one(sql.type(z.object({ a: z.number(), b: z.number() }))`SELECT 1 AS a`)).rejects.toThrow(SchemaValidationError);
    await expect(db.pool.any(sql.type(z.object({ a: z.string() }))`SELECT NULL::text AS a`)).rejects.toThrow(SchemaValidationError);
  });

  it('validates inside transactions too', async () => {
    await expect(db.pool.transaction((tx) => tx.one(sql.type(z.object({ ok: z.boolean() }))`SELECT 1 AS ok`))).rejects.toBeInstanceOf(
      SchemaValidationError,
    );
  });

  it('leaves untyped queries alone', async () => {
    expect(await db.pool.oneFirst(sql.unsafe`SELECT 'x' AS v`)).toBe('x');
  });

  it('enforces the conversation totals check constraint', async () => {
    await db.pool.query(sql.unsafe`
      INSERT INTO users (id, email, username, password_hash) VALUES ('u1', 'a@example.com', 'a', 'h')`);
    await expect(
      db.pool.query(sql.unsafe`
        INSERT INTO conversations (id, user_id, title, total_cost) VALUES ('c1', 'u1', 't', -0.01)`),
    ).rejects.toThrow();
  });
});
