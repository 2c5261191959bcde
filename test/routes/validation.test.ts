import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { asUser, createTestApi, registerUser, type RegisteredUser, type TestApi } from '../helpers/api.js';
import { publishedApi, type OpenApiValidator } from '../helpers/openapi-validator.js';

type Detail = { loc: (string | number)[]; msg: string; type: string };

describe('request validation', () => {
  /** This service's own OpenAPI document: answers are checked against what it publishes. */
  let published: OpenApiValidator;
  let api: TestApi;
  let user: RegisteredUser;
  let conversationId: string;
  beforeAll(async () => {
    api = await createTestApi();
    published = await publishedApi(api.app);
    user = await registerUser(api.app);
    const created = await asUser(api.app, user)({ method: 'POST', url: '/api/v1/conversations/', payload: { title: 'fixture' } });
    conversationId = created.json<{ id: string }>().id;
  });
  afterAll(async () => {
    await api.close();
  });

  /** Rows of every table a rejected request could have touched. */
  const snapshot = async () =>
    api.db.pool.one(
      sql.type(z.object({ users: z.number(), conversations: z.number(), changed: z.number(), keys: z.number() }))`
        SELECT (SELECT count(*)::int FROM users) AS users,
               (SELECT count(*)::int FROM conversations) AS conversations,
               (SELECT count(*)::int FROM conversations WHERE title <> 'fixture' AND id = ${conversationId}) AS changed,
               (SELECT count(*)::int FROM api_keys) AS keys`,
    );

  const expect422 = (response: { statusCode: number; json: <T>() => T; body: string }, loc: (string | number)[]) => {
    expect(response.statusCode, response.body).toBe(422);
    expect(response.body).not.toMatch(/FST_/);
    const body = response.json<{ detail: Detail[] }>();
    expect(published.errors('HTTPValidationError', body)).toEqual([]);
    expect(body.detail.length).toBeGreaterThan(0);
    for (const item of body.detail) {
      expect(item).toEqual({ loc: expect.any(Array), msg: expect.any(String), type: expect.any(String) });
    }
    expect(body.detail.map((item) => item.loc)).toContainEqual(loc);
  };

  it('answers malformed bodies with 422 naming each field, and changes nothing', async () => {
    const before = await snapshot();
    const as = asUser(api.app, user);
    expect422(
      await api.app.inject({
        method: 'POST',
        url: '/api/v1/auth/register',
        payload: { email: 'not-an-email', username: 'ok_name', password: 'secret1' },
      }),
      ['body', 'email'],
    );
    expect422(
      await api.app.inject({
        method: 'POST',
        url: '/api/v1/auth/register',
        payload: { email: 'a@b.co', username: 'x', password: 'secret1' },
      }),
      ['body', 'username'],
    );
    expect422(
      await api.app.inject({
        method: 'POST',
        url: '/api/v1/auth/register',
        payload: { email: 'a@b.co', username: 'has space', password: 'secret1' },
      }),
      ['body', 'username'],
    );
    expect422(await api.app.inject({ method: 'POST', url: '/api/v1/auth/register', payload: { email: 'a@b.co', username: 'okay_name' } }), [
      'body',
      'password',
    ]);
    expect422(
      await api.app.inject({
        method: 'POST',
        url: '/api/v1/auth/register',
        payload: { email: 'a@b.co', username: 'okay_name', password: '12345' },
      }),
      ['body', 'password'],
    );
    expect422(await as({ method: 'POST', url: '/api/v1/conversations/', payload: {} }), ['body', 'title']);
    expect422(await as({ method: 'POST', url: '/api/v1/conversations/', payload: { title: 't', temperature: 2.5 } }), [
      'body',
      'temperature',
    ]);
    expect422(await as({ method: 'POST', url: '/api/v1/conversations/', payload: { title: 't', max_tokens: 0 } }), ['body', 'max_tokens']);
    expect422(await as({ method: 'POST', url: '/api/v1/conversations/', payload: { title: 't', max_tokens: 1e12 } }), [
      'body',
      'max_tokens',
    ]);
    expect422(await as({ method: 'POST', url: '/api/v1/conversations/', payload: { title: 't', workflow_config: [1, 2] } }), [
      'body',
      'workflow_config',
    ]);
    expect422(await as({ method: 'PUT', url: `/api/v1/conversations/${conversationId}`, payload: { status: 'gone' } }), ['body', 'status']);
    expect422(await as({ method: 'PUT', url: `/api/v1/conversations/${conversationId}`, payload: { title: 'changed', temperature: -1 } }), [
      'body',
      'temperature',
    ]);
    expect422(await as({ method: 'POST', url: '/api/v1/auth/api-key', payload: { name: '' } }), ['body', 'name']);
    expect(await snapshot()).toEqual(before);
  });

  it('does not coerce JSON body types: a number, boolean or null for a string is refused', async () => {
    const before = await snapshot();
    const as = asUser(api.app, user);
    expect422(await as({ method: 'POST', url: '/api/v1/conversations/', payload: { title: 123 } }), ['body', 'title']);
    expect422(await as({ method: 'POST', url: '/api/v1/conversations/', payload: { title: null } }), ['body', 'title']);
    expect422(await as({ method: 'POST', url: '/api/v1/conversations/', payload: { title: 't', enable_retrieval: 'true' } }), [
      'body',
      'enable_retrieval',
    ]);
    expect422(await as({ method: 'POST', url: '/api/v1/conversations/', payload: { title: 't', temperature: '0.5' } }), [
      'body',
      'temperature',
    ]);
    expect422(await as({ method: 'POST', url: '/api/v1/conversations/', payload: { title: ['t'] } }), ['body', 'title']);
    expect(await snapshot()).toEqual(before);
  });

  it('reports every failing field of a body at once', async () => {
    const response = await asUser(
      api.app,
      user,
    )({
      method: 'POST',
      url: '/api/v1/conversations/',
      payload: { temperature: 9, max_tokens: -3 },
    });
    const locs = response.json<{ detail: Detail[] }>().detail.map((item) => item.loc.join('.'));
    expect(locs).toEqual(expect.arrayContaining(['body.title', 'body.temperature', 'body.max_tokens']));
  });

  it('answers invalid JSON, a non-object body and a missing body with 422', async () => {
    const as = asUser(api.app, user);
    const invalid = await as({
      method: 'POST',
      url: '/api/v1/conversations/',
      headers: { 'content-type': 'application/json' },
      payload: '{"title": ',
    });
    expect(invalid.statusCode).toBe(422);
    expect(invalid.json()).toEqual({ detail: [{ loc: ['body'], msg: expect.any(String), type: 'json_invalid' }] });
    expect422(await as({ method: 'POST', url: '/api/v1/conversations/', headers: { 'content-type': 'application/json' }, payload: '[]' }), [
      'body',
    ]);
    expect(
      (await as({ method: 'POST', url: '/api/v1/conversations/', headers: { 'content-type': 'application/json' }, payload: 'null' }))
        .statusCode,
    ).toBe(422);
    expect((await as({ method: 'POST', url: '/api/v1/conversations/' })).statusCode).toBe(422);
  });

  it('coerces query strings but refuses values that are not what the parameter says', async () => {
    const as = asUser(api.app, user);
    expect((await as({ method: 'GET', url: '/api/v1/conversations/?limit=2&offset=0&enable_retrieval=false' })).statusCode).toBe(200);
    expect422(await as({ method: 'GET', url: '/api/v1/conversations/?limit=abc' }), ['query', 'limit']);
    expect422(await as({ method: 'GET', url: '/api/v1/conversations/?limit=0' }), ['query', 'limit']);
    expect422(await as({ method: 'GET', url: '/api/v1/conversations/?limit=1000' }), ['query', 'limit']);
    expect422(await as({ method: 'GET', url: '/api/v1/conversations/?offset=-1' }), ['query', 'offset']);
    expect422(await as({ method: 'GET', url: '/api/v1/conversations/?sort_by=password_hash' }), ['query', 'sort_by']);
    expect422(await as({ method: 'GET', url: '/api/v1/conversations/?sort_order=sideways' }), ['query', 'sort_order']);
    expect422(await as({ method: 'GET', url: '/api/v1/conversations/?status=lost' }), ['query', 'status']);
    expect422(await as({ method: 'GET', url: `/api/v1/conversations/${conversationId}?include_messages=maybe` }), [
      'query',
      'include_messages',
    ]);
    expect422(await as({ method: 'GET', url: `/api/v1/conversations/${conversationId}/messages?limit=-5` }), ['query', 'limit']);
    expect422(await as({ method: 'GET', url: `/api/v1/conversations/${'x'.repeat(200)}` }), ['params', 'conversation_id']);
  });

  it('ignores unknown body fields: accepted, never stored', async () => {
    const response = await asUser(
      api.app,
      user,
    )({
      method: 'POST',
      url: '/api/v1/conversations/',
      payload: { title: 'extra', user_id: 'someone-else', message_count: 999, total_cost: 5, status: 'archived', hacker: true },
    });
    expect(response.statusCode).toBe(201);
    expect(response.json()).toMatchObject({ user_id: user.id, message_count: 0, total_cost: 0, status: 'active' });
    expect(response.json()).not.toHaveProperty('hacker');
  });

  it('refuses text the database cannot store faithfully (NUL, lone surrogates) with 422', async () => {
    const before = await snapshot();
    const as = asUser(api.app, user);
    const nul = await as({ method: 'POST', url: '/api/v1/conversations/', payload: { title: 'a\u0000b' } });
    expect422(nul, ['body', 'title']);
    expect422(
      await as({ method: 'POST', url: '/api/v1/conversations/', payload: { title: 'ok', extra_metadata: { deep: ['x', '\ud800'] } } }),
      ['body', 'extra_metadata', 'deep', 1],
    );
    expect422(await as({ method: 'POST', url: '/api/v1/conversations/', payload: { title: 'ok', extra_metadata: { 'k\u0000': 1 } } }), [
      'body',
      'extra_metadata',
      'k\u0000',
    ]);
    let deep: unknown = 'bottom';
    for (let level = 0; level < 200; level += 1) {
      deep = { next: deep };
    }
    expect(
      (await as({ method: 'POST', url: '/api/v1/conversations/', payload: { title: 'ok', extra_metadata: deep as object } })).statusCode,
    ).toBe(422);
    expect(await snapshot()).toEqual(before);
    // A well-formed pair is fine.
    expect((await as({ method: 'POST', url: '/api/v1/conversations/', payload: { title: 'emoji 😀' } })).statusCode).toBe(201);
  });

  it('answers a body over 1 MiB with 413 and a clear detail, and stores nothing', async () => {
    const before = await snapshot();
    const response = await asUser(
      api.app,
      user,
    )({
      method: 'POST',
      url: '/api/v1/conversations/',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ title: 'big', description: 'x'.repeat(1024 * 1024) }),
    });
    expect(response.statusCode).toBe(413);
    expect(response.json()).toEqual({ detail: expect.stringMatching(/larger than the limit of 1048576 bytes/), code: 'payload_too_large' });
    expect(await snapshot()).toEqual(before);
    // Just under the limit is accepted.
    const fits = await asUser(
      api.app,
      user,
    )({
      method: 'POST',
      url: '/api/v1/conversations/',
      payload: { title: 'fits', system_prompt: 'y'.repeat(1000 * 1000) },
    });
    expect(fits.statusCode).toBe(201);
  });
});
