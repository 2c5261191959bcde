import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';

const BudgetUseRow = z.object({ cost: z.number().nullable(), tokens: z.number().nullable() });

export type BudgetUse = z.infer<typeof BudgetUseRow>;

/**
 * The largest share of their own budget any user has spent (users.total_cost over
 * users.cost_budget_usd, and the same for tokens); null where no user has that budget.
 * A budget of 0 counts as used up (1): it allows nothing.
 */
export const readBudgetUse = async (pool: DatabasePool): Promise<BudgetUse> =>
  pool.one(sql.type(BudgetUseRow)`
    SELECT
      max(CASE WHEN cost_budget_usd > 0 THEN (total_cost / cost_budget_usd)::float8 ELSE 1 END)
        FILTER (WHERE cost_budget_usd IS NOT NULL) AS cost,
      max(CASE WHEN token_budget > 0 THEN total_tokens::float8 / token_budget ELSE 1 END)
        FILTER (WHERE token_budget IS NOT NULL) AS tokens
    FROM users
    WHERE cost_budget_usd IS NOT NULL OR token_budget IS NOT NULL`);
