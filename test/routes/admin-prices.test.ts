import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { asUser, registerUser, securityEvents, type RegisteredUser } from '../helpers/api.js';
import { createChatApi, type ChatApi } from '../helpers/chat-api.js';

const BASE = '/api/v1/admin/prices';

const usage = (input: number, output: number, cacheRead = 0) => ({
  input_tokens: input,
  output_tokens: output,
  input_token_details: { cache_read: cacheRead },
});

type Price = Record<string, unknown> & { id: string; source: string; active: boolean; retired_at: string | null };
type Recompute = Record<string, unknown> & {
  model_calls_examined: number;
  model_calls_changed: number;
  model_calls_unpriced: number;
  runs_changed: number;
  messages_changed: number;
  conversations_changed: number;
  users_changed: number;
  difference_usd: string;
  cost_before_usd: string;
  cost_after_usd: string;
  price_ids: string[];
  event_id: string;
};

/** 1e-10 USD units of an exact decimal text. */
const units = (text: string | null): bigint => {
  if (text === null) return 0n;
  const [integer = '0', fraction = ''] = text.replace('-', '').split('.');
  const value = BigInt(integer) * 10_000_000_000n + BigInt(fraction.padEnd(10, '0').slice(0, 10));
  return text.startsWith('-') ? -value : value;
};

const newPrice = {
  provider: 'openai',
  model_pattern: 'gpt-4o-mini',
  valid_from: '2020-01-01T00:00:00Z',
  input_per_mtok: 1.25,
  cache_read_per_mtok: 0.5,
  cache_write_per_mtok: 2,
  output_per_mtok: 7.5,
};

