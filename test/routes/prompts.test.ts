import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asUser, createTestApi, registerUser, type RegisteredUser, type TestApi } from '../helpers/api.js';
import { fullContractErrors, fullContractMissing } from '../helpers/full-contract.js';

type Prompt = {
  id: string;
  owner_id: string;
  name: string;
  content: string;
  variables: string[];
  version: number;
  is_public: boolean;
  [key: string]: unknown;
};
type PromptList = { prompts: Prompt[]; total_count: number; limit: number; offset: number };

describe.skipIf(fullContractMissing !== undefined)('prompts (/api/v1/prompts)', () => {
  let api: TestApi;
  let alice: RegisteredUser;
  let bob: RegisteredUser;
  beforeAll(async () => {
    api = await createTestApi();
    alice = await registerUser(api.app);
    bob = await registerUser(api.app);
  });
  afterAll(async () => {
    await api.close();
  });

  const post = (user: RegisteredUser, payload: Record<string, unknown>) =>
    asUser(api.app, user)({ method: 'POST', url: '/api/v1/prompts/', payload });
  const create = async (user: RegisteredUser, payload: Record<string, unknown>): Promise<Prompt> => {
    const response = await post(user, payload);
    expect(response.statusCode, response.body).toBe(201);
    expect(fullContractErrors('PromptResponse', response.json())).toEqual([]);
    return response.json<Prompt>();
  };
  const list = async (user: RegisteredUser, query = ''): Promise<PromptList> => {
    const response = await asUser(api.app, user)({ method: 'GET', url: `/api/v1/prompts${query}` });
    expect(response.statusCode, response.body).toBe(200);
    expect(fullContractErrors('PromptListResponse', response.json())).toEqual([]);
    return response.json<PromptList>();
  };

  it('creates a template, taking its variables from the placeholders when none are declared', async () => {
    const prompt = await create(alice, { name: 'Reviewer', content: 'Review {language} code for {audience}.' });
    expect(prompt).toMatchObject({
      owner_id: alice.id,
      prompt_type: 'template',
      category: 'general',
      template_format: 'f-string',
      variables: ['language', 'audience'],
      version: 1,
      is_latest: true,
      is_public: false,
      rating_count: 0,
      usage_count: 0,
      total_tokens_used: 0,
      total_cost: 0,
      content_hash: expect.stringMatching(/^[0-9a-f]{64}$/),
      estimated_tokens: expect.any(Number),
    });
    const read = await asUser(api.app, alice)({ method: 'GET', url: `/api/v1/prompts/${prompt.id}` });
    expect(fullContractErrors('PromptResponse', read.json())).toEqual([]);
    expect(read.json()).toEqual(prompt);
  });

  it('answers 422 naming the variable when the placeholders and declared variables disagree, and saves nothing', async () => {
    const before = (await list(alice, '?limit=100')).total_count;
    const undeclared = await post(alice, { name: 'x', content: 'Hi {name} from {place}', variables: ['name'] });
    expect(undeclared.statusCode).toBe(422);
    expect(fullContractErrors('HTTPValidationError', undeclared.json())).toEqual([]);
    expect(undeclared.json()).toEqual({
      detail: [{ loc: ['body', 'content'], msg: expect.stringContaining('"place"'), type: 'prompt_template.undeclared_variable' }],
    });
    const unused = await post(alice, { name: 'x', content: 'Hi {{ name }}', template_format: 'mustache', variables: ['name', 'mood'] });
    expect(unused.json()).toEqual({
      detail: [{ loc: ['body', 'variables'], msg: expect.stringContaining('"mood"'), type: 'prompt_template.unused_variable' }],
    });
    for (const payload of [
      { name: 'x', content: 'broken {' },
      { name: 'x', content: '{a}', required_variables: ['b'] },
      { name: 'x', content: 'abc', template_format: 'handlebars' },
      { name: 'x', content: 'abcdef', max_length: 3 },
      { name: 'x', content: 'a', min_length: 3, max_length: 2 },
      { name: 'x' },
      { name: 'x', content: '' },
      { name: 'x', content: 'ok', category: 'gossip' },
    ]) {
      const response = await post(alice, payload);
      expect(response.statusCode, JSON.stringify(payload)).toBe(422);
      expect(fullContractErrors('HTTPValidationError', response.json())).toEqual([]);
    }
    expect((await list(alice, '?limit=100')).total_count).toBe(before);
  });

  it('updates in place: a content change moves the version and is checked against the variables', async () => {
    const prompt = await create(alice, { name: 'Greeter', content: 'Hello {name}', variables: ['name'] });
    const as = asUser(api.app, alice);
    const bad = await as({ method: 'PUT', url: `/api/v1/prompts/${prompt.id}`, payload: { content: 'Hello {name}, welcome to {city}' } });
    expect(bad.statusCode).toBe(422);
    expect(bad.json()).toEqual({ detail: [expect.objectContaining({ loc: ['body', 'content'], msg: expect.stringContaining('"city"') })] });
    expect((await as({ method: 'GET', url: `/api/v1/prompts/${prompt.id}` })).json()).toMatchObject({
      content: 'Hello {name}',
      version: 1,
    });

    const ok = await as({
      method: 'PUT',
      url: `/api/v1/prompts/${prompt.id}`,
      payload: { content: 'Hello {name}, welcome to {city}', variables: ['name', 'city'] },
    });
    expect(ok.statusCode, ok.body).toBe(200);
    expect(fullContractErrors('PromptResponse', ok.json())).toEqual([]);
    expect(ok.json()).toMatchObject({ version: 2, variables: ['name', 'city'] });
    expect(ok.json<Prompt>()['content_hash']).not.toBe(prompt['content_hash']);

    const renamed = await as({
      method: 'PUT',
      url: `/api/v1/prompts/${prompt.id}`,
      payload: { name: 'Welcomer', description: 'greets', content: null },
    });
    expect(renamed.json()).toMatchObject({
      name: 'Welcomer',
      description: 'greets',
      version: 2,
      content: 'Hello {name}, welcome to {city}',
    });
    const derived = await as({ method: 'PUT', url: `/api/v1/prompts/${prompt.id}`, payload: { content: 'Bye {who}', variables: null } });
    expect(derived.json()).toMatchObject({ variables: ['who'], version: 3 });
  });

  it('lets every user read a public prompt, but only its owner change or delete it', async () => {
    const shared = await create(alice, { name: 'Shared', content: 'Public {x}', is_public: true });
    const secret = await create(alice, { name: 'Secret', content: 'Private {x}' });
    const as = asUser(api.app, bob);
    expect((await as({ method: 'GET', url: `/api/v1/prompts/${shared.id}` })).statusCode).toBe(200);
    const theirs = await as({ method: 'GET', url: `/api/v1/prompts/${secret.id}` });
    const missing = await as({ method: 'GET', url: '/api/v1/prompts/01HZZZZZZZZZZZZZZZZZZZZZZZ' });
    expect(theirs.statusCode).toBe(404);
    expect(theirs.body).toBe(missing.body);
    for (const id of [shared.id, secret.id]) {
      expect((await as({ method: 'PUT', url: `/api/v1/prompts/${id}`, payload: { name: 'mine' } })).statusCode).toBe(404);
      expect((await as({ method: 'DELETE', url: `/api/v1/prompts/${id}` })).statusCode).toBe(404);
    }
    const ids = (await list(bob, '?limit=100')).prompts.map((prompt) => prompt.id);
    expect(ids).toContain(shared.id);
    expect(ids).not.toContain(secret.id);
  });

  it('lists with the contract filters, sorting and pagination', async () => {
    const carol = await registerUser(api.app);
    await create(carol, { name: 'b', content: 'b', category: 'coding', tags: ['t1', 't2'] });
    await create(carol, { name: 'a', content: 'a', prompt_type: 'system', is_public: true, tags: ['t1'] });
    await create(carol, { name: 'c', content: 'c', is_chain: true, chain_steps: [{ step: 1 }] });
    const mine = (page: PromptList) => page.prompts.filter((prompt) => prompt.owner_id === carol.id).map((prompt) => prompt.name);
    expect(mine(await list(carol, '?sort_by=name&sort_order=asc&limit=100'))).toEqual(['a', 'b', 'c']);
    expect(mine(await list(carol, '?category=coding'))).toEqual(['b']);
    expect(mine(await list(carol, '?prompt_type=system'))).toEqual(['a']);
    expect(mine(await list(carol, '?tags=t1&tags=t2'))).toEqual(['b']);
    expect(mine(await list(carol, '?is_chain=true'))).toEqual(['c']);
    expect(mine(await list(carol, '?is_public=false&sort_by=name&sort_order=asc'))).toEqual(['b', 'c']);
    expect(await list(carol, '?is_public=false&sort_by=name&sort_order=asc&limit=1&offset=1')).toMatchObject({
      total_count: 2,
      limit: 1,
      offset: 1,
      prompts: [expect.objectContaining({ name: 'c' })],
    });
    expect((await asUser(api.app, carol)({ method: 'GET', url: '/api/v1/prompts?sort_order=up' })).statusCode).toBe(422);
  });

  it('deletes the owner’s prompt', async () => {
    const prompt = await create(alice, { name: 'Doomed', content: 'x' });
    const response = await asUser(api.app, alice)({ method: 'DELETE', url: `/api/v1/prompts/${prompt.id}` });
    expect(response.statusCode).toBe(200);
    expect(fullContractErrors('PromptDeleteResponse', response.json())).toEqual([]);
    expect((await asUser(api.app, alice)({ method: 'GET', url: `/api/v1/prompts/${prompt.id}` })).statusCode).toBe(404);
  });
});
