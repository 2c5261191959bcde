import type { IncomingHttpHeaders } from 'node:http';
import { request as httpRequest } from 'node:http';
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { ProviderUsageReport, ScriptedTurn } from '../helpers/scripted-chat-model.js';
import { analyticsRoutes } from '../../src/routes/analytics.js';
import { asUser, registerUser, securityEvents, type RegisteredUser } from '../helpers/api.js';
import { createChatApi, type ChatApi } from '../helpers/chat-api.js';
import { publishedApi, type OpenApiValidator } from '../helpers/openapi-validator.js';
import { describeWithContract, loadContract } from '../helpers/contract.js';
import { waitUntil } from '../helpers/wait.js';

const BASE = '/api/v1/analytics';
/** A second copy of the plugin with a short keep-alive, for the keep-alive test. */
const FAST = '/test/analytics-fast';
const MODEL = 'gpt-4o-mini';
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** gpt-4o-mini list prices, USD per 1M tokens (src/providers/prices.json). */
const PRICE = { input: 0.15, cacheRead: 0.075, cacheWrite: 0.15, output: 0.6 };

type Call = { input: number; output: number; cacheRead?: number; cacheWrite?: number };
const usage = ({ input, output, cacheRead = 0, cacheWrite = 0 }: Call): ProviderUsageReport => ({
  input_tokens: input, // provider shape: cached tokens are part of input_tokens
  output_tokens: output,
  input_token_details: { cache_read: cacheRead, cache_creation: cacheWrite },
});
const costOf = ({ input, output, cacheRead = 0, cacheWrite = 0 }: Call): number =>
  Math.round(
    ((input - cacheRead - cacheWrite) * PRICE.input + cacheRead * PRICE.cacheRead + cacheWrite * PRICE.cacheWrite + output * PRICE.output) *
      1e4,
  ) / 1e10;
const sum = (values: readonly number[]): number => values.reduce((total, value) => total + value, 0);
const totalsOf = (calls: readonly Call[]) => ({
  prompt: sum(calls.map((call) => call.input)),
  completion: sum(calls.map((call) => call.output)),
  total: sum(calls.map((call) => call.input + call.output)),
  cost: sum(calls.map(costOf)),
});

// Alice: a plain turn with cached input, a tool run (two calls, cache read + write), a
// non-retryable failure, a retried failure then success, and a streamed turn.
const A1: Call = { input: 20, output: 5, cacheRead: 8 };
const A2a: Call = { input: 40, output: 6, cacheRead: 10, cacheWrite: 4 };
const A2b: Call = { input: 60, output: 4 };
const A4: Call = { input: 3, output: 1 };
const A5: Call = { input: 90, output: 7 };
const ALICE = totalsOf([A1, A2a, A2b, A4, A5]);
const B1: Call = { input: 11, output: 2 };
const BOB = totalsOf([B1]);
// Carol: ten one-call turns with latencies in known histogram buckets: 4 in [0, 100] ms,
// 4 in (250, 500], 2 in (1000, 2500]. A call takes at least its scripted latency, so each
// sits just above a bucket's lower bound with the bucket's width as margin for a slow machine.
const CAROL_LATENCIES = [0, 0, 0, 0, 260, 260, 260, 260, 1050, 1050];
const C: Call = { input: 2, output: 1 };
const CAROL = totalsOf(CAROL_LATENCIES.map(() => C));

const LatencyRow = z.object({ sum: z.number(), n: z.number() });

type Body = Record<string, unknown>;
type Usage = Body & { total_tokens: number; total_cost: number; daily_usage: Record<string, number>; daily_cost: Record<string, number> };

