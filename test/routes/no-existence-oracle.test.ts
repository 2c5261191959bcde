import { sql } from 'slonik';
import { ulid } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asUser, registerUser, type RegisteredUser } from '../helpers/api.js';
import { createChatApi, type ChatApi } from '../helpers/chat-api.js';

type Event = { type: string; user_id: string | null; data: Record<string, unknown>; correlation_id: string | null };

/** The event as the caller could tell it apart from another: everything but its own ids and times. */
const shape = (event: Event) => {
  const { ip, user_agent, ...data } = event.data;
  void ip;
  void user_agent;
  return { type: event.type, user_id: event.user_id, data };
};

describe('denied accesses reveal nothing about the target (no existence oracle)', () => {
  let api: ChatApi;
  let alice: RegisteredUser;
  let bob: RegisteredUser;
  let admin: RegisteredUser;
  let conversationId: string;
  let runId: string;
  beforeAll(async () => {
    api = await createChatApi();
    alice = await registerUser(api.app);
    bob = await registerUser(api.app);
    admin = await registerUser(api.app);
    await api.db.pool.query(sql.unsafe`UPDATE users SET is_superuser = true WHERE id = ${admin.id}`);
    api.script([{ content: 'hello', usage: { input_tokens: 3, output_tokens: 1 } }]);
    const chat = await asUser(api.app, alice)({ method: 'POST', url: '/api/v1/workflows/execute/chat', payload: { message: 'hi' } });
    expect(chat.statusCode).toBe(200);
    conversationId = chat.json<{ conversation_id: string }>().conversation_id;
    runId = chat.json<{ run_id: string }>().run_id;
  });
  afterAll(async () => {
    await api.close();
  });

  const securityOf = async (user: RegisteredUser, query = '') => {
    const response = await asUser(
      api.app,
      user,
    )({ method: 'GET', url: `/api/v1/events?category=security&type=access_denied&limit=500${query}` });
    expect(response.statusCode).toBe(200);
    return response.json<{ events: Event[] }>().events;
  };

  it.each([
    ['conversation', () => `/api/v1/conversations/${conversationId}`],
    ['run', () => `/api/v1/workflows/executions/${runId}`],
  ])('leaves Bob the same event for Alice’s %s and for a missing id; superusers see the target', async (resource, path) => {
    const missing = ulid();
    const before = (await securityOf(bob)).length;
    const theirs = await asUser(api.app, bob)({ method: 'GET', url: path(), headers: { 'x-correlation-id': `theirs-${resource}` } });
    const nothing = await asUser(
      api.app,
      bob,
    )({ method: 'GET', url: path().replace(/[^/]+$/, missing), headers: { 'x-correlation-id': `missing-${resource}` } });
    expect(theirs.statusCode).toBe(404);
    expect(nothing.statusCode).toBe(404);
    expect(theirs.body).toBe(nothing.body);

    const mine = await securityOf(bob);
    expect(mine).toHaveLength(before + 2);
    const forTheirs = mine.find((event) => event.correlation_id === `theirs-${resource}`);
    const forMissing = mine.find((event) => event.correlation_id === `missing-${resource}`);
    expect(forTheirs).toBeDefined();
    expect(shape(forTheirs as Event)).toEqual(shape(forMissing as Event));
    expect(shape(forTheirs as Event)).toMatchObject({ user_id: bob.id, data: { reason: 'not_found', resource } });
    const everythingBobSees = JSON.stringify(mine);
    expect(everythingBobSees).not.toContain(resource === 'run' ? runId : conversationId);
    expect(everythingBobSees).not.toContain(missing);
    expect(everythingBobSees).not.toContain(alice.id);

    // Operators: the target, whether it exists, and who asked.
    const all = await securityOf(admin, '&all_users=true');
    expect(all.find((event) => event.correlation_id === `theirs-${resource}` && event.user_id === null)?.data).toMatchObject({
      reason: 'not_owner',
      resource,
      target_id: resource === 'run' ? runId : conversationId,
      target_exists: true,
      actor_user_id: bob.id,
    });
    expect(all.find((event) => event.correlation_id === `missing-${resource}` && event.user_id === null)?.data).toMatchObject({
      reason: 'not_found',
      target_id: missing,
      target_exists: false,
      actor_user_id: bob.id,
    });
  });
});
