-- Budgets that hold under any concurrency (issue 11, point 5). Before each model call of a
-- run subject to a budget, its worst case (input tokens counted + max_tokens, priced) is
-- reserved here, atomically against what is already spent and reserved; the reservation is
-- settled to the call's reported usage when it ends, released when it fails without usage,
-- and deleted with the run's record (in the transaction that adds the run's usage to the
-- conversation and user totals). Spent against a budget = the stored totals (finished
-- runs) + the reservations (held worst cases and settled actuals of runs still in flight).

CREATE TABLE budget_reservations (
  id              text PRIMARY KEY,
  run_id          text NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
  user_id         text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  conversation_id text REFERENCES conversations (id) ON DELETE CASCADE,
  tokens          bigint NOT NULL CHECK (tokens >= 0),
  cost            numeric(20, 10) NOT NULL CHECK (cost >= 0),
  state           text NOT NULL DEFAULT 'held' CHECK (state IN ('held', 'settled')),
  created_at      timestamptz NOT NULL DEFAULT now(),
  settled_at      timestamptz
);
CREATE INDEX budget_reservations_user_idx ON budget_reservations (user_id);
CREATE INDEX budget_reservations_conversation_idx ON budget_reservations (conversation_id);
CREATE INDEX budget_reservations_run_idx ON budget_reservations (run_id);

-- One model call's reservation, in one statement. The user row (then the conversation row,
-- when p_lock_conversation) is locked FOR NO KEY UPDATE — the lock the totals' UPDATE takes,
-- which does not block foreign-key checks — so reservations of one user are serialised.
-- Each statement of a VOLATILE function takes a new snapshot (READ COMMITTED), so the sums
-- read after the lock see every reservation committed before it was granted.
--
-- Money is counted in integer units of 1e-10 USD (the prices' resolution, see
-- src/providers/pricing.ts): p_input_unit / p_output_unit are units per token (input at the
-- dearest of its buckets: whether a cache is read or written is known only afterwards).
-- Null units: the model has no known price, and the call is reserved at the highest price
-- of its provider (p_provider) in model_prices, shipped and operator rows alike. The output
-- is capped to the smallest of p_max_output (null: none asked), the tokens left and the
-- output tokens the USD left can pay for after the input. Fewer than p_min_output output
-- tokens left: refused, with the budget that refused (tokens checked first). Granted:
-- output_tokens is the cap (null: no budget limits it), and a `held` row of input + cap
-- tokens at their price is inserted (none when no budget applies any more).
CREATE FUNCTION reserve_budget(
  p_id text,
  p_run_id text,
  p_user_id text,
  p_conversation_id text,
  p_lock_conversation boolean,
  p_provider text,
  p_input_tokens bigint,
  p_max_output bigint,
  p_input_unit bigint,
  p_output_unit bigint,
  p_min_output bigint
) RETURNS TABLE (granted boolean, output_tokens bigint, reason text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  budget_tokens bigint;
  budget_cost numeric;
  spent_tokens bigint;
  spent_cost numeric;
  held_tokens numeric;
  held_cost numeric;
  token_room numeric;
  cost_room numeric;
  by_tokens numeric;
  by_cost numeric;
  cap numeric;
  input_unit bigint;
  output_unit bigint;
BEGIN
  SELECT u.token_budget, u.cost_budget_usd, u.total_tokens, u.total_cost
    INTO budget_tokens, budget_cost, spent_tokens, spent_cost
    FROM users u WHERE u.id = p_user_id FOR NO KEY UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'reserve_budget: no user %', p_user_id;
  END IF;
  IF budget_tokens IS NOT NULL OR budget_cost IS NOT NULL THEN
    SELECT COALESCE(sum(r.tokens), 0), COALESCE(sum(r.cost), 0) INTO held_tokens, held_cost
      FROM budget_reservations r WHERE r.user_id = p_user_id;
    token_room := budget_tokens - spent_tokens - held_tokens;
    cost_room := (budget_cost - spent_cost - held_cost) * 10000000000;
  END IF;

  IF p_lock_conversation AND p_conversation_id IS NOT NULL THEN
    SELECT c.token_budget, c.cost_budget_usd, c.total_tokens, c.total_cost
      INTO budget_tokens, budget_cost, spent_tokens, spent_cost
      FROM conversations c WHERE c.id = p_conversation_id FOR NO KEY UPDATE;
    IF FOUND AND (budget_tokens IS NOT NULL OR budget_cost IS NOT NULL) THEN
      SELECT COALESCE(sum(r.tokens), 0), COALESCE(sum(r.cost), 0) INTO held_tokens, held_cost
        FROM budget_reservations r WHERE r.conversation_id = p_conversation_id;
      -- LEAST ignores NULLs: a budget that is not set limits nothing.
      token_room := LEAST(token_room, budget_tokens - spent_tokens - held_tokens);
      cost_room := LEAST(cost_room, (budget_cost - spent_cost - held_cost) * 10000000000);
    END IF;
  END IF;

  IF token_room IS NULL AND cost_room IS NULL THEN
    RETURN QUERY SELECT true, p_max_output, NULL::text;
    RETURN;
  END IF;

  IF p_input_unit IS NULL OR p_output_unit IS NULL THEN
    SELECT COALESCE(round(max(GREATEST(p.input_per_mtok, p.cache_read_per_mtok, p.cache_write_per_mtok)) * 10000), 0),
           COALESCE(round(max(p.output_per_mtok) * 10000), 0)
      INTO input_unit, output_unit
      FROM model_prices p WHERE p.provider = p_provider AND p.valid_from <= now();
  ELSE
    input_unit := p_input_unit;
    output_unit := p_output_unit;
  END IF;

  by_tokens := token_room - p_input_tokens;
  IF cost_room IS NOT NULL THEN
    cost_room := cost_room - p_input_tokens * input_unit;
    IF output_unit > 0 THEN
      by_cost := floor(cost_room / output_unit);
    ELSIF cost_room < 0 THEN
      by_cost := -1;
    END IF;
  END IF;
  IF by_tokens IS NOT NULL AND by_tokens < p_min_output THEN
    RETURN QUERY SELECT false, NULL::bigint, 'budget_tokens'::text;
    RETURN;
  END IF;
  IF by_cost IS NOT NULL AND by_cost < p_min_output THEN
    RETURN QUERY SELECT false, NULL::bigint, 'budget_cost'::text;
    RETURN;
  END IF;

  cap := LEAST(p_max_output, by_tokens, by_cost);
  INSERT INTO budget_reservations (id, run_id, user_id, conversation_id, tokens, cost, state)
  VALUES (p_id, p_run_id, p_user_id, p_conversation_id, p_input_tokens + COALESCE(cap, 0),
          (p_input_tokens * input_unit + COALESCE(cap, 0) * output_unit) / 10000000000.0, 'held');
  RETURN QUERY SELECT true, cap::bigint, NULL::text;
END
$$;
