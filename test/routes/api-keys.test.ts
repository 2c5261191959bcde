import { createHash } from 'node:crypto';
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { asUser, createTestApi, registerUser, securityEvents, type RegisteredUser, type TestApi } from '../helpers/api.js';
import { publishedApi, type OpenApiValidator } from '../helpers/openapi-validator.js';

type KeyBody = { id: string; api_key: string; api_key_name: string; key_id: string; key_prefix: string };

describe('API keys', () => {
  /** This service's own OpenAPI document: answers are checked against what it publishes. */
  let published: OpenApiValidator;
  let api: TestApi;
  let user: RegisteredUser;
  beforeAll(async () => {
    api = await createTestApi();
    published = await publishedApi(api.app);
    user = await registerUser(api.app);
  });
  afterAll(async () => {
    await api.close();
  });

  const createKey = async (owner: RegisteredUser, name: string): Promise<KeyBody> => {
    const response = await asUser(api.app, owner)({ method: 'POST', url: '/api/v1/auth/api-key', payload: { name } });
    expect(response.statusCode).toBe(200);
    return response.json<KeyBody>();
  };
  const withKey = (key: string) => ({ authorization: `Bearer ${key}` });

  it('creates a chk_ key, shows it once, and keeps only its SHA-256 and prefix', async () => {
    const response = await asUser(api.app, user)({ method: 'POST', url: '/api/v1/auth/api-key', payload: { name: 'ci' } });
    expect(response.statusCode).toBe(200);
    const body = response.json<KeyBody>();
    expect(published.errors(published.responseSchemaOf('/api/v1/auth/api-key', 'post', '200'), body)).toEqual([]);
    // `id` is the key's own id (the one revoking takes), the same as key_id.
    expect(body).toMatchObject({ id: body.key_id, user_id: user.id, api_key_name: 'ci' });
    expect(body.id).not.toBe(user.id);
    expect(body.api_key).toMatch(/^chk_[A-Za-z0-9_-]{43}$/);

    const rows = await api.db.pool.any(
      sql.type(
        z.object({ key_hash: z.string(), key_prefix: z.string() }),
      )`SELECT key_hash, key_prefix FROM api_keys WHERE id = ${body.key_id}`,
    );
    expect(rows).toEqual([{ key_hash: createHash('sha256').update(body.api_key).digest('hex'), key_prefix: body.api_key.slice(0, 12) }]);
    // The key appears nowhere in the database: not in api_keys, not in the events.
    const dump = await api.db.pool.anyFirst(
      sql.type(z.object({ row: z.string() }))`
        SELECT row_to_json(k)::text AS row FROM api_keys k
        UNION ALL SELECT row_to_json(e)::text FROM events e`,
    );
    expect(dump.join('\n')).not.toContain(body.api_key);
    expect(dump.join('\n')).not.toContain(body.api_key.slice(12));

    expect(await securityEvents(api.db, 'api_key_created')).toContainEqual(
      expect.objectContaining({ user_id: user.id, data: expect.objectContaining({ key_id: body.key_id }) }),
    );
  });

  it("lists the caller's active keys with their prefix, never the key, and never another user's", async () => {
    const key = await createKey(user, 'laptop');
    const stranger = await registerUser(api.app);
    const strangerKey = await createKey(stranger, 'stranger');
    const response = await asUser(api.app, user)({ method: 'GET', url: '/api/v1/auth/api-keys' });
    expect(response.statusCode).toBe(200);
    const list = response.json<KeyBody[]>();
    expect(published.errors(published.responseSchemaOf('/api/v1/auth/api-keys', 'get', '200'), list)).toEqual([]);
    const listed = list.find((item) => item.key_id === key.key_id);
    expect(listed).toMatchObject({ id: key.key_id, user_id: user.id, api_key_name: 'laptop', api_key: `${key.key_prefix}…` });
    expect(response.body).not.toContain(key.api_key);
    // Each key its own id, and revoking by the listed id revokes that key alone.
    expect(new Set(list.map((item) => item.id)).size).toBe(list.length);
    expect(list.every((item) => item.id === item.key_id)).toBe(true);
    const other = await createKey(user, 'to revoke');
    const listedOther = (await asUser(api.app, user)({ method: 'GET', url: '/api/v1/auth/api-keys' }))
      .json<KeyBody[]>()
      .find((item) => item.api_key_name === 'to revoke');
    const revoke = await asUser(api.app, user)({ method: 'DELETE', url: `/api/v1/auth/api-key?key_id=${listedOther?.id ?? ''}` });
    expect(revoke.json()).toMatchObject({ revoked: 1 });
    const after = (await asUser(api.app, user)({ method: 'GET', url: '/api/v1/auth/api-keys' })).json<KeyBody[]>();
    expect(after.map((item) => item.id)).toEqual(expect.arrayContaining([key.key_id]));
    expect(after.map((item) => item.id)).not.toContain(other.key_id);
    expect(list.map((item) => item.key_id)).not.toContain(strangerKey.key_id);
    // UserResponse names the newest active key.
    const me = await asUser(api.app, user)({ method: 'GET', url: '/api/v1/auth/me' });
    expect(me.json()).toMatchObject({ api_key_name: 'laptop' });
  });

  it('authenticates with the key as a Bearer token and stamps last_used_at', async () => {
    const key = await createKey(user, 'script');
    const response = await api.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: withKey(key.api_key) });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ id: user.id });
    const lastUsed = await api.db.pool.oneFirst(
      sql.type(z.object({ last_used_at: z.string().nullable() }))`SELECT last_used_at FROM api_keys WHERE id = ${key.key_id}`,
    );
    expect(lastUsed).not.toBeNull();
  });

  it('refuses to create a key when authenticated with a key', async () => {
    const key = await createKey(user, 'limited');
    const response = await api.app.inject({
      method: 'POST',
      url: '/api/v1/auth/api-key',
      headers: withKey(key.api_key),
      payload: { name: 'escalate' },
    });
    expect(response.statusCode).toBe(403);
    expect(await securityEvents(api.db, 'access_denied')).toContainEqual(expect.objectContaining({ user_id: user.id }));
  });

  it('revokes one key by key_id: it answers 401 from then on, the others still work', async () => {
    const doomed = await createKey(user, 'doomed');
    const kept = await createKey(user, 'kept');
    const response = await asUser(api.app, user)({ method: 'DELETE', url: `/api/v1/auth/api-key?key_id=${doomed.key_id}` });
    expect(response.statusCode).toBe(200);
    expect(published.errors(published.responseSchemaOf('/api/v1/auth/api-key', 'delete', '200'), response.json())).toEqual([]);
    expect((await api.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: withKey(doomed.api_key) })).statusCode).toBe(401);
    expect((await api.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: withKey(kept.api_key) })).statusCode).toBe(200);
    expect(await securityEvents(api.db, 'api_key_revoked')).toContainEqual(
      expect.objectContaining({ user_id: user.id, data: expect.objectContaining({ key_ids: doomed.key_id }) }),
    );
    const list = (await asUser(api.app, user)({ method: 'GET', url: '/api/v1/auth/api-keys' })).json<KeyBody[]>();
    expect(list.map((item) => item.key_id)).not.toContain(doomed.key_id);
  });

  it("revokes all of the user's keys without key_id, and answers 404 when none is left", async () => {
    const owner = await registerUser(api.app);
    const a = await createKey(owner, 'a');
    const b = await createKey(owner, 'b');
    const response = await asUser(api.app, owner)({ method: 'DELETE', url: '/api/v1/auth/api-key' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ revoked: 2 });
    for (const key of [a, b]) {
      expect((await api.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: withKey(key.api_key) })).statusCode).toBe(401);
    }
    expect((await asUser(api.app, owner)({ method: 'DELETE', url: '/api/v1/auth/api-key' })).statusCode).toBe(404);
  });

  it("cannot revoke another user's key", async () => {
    const other = await registerUser(api.app);
    const theirs = await createKey(other, 'theirs');
    const response = await asUser(api.app, user)({ method: 'DELETE', url: `/api/v1/auth/api-key?key_id=${theirs.key_id}` });
    expect(response.statusCode).toBe(404);
    expect((await api.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: withKey(theirs.api_key) })).statusCode).toBe(200);
  });

  it('validates the key name: required, 1 to 100 characters', async () => {
    for (const payload of [{}, { name: '' }, { name: 'x'.repeat(101) }, { name: 42 }]) {
      const response = await asUser(api.app, user)({ method: 'POST', url: '/api/v1/auth/api-key', payload });
      expect(response.statusCode, JSON.stringify(payload)).toBe(422);
      expect(response.json<{ detail: { loc: unknown[] }[] }>().detail[0]?.loc[0]).toBe('body');
    }
  });
});
