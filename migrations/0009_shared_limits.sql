-- Limits shared by every instance on this database (issue 11.6): sliding-window event
-- counters (chat rate limits, login and register throttles) and leases on concurrent
-- streams (event and analytics streams per user). Times are epoch milliseconds from the
-- instance's clock, as the limits' callers give them.
--
-- UNLOGGED: a counter update writes no WAL (the cost per limited request stays one short
-- statement), at the price that a PostgreSQL crash or a failover to a standby empties the
-- counters and leases: limits restart from zero, streams re-take their leases on renewal
-- failure. Nothing here is worth a durable write.
--
-- One row per counted key holds the times of its newest events (at most limit + 1), so
-- a hit is one INSERT … ON CONFLICT DO UPDATE: the row lock serialises concurrent hits
-- on one key across instances, and each sees the others.
CREATE UNLOGGED TABLE limit_windows (
  key            text PRIMARY KEY,
  hits           bigint[] NOT NULL,
  window_ms      bigint NOT NULL,
  keep           integer NOT NULL,
  expires_at_ms  bigint NOT NULL
);
CREATE INDEX limit_windows_expires_idx ON limit_windows (expires_at_ms);

-- A lease per open stream, renewed by its instance's heartbeat: a crashed instance's
-- leases lapse at expires_at_ms. Taken under a per-key advisory lock (count, then insert).
CREATE UNLOGGED TABLE limit_leases (
  id             text PRIMARY KEY,
  key            text NOT NULL,
  expires_at_ms  bigint NOT NULL
);
CREATE INDEX limit_leases_key_idx ON limit_leases (key, expires_at_ms);
