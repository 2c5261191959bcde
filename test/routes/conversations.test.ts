import { sql } from 'slonik';
import { ulid } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { asUser, createTestApi, registerUser, securityEvents, type RegisteredUser, type TestApi } from '../helpers/api.js';
import { publishedApi, type OpenApiValidator } from '../helpers/openapi-validator.js';

type Conversation = Record<string, unknown> & { id: string; title: string; user_id: string; status: string };
type ConversationList = { conversations: Conversation[]; total_count: number; limit: number; offset: number };
type Message = Record<string, unknown> & { id: string; sequence_number: number; content: string };

const BASE = '/api/v1/conversations';

describe('conversation routes', () => {
  /** This service's own OpenAPI document: answers are checked against what it publishes. */
  let published: OpenApiValidator;
  let api: TestApi;
  let alice: RegisteredUser;
  let bob: RegisteredUser;
  beforeAll(async () => {
    api = await createTestApi();
    published = await publishedApi(api.app);
    alice = await registerUser(api.app);
    bob = await registerUser(api.app);
  });
  afterAll(async () => {
    await api.close();
  });

  const create = async (user: RegisteredUser, payload: Record<string, unknown>): Promise<Conversation> => {
    const response = await asUser(api.app, user)({ method: 'POST', url: `${BASE}/`, payload });
    expect(response.statusCode, response.body).toBe(201);
    return response.json<Conversation>();
  };

  /** Messages as the run writers store them (the API never writes messages). */
  const insertMessages = async (conversationId: string, count: number): Promise<void> => {
    for (let index = 0; index < count; index += 1) {
      await api.db.pool.query(sql.unsafe`
        INSERT INTO messages (id, conversation_id, role, content, sequence_number, prompt_tokens, completion_tokens,
                              total_tokens, cost, model_used, provider_used, finish_reason, response_time_ms)
        VALUES (${ulid()}, ${conversationId}, ${index % 2 === 0 ? 'user' : 'assistant'}, ${`message ${index}`}, ${index},
                ${index % 2 === 0 ? null : 11}, ${index % 2 === 0 ? null : 7}, ${index % 2 === 0 ? null : 18},
                ${index % 2 === 0 ? null : 0.0000123456}, ${index % 2 === 0 ? null : 'local-echo'},
                ${index % 2 === 0 ? null : 'local'}, ${index % 2 === 0 ? null : 'stop'}, ${index % 2 === 0 ? null : 42})`);
    }
  };

  it('creates a conversation and answers 201 with the contract ConversationResponse', async () => {
    const response = await asUser(
      api.app,
      alice,
    )({
      method: 'POST',
      url: `${BASE}/`,
      payload: {
        title: 'Trip planning',
        description: 'Lisbon in May',
        system_prompt: 'You are a travel agent.',
        temperature: 0.4,
        max_tokens: 512,
        enable_retrieval: true,
        workflow_config: { tools: ['calculator'], nested: { depth: [1, 2, 3] } },
        extra_metadata: { source: 'test' },
      },
    });
    expect(response.statusCode).toBe(201);
    const body = response.json<Conversation>();
    expect(published.errors(published.responseSchemaOf(`${BASE}/`, 'post', '201'), body)).toEqual([]);
    expect(body).toMatchObject({
      title: 'Trip planning',
      user_id: alice.id,
      status: 'active',
      temperature: 0.4,
      max_tokens: 512,
      enable_retrieval: true,
      workflow_config: { tools: ['calculator'], nested: { depth: [1, 2, 3] } },
      message_count: 0,
      total_tokens: 0,
      total_cost: 0,
    });
  });

  it('reads a conversation with its messages in order, and without them when asked', async () => {
    const conversation = await create(alice, { title: 'With messages' });
    await insertMessages(conversation.id, 3);
    const response = await asUser(api.app, alice)({ method: 'GET', url: `${BASE}/${conversation.id}` });
    expect(response.statusCode).toBe(200);
    const body = response.json<Conversation & { messages: Message[] }>();
    expect(published.errors(published.responseSchemaOf(`${BASE}/{conversation_id}`, 'get', '200'), body)).toEqual([]);
    expect(body.messages.map((message) => message.content)).toEqual(['message 0', 'message 1', 'message 2']);
    expect(body.messages[1]).toMatchObject({
      role: 'assistant',
      prompt_tokens: 11,
      completion_tokens: 7,
      total_tokens: 18,
      cost: 0.0000123456,
    });

    const bare = await asUser(api.app, alice)({ method: 'GET', url: `${BASE}/${conversation.id}?include_messages=false` });
    expect(bare.json<{ messages: unknown[] }>().messages).toEqual([]);
  });

  it('shows token and cost totals exactly as the rows hold them', async () => {
    const conversation = await create(alice, { title: 'Totals' });
    // The run writers maintain these; the API must not recompute them (no messages here).
    await api.db.pool.query(sql.unsafe`
      UPDATE conversations SET message_count = 7, total_tokens = 123456789, total_cost = 0.0123456789
      WHERE id = ${conversation.id}`);
    const body = (await asUser(api.app, alice)({ method: 'GET', url: `${BASE}/${conversation.id}` })).json<Conversation>();
    expect(body).toMatchObject({ message_count: 7, total_tokens: 123456789, total_cost: 0.0123456789 });
  });

  it('pages through messages oldest first', async () => {
    const conversation = await create(alice, { title: 'Paged' });
    await insertMessages(conversation.id, 7);
    const page = async (query: string) => {
      const response = await asUser(api.app, alice)({ method: 'GET', url: `${BASE}/${conversation.id}/messages${query}` });
      expect(response.statusCode).toBe(200);
      expect(published.errors(published.responseSchemaOf(`${BASE}/{conversation_id}/messages`, 'get', '200'), response.json())).toEqual([]);
      return response.json<Message[]>().map((message) => message.sequence_number);
    };
    expect(await page('')).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(await page('?limit=3')).toEqual([0, 1, 2]);
    expect(await page('?limit=3&offset=3')).toEqual([3, 4, 5]);
    expect(await page('?limit=3&offset=6')).toEqual([6]);
    expect(await page('?offset=10')).toEqual([]);
  });

  it('lists only the caller’s conversations, paginated and sorted, with the total count', async () => {
    const owner = await registerUser(api.app);
    const titles = ['alpha', 'bravo', 'charlie', 'delta', 'echo'];
    for (const title of titles) {
      await create(owner, { title });
    }
    await create(bob, { title: 'not yours' });
    const list = async (query: string): Promise<ConversationList> => {
      const response = await asUser(api.app, owner)({ method: 'GET', url: `${BASE}/${query}` });
      expect(response.statusCode, response.body).toBe(200);
      expect(published.errors(published.responseSchemaOf(`${BASE}/`, 'get', '200'), response.json())).toEqual([]);
      return response.json<ConversationList>();
    };
    const first = await list('?limit=2&sort_by=title&sort_order=asc');
    expect(first).toMatchObject({ total_count: 5, limit: 2, offset: 0 });
    expect(first.conversations.map((c) => c.title)).toEqual(['alpha', 'bravo']);
    const second = await list('?limit=2&offset=2&sort_by=title&sort_order=asc');
    expect(second.conversations.map((c) => c.title)).toEqual(['charlie', 'delta']);
    const last = await list('?limit=2&offset=4&sort_by=title&sort_order=asc');
    expect(last.conversations.map((c) => c.title)).toEqual(['echo']);
    const newestFirst = await list('?sort_by=created_at');
    expect(newestFirst.conversations.map((c) => c.title)).toEqual([...titles].reverse());
    expect(newestFirst.conversations.every((c) => c.user_id === owner.id)).toBe(true);
    // Without the trailing slash too.
    expect((await asUser(api.app, owner)({ method: 'GET', url: BASE })).json<ConversationList>().total_count).toBe(5);
  });

  it('filters by status, retrieval flag and tags', async () => {
    const owner = await registerUser(api.app);
    const archived = await create(owner, { title: 'old' });
    await asUser(api.app, owner)({ method: 'PUT', url: `${BASE}/${archived.id}`, payload: { status: 'archived' } });
    const retrieval = await create(owner, { title: 'docs', enable_retrieval: true, tags: ['work', 'urgent'] });
    expect(retrieval['tags']).toEqual(['work', 'urgent']);
    await create(owner, { title: 'chores', tags: ['home'] });
    const titles = async (query: string) =>
      (await asUser(api.app, owner)({ method: 'GET', url: `${BASE}/${query}` })).json<ConversationList>().conversations.map((c) => c.title);
    expect(await titles('?status=archived')).toEqual(['old']);
    expect(await titles('?enable_retrieval=true')).toEqual(['docs']);
    expect(await titles('?tags=work')).toEqual(['docs']);
    expect(await titles('?tags=work&tags=urgent')).toEqual(['docs']);
    expect(await titles('?tags=work&tags=home')).toEqual([]);
    expect(await titles('?tags=home')).toEqual(['chores']);
    expect(await titles('?status=deleted')).toEqual([]);
  });

  it('updates the fields present in the body and leaves the others', async () => {
    const conversation = await create(alice, { title: 'Before', description: 'keep me', temperature: 0.2, extra_metadata: { a: 1 } });
    const response = await asUser(
      api.app,
      alice,
    )({
      method: 'PUT',
      url: `${BASE}/${conversation.id}`,
      payload: { title: 'After', temperature: null, extra_metadata: { b: 2 }, status: null },
    });
    expect(response.statusCode).toBe(200);
    const body = response.json<Conversation>();
    expect(published.errors(published.responseSchemaOf(`${BASE}/{conversation_id}`, 'put', '200'), body)).toEqual([]);
    expect(body).toMatchObject({ title: 'After', description: 'keep me', temperature: null, extra_metadata: { b: 2 }, status: 'active' });
    expect(Date.parse(body['updated_at'] as string)).toBeGreaterThanOrEqual(Date.parse(conversation['updated_at'] as string));
  });

  it('stores the tags sent on create and update, returns them everywhere, and clears them with null', async () => {
    const as = asUser(api.app, alice);
    const conversation = await create(alice, { title: 'Tagged', tags: ['alpha', 'béta'] });
    expect(published.errors(published.responseSchemaOf(`${BASE}/`, 'post', '201'), conversation)).toEqual([]);
    const stored = await api.db.pool.oneFirst(
      sql.type(z.object({ tags: z.unknown() }))`SELECT tags FROM conversations WHERE id = ${conversation.id}`,
    );
    expect(stored).toEqual(['alpha', 'béta']);

    const retagged = await as({ method: 'PUT', url: `${BASE}/${conversation.id}`, payload: { tags: ['gamma'] } });
    expect(retagged.statusCode).toBe(200);
    expect(retagged.json<Conversation>()['tags']).toEqual(['gamma']);
    const read = await as({ method: 'GET', url: `${BASE}/${conversation.id}` });
    expect(read.json<Conversation>()['tags']).toEqual(['gamma']);
    // A body without tags leaves them.
    const renamed = await as({ method: 'PUT', url: `${BASE}/${conversation.id}`, payload: { title: 'Still tagged' } });
    expect(renamed.json<Conversation>()['tags']).toEqual(['gamma']);
    const listed = (await as({ method: 'GET', url: `${BASE}/?tags=gamma` })).json<ConversationList>();
    expect(listed.conversations.map((c) => [c.id, c['tags']])).toEqual([[conversation.id, ['gamma']]]);

    const cleared = await as({ method: 'PUT', url: `${BASE}/${conversation.id}`, payload: { tags: null } });
    expect(cleared.json<Conversation>()['tags']).toBeNull();
    expect((await as({ method: 'GET', url: `${BASE}/?tags=gamma` })).json<ConversationList>().total_count).toBe(0);
  });

  it('refuses tags that are not a short list of distinct short strings with 422, changing nothing', async () => {
    const as = asUser(api.app, alice);
    const conversation = await create(alice, { title: 'Tag checks', tags: ['keep'] });
    const bad: [unknown, string][] = [
      ['work', 'type'],
      [[1, 2], 'type'],
      [[''], 'minLength'],
      [['x'.repeat(101)], 'maxLength'],
      [Array.from({ length: 21 }, (_, index) => `t${index}`), 'maxItems'],
      [['same', 'same'], 'uniqueItems'],
    ];
    for (const [tags, keyword] of bad) {
      const created = await as({ method: 'POST', url: `${BASE}/`, payload: { title: 'never stored', tags } });
      expect(created.statusCode, JSON.stringify(tags)).toBe(422);
      const detail = created.json<{ detail: { loc: (string | number)[]; type: string }[] }>().detail;
      expect(
        detail.some((item) => item.loc[0] === 'body' && item.loc[1] === 'tags' && item.type === keyword),
        created.body,
      ).toBe(true);
      const updated = await as({ method: 'PUT', url: `${BASE}/${conversation.id}`, payload: { tags } });
      expect(updated.statusCode, JSON.stringify(tags)).toBe(422);
    }
    const count = await api.db.pool.oneFirst(
      sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM conversations WHERE title = 'never stored'`,
    );
    expect(count).toBe(0);
    expect((await as({ method: 'GET', url: `${BASE}/${conversation.id}` })).json<Conversation>()['tags']).toEqual(['keep']);
  });

  it('soft-deletes: 200 once, then 404 everywhere, and gone from the list', async () => {
    const conversation = await create(alice, { title: 'Short-lived' });
    const deleted = await asUser(api.app, alice)({ method: 'DELETE', url: `${BASE}/${conversation.id}` });
    expect(deleted.statusCode).toBe(200);
    expect(published.errors(published.responseSchemaOf(`${BASE}/{conversation_id}`, 'delete', '200'), deleted.json())).toEqual([]);
    for (const [method, url] of [
      ['GET', `${BASE}/${conversation.id}`],
      ['PUT', `${BASE}/${conversation.id}`],
      ['DELETE', `${BASE}/${conversation.id}`],
      ['GET', `${BASE}/${conversation.id}/messages`],
    ] as const) {
      const response = await asUser(api.app, alice)({ method, url, ...(method === 'PUT' ? { payload: { title: 'x' } } : {}) });
      expect(response.statusCode, `${method} ${url}`).toBe(404);
    }
    const list = (await asUser(api.app, alice)({ method: 'GET', url: `${BASE}/?limit=100` })).json<ConversationList>();
    expect(list.conversations.map((c) => c.id)).not.toContain(conversation.id);
    const status = await api.db.pool.oneFirst(
      sql.type(z.object({ status: z.string() }))`SELECT status FROM conversations WHERE id = ${conversation.id}`,
    );
    expect(status).toBe('deleted');
  });

  it("answers another user's conversation exactly like a missing one, changes nothing, and records access_denied", async () => {
    const secret = await create(alice, { title: 'Alice only', description: 'private' });
    await insertMessages(secret.id, 2);
    const missing = ulid();
    for (const [method, path, payload] of [
      ['GET', '', undefined],
      ['PUT', '', { title: 'pwned' }],
      ['DELETE', '', undefined],
      ['GET', '/messages', undefined],
    ] as const) {
      const theirs = await asUser(api.app, bob)({ method, url: `${BASE}/${secret.id}${path}`, ...(payload ? { payload } : {}) });
      const nothing = await asUser(api.app, bob)({ method, url: `${BASE}/${missing}${path}`, ...(payload ? { payload } : {}) });
      expect(theirs.statusCode, `${method} ${path}`).toBe(404);
      expect(nothing.statusCode).toBe(404);
      expect(theirs.body).toBe(nothing.body);
      expect(theirs.body).not.toContain('Alice only');
    }
    const row = await api.db.pool.one(
      sql.type(z.object({ title: z.string(), status: z.string() }))`SELECT title, status FROM conversations WHERE id = ${secret.id}`,
    );
    expect(row).toEqual({ title: 'Alice only', status: 'active' });
    // One event per request for Bob, the same for Alice's and for a missing id (test/routes/no-existence-oracle.test.ts).
    const denied = (await securityEvents(api.db, 'access_denied')).filter((event) => event.user_id === bob.id);
    expect(denied).toHaveLength(8);
    expect(denied[0]?.data).toMatchObject({ reason: 'not_found', resource: 'conversation' });
    expect(JSON.stringify(denied)).not.toContain(secret.id);
  });

  it('lets a superuser read another user’s conversations only through user_id, and no one else', async () => {
    const admin = await registerUser(api.app);
    await api.db.pool.query(sql.unsafe`UPDATE users SET is_superuser = true WHERE id = ${admin.id}`);
    const conversation = await create(alice, { title: 'Audited' });

    expect((await asUser(api.app, admin)({ method: 'GET', url: `${BASE}/${conversation.id}` })).statusCode).toBe(404);
    const read = await asUser(api.app, admin)({ method: 'GET', url: `${BASE}/${conversation.id}?user_id=${alice.id}` });
    expect(read.statusCode).toBe(200);
    expect(read.json()).toMatchObject({ id: conversation.id, user_id: alice.id });
    const listed = await asUser(api.app, admin)({ method: 'GET', url: `${BASE}/?user_id=${alice.id}&limit=100` });
    expect(listed.json<ConversationList>().conversations.map((c) => c.id)).toContain(conversation.id);
    // Superusers read; they do not edit other users' conversations.
    expect((await asUser(api.app, admin)({ method: 'DELETE', url: `${BASE}/${conversation.id}?user_id=${alice.id}` })).statusCode).toBe(
      404,
    );

    const forbidden = await asUser(api.app, bob)({ method: 'GET', url: `${BASE}/?user_id=${alice.id}` });
    expect(forbidden.statusCode).toBe(403);
    expect(await securityEvents(api.db, 'access_denied')).toContainEqual(
      expect.objectContaining({ user_id: bob.id, data: expect.objectContaining({ reason: 'user_filter_requires_superuser' }) }),
    );
    const own = await asUser(api.app, bob)({ method: 'GET', url: `${BASE}/?user_id=${bob.id}` });
    expect(own.statusCode).toBe(200);
  });

  it('stores SQL-significant and unusual text verbatim', async () => {
    const nasty = [
      "'; DROP TABLE users; --",
      "Robert'); DELETE FROM conversations WHERE ('1'='1",
      '$1 $$ dollar $tag$ quoted $tag$',
      'back\\slash \\x00 %s %d ${interpolation}',
      'emoji 🧪 and RTL \u202e text',
    ];
    for (const title of nasty) {
      const created = await create(alice, { title, description: title, extra_metadata: { [title]: title } });
      const read = (await asUser(api.app, alice)({ method: 'GET', url: `${BASE}/${created.id}` })).json<Conversation>();
      expect(read).toMatchObject({ title, description: title, extra_metadata: { [title]: title } });
    }
    const search = await asUser(api.app, alice)({ method: 'GET', url: `${BASE}/?llm_provider=${encodeURIComponent("' OR '1'='1")}` });
    expect(search.json<ConversationList>().total_count).toBe(0);
    const users = await api.db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM users`);
    expect(users).toBeGreaterThan(0);
  });

  it('needs a token for every conversation route', async () => {
    for (const [method, url] of [
      ['GET', `${BASE}/`],
      ['POST', `${BASE}/`],
      ['GET', `${BASE}/x`],
      ['PUT', `${BASE}/x`],
      ['DELETE', `${BASE}/x`],
      ['GET', `${BASE}/x/messages`],
    ] as const) {
      const response = await api.app.inject({ method, url, ...(method === 'POST' || method === 'PUT' ? { payload: { title: 't' } } : {}) });
      expect(response.statusCode, `${method} ${url}`).toBe(401);
    }
  });
});