describe('analytics routes', () => {
  /** This service's own OpenAPI document: answers are checked against what it publishes. */
  let published: OpenApiValidator;
  let api: ChatApi;
  let alice: RegisteredUser;
  let bob: RegisteredUser;
  let carol: RegisteredUser;
  let admin: RegisteredUser;
  let closed = false;

  const chat = async (user: RegisteredUser, turns: ScriptedTurn[], payload: Body, streaming = false) => {
    api.script(turns);
    const response = await asUser(
      api.app,
      user,
    )({
      method: 'POST',
      url: `/api/v1/workflows/execute/chat${streaming ? '/streaming' : ''}`,
      payload,
    });
    return response;
  };
  const get = async (user: RegisteredUser, path: string) => asUser(api.app, user)({ method: 'GET', url: `${BASE}${path}` });
  const getJson = async <T = Body>(user: RegisteredUser, path: string, schema?: string): Promise<T> => {
    const response = await get(user, path);
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json<T>();
    if (schema !== undefined) expect(published.errors(schema, body)).toEqual([]);
    return body;
  };
  /** Mean model call latency of a user's runs, from the model_calls rows. */
  const meanLatency = async (user: RegisteredUser): Promise<number> => {
    const row = await api.db.pool.one(sql.type(LatencyRow)`
      SELECT sum(mc.latency_ms)::int8 AS sum, count(*)::int8 AS n
      FROM model_calls AS mc JOIN workflow_runs AS r ON r.id = mc.run_id WHERE r.user_id = ${user.id}`);
    return row.sum / row.n;
  };

  beforeAll(async () => {
    api = await createChatApi({ CHAT_RATE_LIMIT_PER_MINUTE: '100', DEFAULT_PROVIDER: 'openai', OPENAI_API_KEY: 'sk-test' });
    if (!api.app.hasRoute({ method: 'GET', url: `${BASE}/usage` })) {
      await api.app.register(analyticsRoutes, { prefix: BASE, services: api.services });
    }
    await api.app.register(analyticsRoutes, { prefix: FAST, services: api.services, keepAliveMs: 50 });
    published = await publishedApi(api.app);
    alice = await registerUser(api.app);
    bob = await registerUser(api.app);
    carol = await registerUser(api.app);
    admin = await registerUser(api.app);
    await api.db.pool.query(sql.unsafe`UPDATE users SET is_superuser = true WHERE id = ${admin.id}`);

    const first = await chat(alice, [{ content: 'First answer.', usage: usage(A1) }], { message: 'Hello' });
    expect(first.statusCode, first.body).toBe(200);
    const conversationA = first.json<{ conversation_id: string }>().conversation_id;
    const tool = await chat(
      alice,
      [
        { content: '', toolCalls: [{ name: 'calculator', args: { expression: '6*7' } }], usage: usage(A2a) },
        { content: 'It is 42.', usage: usage(A2b) },
      ],
      { message: 'What is 6*7?', conversation_id: conversationA, enable_tools: true },
    );
    expect(tool.statusCode, tool.body).toBe(200);
    const failed = await chat(alice, [{ error: { message: 'bad request', status: 400 } }], {
      message: 'Fail',
      conversation_id: conversationA,
    });
    expect(failed.statusCode, failed.body).toBe(502);
    const retried = await chat(alice, [{ error: { message: 'overloaded', status: 500 } }, { content: 'ok', usage: usage(A4) }], {
      message: 'Again',
    });
    expect(retried.statusCode, retried.body).toBe(200);
    const conversationB = retried.json<{ conversation_id: string }>().conversation_id;
    const streamed = await chat(
      alice,
      [{ content: 'Streamed.', usage: usage(A5) }],
      { message: 'Stream', conversation_id: conversationB },
      true,
    );
    expect(streamed.statusCode).toBe(200);

    expect((await chat(bob, [{ content: 'Bob.', usage: usage(B1) }], { message: 'Hi' })).statusCode).toBe(200);
    for (const latencyMs of CAROL_LATENCIES) {
      expect((await chat(carol, [{ content: 'c', latencyMs, usage: usage(C) }], { message: 'time me' })).statusCode).toBe(200);
    }
    // Nothing to flush: each chat answered once its record, rollups included, committed.
  }, 60_000);

  afterAll(async () => {
    if (!closed) await api.close();
  });

  describe('usage', () => {
    it('reports exactly the tokens and cost scripted for the caller, by model, provider and day', async () => {
      const body = await getJson<Usage>(alice, '/usage', 'UsageMetricsResponse');
      expect(body).toMatchObject({
        total_prompt_tokens: ALICE.prompt,
        total_completion_tokens: ALICE.completion,
        total_tokens: ALICE.total,
        tokens_by_model: { [MODEL]: ALICE.total },
        tokens_by_provider: { openai: ALICE.total },
        active_days: Object.keys(body.daily_usage).length,
      });
      expect(ALICE).toMatchObject({ prompt: 213, completion: 23, total: 236 });
      expect(body.total_cost).toBeCloseTo(ALICE.cost, 10);
      expect((body['cost_by_model'] as Record<string, number>)[MODEL]).toBeCloseTo(ALICE.cost, 10);
      expect((body['cost_by_provider'] as Record<string, number>)['openai']).toBeCloseTo(ALICE.cost, 10);
      expect(sum(Object.values(body.daily_usage))).toBe(ALICE.total);
      expect(sum(Object.values(body.daily_cost))).toBeCloseTo(ALICE.cost, 10);
      expect(Object.keys(body.daily_usage).every((day) => /^\d{4}-\d{2}-\d{2}$/.test(day))).toBe(true);
      // Response time is model call latency (failed attempts included), as the model_calls rows hold it.
      expect(body['avg_response_time']).toBeCloseTo(await meanLatency(alice), 6);
      expect((body['response_times_by_model'] as Record<string, number>)[MODEL]).toBeCloseTo(await meanLatency(alice), 6);
      const hours = await api.db.pool.anyFirst(sql.type(z.object({ hour: z.number() }))`
        SELECT DISTINCT extract(hour FROM finished_at AT TIME ZONE 'UTC')::int4 AS hour FROM workflow_runs WHERE user_id = ${alice.id}`);
      expect(hours).toContain(body['peak_usage_hour']);
      // Two conversations over the default 7-day period.
      expect(body['conversations_per_day']).toBeCloseTo(2 / 7, 10);
    });

    it("never shows one user another user's figures", async () => {
      const body = await getJson<Usage>(bob, '/usage', 'UsageMetricsResponse');
      expect(body).toMatchObject({ total_prompt_tokens: BOB.prompt, total_completion_tokens: BOB.completion, total_tokens: BOB.total });
      expect(body.total_cost).toBeCloseTo(BOB.cost, 10);
      const fresh = await registerUser(api.app);
      const empty = await getJson<Usage>(fresh, '/usage', 'UsageMetricsResponse');
      expect(empty).toMatchObject({
        total_tokens: 0,
        total_cost: 0,
        tokens_by_model: {},
        daily_usage: {},
        avg_response_time: 0,
        active_days: 0,
        peak_usage_hour: 0,
        conversations_per_day: 0,
      });
    });

    it('lets a superuser read one user or every user', async () => {
      const one = await getJson<Usage>(admin, `/usage?user_id=${alice.id}`, 'UsageMetricsResponse');
      expect(one.total_tokens).toBe(ALICE.total);
      const all = await getJson<Usage>(admin, '/usage?all_users=true', 'UsageMetricsResponse');
      expect(all.total_tokens).toBe(ALICE.total + BOB.total + CAROL.total);
      expect(all.total_cost).toBeCloseTo(ALICE.cost + BOB.cost + CAROL.cost, 10);
      const own = await getJson<Usage>(admin, '/usage', 'UsageMetricsResponse');
      expect(own.total_tokens).toBe(0);
    });

    it('reads start_date/end_date ranges, and nothing outside them', async () => {
      const now = Date.now();
      const around = `start_date=${new Date(now - HOUR_MS).toISOString()}&end_date=${new Date(now + HOUR_MS).toISOString()}`;
      expect((await getJson<Usage>(alice, `/usage?${around}`, 'UsageMetricsResponse')).total_tokens).toBe(ALICE.total);
      const past = await getJson<Usage>(alice, '/usage?start_date=2020-01-01&end_date=2020-02-01', 'UsageMetricsResponse');
      expect(past).toMatchObject({ total_tokens: 0, daily_usage: {}, conversations_per_day: 0 });
      for (const period of ['1h', '24h', '30d', '90d']) {
        expect((await getJson<Usage>(alice, `/usage?period=${period}`, 'UsageMetricsResponse')).total_prompt_tokens).toBeLessThanOrEqual(
          ALICE.prompt,
        );
      }
      expect((await getJson<Usage>(alice, '/usage?period=90d')).total_tokens).toBe(ALICE.total);
    });
  });

  describe('performance', () => {
    it('computes p50/p95/p99 from the rollup latency histograms', async () => {
      const body = await getJson(carol, '/performance', 'PerformanceMetricsResponse');
      // Rank q × 10, interpolated linearly within the bucket it falls in.
      expect(body['median_response_time_ms']).toBeCloseTo(250 + (250 * (5 - 4)) / 4, 10); // 312.5
      expect(body['p95_response_time_ms']).toBeCloseTo(1000 + (1500 * (9.5 - 8)) / 2, 10); // 2125
      expect(body['p99_response_time_ms']).toBeCloseTo(1000 + (1500 * (9.9 - 8)) / 2, 10); // 2425
      expect(body['avg_response_time_ms']).toBeCloseTo(await meanLatency(carol), 6);
      const byModel = (body['performance_by_model'] as Record<string, Record<string, number>>)[MODEL]!;
      expect(byModel).toMatchObject({ requests: 10, model_calls: 10, total_tokens: CAROL.total, errors: 0 });
      expect(byModel['median_response_time_ms']).toBeCloseTo(312.5, 10);
      expect(byModel['p95_response_time_ms']).toBeCloseTo(2125, 10);
      expect(byModel['p99_response_time_ms']).toBeCloseTo(2425, 10);
      expect(body).toMatchObject({
        total_errors: 0,
        error_rate: 0,
        errors_by_type: {},
        vector_search_time_ms: 0,
        embedding_generation_time_ms: 0,
      });
    });

    it('counts requests, tokens per minute over the elapsed window, and errors by type', async () => {
      const before = Date.now();
      const body = await getJson(alice, '/performance', 'PerformanceMetricsResponse');
      const after = Date.now();
      // The default period is the last 7 × 24 hourly buckets, the current one included.
      const from = Math.floor(after / HOUR_MS) * HOUR_MS + HOUR_MS - 7 * 24 * HOUR_MS;
      const minutes = (time: number) => (time - from) / 60_000;
      expect(body['requests_per_minute']).toBeGreaterThanOrEqual(5 / minutes(after));
      expect(body['requests_per_minute']).toBeLessThanOrEqual(5 / minutes(before));
      expect(body['tokens_per_minute']).toBeGreaterThanOrEqual(ALICE.total / minutes(after));
      expect(body['tokens_per_minute']).toBeLessThanOrEqual(ALICE.total / minutes(before));
      // One of five runs failed; two model call attempts failed (one retried).
      expect(body).toMatchObject({ total_errors: 1, error_rate: 20, errors_by_type: { failed: 1 } });
      expect((body['performance_by_provider'] as Record<string, Body>)['openai']).toMatchObject({
        requests: 5,
        model_calls: 7,
        total_tokens: ALICE.total,
        errors: 1,
        error_rate: 20,
        failed_model_calls: 2,
      });
      expect((body['performance_by_model'] as Record<string, Body>)[MODEL]?.['total_cost'] as number).toBeCloseTo(ALICE.cost, 10);
    });
  });

  describe('conversations', () => {
    it('counts conversations and messages from the tables and tokens and cost from the rollups', async () => {
      const body = await getJson(alice, '/conversations', 'ConversationStatsResponse');
      // Conversation A: 3 user messages, 2 answers (the failed turn has none); B: 2 and 2.
      expect(body).toMatchObject({
        total_conversations: 2,
        conversations_by_status: { active: 2 },
        total_messages: 9,
        messages_by_role: { user: 5, assistant: 4 },
        avg_messages_per_conversation: 4.5,
        total_tokens_used: ALICE.total,
        popular_models: { [MODEL]: 5 },
        popular_providers: { openai: 5 },
        total_ratings: 0,
        avg_message_rating: 0,
        rating_distribution: {},
      });
      expect(body['total_cost']).toBeCloseTo(ALICE.cost, 10);
      expect(body['avg_response_time_ms']).toBeCloseTo(await meanLatency(alice), 6);
      expect(sum(Object.values(body['conversations_by_date'] as Record<string, number>))).toBe(2);
      expect(sum(Object.values(body['most_active_hours'] as Record<string, number>))).toBe(5);
      const bobs = await getJson(bob, '/conversations', 'ConversationStatsResponse');
      expect(bobs).toMatchObject({ total_conversations: 1, total_messages: 2, total_tokens_used: BOB.total });
    });
  });

  describe('dashboard', () => {
    it('composes the reports with chart data, honest zeros and the time it was made', async () => {
      const before = Date.now();
      const body = await getJson<Body & Record<string, Body>>(alice, '/dashboard', 'DashboardResponse');
      expect(Date.parse(body['generated_at'] as unknown as string)).toBeGreaterThanOrEqual(before);
      expect(body['usage_metrics']).toEqual(await getJson(alice, '/usage'));
      expect(body['conversation_stats']).toEqual(await getJson(alice, '/conversations'));
      const performance = await getJson(alice, '/performance');
      expect({ ...body['performance_metrics'], requests_per_minute: 0, tokens_per_minute: 0 }).toEqual({
        ...performance,
        requests_per_minute: 0,
        tokens_per_minute: 0,
      });
      expect(body['document_analytics']).toMatchObject({ total_documents: 0, documents_by_status: {}, most_viewed_documents: [] });
      expect(body['system_health']).toMatchObject({ total_users: 0, active_users_today: 0, system_uptime_seconds: 0 });
      expect(body['custom_metrics']).toEqual([]);
      const charts = body['chart_data'] as Record<string, Body[]>;
      // One point per UTC day the 7 × 24 hourly buckets touch.
      const to = Math.floor(before / HOUR_MS) * HOUR_MS + HOUR_MS;
      const days = (to - Math.floor((to - 7 * 24 * HOUR_MS) / DAY_MS) * DAY_MS) / DAY_MS;
      expect(charts['conversation_chart_data']).toHaveLength(Math.ceil(days));
      expect(sum(charts['token_usage_data']!.map((point) => point['tokens'] as number))).toBe(ALICE.total);
      expect(sum(charts['conversation_chart_data']!.map((point) => point['conversations'] as number))).toBe(2);
      expect(charts['hourly_performance_data']).toHaveLength(24);
      expect(sum(charts['hourly_performance_data']!.map((point) => point['requests'] as number))).toBe(5);
      expect(sum(charts['hourly_performance_data']!.map((point) => point['errors'] as number))).toBe(1);
      expect(charts['integration_data']).toEqual([{ name: 'openai', value: 5 }]);
      expect(charts['system_health_data']).toEqual([]);
    });

    it('shows system figures to a superuser reading every user', async () => {
      const body = await getJson<Record<string, Body>>(admin, '/dashboard?all_users=true', 'DashboardResponse');
      expect(body['usage_metrics']?.['total_tokens']).toBe(ALICE.total + BOB.total + CAROL.total);
      const users = await api.db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*)::int8 AS n FROM users`);
      expect(body['system_health']).toMatchObject({
        total_users: users,
        active_users_today: 3,
        active_users_week: 3,
        active_users_month: 3,
      });
      expect(body['system_health']?.['system_uptime_seconds']).toBeGreaterThan(0);
    });
  });

  describe('access and validation', () => {
    it("answers 403 and records access_denied when a non-superuser asks for others' figures", async () => {
      for (const path of [`/usage?user_id=${alice.id}`, '/dashboard?all_users=true', `/stream?user_id=${alice.id}`]) {
        const response = await get(bob, path);
        expect(response.statusCode, path).toBe(403);
        expect(response.body).not.toContain(String(ALICE.total));
      }
      const denied = (await securityEvents(api.db, 'access_denied')).filter((event) => event.user_id === bob.id);
      expect(denied).toHaveLength(3);
      expect(denied[0]?.data).toMatchObject({ reason: 'analytics_scope_requires_superuser', requested_user_id: alice.id });
      expect(denied[1]?.data).toMatchObject({ all_users: true });
      expect((await get(bob, `/usage?user_id=${bob.id}`)).statusCode).toBe(200);
    });

    describeWithContract('against the original contract', () => {
      it('documents the contract paths with their operationIds and query parameters', async () => {
        const document = (await api.app.inject({ method: 'GET', url: '/openapi.json' })).json<{
          paths: Record<string, { get?: { operationId?: string; parameters?: { name: string; in: string }[] } }>;
        }>();
        const contract = loadContract().document;
        const paths = Object.keys(contract.paths).filter((path) => path.startsWith(`${BASE}/`));
        expect(paths).toHaveLength(4);
        for (const path of paths) {
          const served = document.paths[path]?.get;
          expect(served?.operationId, path).toBe(contract.paths[path]?.['get']?.operationId);
          const query = (served?.parameters ?? []).filter((parameter) => parameter.in === 'query').map((parameter) => parameter.name);
          expect(query, path).toEqual(expect.arrayContaining(['start_date', 'end_date', 'period']));
        }
      });
    });

    it('answers 401 without credentials', async () => {
      expect((await api.app.inject({ method: 'GET', url: `${BASE}/usage` })).statusCode).toBe(401);
    });

    it('answers 422 in the contract shape for a bad period or bad dates', async () => {
      const cases: [string, string][] = [
        ['period=2d', 'period'],
        ['start_date=yesterday', 'start_date'],
        ['start_date=2025-02-30', 'start_date'],
        ['end_date=2025-01-01T25:00:00Z', 'end_date'],
        ['start_date=2025-03-01&end_date=2025-02-01', 'end_date'],
        ['start_date=2025-03-01T10:00:00Z&end_date=2025-03-01T10:00:00Z', 'end_date'],
        ['start_date=2024-01-01&end_date=2025-01-02', 'start_date'],
        [`all_users=true&user_id=${alice.id}`, 'all_users'],
      ];
      for (const [query, field] of cases) {
        const response = await get(admin, `/performance?${query}`);
        expect(response.statusCode, query).toBe(422);
        const body = response.json<{ detail: { loc: unknown[] }[] }>();
        expect(published.errors('HTTPValidationError', body), query).toEqual([]);
        expect(body.detail[0]?.loc, query).toEqual(['query', field]);
      }
      // 366 days is the longest range allowed.
      expect((await get(admin, '/usage?start_date=2024-01-01&end_date=2024-12-31T23:59:59Z')).statusCode).toBe(200);
    });
  });

  describe('live stream', () => {
    let address: string;
    let dave: RegisteredUser;
    beforeAll(async () => {
      address = await api.app.listen({ host: '127.0.0.1', port: 0 });
      dave = await registerUser(api.app);
    });

    it('pushes run_completed with the run’s tokens to its user and to superusers, and to no one else', async () => {
      const mine = await openStream(`${address}${BASE}/stream`, dave);
      const others = await openStream(`${address}${BASE}/stream`, bob);
      const everyone = await openStream(`${address}${BASE}/stream?all_users=true`, admin);
      try {
        expect(mine.status).toBe(200);
        expect(mine.headers['content-type']).toMatch(/^text\/event-stream/);
        expect(mine.headers['x-correlation-id']).toBeTruthy();
        await Promise.all([mine, others, everyone].map((stream) => stream.waitFor((text) => text.startsWith(': connected\n\n'))));

        const call: Call = { input: 30, output: 9, cacheRead: 6 };
        api.script([{ content: 'Live.', usage: usage(call) }]);
        const response = await asUser(
          api.app,
          dave,
        )({ method: 'POST', url: '/api/v1/workflows/execute/chat', payload: { message: 'live' } });
        expect(response.statusCode).toBe(200);
        const runId = response.json<{ run_id: string }>().run_id;
        const answeredAt = Date.now();
        const hasRun = (text: string) => parseEvents(text).some((event) => event.id === runId);
        await mine.waitFor(hasRun, 1_000);
        await everyone.waitFor(hasRun, 1_000);
        expect(Date.now() - answeredAt).toBeLessThan(1_000);
        const event = parseEvents(mine.text).find((item) => item.id === runId)!;
        expect(event.event).toBe('run_completed');
        expect(event.data).toMatchObject({
          type: 'run_completed',
          run_id: runId,
          user_id: dave.id,
          status: 'completed',
          provider: 'openai',
          model: MODEL,
          tokens: { input: 24, cache_read: 6, cache_write: 0, output: 9, total: 39 },
        });
        expect(event.data['cost']).toBeCloseTo(costOf(call), 10);
        await new Promise((resolve) => setTimeout(resolve, 100));
        expect(hasRun(others.text)).toBe(false);
      } finally {
        for (const stream of [mine, others, everyone]) stream.close();
      }
    });

    it('sends keep-alive comments on an idle stream', async () => {
      const stream = await openStream(`${address}${FAST}/stream`, dave);
      await stream.waitFor((text) => text.includes(': keep-alive\n\n'), 1_000);
      stream.close();
    });

    it('caps concurrent streams per user at 5 with 429, and unsubscribes closed ones', async () => {
      // Streams of the earlier tests are gone once the server has seen their sockets close.
      await waitUntil(() => api.services.analyticsFeed.subscriberCount() === 0, { timeoutMs: 2_000 });
      const open = [];
      for (let index = 0; index < 5; index += 1) open.push(await openStream(`${address}${BASE}/stream`, dave));
      try {
        await Promise.all(open.map((stream) => stream.waitFor((text) => text.includes(': connected'))));
        expect(api.services.analyticsFeed.subscriberCount()).toBe(5);
        const sixth = await openStream(`${address}${BASE}/stream`, dave);
        expect(sixth.status).toBe(429);
        expect(JSON.parse(await sixth.ended)).toMatchObject({ code: 'too_many_streams' });
        // Another user has their own allowance.
        const bobs = await openStream(`${address}${BASE}/stream`, bob);
        open.push(bobs);
        expect(bobs.status).toBe(200);
        open.shift()!.close();
        await waitUntil(() => api.services.analyticsFeed.subscriberCount() === 5, { timeoutMs: 2_000 });
        const again = await openStream(`${address}${BASE}/stream`, dave);
        open.push(again);
        expect(again.status).toBe(200);
      } finally {
        for (const stream of open) stream.close();
      }
      await waitUntil(() => api.services.analyticsFeed.subscriberCount() === 0, { timeoutMs: 2_000 });
    });

    it('ends open streams when the server closes', async () => {
      const stream = await openStream(`${address}${BASE}/stream`, dave);
      await stream.waitFor((text) => text.includes(': connected'));
      closed = true;
      await api.close();
      await stream.ended;
    });
  });
});

type SseEvent = { event?: string; id?: string; data: Record<string, unknown> };

/** The `event:` blocks of a Server-Sent Events text (comments left out). */
const parseEvents = (text: string): SseEvent[] =>
  text
    .split('\n\n')
    .filter((block) => block.includes('data: '))
    .map((block) => {
      const fields = Object.fromEntries(
        block.split('\n').map((line) => [line.slice(0, line.indexOf(': ')), line.slice(line.indexOf(': ') + 2)]),
      );
      return { event: fields['event'], id: fields['id'], data: JSON.parse(fields['data'] ?? '{}') as Record<string, unknown> };
    });

type StreamClient = {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
  /** Resolves once the received text satisfies `predicate`. */
  readonly waitFor: (predicate: (text: string) => boolean, timeoutMs?: number) => Promise<void>;
  readonly close: () => void;
  /** The whole body, once the server ended the response (or the connection closed). */
  readonly ended: Promise<string>;
};

const openStream = (url: string, user: RegisteredUser): Promise<StreamClient> =>
  new Promise((resolve, reject) => {
    const request = httpRequest(url, { headers: user.auth });
    request.on('error', reject);
    request.on('response', (response) => {
      let text = '';
      const listeners = new Set<() => void>();
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        text += chunk;
        for (const listener of listeners) listener();
      });
      const ended = new Promise<string>((done) => response.on('close', () => done(text)));
      resolve({
        status: response.statusCode ?? 0,
        headers: response.headers,
        get text() {
          return text;
        },
        waitFor: (predicate, timeoutMs = 2_000) =>
          new Promise<void>((done, fail) => {
            const check = () => {
              if (!predicate(text)) return;
              clearTimeout(timer);
              listeners.delete(check);
              done();
            };
            const timer = setTimeout(() => {
              listeners.delete(check);
              fail(new Error(`stream did not get there in ${timeoutMs} ms; received: ${JSON.stringify(text)}`));
            }, timeoutMs);
            listeners.add(check);
            check();
          }),
        close: () => request.destroy(),
        ended,
      });
    });
    request.end();
  });
