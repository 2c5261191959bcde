import { sql, type DatabasePool } from 'slonik';
import { ulid } from 'ulid';

/** A user row with a throwaway password hash (auth is tested elsewhere). */
export const createUser = async (pool: DatabasePool, fields: { tokenBudget?: number; costBudgetUsd?: number } = {}): Promise<string> => {
  const id = ulid();
  await pool.query(sql.unsafe`
    INSERT INTO users (id, email, username, password_hash, token_budget, cost_budget_usd)
    VALUES (${id}, ${`${id.toLowerCase()}@example.com`}, ${`user_${id.toLowerCase()}`}, 'not-a-real-hash',
            ${fields.tokenBudget ?? null}, ${fields.costBudgetUsd ?? null})`);
  return id;
};

export const createConversation = async (pool: DatabasePool, userId: string, title = 'test conversation'): Promise<string> => {
  const id = ulid();
  await pool.query(sql.unsafe`INSERT INTO conversations (id, user_id, title) VALUES (${id}, ${userId}, ${title})`);
  return id;
};
