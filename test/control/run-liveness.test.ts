import { pino } from 'pino';
import { sql } from 'slonik';
import { ulid } from 'ulid';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { RunLiveness } from '../../src/control/run-liveness.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

const logger = pino({ level: 'silent' });

/** A user with one conversation per run, each run `running` on `instance` with its last heartbeat `ageMs` ago. */
const insertRuns = async (db: TestDatabase, runs: readonly { instance: string; ageMs: number }[]): Promise<string[]> => {
  const userId = ulid();
  await db.pool.query(sql.unsafe`
    INSERT INTO users (id, email, username, password_hash) VALUES (${userId}, ${`${userId}@example.com`}, ${userId}, 'x')`);
  const ids: string[] = [];
  for (const run of runs) {
    const conversationId = ulid();
    const runId = ulid();
    await db.pool.query(sql.unsafe`INSERT INTO conversations (id, user_id, title) VALUES (${conversationId}, ${userId}, 't')`);
    await db.pool.query(sql.unsafe`
      INSERT INTO workflow_runs (id, user_id, conversation_id, workflow, status, correlation_id, instance_id, last_heartbeat_at)
      VALUES (${runId}, ${userId}, ${conversationId}, 'chat', 'running', ${runId}, ${run.instance},
              now() - make_interval(secs => ${run.ageMs / 1000}))`);
    ids.push(runId);
  }
  return ids;
};

const statusOf = (db: TestDatabase, ids: readonly string[]) =>
  db.pool.anyFirst(sql.type(z.object({ status: z.string() }))`
    SELECT status FROM workflow_runs WHERE id = ANY(${sql.array([...ids], 'text')}) ORDER BY id`);

describe('run liveness', () => {
  let db: TestDatabase | undefined;
  const stops: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
    await db?.drop();
    db = undefined;
  });

  it('takes each stale run over exactly once when several instances sweep at the same moment', async () => {
    db = await createTestDatabase(8);
    const stale = await insertRuns(
      db,
      Array.from({ length: 6 }, () => ({ instance: 'killed', ageMs: 3_600_000 })),
    );
    const [fresh] = await insertRuns(db, [{ instance: 'alive', ageMs: 0 }]);
    const sweepers = Array.from(
      { length: 6 },
      () => new RunLiveness({ pool: db!.pool, liveRunIds: () => [], heartbeatIntervalMs: 1_000, staleAfterMs: 60_000, logger }),
    );
    const taken = (await Promise.all(sweepers.map((sweeper) => sweeper.sweep()))).flat();

    expect([...taken].sort()).toEqual([...stale].sort());
    expect(await statusOf(db, stale)).toEqual(stale.map(() => 'interrupted'));
    expect(await statusOf(db, [fresh!])).toEqual(['running']);
    const events = await db.pool.any(sql.type(z.object({ run_id: z.string(), n: z.number() }))`
      SELECT run_id, count(*) AS n FROM events WHERE type = 'workflow_interrupted' GROUP BY run_id ORDER BY run_id`);
    expect(events).toEqual([...stale].sort().map((id) => ({ run_id: id, n: 1 })));
    expect(await Promise.all(sweepers.map((sweeper) => sweeper.sweep()))).toEqual(sweepers.map(() => []));
  });

  it("heartbeats this instance's live runs, so that only the silent owner's runs are taken over", async () => {
    db = await createTestDatabase();
    // Both last heartbeated 1 s ago, staleness 1.5 s: only the one this instance keeps heartbeating survives.
    const [ours, silent] = await insertRuns(db, [
      { instance: 'this', ageMs: 1_000 },
      { instance: 'silent', ageMs: 1_000 },
    ]);
    const liveness = new RunLiveness({ pool: db.pool, liveRunIds: () => [ours!], heartbeatIntervalMs: 100, staleAfterMs: 1_500, logger });
    liveness.start();
    stops.push(() => liveness.stop());
    const deadline = Date.now() + 10_000;
    while ((await statusOf(db, [silent!]))[0] === 'running' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(await statusOf(db, [ours!])).toEqual(['running']);
    expect(await statusOf(db, [silent!])).toEqual(['interrupted']);
  });
});
