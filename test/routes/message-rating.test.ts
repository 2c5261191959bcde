import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { asUser, registerUser, securityEvents, type RegisteredUser } from '../helpers/api.js';
import { createChatApi, type ChatApi } from '../helpers/chat-api.js';
import { fullContractErrors, fullContractMissing } from '../helpers/full-contract.js';

describe.skipIf(fullContractMissing !== undefined)('PATCH /api/v1/conversations/{id}/messages/{id}/rating', () => {
  let api: ChatApi;
  let alice: RegisteredUser;
  let bob: RegisteredUser;
  let conversationId: string;
  let messageId: string;
  let userMessageId: string;
  beforeAll(async () => {
    api = await createChatApi();
    alice = await registerUser(api.app);
    bob = await registerUser(api.app);
    api.script([{ content: 'rate me', usage: { input_tokens: 4, output_tokens: 2 } }]);
    const chat = await asUser(api.app, alice)({ method: 'POST', url: '/api/v1/workflows/execute/chat', payload: { message: 'hello' } });
    expect(chat.statusCode, chat.body).toBe(200);
    conversationId = chat.json<{ conversation_id: string }>().conversation_id;
    messageId = chat.json<{ message: { id: string } }>().message.id;
    const messages = await asUser(api.app, alice)({ method: 'GET', url: `/api/v1/conversations/${conversationId}/messages` });
    userMessageId = messages.json<{ id: string; role: string }[]>().find((message) => message.role === 'user')?.id ?? '';
  });
  afterAll(async () => {
    await api.close();
  });

  const rate = (user: RegisteredUser, rating: unknown, ids: { conversation?: string; message?: string } = {}) =>
    asUser(
      api.app,
      user,
    )({
      method: 'PATCH',
      url: `/api/v1/conversations/${ids.conversation ?? conversationId}/messages/${ids.message ?? messageId}/rating`,
      payload: { rating },
    });
  const stored = async (id: string) =>
    api.db.pool.one(
      sql.type(
        z.object({ rating: z.number().nullable(), rating_count: z.number() }),
      )`SELECT rating, rating_count FROM messages WHERE id = ${id}`,
    );

  it('rates the owner’s message: the average of the ratings given and their count, as the message reads it', async () => {
    const first = await rate(alice, 4);
    expect(first.statusCode, first.body).toBe(200);
    expect(fullContractErrors('MessageRatingResponse', first.json())).toEqual([]);
    expect(first.json()).toEqual({ message: expect.any(String), rating: 4, rating_count: 1 });
    const second = await rate(alice, 2.5);
    expect(second.json()).toMatchObject({ rating: 3.25, rating_count: 2 });
    expect(await stored(messageId)).toEqual({ rating: 3.25, rating_count: 2 });
    const read = await asUser(api.app, alice)({ method: 'GET', url: `/api/v1/conversations/${conversationId}` });
    expect(
      read.json<{ messages: { id: string; rating: number; rating_count: number }[] }>().messages.find((m) => m.id === messageId),
    ).toMatchObject({
      rating: 3.25,
      rating_count: 2,
    });
  });

  it('counts concurrent ratings, none lost', async () => {
    const before = await stored(userMessageId);
    const answers = await Promise.all(Array.from({ length: 8 }, () => rate(alice, 5, { message: userMessageId })));
    expect(answers.every((answer) => answer.statusCode === 200)).toBe(true);
    expect(await stored(userMessageId)).toEqual({ rating: 5, rating_count: before.rating_count + 8 });
  });

  it('answers 422 for a rating out of range or of the wrong type, changing nothing', async () => {
    const before = await stored(messageId);
    for (const rating of [-0.1, 5.01, '4', null]) {
      const response = await rate(alice, rating);
      expect(response.statusCode, JSON.stringify(rating)).toBe(422);
      expect(fullContractErrors('HTTPValidationError', response.json())).toEqual([]);
    }
    const empty = await asUser(
      api.app,
      alice,
    )({ method: 'PATCH', url: `/api/v1/conversations/${conversationId}/messages/${messageId}/rating`, payload: {} });
    expect(empty.json()).toEqual({ detail: [expect.objectContaining({ loc: ['body', 'rating'] })] });
    expect(await stored(messageId)).toEqual(before);
  });

  it('answers 404 to anyone but the owner, for another conversation’s message and after deletion', async () => {
    const before = await stored(messageId);
    const theirs = await rate(bob, 1);
    const missing = await rate(bob, 1, { message: '01HZZZZZZZZZZZZZZZZZZZZZZZ' });
    expect(theirs.statusCode).toBe(404);
    expect(theirs.body).toBe(missing.body);
    expect(await securityEvents(api.db, 'access_denied')).toContainEqual(
      expect.objectContaining({ user_id: bob.id, data: expect.objectContaining({ resource: 'message' }) }),
    );

    const other = await asUser(api.app, alice)({ method: 'POST', url: '/api/v1/conversations/', payload: { title: 'other' } });
    expect((await rate(alice, 1, { conversation: other.json<{ id: string }>().id })).statusCode).toBe(404);
    expect(await stored(messageId)).toEqual(before);

    expect((await asUser(api.app, alice)({ method: 'DELETE', url: `/api/v1/conversations/${conversationId}` })).statusCode).toBe(200);
    expect((await rate(alice, 1)).statusCode).toBe(404);
    expect(
      (
        await api.app.inject({
          method: 'PATCH',
          url: `/api/v1/conversations/${conversationId}/messages/${messageId}/rating`,
          payload: { rating: 1 },
        })
      ).statusCode,
    ).toBe(401);
  });
});
