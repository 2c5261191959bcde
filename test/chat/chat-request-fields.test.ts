import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import * as semconv from '../../otel/semconv.js';
import { asUser, registerUser, type RegisteredUser } from '../helpers/api.js';
import { createChatApi, type ChatApi } from '../helpers/chat-api.js';

type ChatBody = { conversation_id: string; run_id: string };

const reply = (content = 'ok') => ({ content, usage: { input_tokens: 12, output_tokens: 3 } });
/** About 200 tokens: "word" and 199 " word" (one token each). */
const longText = (tag: string) => `${tag} ${Array.from({ length: 199 }, () => 'word').join(' ')}`;

/*
 * Every field the chat request accepts is honoured or refused (422, nothing saved), and so
 * is every setting a profile stores (src/chat/unavailable-features.ts,
 * src/profiles/profile-settings.ts).
 */
describe('chat request fields and profile settings', () => {
  let api: ChatApi;
  let alice: RegisteredUser;
  let model: ReturnType<ChatApi['script']> | undefined;
  beforeAll(async () => {
    api = await createChatApi({
      OPENAI_API_KEY: 'sk-test-not-real',
      CHAT_RATE_LIMIT_PER_MINUTE: '1000',
      CHAT_STREAMING_RATE_LIMIT_PER_MINUTE: '1000',
    });
    alice = await registerUser(api.app);
  });
  afterAll(async () => {
    await api.close();
  });

  const script = (...turns: ReturnType<typeof reply>[]) => {
    model = api.script(turns);
  };
  const chat = (payload: Record<string, unknown>, streaming = false) =>
    asUser(api.app, alice)({ method: 'POST', url: `/api/v1/workflows/execute/chat${streaming ? '/streaming' : ''}`, payload });
  const lastCall = () => model?.calls.at(-1);
  /** The contents of the non-system messages the model got last. */
  const sentContents = () =>
    (lastCall()?.messages ?? []).filter((message) => message.getType() !== 'system').map((message) => String(message.content));
  const counts = async () =>
    api.db.pool.one(sql.type(z.object({ conversations: z.number(), messages: z.number(), runs: z.number(), profiles: z.number() }))`
      SELECT (SELECT count(*)::int FROM conversations WHERE user_id = ${alice.id}) AS conversations,
             (SELECT count(*)::int FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE c.user_id = ${alice.id}) AS messages,
             (SELECT count(*)::int FROM workflow_runs WHERE user_id = ${alice.id}) AS runs,
             (SELECT count(*)::int FROM profiles WHERE owner_id = ${alice.id}) AS profiles`);
  const createProfile = async (payload: Record<string, unknown>) => {
    const response = await asUser(
      api.app,
      alice,
    )({ method: 'POST', url: '/api/v1/profiles/', payload: { name: 'p', llm_provider: 'openai', ...payload } });
    expect(response.statusCode, response.body).toBe(201);
    return response.json<{ id: string } & Record<string, unknown>>();
  };

  it('refuses retrieval, web search and documents with 422 naming the field, on both endpoints, and saves nothing', async () => {
    script(reply());
    const before = await counts();
    for (const [field, value] of [
      ['enable_retrieval', true],
      ['enable_web_search', true],
      ['document_ids', ['doc-1']],
    ] as const) {
      for (const streaming of [false, true]) {
        const response = await chat({ message: 'ground this', [field]: value }, streaming);
        expect(response.statusCode, `${field} streaming=${streaming}`).toBe(422);
        expect(response.json()).toEqual({
          detail: [{ loc: ['body', field], msg: expect.stringMatching(/not available/), type: 'value_error.unsupported' }],
        });
      }
    }
    expect(model?.calls ?? []).toHaveLength(0);
    expect(await counts()).toEqual(before);
  });

  it('accepts them switched off, and enable_tracing either way: every run is traced', async () => {
    for (const enableTracing of [false, true]) {
      script(reply());
      const response = await chat({
        message: 'plain chat',
        enable_retrieval: false,
        enable_web_search: false,
        document_ids: enableTracing ? [] : null,
        enable_tracing: enableTracing,
      });
      expect(response.statusCode, response.body).toBe(200);
      await api.services.tracerProvider.forceFlush();
      const runId = response.json<ChatBody>().run_id;
      const spans = api.exporter.getFinishedSpans().filter((span) => span.attributes[semconv.ATTR_RUN_ID] === runId);
      expect(spans.map((span) => span.name.split(' ')[0]).sort(), `enable_tracing=${enableTracing}`).toEqual(['chat', 'invoke_workflow']);
    }
  });

  it('sends only the newest history that fits context_limit tokens, and the new message always', async () => {
    script(reply('a1'), reply('a2'), reply('a3'), reply('answer'));
    const first = await chat({ message: longText('u1') });
    expect(first.statusCode, first.body).toBe(200);
    const conversationId = first.json<ChatBody>().conversation_id;
    for (const tag of ['u2', 'u3']) {
      expect((await chat({ message: longText(tag), conversation_id: conversationId })).statusCode).toBe(200);
    }
    // The conversation's context_window (4096 by default) holds all of it.
    expect(sentContents().map((content) => content.split(' ')[0])).toEqual(['u1', 'a1', 'u2', 'a2', 'u3']);

    // 201 tokens a long message, a few for the others (and 4 each around them): 500 holds
    // everything after u1 (about 433), not u1 as well.
    script(reply('a4'), reply('a5'));
    expect((await chat({ message: 'next', conversation_id: conversationId, context_limit: 500 })).statusCode).toBe(200);
    expect(sentContents().map((content) => content.split(' ')[0])).toEqual(['a1', 'u2', 'a2', 'u3', 'a3', 'next']);
    // Too small for any history: the new message alone.
    expect((await chat({ message: 'last', conversation_id: conversationId, context_limit: 1 })).statusCode).toBe(200);
    expect(sentContents()).toEqual(['last']);
  });

  it('applies a profile’s context_window, top_p and available_tools', async () => {
    const profile = await createProfile({ context_window: 300, top_p: 0.3, enable_tools: true, available_tools: ['calculator'] });
    expect(profile).toMatchObject({ context_window: 300, top_p: 0.3, available_tools: ['calculator'] });
    script(reply('b1'), reply('b2'), reply('b3'));
    const first = await chat({ message: longText('v1'), profile_id: profile.id });
    expect(first.statusCode, first.body).toBe(200);
    expect(api.modelRequests.at(-1)).toMatchObject({ provider: 'openai', topP: 0.3 });
    // Only the profile's tools of the user's tool set (calculator and current_time).
    expect(lastCall()?.tools).toEqual(['calculator']);
    const conversationId = first.json<ChatBody>().conversation_id;
    expect((await chat({ message: longText('v2'), conversation_id: conversationId })).statusCode).toBe(200);
    // 300 tokens hold what follows v1 (about 225), not v1 as well.
    expect((await chat({ message: 'more', conversation_id: conversationId })).statusCode).toBe(200);
    expect(sentContents().map((content) => content.split(' ')[0])).toEqual(['b1', 'v2', 'b2', 'more']);

    const noTools = await createProfile({ enable_tools: true, available_tools: [] });
    script(reply());
    expect((await chat({ message: 'tools?', profile_id: noTools.id })).statusCode).toBe(200);
    expect(lastCall()?.tools).toEqual([]);
    expect(api.modelRequests.at(-1)?.topP).toBeUndefined();
  });

  it('refuses to store a profile setting chats do not apply (422 naming it), on create and update, and changes nothing', async () => {
    const profile = await createProfile({ description: 'kept' });
    const before = await counts();
    const refused: readonly (readonly [string, unknown])[] = [
      ['top_k', 40],
      ['presence_penalty', 0.5],
      ['frequency_penalty', -0.5],
      ['seed', 7],
      ['stop_sequences', ['END']],
      ['logit_bias', { '50256': -100 }],
      ['response_format', 'json'],
      ['safety_level', 'strict'],
      ['content_filter_enabled', false],
      ['memory_strategy', 'summary'],
      ['tool_choice', 'required'],
      ['stream_response', false],
      ['enable_retrieval', true],
      ['retrieval_limit', 10],
      ['retrieval_score_threshold', 0.5],
      ['embedding_provider', 'openai'],
      ['embedding_model', 'text-embedding-3-small'],
    ];
    for (const [field, value] of refused) {
      const created = await asUser(
        api.app,
        alice,
      )({ method: 'POST', url: '/api/v1/profiles/', payload: { name: 'refused', [field]: value } });
      expect(created.statusCode, field).toBe(422);
      expect(created.json()).toEqual({
        detail: [{ loc: ['body', field], msg: expect.stringContaining(field), type: 'value_error.not_applied' }],
      });
      const updated = await asUser(
        api.app,
        alice,
      )({ method: 'PUT', url: `/api/v1/profiles/${profile.id}`, payload: { description: 'changed', [field]: value } });
      expect(updated.statusCode, field).toBe(422);
    }
    expect(await counts()).toEqual(before);
    const read = await asUser(api.app, alice)({ method: 'GET', url: `/api/v1/profiles/${profile.id}` });
    expect(read.json()).toMatchObject({ description: 'kept', top_k: null, content_filter_enabled: true, retrieval_limit: 5 });
  });

  it('stores those settings at the values that say what chats do anyway (the contract defaults, null, empty)', async () => {
    const profile = await createProfile({
      top_k: null,
      seed: null,
      stop_sequences: [],
      logit_bias: {},
      content_filter_enabled: true,
      tool_choice: 'auto',
      stream_response: true,
      enable_retrieval: false,
      retrieval_limit: 5,
      retrieval_score_threshold: 0.7,
    });
    expect(profile).toMatchObject({ tool_choice: 'auto', content_filter_enabled: true, stop_sequences: [] });
    const updated = await asUser(
      api.app,
      alice,
    )({ method: 'PUT', url: `/api/v1/profiles/${profile.id}`, payload: { tool_choice: null, stream_response: null } });
    expect(updated.statusCode, updated.body).toBe(200);
    expect(updated.json()).toMatchObject({ tool_choice: null, stream_response: true });
  });
});
