-- One live run per conversation, across every instance: the database refuses a second
-- `queued`/`running` run in a conversation (beginTurn inserts the run with the user's
-- message, so the loser's whole turn rolls back and it answers 409).
--
-- Data written before this constraint may hold several live runs in one conversation
-- (two instances took a turn each). The earliest stays live; the others end here as
-- `interrupted`, with the one `workflow_interrupted` event the start-up and periodic
-- sweeps would give them (same event id, so neither can add a second) and the run id
-- marked applied so that no late record counts them again.
WITH ranked AS (
  SELECT id, row_number() OVER (PARTITION BY conversation_id ORDER BY started_at, id) AS position
  FROM workflow_runs
  WHERE status IN ('queued', 'running') AND conversation_id IS NOT NULL
),
ended AS (
  UPDATE workflow_runs AS run
  SET status = 'interrupted', terminal_reason = 'interrupted',
      error = 'another run was live in the same conversation',
      finished_at = now(),
      -- Clamped: a run left live for more than 24 days would overflow the integer.
      duration_ms = LEAST(2147483647, GREATEST(0, EXTRACT(EPOCH FROM (now() - run.started_at)) * 1000))::int
  FROM ranked
  WHERE run.id = ranked.id AND ranked.position > 1
  RETURNING run.id, run.user_id, run.conversation_id, run.correlation_id, run.workflow
),
applied AS (
  INSERT INTO applied_runs (run_id)
  SELECT id FROM ended
  ON CONFLICT (run_id) DO NOTHING
)
INSERT INTO events (id, category, type, priority, user_id, conversation_id, run_id, correlation_id, data)
SELECT 'int_' || id, 'workflow', 'workflow_interrupted', 'high', user_id, conversation_id, id, correlation_id,
       jsonb_build_object('workflow', workflow, 'reason', 'duplicate_live_run')
FROM ended
ON CONFLICT (id) DO NOTHING;

CREATE UNIQUE INDEX workflow_runs_one_live_per_conversation
  ON workflow_runs (conversation_id) WHERE status IN ('queued', 'running');
