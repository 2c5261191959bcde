-- Usage durable as it is reported: a run's model calls, tool calls and lifecycle events
-- are committed while it runs (group commit across runs), not only when it ends.
-- A model call row exists from the call's start: finished_at NULL marks it in flight,
-- so a run found orphaned after a crash knows which call was cut and flags it
-- usage_missing. The runtime's estimate of such a call is kept in columns of its own,
-- never in the exact token columns or any sum of them.
ALTER TABLE model_calls ADD COLUMN finished_at timestamptz;
ALTER TABLE model_calls ADD COLUMN estimated_input_tokens bigint
  CHECK (estimated_input_tokens IS NULL OR estimated_input_tokens >= 0);
UPDATE model_calls SET finished_at = started_at + make_interval(secs => COALESCE(latency_ms, 0) / 1000.0);

-- What a live run is doing, as its owner last recorded it (the machine's state).
ALTER TABLE workflow_runs ADD COLUMN live_state text;
