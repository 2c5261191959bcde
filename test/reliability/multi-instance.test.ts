import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { findPostgresServer, requirePostgres, startInstances, type Instance, type Instances, type TestUser } from '../helpers/instances.js';

// Three server processes on one PostgreSQL database. The local model streams one token
// per LOCAL_MODEL_LATENCY_MS, so a reply to LONG takes several seconds: long enough to
// watch, cancel or kill it in flight.
const server = await findPostgresServer();
const LONG = `Please repeat this slowly: ${'the quick brown fox jumps over the lazy dog '.repeat(4)}`.slice(0, 190);
const ACK_TIMEOUT_MS = 2_000;
const STALE_AFTER_MS = 6_000;

const RunState = z.object({ status: z.string(), total_tokens: z.number(), instance_id: z.string().nullable() });

const waitFor = async <T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
};

describe.skipIf(!requirePostgres(server, 'the multi-instance tests'))('three instances on one PostgreSQL', { timeout: 60_000 }, () => {
  let cluster: Instances;
  let a: Instance;
  let b: Instance;
  let c: Instance;
  let alice: TestUser;
  let bob: TestUser;

  beforeAll(async () => {
    cluster = await startInstances(server as { url: string }, {
      count: 3,
      env: {
        LOCAL_MODEL_LATENCY_MS: '150',
        RUN_HEARTBEAT_INTERVAL_MS: '500',
        RUN_STALE_AFTER_MS: String(STALE_AFTER_MS),
        RUN_CANCEL_ACK_TIMEOUT_MS: String(ACK_TIMEOUT_MS),
      },
    });
    [a, b, c] = cluster.instances as [Instance, Instance, Instance];
    alice = await cluster.register(a);
    bob = await cluster.register(b);
  }, 180_000);
  afterAll(async () => {
    await cluster?.close();
  });

  const run = (id: string) =>
    cluster.db.pool.one(sql.type(RunState)`SELECT status, total_tokens, instance_id FROM workflow_runs WHERE id = ${id}`);

  /** Starts a chat (not awaited) and resolves with its run id once its row is live. */
  const startChat = async (instance: Instance, user: TestUser, { streaming = false } = {}) => {
    const correlation = `${instance.id}-${Math.random().toString(36).slice(2)}`;
    const answer = fetch(`${instance.baseUrl}/api/v1/workflows/execute/chat${streaming ? '/streaming' : ''}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.token}`, 'x-correlation-id': correlation },
      body: JSON.stringify({ message: LONG }),
    }).then(
      async (response) => {
        const text = await response.text();
        let body: Record<string, unknown> | null = null;
        try {
          body = JSON.parse(text) as Record<string, unknown>;
        } catch {
          // a stream of `data:` lines
        }
        return { status: response.status, body, text };
      },
      (error: unknown) => ({ status: 0, body: { error: String(error) }, text: '' }),
    );
    const runId = await waitFor(
      'the run row',
      async () =>
        (await cluster.db.pool.maybeOneFirst(sql.type(z.object({ id: z.string() }))`
        SELECT id FROM workflow_runs WHERE correlation_id = ${correlation} AND status = 'running'`)) ?? undefined,
    );
    // Its owner's first group commit records what it is doing (the model call's start).
    await waitFor('the run to be recorded calling the model', async () =>
      (await cluster.db.pool.maybeOneFirst(sql.type(z.object({ live_state: z.string().nullable() }))`
        SELECT live_state FROM workflow_runs WHERE id = ${runId}`)) === 'running.callingModel'
        ? true
        : undefined,
    );
    return { runId, answer };
  };

  it('answers one of two turns sent to two instances at once and 409 to the other, saving nothing of it', async () => {
    const first = await cluster.chat(a, alice, { message: 'hello' });
    expect(first.status).toBe(200);
    const conversationId = first.body!['conversation_id'] as string;

    const [onA, onB] = await Promise.all([
      cluster.chat(a, alice, { message: 'second turn', conversation_id: conversationId }),
      cluster.chat(b, alice, { message: 'second turn', conversation_id: conversationId }),
    ]);
    expect([onA.status, onB.status].sort()).toEqual([200, 409]);
    const loser = onA.status === 409 ? onA : onB;
    expect(loser.body).toEqual({ detail: expect.any(String), code: 'run_in_progress' });

    const roles = await cluster.db.pool.anyFirst(sql.type(z.object({ role: z.string() }))`
      SELECT role FROM messages WHERE conversation_id = ${conversationId} ORDER BY sequence_number`);
    expect(roles).toEqual(['user', 'assistant', 'user', 'assistant']);
    const counted = await cluster.db.pool.oneFirst(sql.type(z.object({ message_count: z.number() }))`
      SELECT message_count FROM conversations WHERE id = ${conversationId}`);
    expect(counted).toBe(4);
  });

  it("delivers a run's lifecycle events from its instance to a stream on another, live and in order, resumable there", async () => {
    // A subscriber on C; the run on A.
    const controller = new AbortController();
    const response = await fetch(`${c.baseUrl}/api/v1/events/stream?category=workflow`, {
      headers: { authorization: `Bearer ${alice.token}` },
      signal: controller.signal,
    });
    expect(response.status).toBe(200);
    const received: { seq: number; type: string; frontendType: string; runId: string | null; createdAt: number; arrivedAt: number }[] = [];
    const reading = (async () => {
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = frame.split('\n').find((line) => line.startsWith('data: '));
          if (data === undefined) continue;
          // The frontend's shape: the stored type, seq and run id travel in `metadata`.
          const event = JSON.parse(data.slice('data: '.length)) as {
            type: string;
            timestamp: string;
            metadata: { seq: number; event_type: string; run_id: string | null };
          };
          received.push({
            seq: event.metadata.seq,
            type: event.metadata.event_type,
            frontendType: event.type,
            runId: event.metadata.run_id,
            createdAt: Date.parse(event.timestamp),
            arrivedAt: Date.now(),
          });
        }
      }
    })().catch(() => undefined);
    // The stream is subscribed once its first bytes arrived (the connected comment).
    await new Promise((resolve) => setTimeout(resolve, 300));

    const { runId, answer } = await startChat(a, alice);
    const started = await waitFor('workflow_started on C', async () =>
      received.find((e) => e.runId === runId && e.type === 'workflow_started'),
    );
    // Live: it reached C while the run was still going on A.
    expect((await run(runId)).status).toBe('running');
    expect((await answer).status).toBe(200);
    await waitFor('the terminal event on C', async () => received.find((e) => e.runId === runId && e.type === 'workflow_completed'));
    controller.abort();
    await reading;

    const ofRun = received.filter((e) => e.runId === runId);
    expect(ofRun.map((e) => e.type)).toEqual(['workflow_started', 'model_response', 'workflow_completed']);
    expect(ofRun.map((e) => e.frontendType)).toEqual(['workflow.started', 'workflow.status', 'workflow.completed']);
    expect(ofRun.map((e) => e.seq)).toEqual([...ofRun.map((e) => e.seq)].sort((x, y) => x - y));
    const delays = ofRun.map((e) => e.arrivedAt - e.createdAt);
    console.log(`events from A on C's stream: delays ${delays.join(', ')} ms (transition → delivery)`);
    expect(started.arrivedAt).toBeGreaterThan(0);

    // Resumable on another instance: from the first event's seq, B sends what came after.
    const resumed = await fetch(`${b.baseUrl}/api/v1/events/stream?run_id=${runId}`, {
      headers: { authorization: `Bearer ${alice.token}`, 'last-event-id': String(ofRun[0]!.seq) },
    });
    const reader = resumed.body!.getReader();
    let text = '';
    const deadline = Date.now() + 10_000;
    while (!text.includes('workflow.completed') && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    await reader.cancel();
    const resumedTypes = [...text.matchAll(/^event: ([\w.]+)$/gm)].map((match) => match[1]);
    expect(resumedTypes).toEqual(['workflow.status', 'workflow.completed']);
    const resumedSeqs = [...text.matchAll(/^id: (\d+)$/gm)].map((match) => Number(match[1]));
    expect(resumedSeqs).toEqual(ofRun.slice(1).map((e) => e.seq));
  });

  it('lists a live run on every instance, from its row, with its owner and heartbeat', async () => {
    const { runId, answer } = await startChat(b, alice);
    for (const instance of [a, b, c]) {
      const active = await cluster.request(instance, 'GET', '/api/v1/workflows/executions/active', { token: alice.token });
      expect(active.status).toBe(200);
      expect(active.body).toMatchObject({
        instance_id: instance.id,
        count: 1,
        // The state its owner last recorded (it is waiting for the model).
        active: [{ id: runId, instance_id: b.id, state: 'running.callingModel', last_heartbeat_at: expect.any(String) }],
      });
      const others = await cluster.request(instance, 'GET', '/api/v1/workflows/executions/active', { token: bob.token });
      expect(others.body).toMatchObject({ count: 0, active: [] });
    }
    const detail = await cluster.request(c, 'GET', `/api/v1/workflows/executions/${runId}`, { token: alice.token });
    expect(detail.body).toMatchObject({ status: 'running', instance_id: b.id, live: { id: runId, instance_id: b.id } });

    expect((await cluster.request(a, 'POST', `/api/v1/workflows/executions/${runId}/cancel`, { token: alice.token })).status).toBe(202);
    expect((await answer).status).toBe(200);
  });

  it('cancels a run through another instance (202), keeping the usage of the cut call; 409 once it has ended; 404 to others', async () => {
    // Streamed, so that the cut call has output to count (tokens streamed so far).
    const { runId, answer } = await startChat(a, alice, { streaming: true });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect((await cluster.request(b, 'POST', `/api/v1/workflows/executions/${runId}/cancel`, { token: bob.token })).status).toBe(404);

    const cancel = await cluster.request(b, 'POST', `/api/v1/workflows/executions/${runId}/cancel`, { token: alice.token });
    expect(cancel.status).toBe(202);
    expect(cancel.body).toMatchObject({ id: runId, status: 'cancelling' });
    const answered = await answer;
    expect(answered.status).toBe(200);
    const chunks = answered.text
      .split('\n')
      .filter((line) => line.startsWith('data: {'))
      .map((line) => JSON.parse(line.slice('data: '.length)) as { type: string; metadata?: Record<string, unknown> });
    expect(chunks.at(-1)).toMatchObject({ type: 'error', metadata: { run_id: runId, run_status: 'cancelled' } });
    expect(chunks.filter((chunk) => chunk.type === 'token').length).toBeGreaterThan(0);

    const row = await run(runId);
    expect(row).toMatchObject({ status: 'cancelled', instance_id: a.id });
    const calls = await cluster.db.pool.any(
      sql.type(
        z.object({ input_tokens: z.number().nullable(), output_tokens: z.number().nullable(), finish_reason: z.string().nullable() }),
      )`SELECT input_tokens, output_tokens, finish_reason FROM model_calls WHERE run_id = ${runId} ORDER BY sequence`,
    );
    expect(calls).toEqual([{ input_tokens: expect.any(Number), output_tokens: expect.any(Number), finish_reason: 'cancelled' }]);
    expect(calls[0]!.input_tokens).toBeGreaterThan(0);
    expect(calls[0]!.output_tokens).toBeGreaterThan(0);
    expect(row.total_tokens).toBe(calls[0]!.input_tokens! + calls[0]!.output_tokens!);

    const again = await cluster.request(c, 'POST', `/api/v1/workflows/executions/${runId}/cancel`, { token: alice.token });
    expect(again.status).toBe(409);
    expect(again.body).toEqual({ detail: expect.stringContaining('already ended (cancelled)'), code: 'not_cancellable' });
  });

  it('answers 504 when the owner does not acknowledge in time, and the owner still cancels once it can', async () => {
    const { runId, answer } = await startChat(c, alice);
    cluster.pause(c);
    let cancel;
    try {
      const started = Date.now();
      cancel = await cluster.request(a, 'POST', `/api/v1/workflows/executions/${runId}/cancel`, { token: alice.token });
      expect(Date.now() - started).toBeGreaterThanOrEqual(ACK_TIMEOUT_MS);
    } finally {
      cluster.resume(c);
    }
    expect(cancel.status).toBe(504);
    expect(cancel.body).toEqual({ detail: expect.stringContaining(c.id), code: 'owner_unreachable' });
    // The request waited in the owner's connection; resumed (well before it counts as stale), it cancels.
    expect((await answer).body).toMatchObject({ run_id: runId, run_status: 'cancelled' });
    expect((await run(runId)).status).toBe('cancelled');
  });

  it("takes over a killed instance's runs as interrupted exactly once, on a surviving instance", async () => {
    const chats = await Promise.all([startChat(c, alice), startChat(c, alice), startChat(c, bob)]);
    const runIds = chats.map((chat) => chat.runId).sort();
    await cluster.kill(c);
    for (const chat of chats) expect((await chat.answer).status).toBe(0); // the connection died with it

    await waitFor(
      'the takeover',
      async () => {
        const statuses = await cluster.db.pool.anyFirst(sql.type(z.object({ status: z.string() }))`
          SELECT status FROM workflow_runs WHERE id = ANY(${sql.array(runIds, 'text')})`);
        return statuses.every((status) => status === 'interrupted') ? true : undefined;
      },
      STALE_AFTER_MS + 15_000,
    );
    const events = await cluster.db.pool.any(sql.type(z.object({ run_id: z.string(), n: z.number() }))`
      SELECT run_id, count(*) AS n FROM events
      WHERE type = 'workflow_interrupted' AND run_id = ANY(${sql.array(runIds, 'text')})
      GROUP BY run_id ORDER BY run_id`);
    expect(events).toEqual(runIds.map((id) => ({ run_id: id, n: 1 })));

    // Each survivor logs the runs its own UPDATE took: together exactly the killed runs, none twice.
    const takenBy = [a, b].flatMap((instance) =>
      instance
        .logs()
        .filter((line) => typeof line['msg'] === 'string' && (line['msg'] as string).startsWith('took over'))
        .flatMap((line) => (line['runs'] as string[]).map((id) => ({ id, by: instance.id }))),
    );
    expect(takenBy.map((taken) => taken.id).sort()).toEqual(runIds);
    console.log(`takeover: ${JSON.stringify(takenBy)}`);

    // The conversations are free again: a new turn in one of them is taken.
    const [first] = chats;
    const conversationId = await cluster.db.pool.oneFirst(sql.type(z.object({ conversation_id: z.string() }))`
      SELECT conversation_id FROM workflow_runs WHERE id = ${first!.runId}`);
    expect((await cluster.chat(a, alice, { message: 'are you there?', conversation_id: conversationId })).status).toBe(200);
  });
});