describe('admin price routes', () => {
  let api: ChatApi;
  let admin: RegisteredUser;
  let alice: RegisteredUser;
  let bob: RegisteredUser;
  const windowFrom = new Date(Date.now() - 60_000).toISOString();
  beforeAll(async () => {
    api = await createChatApi({ CHAT_RATE_LIMIT_PER_MINUTE: '100', DEFAULT_PROVIDER: 'openai', OPENAI_API_KEY: 'sk-test' });
    admin = await registerUser(api.app);
    alice = await registerUser(api.app);
    bob = await registerUser(api.app);
    await api.db.pool.query(sql.unsafe`UPDATE users SET is_superuser = true WHERE id = ${admin.id}`);
  });
  afterAll(async () => {
    await api.close();
  });

  /** A snapshot of every stored cost figure, as exact text, to compare before and after. */
  const costSnapshot = async () =>
    api.db.pool.one(sql.type(z.object({ snapshot: z.string() }))`
      SELECT concat_ws('|',
        (SELECT string_agg(id || '=' || coalesce(cost::text, 'null') || '@' || coalesce(price_id, 'null'), ',' ORDER BY id) FROM model_calls),
        (SELECT string_agg(id || '=' || coalesce(cost::text, 'null') || cost_unknown::text, ',' ORDER BY id) FROM workflow_runs),
        (SELECT string_agg(id || '=' || coalesce(cost::text, 'null'), ',' ORDER BY id) FROM messages),
        (SELECT string_agg(id || '=' || total_cost::text, ',' ORDER BY id) FROM conversations),
        (SELECT string_agg(id || '=' || total_cost::text, ',' ORDER BY id) FROM users),
        (SELECT string_agg(bucket_start::text || user_id || provider || model || '=' || cost::text, ',' ORDER BY 1) FROM analytics_hourly),
        (SELECT string_agg(bucket_start::text || provider || model || '=' || cost::text, ',' ORDER BY 1) FROM analytics_hourly_totals)
      ) AS snapshot`);

  /** Every invariant a recompute must keep, checked over the whole database. */
  const expectInvariants = async () => {
    const broken = await api.db.pool.any(sql.type(z.object({ what: z.string(), id: z.string() }))`
      SELECT 'run cost <> sum of its calls' AS what, r.id FROM workflow_runs r
      JOIN (SELECT run_id, sum(cost) AS cost, bool_or(input_tokens IS NOT NULL AND cost IS NULL) AS unknown
            FROM model_calls GROUP BY run_id) c ON c.run_id = r.id
      WHERE r.cost_unknown <> c.unknown OR r.cost IS DISTINCT FROM (CASE WHEN c.unknown THEN NULL ELSE coalesce(c.cost, 0) END)
      UNION ALL
      SELECT 'message cost <> run cost', m.id FROM messages m JOIN workflow_runs r ON r.id = m.run_id
      WHERE m.role = 'assistant' AND m.cost IS DISTINCT FROM r.cost
      UNION ALL
      SELECT 'conversation total <> sum of messages', c.id FROM conversations c
      WHERE c.total_cost <> (SELECT coalesce(sum(cost), 0) FROM messages m WHERE m.conversation_id = c.id)
         OR c.total_tokens <> (SELECT coalesce(sum(total_tokens), 0) FROM messages m WHERE m.conversation_id = c.id)
      UNION ALL
      SELECT 'user total <> sum of messages', u.id FROM users u
      WHERE u.total_cost <> (SELECT coalesce(sum(m.cost), 0) FROM messages m JOIN conversations c ON c.id = m.conversation_id
                             WHERE c.user_id = u.id AND m.role = 'assistant')
      UNION ALL
      SELECT 'rollup cost <> sum of calls', h.user_id || '/' || h.model FROM analytics_hourly h
      FULL JOIN (
        SELECT to_timestamp(floor(extract(epoch FROM c.started_at + c.latency_ms * interval '1 millisecond') / 3600) * 3600) AS bucket_start,
               r.user_id, c.provider, c.request_model AS model, coalesce(sum(c.cost), 0) AS cost
        FROM model_calls c JOIN workflow_runs r ON r.id = c.run_id
        GROUP BY 1, 2, 3, 4
      ) s USING (bucket_start, user_id, provider, model)
      WHERE coalesce(h.cost, 0) <> coalesce(s.cost, 0)
      UNION ALL
      SELECT 'rollup totals <> sum over users', t.model FROM analytics_hourly_totals t
      FULL JOIN (SELECT bucket_start, provider, model, sum(cost) AS cost FROM analytics_hourly GROUP BY 1, 2, 3) s
        USING (bucket_start, provider, model)
      WHERE coalesce(t.cost, 0) <> coalesce(s.cost, 0)`);
    expect(broken).toEqual([]);
  };

  const chat = async (user: RegisteredUser, payload: Record<string, unknown>) => {
    const response = await asUser(api.app, user)({ method: 'POST', url: '/api/v1/workflows/execute/chat', payload });
    expect(response.statusCode, response.body).toBe(200);
    return response.json<{ conversation_id: string; message: { cost: number | null } }>();
  };

  const recompute = async (body: Record<string, unknown>): Promise<Recompute> => {
    const response = await asUser(api.app, admin)({ method: 'POST', url: `${BASE}/recompute`, payload: body });
    expect(response.statusCode, response.body).toBe(200);
    return response.json<Recompute>();
  };

  it('answers 403 to anyone but a superuser, records access_denied and changes nothing', async () => {
    const before = await costSnapshot();
    const priceCount = async () => api.db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM model_prices`);
    const prices = await priceCount();
    const as = asUser(api.app, alice);
    for (const [method, url, payload] of [
      ['GET', `${BASE}/`, undefined],
      ['POST', `${BASE}/`, newPrice],
      ['POST', `${BASE}/openai:gpt-4o-mini@2024-07-18/retire`, undefined],
      ['POST', `${BASE}/recompute`, { provider: 'openai', model: 'gpt-4o-mini', from: windowFrom, to: new Date().toISOString() }],
      ['POST', `${BASE}/`, { nonsense: true }],
    ] as const) {
      const response = await as({ method, url, ...(payload === undefined ? {} : { payload }) });
      expect(response.statusCode, `${method} ${url}`).toBe(403);
    }
    expect((await api.app.inject({ method: 'GET', url: `${BASE}/` })).statusCode).toBe(401);
    const denied = (await securityEvents(api.db, 'access_denied')).filter((event) => event.user_id === alice.id);
    expect(denied.map((event) => event.data['reason'])).toEqual(Array(5).fill('admin_requires_superuser'));
    expect(await priceCount()).toBe(prices);
    expect(await costSnapshot()).toEqual(before);
  });

  it('lists the shipped versions, filtered', async () => {
    const response = await asUser(api.app, admin)({ method: 'GET', url: `${BASE}/?provider=openai&model_pattern=gpt-4o-mini` });
    expect(response.statusCode).toBe(200);
    const body = response.json<{ prices: Price[]; total_count: number }>();
    expect(body.total_count).toBe(1);
    expect(body.prices[0]).toMatchObject({
      id: 'openai:gpt-4o-mini@2024-07-18',
      source: 'shipped',
      active: true,
      input_per_mtok: 0.15,
      output_per_mtok: 0.6,
      created_by: null,
      retired_at: null,
    });
    const all = (await asUser(api.app, admin)({ method: 'GET', url: `${BASE}/?limit=500` })).json<{ total_count: number }>();
    expect(all.total_count).toBeGreaterThan(10);
  });

  it('refuses bad prices and windows with 422, adding nothing', async () => {
    const as = asUser(api.app, admin);
    const cases: [Record<string, unknown>, string][] = [
      [{ ...newPrice, input_per_mtok: -1 }, 'input_per_mtok'],
      [{ ...newPrice, output_per_mtok: 0.00001 }, 'output_per_mtok'],
      [{ ...newPrice, output_per_mtok: '1' }, 'output_per_mtok'],
      [{ ...newPrice, cache_read_per_mtok: 2_000_000 }, 'cache_read_per_mtok'],
      [{ ...newPrice, valid_from: 'yesterday' }, 'valid_from'],
      [{ ...newPrice, model_pattern: 'gpt 4' }, 'model_pattern'],
      [{ ...newPrice, provider: '' }, 'provider'],
      [{ provider: 'openai', model_pattern: 'x', input_per_mtok: 1, output_per_mtok: 1 }, 'cache_read_per_mtok'],
    ];
    for (const [payload, field] of cases) {
      const response = await as({ method: 'POST', url: `${BASE}/`, payload });
      expect(response.statusCode, JSON.stringify(payload)).toBe(422);
      const detail = response.json<{ detail: { loc: string[] }[] }>().detail;
      expect(
        detail.map((item) => item.loc.join('.')),
        JSON.stringify(payload),
      ).toContain(`body.${field}`);
    }
    const operatorRows = await api.db.pool.oneFirst(
      sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM model_prices WHERE source = 'operator'`,
    );
    expect(operatorRows).toBe(0);
    for (const payload of [
      { provider: 'openai', model: 'gpt-4o-mini', from: '2025-01-02T00:00:00Z', to: '2025-01-01T00:00:00Z' },
      { provider: 'openai', model: 'gpt-4o-mini', from: 'then', to: '2025-01-01T00:00:00Z' },
      { provider: 'openai', from: '2025-01-01T00:00:00Z', to: '2025-01-02T00:00:00Z' },
    ]) {
      const response = await as({ method: 'POST', url: `${BASE}/recompute`, payload });
      expect(response.statusCode, JSON.stringify(payload)).toBe(422);
    }
    const recomputes = await api.db.pool.oneFirst(
      sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM events WHERE category = 'admin'`,
    );
    expect(recomputes).toBe(0);
  });

  it('recomputes real chat runs under a new price: every figure moves by the difference, once, and the invariants hold', async () => {
    // Real runs under the shipped price: plain, tool loop (two calls), cached input, two users.
    api.script([{ content: 'One.', usage: usage(1200, 300) }]);
    const a1 = await chat(alice, { message: 'first' });
    api.script([
      { content: '', toolCalls: [{ name: 'calculator', args: { expression: '6*7' } }], usage: usage(400, 60, 100) },
      { content: 'It is 42.', usage: usage(600, 40, 300) },
    ]);
    await chat(alice, { message: 'what is 6*7?', conversation_id: a1.conversation_id, enable_tools: true });
    api.script([{ content: 'Bob here.', usage: usage(5000, 1000, 2000) }]);
    await chat(bob, { message: 'hi' });
    // A model without a price: cost NULL and price_unknown.
    api.script([{ content: 'Mystery.', usage: usage(1000, 100) }]);
    const mystery = await chat(bob, { message: 'who are you?', model: 'mystery-model-1' });
    expect(mystery.message.cost).toBeNull();
    await expectInvariants();
    const shippedSnapshot = await costSnapshot();

    // The operator's correction, back-dated over the runs, and a first price for the mystery model.
    const added = await asUser(api.app, admin)({ method: 'POST', url: `${BASE}/`, payload: newPrice });
    expect(added.statusCode, added.body).toBe(201);
    const operatorPrice = added.json<Price>();
    expect(operatorPrice).toMatchObject({ source: 'operator', active: true, created_by: admin.id, input_per_mtok: 1.25 });
    const duplicate = await asUser(api.app, admin)({ method: 'POST', url: `${BASE}/`, payload: newPrice });
    expect(duplicate.statusCode).toBe(409);
    const mysteryPrice = await asUser(
      api.app,
      admin,
    )({
      method: 'POST',
      url: `${BASE}/`,
      payload: { ...newPrice, model_pattern: 'mystery-model-*', input_per_mtok: 3, output_per_mtok: 9 },
    });
    expect(mysteryPrice.statusCode).toBe(201);
    // Adding prices changes no stored cost by itself.
    expect(await costSnapshot()).toEqual(shippedSnapshot);

    const to = new Date(Date.now() + 60_000).toISOString();
    const first = await recompute({ provider: 'openai', model: 'gpt-4o-mini', from: windowFrom, to });
    expect(first).toMatchObject({
      model_calls_examined: 4,
      model_calls_changed: 4,
      model_calls_unpriced: 0,
      runs_changed: 3,
      messages_changed: 3,
      conversations_changed: 2,
      users_changed: 2,
      price_ids: [operatorPrice.id],
    });
    // Each call now costs its buckets at the new price, from the stored tokens.
    const calls = await api.db.pool.any(sql.type(
      z.object({
        input_tokens: z.number(),
        cache_read_tokens: z.number(),
        cache_write_tokens: z.number(),
        output_tokens: z.number(),
        cost: z.string(),
        price_id: z.string(),
      }),
    )`SELECT input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, cost::text AS cost, price_id
        FROM model_calls WHERE request_model = 'gpt-4o-mini' ORDER BY id`);
    expect(calls).toHaveLength(4);
    for (const call of calls) {
      const uncached = BigInt(call.input_tokens - call.cache_read_tokens - call.cache_write_tokens);
      // Prices in $0.0001/MTok units: 1.25 → 12500, 0.5 → 5000, 2 → 20000, 7.5 → 75000.
      const expected =
        uncached * 12_500n +
        BigInt(call.cache_read_tokens) * 5_000n +
        BigInt(call.cache_write_tokens) * 20_000n +
        BigInt(call.output_tokens) * 75_000n;
      expect(units(call.cost)).toBe(expected);
      expect(call.price_id).toBe(operatorPrice.id);
    }
    expect(units(first.cost_after_usd) - units(first.cost_before_usd)).toBe(units(first.difference_usd));
    expect(units(first.difference_usd) > 0n).toBe(true);
    await expectInvariants();

    // The event says what was done.
    const event = await api.db.pool.one(sql.type(
      z.object({ type: z.string(), user_id: z.string(), data: z.record(z.string(), z.unknown()) }),
    )`
      SELECT type, user_id, data FROM events WHERE id = ${first.event_id} AND category = 'admin'`);
    expect(event).toMatchObject({
      type: 'prices_recomputed',
      user_id: admin.id,
      data: { provider: 'openai', model: 'gpt-4o-mini', model_calls_changed: 4, runs_changed: 3, difference_usd: first.difference_usd },
    });
    const listed = await asUser(api.app, admin)({ method: 'GET', url: `/api/v1/events?category=admin&type=prices_recomputed` });
    expect(listed.statusCode).toBe(200);

    // Idempotent: the second time, nothing changes (the event says so).
    const afterFirst = await costSnapshot();
    const second = await recompute({ provider: 'openai', model: 'gpt-4o-mini', from: windowFrom, to });
    expect(second).toMatchObject({ model_calls_examined: 4, model_calls_changed: 0, runs_changed: 0, difference_usd: '0.0000000000' });
    expect(await costSnapshot()).toEqual(afterFirst);

    // The unpriced run gets its first cost: run, message, conversation, user and rollups.
    const priced = await recompute({ provider: 'openai', model: 'mystery-model-1', from: windowFrom, to });
    expect(priced).toMatchObject({
      model_calls_changed: 1,
      runs_changed: 1,
      messages_changed: 1,
      conversations_changed: 1,
      users_changed: 1,
    });
    expect(priced.difference_usd).toBe('0.0039000000'); // 1000 × $3 + 100 × $9 per 1M
    const mysteryRun = await api.db.pool.one(sql.type(z.object({ cost: z.string().nullable(), cost_unknown: z.boolean() }))`
      SELECT cost::text AS cost, cost_unknown FROM workflow_runs WHERE conversation_id = ${mystery.conversation_id}`);
    expect(mysteryRun).toEqual({ cost: '0.0039000000', cost_unknown: false });
    await expectInvariants();

    // Retiring the correction and recomputing puts the shipped figures back, exactly.
    const retired = await asUser(api.app, admin)({ method: 'POST', url: `${BASE}/${operatorPrice.id}/retire` });
    expect(retired.statusCode, retired.body).toBe(200);
    expect(retired.json<Price>()).toMatchObject({ active: false, retired_by: admin.id });
    expect((await asUser(api.app, admin)({ method: 'POST', url: `${BASE}/${operatorPrice.id}/retire` })).statusCode).toBe(409);
    expect((await asUser(api.app, admin)({ method: 'POST', url: `${BASE}/openai:gpt-4o-mini@2024-07-18/retire` })).statusCode).toBe(409);
    expect((await asUser(api.app, admin)({ method: 'POST', url: `${BASE}/no-such-price/retire` })).statusCode).toBe(404);
    const back = await recompute({ provider: 'openai', model: 'gpt-4o-mini', from: windowFrom, to });
    expect(back.difference_usd).toBe(`-${first.difference_usd}`);
    expect(back.price_ids).toEqual(['openai:gpt-4o-mini@2024-07-18']);
    await expectInvariants();
    // The old figures stay in the price history.
    const history = await asUser(
      api.app,
      admin,
    )({ method: 'GET', url: `${BASE}/?provider=openai&model_pattern=gpt-4o-mini&status=retired` });
    expect(history.json<{ prices: Price[] }>().prices.map((price) => [price.id, price['input_per_mtok']])).toEqual([
      [operatorPrice.id, 1.25],
    ]);
  });

  it('costs the next run with a price added through the API, without a restart', async () => {
    const added = await asUser(
      api.app,
      admin,
    )({
      method: 'POST',
      url: `${BASE}/`,
      payload: {
        ...newPrice,
        model_pattern: 'gpt-4o-mini',
        valid_from: new Date(Date.now() - 1_000).toISOString(),
        input_per_mtok: 10,
        output_per_mtok: 20,
      },
    });
    expect(added.statusCode, added.body).toBe(201);
    api.script([{ content: 'New price.', usage: usage(1000, 1000) }]);
    const reply = await chat(alice, { message: 'price me' });
    expect(reply.message.cost).toBe(0.03); // 1000 × $10 + 1000 × $20 per 1M
    const priceId = await api.db.pool.oneFirst(sql.type(z.object({ price_id: z.string() }))`
      SELECT price_id FROM model_calls c JOIN workflow_runs r ON r.id = c.run_id WHERE r.conversation_id = ${reply.conversation_id}`);
    expect(priceId).toBe(added.json<Price>().id);
  });

  it('appears in the OpenAPI document', async () => {
    const document = (await api.app.inject({ method: 'GET', url: '/openapi.json' })).json<{
      paths: Record<string, Record<string, unknown>>;
    }>();
    expect(Object.keys(document.paths[`${BASE}/`] ?? {}).sort()).toEqual(['get', 'post']);
    expect(Object.keys(document.paths[`${BASE}/recompute`] ?? {})).toEqual(['post']);
    expect(Object.keys(document.paths[`${BASE}/{price_id}/retire`] ?? {})).toEqual(['post']);
  });
});
