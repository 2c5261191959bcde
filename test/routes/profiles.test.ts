import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asUser, registerUser, securityEvents, type RegisteredUser } from '../helpers/api.js';
import { createChatApi, type ChatApi } from '../helpers/chat-api.js';
import { fullContractErrors, fullContractMissing } from '../helpers/full-contract.js';

type Profile = { id: string; owner_id: string; name: string; is_public: boolean; [key: string]: unknown };
type ProfileList = { profiles: Profile[]; total_count: number; limit: number; offset: number };

describe.skipIf(fullContractMissing !== undefined)('profiles (/api/v1/profiles)', () => {
  let api: ChatApi;
  let alice: RegisteredUser;
  let bob: RegisteredUser;
  beforeAll(async () => {
    api = await createChatApi({ OPENAI_API_KEY: 'sk-test-not-real' });
    alice = await registerUser(api.app);
    bob = await registerUser(api.app);
  });
  afterAll(async () => {
    await api.close();
  });

  const create = async (user: RegisteredUser, payload: Record<string, unknown>): Promise<Profile> => {
    const response = await asUser(api.app, user)({ method: 'POST', url: '/api/v1/profiles/', payload });
    expect(response.statusCode, response.body).toBe(201);
    expect(fullContractErrors('ProfileResponse', response.json())).toEqual([]);
    return response.json<Profile>();
  };
  const list = async (user: RegisteredUser, query = ''): Promise<ProfileList> => {
    const response = await asUser(api.app, user)({ method: 'GET', url: `/api/v1/profiles${query}` });
    expect(response.statusCode, response.body).toBe(200);
    expect(fullContractErrors('ProfileListResponse', response.json())).toEqual([]);
    return response.json<ProfileList>();
  };

  it('creates a profile with the contract defaults and reads it back', async () => {
    const profile = await create(alice, {
      name: 'Precise',
      llm_provider: 'openai',
      llm_model: 'gpt-4o-mini',
      temperature: 0.1,
      tags: ['work'],
    });
    expect(profile).toMatchObject({
      name: 'Precise',
      owner_id: alice.id,
      profile_type: 'custom',
      llm_provider: 'openai',
      llm_model: 'gpt-4o-mini',
      temperature: 0.1,
      max_tokens: 4096,
      enable_tools: false,
      is_public: false,
      tags: ['work'],
      usage_count: 0,
      total_tokens_used: 0,
      total_cost: 0,
      last_used_at: null,
    });
    const read = await asUser(api.app, alice)({ method: 'GET', url: `/api/v1/profiles/${profile.id}` });
    expect(read.statusCode).toBe(200);
    expect(fullContractErrors('ProfileResponse', read.json())).toEqual([]);
    expect(read.json()).toEqual(profile);
  });

  it('updates the fields given, clears nullable ones sent as null, leaves the others', async () => {
    const profile = await create(alice, { name: 'Editable', description: 'first', system_prompt: 'Be brief.' });
    const put = await asUser(
      api.app,
      alice,
    )({
      method: 'PUT',
      url: `/api/v1/profiles/${profile.id}`,
      payload: { description: null, max_tokens: 256, name: null, enable_tools: true },
    });
    expect(put.statusCode, put.body).toBe(200);
    expect(fullContractErrors('ProfileResponse', put.json())).toEqual([]);
    expect(put.json()).toMatchObject({
      name: 'Editable',
      description: null,
      max_tokens: 256,
      enable_tools: true,
      system_prompt: 'Be brief.',
    });
    expect(Date.parse(put.json<Profile>()['updated_at'] as string)).toBeGreaterThanOrEqual(Date.parse(profile['updated_at'] as string));
  });

  it('answers 422 for bad fields and changes nothing', async () => {
    const profile = await create(alice, { name: 'Strict' });
    for (const payload of [
      {},
      { name: '' },
      { name: 'x', temperature: 3 },
      { name: 'x', llm_provider: 'nope' },
      { name: 'x', max_tokens: 0 },
      { name: 'x', tags: 'a' },
      { name: 7 },
    ]) {
      const response = await asUser(api.app, alice)({ method: 'POST', url: '/api/v1/profiles/', payload });
      expect(response.statusCode, JSON.stringify(payload)).toBe(422);
      expect(fullContractErrors('HTTPValidationError', response.json())).toEqual([]);
    }
    const bad = await asUser(
      api.app,
      alice,
    )({ method: 'PUT', url: `/api/v1/profiles/${profile.id}`, payload: { temperature: -1, name: 'changed' } });
    expect(bad.statusCode).toBe(422);
    expect(bad.json()).toEqual({
      detail: expect.arrayContaining([expect.objectContaining({ loc: expect.arrayContaining(['body', 'temperature']) })]),
    });
    const read = await asUser(api.app, alice)({ method: 'GET', url: `/api/v1/profiles/${profile.id}` });
    expect(read.json()).toMatchObject({ name: 'Strict', temperature: 0.7 });
    const query = await asUser(api.app, alice)({ method: 'GET', url: '/api/v1/profiles?limit=0' });
    expect(query.statusCode).toBe(422);
    expect((await asUser(api.app, alice)({ method: 'GET', url: '/api/v1/profiles?sort_by=password' })).statusCode).toBe(422);
  });

  it('lets every user read a public profile, but only its owner change or delete it', async () => {
    const shared = await create(alice, { name: 'Shared', is_public: true });
    const secret = await create(alice, { name: 'Secret' });
    const as = asUser(api.app, bob);
    expect((await as({ method: 'GET', url: `/api/v1/profiles/${shared.id}` })).json()).toMatchObject({ id: shared.id, owner_id: alice.id });
    const missing = await as({ method: 'GET', url: '/api/v1/profiles/01HZZZZZZZZZZZZZZZZZZZZZZZ' });
    const theirs = await as({ method: 'GET', url: `/api/v1/profiles/${secret.id}` });
    expect(theirs.statusCode).toBe(404);
    expect(theirs.body).toBe(missing.body);
    for (const id of [shared.id, secret.id]) {
      expect((await as({ method: 'PUT', url: `/api/v1/profiles/${id}`, payload: { name: 'mine now' } })).statusCode).toBe(404);
      expect((await as({ method: 'DELETE', url: `/api/v1/profiles/${id}` })).statusCode).toBe(404);
    }
    expect((await asUser(api.app, alice)({ method: 'GET', url: `/api/v1/profiles/${shared.id}` })).json()).toMatchObject({
      name: 'Shared',
    });
    expect(await securityEvents(api.db, 'access_denied')).toContainEqual(
      expect.objectContaining({ user_id: bob.id, data: expect.objectContaining({ resource: 'profile' }) }),
    );

    const bobs = await list(bob);
    expect(bobs.profiles.map((profile) => profile.id)).toContain(shared.id);
    expect(bobs.profiles.map((profile) => profile.id)).not.toContain(secret.id);
  });

  it('lists with the contract filters, sorting and pagination', async () => {
    const carol = await registerUser(api.app);
    const made = [
      await create(carol, { name: 'b-analyst', profile_type: 'analytical', llm_provider: 'openai', tags: ['x', 'y'] }),
      await create(carol, { name: 'a-writer', profile_type: 'creative', llm_provider: 'local', tags: ['x'], is_public: true }),
      await create(carol, { name: 'c-coder', profile_type: 'technical', llm_provider: 'local' }),
    ];
    const mine = (page: ProfileList) => page.profiles.filter((profile) => profile.owner_id === carol.id).map((profile) => profile.name);
    expect(mine(await list(carol, '?sort_by=name&sort_order=asc'))).toEqual(['a-writer', 'b-analyst', 'c-coder']);
    expect(mine(await list(carol, '?profile_type=analytical'))).toEqual(['b-analyst']);
    expect(mine(await list(carol, '?llm_provider=local&sort_by=name&sort_order=asc'))).toEqual(['a-writer', 'c-coder']);
    expect(mine(await list(carol, '?tags=x&tags=y'))).toEqual(['b-analyst']);
    expect(mine(await list(carol, '?is_public=false&sort_by=name&sort_order=asc'))).toEqual(['b-analyst', 'c-coder']);
    const publicOnly = await list(carol, '?is_public=true');
    expect(publicOnly.profiles.every((profile) => profile.is_public)).toBe(true);
    const page = await list(carol, '?is_public=false&limit=1&offset=1&sort_by=created_at&sort_order=asc');
    expect(page).toMatchObject({ total_count: 2, limit: 1, offset: 1 });
    expect(page.profiles.map((profile) => profile.id)).toEqual([made[2]?.id]);
  });

  it('deletes the owner’s profile (404 afterwards)', async () => {
    const profile = await create(alice, { name: 'Doomed' });
    const response = await asUser(api.app, alice)({ method: 'DELETE', url: `/api/v1/profiles/${profile.id}` });
    expect(response.statusCode).toBe(200);
    expect(fullContractErrors('ProfileDeleteResponse', response.json())).toEqual([]);
    expect((await asUser(api.app, alice)({ method: 'GET', url: `/api/v1/profiles/${profile.id}` })).statusCode).toBe(404);
    expect((await asUser(api.app, alice)({ method: 'DELETE', url: `/api/v1/profiles/${profile.id}` })).statusCode).toBe(404);
  });

  it('lists the providers, configured or not, with their models priced as runs are costed', async () => {
    const response = await asUser(api.app, alice)({ method: 'GET', url: '/api/v1/profiles/providers/available' });
    expect(response.statusCode).toBe(200);
    const body = response.json<{
      providers: Record<
        string,
        {
          configured: boolean;
          is_default: boolean;
          default_model: string;
          models: { name: string; price: { price_id: string; output_per_mtok: number } | null }[];
        }
      >;
      total_providers: number;
      supported_features: Record<string, string[]>;
    }>();
    expect(fullContractErrors('AvailableProvidersResponse', body)).toEqual([]);
    expect(body.total_providers).toBe(3);
    expect(body.providers['local']).toMatchObject({ configured: true, is_default: true, default_model: 'local-echo-1' });
    expect(body.providers['openai']?.configured).toBe(true);
    expect(body.providers['anthropic']?.configured).toBe(false);
    const mini = body.providers['openai']?.models.find((model) => model.name === 'gpt-4o-mini');
    const expected = api.services.prices.find('openai', 'gpt-4o-mini', new Date());
    expect(expected).not.toBeNull();
    expect(mini?.price).toMatchObject({ price_id: expected?.id, output_per_mtok: expected?.outputPerMTok });
    expect(body.providers['anthropic']?.models.map((model) => model.name)).toContain('claude-sonnet-4-5');
    expect(body.providers['anthropic']?.models.every((model) => !model.name.includes('*'))).toBe(true);
    expect(Object.keys(body.supported_features)).toEqual(['local', 'openai', 'anthropic']);
  });

  it('documents the providers route in /openapi.json with the contract operationId', async () => {
    const document = (await api.app.inject({ method: 'GET', url: '/openapi.json' })).json<{
      paths: Record<string, Record<string, { operationId?: string }>>;
    }>();
    expect(document.paths['/api/v1/profiles/providers/available']?.['get']?.operationId).toBe(
      'get_available_providers_api_v1_profiles_providers_available_get',
    );
  });

  it('shows an operator price once it is added', async () => {
    await api.db.pool.query(sql.unsafe`
      INSERT INTO model_prices (id, provider, model_pattern, valid_from, input_per_mtok, cache_read_per_mtok, cache_write_per_mtok, output_per_mtok, source)
      VALUES ('operator:test-model', 'openai', 'my-finetune', now() - interval '1 minute', 1, 0.5, 1, 2, 'operator')`);
    await api.services.prices.reload();
    const body = (await asUser(api.app, alice)({ method: 'GET', url: '/api/v1/profiles/providers/available' })).json<{
      providers: Record<string, { models: { name: string; price: { price_id: string } | null }[] }>;
    }>();
    expect(body.providers['openai']?.models).toContainEqual({
      name: 'my-finetune',
      is_default: false,
      price: expect.objectContaining({ price_id: 'operator:test-model', output_per_mtok: 2 }),
    });
  });

  it('refuses every route without a token', async () => {
    for (const [method, url] of [
      ['GET', '/api/v1/profiles'],
      ['POST', '/api/v1/profiles/'],
      ['GET', '/api/v1/profiles/providers/available'],
      ['GET', '/api/v1/profiles/x'],
    ] as const) {
      expect((await api.app.inject({ method, url, payload: method === 'POST' ? { name: 'x' } : undefined })).statusCode).toBe(401);
    }
  });
});
