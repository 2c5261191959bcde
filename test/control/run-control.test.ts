import { sql } from 'slonik';
import { ulid } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { RUN_CONTROL_CHANNEL } from '../../src/control/run-control.js';
import { asUser, registerUser, type RegisteredUser } from '../helpers/api.js';
import { createChatApi, type ChatApi } from '../helpers/chat-api.js';

const ACK_TIMEOUT_MS = 300;

/** The cancel answers that depend on the owner's acknowledgement, with the owner not running the run. */
describe('cancelling a run whose owner does not run it', () => {
  let api: ChatApi;
  let alice: RegisteredUser;
  beforeAll(async () => {
    api = await createChatApi({ RUN_CANCEL_ACK_TIMEOUT_MS: String(ACK_TIMEOUT_MS) });
    alice = await registerUser(api.app);
  });
  afterAll(async () => {
    await api.close();
  });

  /** A `running` row owned by `instanceId` that no runtime runs. */
  const runRow = async (instanceId: string): Promise<string> => {
    const conversationId = ulid();
    const runId = ulid();
    await api.db.pool.query(sql.unsafe`INSERT INTO conversations (id, user_id, title) VALUES (${conversationId}, ${alice.id}, 't')`);
    await api.db.pool.query(sql.unsafe`
      INSERT INTO workflow_runs (id, user_id, conversation_id, workflow, status, correlation_id, instance_id, last_heartbeat_at)
      VALUES (${runId}, ${alice.id}, ${conversationId}, 'chat', 'running', ${runId}, ${instanceId}, now())`);
    return runId;
  };
  const status = (runId: string) =>
    api.db.pool.oneFirst(sql.type(z.object({ status: z.string() }))`SELECT status FROM workflow_runs WHERE id = ${runId}`);

  it('answers 409 at once when the owner says the run is no longer live', async () => {
    const runId = await runRow(api.services.instanceId);
    const started = Date.now();
    const response = await asUser(api.app, alice)({ method: 'POST', url: `/api/v1/workflows/executions/${runId}/cancel` });
    expect(response.statusCode).toBe(409);
    expect(response.json()).toEqual({ detail: expect.stringContaining('ending'), code: 'not_cancellable' });
    expect(Date.now() - started).toBeLessThan(ACK_TIMEOUT_MS);
    expect(await status(runId)).toBe('running');
  });

  it('answers 504 when no instance answers for the owner in time, and changes nothing', async () => {
    const runId = await runRow('gone-instance');
    const started = Date.now();
    const response = await asUser(api.app, alice)({ method: 'POST', url: `/api/v1/workflows/executions/${runId}/cancel` });
    expect(response.statusCode).toBe(504);
    expect(response.json()).toEqual({ detail: expect.stringContaining('gone-instance'), code: 'owner_unreachable' });
    expect(response.body).not.toMatch(/\.ts:\d+|at [A-Za-z]+ \(/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(ACK_TIMEOUT_MS);
    expect(await status(runId)).toBe('running');
  });

  it('ignores malformed control requests and keeps answering', async () => {
    await api.services.notifier.transaction(api.db.pool, async (_tx, notify) => {
      notify(RUN_CONTROL_CHANNEL, 'not json');
      notify(RUN_CONTROL_CHANNEL, JSON.stringify({ run_id: 1, action: 'explode' }));
    });
    const runId = await runRow(api.services.instanceId);
    expect((await asUser(api.app, alice)({ method: 'POST', url: `/api/v1/workflows/executions/${runId}/cancel` })).statusCode).toBe(409);
  });
});
