import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { asUser, registerUser, type RegisteredUser } from '../helpers/api.js';
import { createChatApi, sseData, type ChatApi } from '../helpers/chat-api.js';
import { fullContractErrors, fullContractMissing } from '../helpers/full-contract.js';

type ChatBody = {
  conversation_id: string;
  run_id: string;
  message: { total_tokens: number; cost: number | null };
  conversation: { profile_id: string | null };
};

const reply = (content = 'ok') => ({ content, usage: { input_tokens: 12, output_tokens: 3 } });

describe.skipIf(fullContractMissing !== undefined)('chat turns with a profile and a prompt', () => {
  let api: ChatApi;
  let alice: RegisteredUser;
  let bob: RegisteredUser;
  let profileId: string;
  beforeAll(async () => {
    api = await createChatApi({
      OPENAI_API_KEY: 'sk-test-not-real',
      CHAT_RATE_LIMIT_PER_MINUTE: '1000',
      CHAT_STREAMING_RATE_LIMIT_PER_MINUTE: '1000',
    });
    alice = await registerUser(api.app);
    bob = await registerUser(api.app);
    const profile = await asUser(
      api.app,
      alice,
    )({
      method: 'POST',
      url: '/api/v1/profiles/',
      payload: {
        name: 'Terse',
        llm_provider: 'openai',
        llm_model: 'gpt-4o-mini',
        temperature: 0.2,
        max_tokens: 300,
        system_prompt: 'You are terse.',
        enable_tools: true,
      },
    });
    expect(profile.statusCode, profile.body).toBe(201);
    profileId = profile.json<{ id: string }>().id;
  });
  afterAll(async () => {
    await api.close();
  });

  const chat = (user: RegisteredUser, payload: Record<string, unknown>) =>
    asUser(api.app, user)({ method: 'POST', url: '/api/v1/workflows/execute/chat', payload });
  const lastCall = () => model?.calls.at(-1);
  /** The system message the model got last; the graph's template puts its own text before the turn's system prompt. */
  const systemPromptSent = () => {
    const first = lastCall()?.messages[0];
    return first?.getType() === 'system' ? String(first.content).split('\n\n').at(-1) : undefined;
  };
  let model: ReturnType<ChatApi['script']> | undefined;
  const script = (...turns: ReturnType<typeof reply>[]) => {
    model = api.script(turns);
  };
  const counts = async (userId: string) =>
    api.db.pool.one(sql.type(z.object({ conversations: z.number(), messages: z.number(), runs: z.number() }))`
      SELECT (SELECT count(*)::int FROM conversations WHERE user_id = ${userId}) AS conversations,
             (SELECT count(*)::int FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE c.user_id = ${userId}) AS messages,
             (SELECT count(*)::int FROM workflow_runs WHERE user_id = ${userId}) AS runs`);
  const runRow = async (runId: string) =>
    api.db.pool.one(sql.type(
      z.object({ workflow: z.string(), provider: z.string(), model: z.string(), input: z.record(z.string(), z.unknown()) }),
    )`
      SELECT workflow, provider, model, input FROM workflow_runs WHERE id = ${runId}`);

  it('takes provider, model, temperature, max_tokens, system prompt and tools from the profile, and records it', async () => {
    script(reply('first'));
    const response = await chat(alice, { message: 'hello', profile_id: profileId });
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json<ChatBody>();
    expect(fullContractErrors('ChatResponse', body)).toEqual([]);
    expect(api.modelRequests.at(-1)).toMatchObject({ provider: 'openai', model: 'gpt-4o-mini', temperature: 0.2, maxTokens: 300 });
    const call = lastCall();
    expect(systemPromptSent()).toBe('You are terse.');
    expect(call?.tools).toEqual(expect.arrayContaining(['calculator', 'current_time']));
    expect(await runRow(body.run_id)).toMatchObject({
      workflow: 'chat_with_tools',
      provider: 'openai',
      model: 'gpt-4o-mini',
      input: expect.objectContaining({ profile_id: profileId }),
    });
    expect(body.conversation.profile_id).toBe(profileId);

    const profile = await asUser(api.app, alice)({ method: 'GET', url: `/api/v1/profiles/${profileId}` });
    expect(fullContractErrors('ProfileResponse', profile.json())).toEqual([]);
    expect(profile.json()).toMatchObject({
      usage_count: 1,
      total_tokens_used: body.message.total_tokens,
      total_cost: body.message.cost,
      last_used_at: expect.any(String),
    });
  });

  it('lets the request override the profile, and keeps the conversation’s profile for later turns', async () => {
    script(reply('second'), reply('third'));
    const first = await chat(alice, {
      message: 'override',
      profile_id: profileId,
      model: 'gpt-4.1',
      temperature: 1.1,
      max_tokens: 50,
      enable_tools: false,
      system_prompt_override: 'Be verbose.',
    });
    expect(first.statusCode, first.body).toBe(200);
    expect(api.modelRequests.at(-1)).toMatchObject({ provider: 'openai', model: 'gpt-4.1', temperature: 1.1, maxTokens: 50 });
    expect(systemPromptSent()).toBe('Be verbose.');
    expect(lastCall()?.tools).toEqual([]);
    const conversationId = first.json<ChatBody>().conversation_id;

    const next = await chat(alice, { message: 'again', conversation_id: conversationId });
    expect(next.statusCode, next.body).toBe(200);
    expect(api.modelRequests.at(-1)).toMatchObject({ provider: 'openai', model: 'gpt-4o-mini', temperature: 0.2, maxTokens: 300 });
    expect(systemPromptSent()).toBe('You are terse.');
    expect((await runRow(next.json<ChatBody>().run_id)).input).toMatchObject({ profile_id: profileId });
  });

  it('fills the system prompt from a prompt template with its variables, over the profile’s', async () => {
    const prompt = await asUser(
      api.app,
      alice,
    )({
      method: 'POST',
      url: '/api/v1/prompts/',
      payload: { name: 'Reviewer', content: 'You review {language} code for {audience}.', required_variables: ['language'] },
    });
    expect(prompt.statusCode, prompt.body).toBe(201);
    const promptId = prompt.json<{ id: string }>().id;
    script(reply('reviewed'));
    const response = await chat(alice, {
      message: 'look',
      profile_id: profileId,
      prompt_id: promptId,
      prompt_variables: { language: 'Rust' },
    });
    expect(response.statusCode, response.body).toBe(200);
    expect(systemPromptSent()).toBe('You review Rust code for .');
    expect((await runRow(response.json<ChatBody>().run_id)).input).toMatchObject({ profile_id: profileId, prompt_id: promptId });
    const read = await asUser(api.app, alice)({ method: 'GET', url: `/api/v1/prompts/${promptId}` });
    expect(fullContractErrors('PromptResponse', read.json())).toEqual([]);
    expect(read.json()).toMatchObject({
      usage_count: 1,
      success_rate: 1,
      total_tokens_used: response.json<ChatBody>().message.total_tokens,
    });

    const before = await counts(alice.id);
    const missing = await chat(alice, { message: 'look', prompt_id: promptId, prompt_variables: { audience: 'juniors' } });
    expect(missing.statusCode).toBe(422);
    expect(fullContractErrors('HTTPValidationError', missing.json())).toEqual([]);
    expect(missing.json()).toEqual({
      detail: [
        { loc: ['body', 'prompt_variables', 'language'], msg: expect.stringContaining('"language"'), type: 'prompt_variables.missing' },
      ],
    });
    expect(await counts(alice.id)).toEqual(before);
  });

  it('answers 404 for an unknown or another user’s private profile or prompt before anything is saved', async () => {
    const secret = await asUser(
      api.app,
      alice,
    )({ method: 'POST', url: '/api/v1/prompts/', payload: { name: 'Secret', content: 'Hidden' } });
    const secretId = secret.json<{ id: string }>().id;
    script(reply());
    const before = await counts(bob.id);
    for (const payload of [
      { message: 'x', profile_id: profileId },
      { message: 'x', profile_id: 'no-such-profile' },
      { message: 'x', prompt_id: secretId },
      { message: 'x', prompt_id: 'no-such-prompt' },
    ]) {
      const response = await chat(bob, payload);
      expect(response.statusCode, JSON.stringify(payload)).toBe(404);
      const streamed = await asUser(api.app, bob)({ method: 'POST', url: '/api/v1/workflows/execute/chat/streaming', payload });
      expect(streamed.statusCode, JSON.stringify(payload)).toBe(404);
    }
    expect(await counts(bob.id)).toEqual(before);
  });

  it('lets another user chat with a public profile, streamed too', async () => {
    const shared = await asUser(
      api.app,
      alice,
    )({
      method: 'POST',
      url: '/api/v1/profiles/',
      payload: { name: 'Shared', llm_provider: 'local', temperature: 0.9, max_tokens: 77, system_prompt: 'Shared voice.', is_public: true },
    });
    const sharedId = shared.json<{ id: string }>().id;
    script(reply('streamed'));
    const response = await asUser(
      api.app,
      bob,
    )({ method: 'POST', url: '/api/v1/workflows/execute/chat/streaming', payload: { message: 'hi', profile_id: sharedId } });
    expect(response.statusCode).toBe(200);
    const chunks = sseData(response.body) as { type?: string }[];
    expect(chunks.map((chunk) => chunk.type ?? chunk)).toEqual(['start', 'token', 'complete', '[DONE]']);
    expect(api.modelRequests.at(-1)).toMatchObject({ provider: 'local', model: 'local-echo-1', temperature: 0.9, maxTokens: 77 });
    expect(systemPromptSent()).toBe('Shared voice.');
  });
});
