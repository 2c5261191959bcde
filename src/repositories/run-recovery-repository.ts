import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';

/**
 * Ends the runs a stopped process left `running`: those of this instance (it just
 * started, so none of them is live) and those whose owner stopped heartbeating. Each
 * becomes `interrupted` with a `workflow_interrupted` event, in one transaction; the
 * run id is marked applied so no late record can count it again.
 */
export const interruptOrphanedRuns = async (
  pool: DatabasePool,
  options: { instanceId: string; staleAfterMs: number; allRunning?: boolean },
): Promise<string[]> =>
  pool.transaction(async (tx) => {
    const orphaned = await tx.any(sql.type(
      z.object({ id: z.string(), user_id: z.string(), conversation_id: z.string().nullable(), correlation_id: z.string(), workflow: z.string() }),
    )`
      UPDATE workflow_runs
      SET status = 'interrupted', terminal_reason = 'interrupted',
          error = 'the service stopped while the run was in flight',
          finished_at = now(),
          duration_ms = GREATEST(0, (EXTRACT(EPOCH FROM (now() - started_at)) * 1000)::int)
      WHERE status IN ('queued', 'running')
        AND (${options.allRunning === true}
             OR instance_id = ${options.instanceId}
             OR last_heartbeat_at < now() - make_interval(secs => ${options.staleAfterMs / 1000}))
      RETURNING id, user_id, conversation_id, correlation_id, workflow`);
    if (orphaned.length === 0) {
      return [];
    }
    await tx.query(sql.unsafe`
      INSERT INTO applied_runs (run_id)
      SELECT * FROM ${sql.unnest(orphaned.map((run) => [run.id]), ['text'])}
      ON CONFLICT (run_id) DO NOTHING`);
    await tx.query(sql.unsafe`
      INSERT INTO events (id, category, type, priority, user_id, conversation_id, run_id, correlation_id, data)
      SELECT 'int_' || r.id, 'workflow', 'workflow_interrupted', 'high', r.user_id, r.conversation_id, r.id,
             r.correlation_id, jsonb_build_object('workflow', r.workflow, 'reason', 'process_stopped')
      FROM ${sql.unnest(
        orphaned.map((run) => [run.id, run.user_id, run.conversation_id, run.correlation_id, run.workflow]),
        ['text', 'text', 'text', 'text', 'text'],
      )} AS r(id, user_id, conversation_id, correlation_id, workflow)
      ON CONFLICT (id) DO NOTHING`);
    return orphaned.map((run) => run.id);
  });

/** Marks live runs as still owned (the sweep above leaves them alone). */
export const heartbeatRuns = async (pool: DatabasePool, runIds: readonly string[]): Promise<void> => {
  if (runIds.length === 0) {
    return;
  }
  await pool.query(sql.unsafe`
    UPDATE workflow_runs SET last_heartbeat_at = now()
    WHERE id = ANY(${sql.array([...runIds], 'text')}) AND status = 'running'`);
};
