import { request as httpRequest } from 'node:http';
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { ScriptedTurn } from '../helpers/scripted-chat-model.js';
import { asUser, registerUser, type RegisteredUser } from '../helpers/api.js';
import { createChatApi, type ChatApi } from '../helpers/chat-api.js';
import { fullContractErrors, fullContractMissing } from '../helpers/full-contract.js';

const BASE = '/api/v1/analytics';
const PERIOD = 'period=24h';
type Body = Record<string, unknown>;
type Usage = Body & { total_tokens: number; total_prompt_tokens: number; total_cost: number; daily_usage: Record<string, number> };

/** Parses the export's CSV (RFC 4180: quoted fields, doubled quotes, CRLF rows). */
const parseCsv = (text: string): string[][] => {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let index = 0; index < text.length; index += 1) {
    const char = text[index]!;
    if (quoted) {
      if (char === '"' && text[index + 1] === '"') {
        cell += '"';
        index += 1;
      } else if (char === '"') quoted = false;
      else cell += char;
    } else if (char === '"') quoted = true;
    else if (char === ',') {
      row.push(cell);
      cell = '';
    } else if (char === '\r' && text[index + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      index += 1;
    } else cell += char;
  }
  return rows;
};

describe.skipIf(fullContractMissing !== undefined)('dashboard analytics in the contract’s shapes', () => {
  let api: ChatApi;
  let base: string;
  let alice: RegisteredUser;
  let bob: RegisteredUser;
  let admin: RegisteredUser;

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
    // The rollups are committed with the run's record, before the chat answers.
    expect(response.statusCode, response.body).toBe(200);
    return response;
  };
  const get = (user: RegisteredUser, path: string) => asUser(api.app, user)({ method: 'GET', url: `${BASE}${path}` });
  const json = async <T = Body>(user: RegisteredUser, path: string, schema: string, method: 'GET' | 'POST' = 'GET'): Promise<T> => {
    const response = await asUser(api.app, user)({ method, url: `${BASE}${path}` });
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json<T>();
    expect(fullContractErrors(schema, body)).toEqual([]);
    return body;
  };

  beforeAll(async () => {
    api = await createChatApi({ CHAT_RATE_LIMIT_PER_MINUTE: '100', DEFAULT_PROVIDER: 'openai', OPENAI_API_KEY: 'sk-test' });
    base = await api.app.listen({ host: '127.0.0.1', port: 0 });
    alice = await registerUser(api.app);
    bob = await registerUser(api.app);
    admin = await registerUser(api.app);
    await api.db.pool.query(sql.unsafe`UPDATE users SET is_superuser = true WHERE id = ${admin.id}`);
    await chat(alice, [{ content: 'First.', usage: { input_tokens: 20, output_tokens: 5 } }], { message: 'Hello' });
    await chat(
      alice,
      [
        { content: '', toolCalls: [{ name: 'calculator', args: { expression: '6*7' } }], usage: { input_tokens: 40, output_tokens: 6 } },
        { content: '', toolCalls: [{ name: 'calculator', args: { expression: '6*/' } }], usage: { input_tokens: 50, output_tokens: 6 } },
        { content: 'It is 42.', usage: { input_tokens: 60, output_tokens: 4 } },
      ],
      { message: 'What is 6*7?', enable_tools: true },
    );
    await chat(alice, [{ content: 'Streamed.', usage: { input_tokens: 90, output_tokens: 7 } }], { message: 'Stream' }, true);
    await chat(bob, [{ content: 'Bob.', usage: { input_tokens: 11, output_tokens: 2 } }], { message: 'Hi' });
  }, 60_000);
  afterAll(async () => {
    await api.close();
  });

  it('charts the same tokens, cost and conversations as the usage report', async () => {
    const usage = await json<Usage>(alice, `/usage?${PERIOD}`, 'UsageMetricsResponse');
    expect(usage.total_tokens).toBe(20 + 5 + 40 + 6 + 50 + 6 + 60 + 4 + 90 + 7);
    expect(usage.total_cost).toBeGreaterThan(0);
    const chart = await json<{
      token_usage_data: { tokens: number; cost: number }[];
      conversation_chart_data: { conversations: number }[];
    }>(alice, `/dashboard/chart-data?${PERIOD}`, 'ChartReadyAnalytics');
    expect(chart.token_usage_data.reduce((sum, day) => sum + day.tokens, 0)).toBe(usage.total_tokens);
    expect(chart.token_usage_data.reduce((sum, day) => sum + day.cost, 0)).toBeCloseTo(usage.total_cost, 12);
    expect(chart.conversation_chart_data.reduce((sum, day) => sum + day.conversations, 0)).toBe(3);
    expect((await get(alice, '/dashboard/chart-data?start_date=tomorrow')).statusCode).toBe(422);
  });

  it('answers the integrated dashboard with the usage report’s totals and the runs by status', async () => {
    const usage = await json<Usage>(alice, `/usage?${PERIOD}`, 'UsageMetricsResponse');
    const integrated = await json<{ workflows: Body; agents: Body; ab_testing: Body; system: Body }>(
      alice,
      `/dashboard/integrated?${PERIOD}`,
      'IntegratedDashboardStats',
    );
    const executions = (await asUser(api.app, alice)({ method: 'GET', url: '/api/v1/workflows/executions' })).json<{ total: number }>();
    expect(integrated.workflows).toMatchObject({
      total_executions: executions.total,
      successful_executions: 3,
      failed_executions: 0,
      success_rate: 100,
      active_executions: 0,
      model_calls: 5,
      total_tokens: usage.total_tokens,
      total_prompt_tokens: usage.total_prompt_tokens,
      total_cost: usage.total_cost,
      executions_by_status: { completed: 3 },
    });
    expect(integrated.agents).toMatchObject({ total_agents: 0, supported: false });
    expect(integrated.system).toMatchObject({ instance_id: api.services.instanceId });
    // The default window (7 days) holds the same runs.
    const byDefault = await json<{ workflows: Body }>(alice, '/dashboard/integrated', 'IntegratedDashboardStats');
    expect(byDefault.workflows['total_tokens']).toBe(usage.total_tokens);
  });

  it('exports the usage report as a JSON download with the report’s own figures', async () => {
    const usage = await json<Usage>(alice, `/usage?${PERIOD}`, 'UsageMetricsResponse');
    const response = await asUser(
      api.app,
      alice,
    )({ method: 'POST', url: `${BASE}/export?format=json&metrics=usage&metrics=conversations&${PERIOD}` });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.headers['content-type']).toContain('application/json');
    expect(response.headers['content-disposition']).toMatch(/^attachment; filename="chatter-analytics-\d{10}-\d{10}\.json"$/);
    const body = response.json<Body & { data: { usage: Usage; conversations: Body } }>();
    expect(fullContractErrors('AnalyticsExportResponse', body)).toEqual([]);
    expect(fullContractErrors('ConversationStatsResponse', body.data.conversations)).toEqual([]);
    expect(body).toMatchObject({ status: 'completed', format: 'json', metrics: ['usage', 'conversations'] });
    expect(body.data.usage).toEqual(usage);
  });

  it('exports CSV rows of report, metric, key and value that add up to the usage report', async () => {
    const usage = await json<Usage>(alice, `/usage?${PERIOD}`, 'UsageMetricsResponse');
    const response = await fetch(`${base}${BASE}/export?format=csv&metrics=usage&metrics=performance&${PERIOD}`, {
      method: 'POST',
      headers: alice.auth,
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(response.headers.get('content-disposition')).toMatch(/^attachment; filename="chatter-analytics-\d{10}-\d{10}\.csv"$/);
    const rows = parseCsv(await response.text());
    expect(rows[0]).toEqual(['report', 'metric', 'key', 'value']);
    const value = (report: string, metric: string, key = '') =>
      rows.find((row) => row[0] === report && row[1] === metric && row[2] === key)?.[3];
    expect(Number(value('usage', 'total_tokens'))).toBe(usage.total_tokens);
    expect(Number(value('usage', 'total_cost'))).toBe(usage.total_cost);
    const daily = rows.filter((row) => row[0] === 'usage' && row[1] === 'daily_usage');
    expect(daily.reduce((sum, row) => sum + Number(row[3]), 0)).toBe(usage.total_tokens);
    expect(Object.fromEntries(daily.map((row) => [row[2], Number(row[3])]))).toEqual(usage.daily_usage);
    expect(rows.some((row) => row[0] === 'performance' && row[1] === 'p95_response_time_ms')).toBe(true);
  });

  it('refuses a bad export with 422 naming the field', async () => {
    const post = (query: string) => asUser(api.app, alice)({ method: 'POST', url: `${BASE}/export?${query}` });
    for (const [query, field] of [
      ['format=xlsx&metrics=usage', 'format'],
      ['format=json', 'metrics'],
      ['format=json&metrics=agents', 'metrics'],
      ['format=csv&metrics=usage&start_date=yesterday', 'start_date'],
    ] as const) {
      const response = await post(query);
      expect(response.statusCode, query).toBe(422);
      const detail = response.json<{ detail: { loc: string[] }[] }>().detail;
      expect(detail.map((item) => item.loc.join('.')).join(' '), query).toContain(field);
    }
  });

  it('counts tool calls by tool and server from the tool-call rows', async () => {
    const tools = await json<Body & { tool_usage_stats: Record<string, number>; error_distribution: Record<string, number> }>(
      alice,
      `/toolservers?${PERIOD}`,
      'ToolServerAnalyticsResponse',
    );
    const rows = await api.db.pool.any(sql.type(z.object({ error: z.string().nullable(), duration_ms: z.number().nullable() }))`
      SELECT tc.error, tc.duration_ms FROM tool_calls AS tc JOIN workflow_runs AS r ON r.id = tc.run_id WHERE r.user_id = ${alice.id}`);
    expect(rows).toHaveLength(2);
    expect(tools).toMatchObject({
      total_requests: 2,
      successful_requests: 1,
      failed_requests: 1,
      tool_usage_stats: { calculator: 2 },
      server_uptime_stats: { builtin: { status: 'enabled', total_calls: 2, failed_calls: 1, tools: ['calculator'] } },
      tools: [{ tool: 'calculator', server: 'builtin', calls: 2, failed: 1 }],
    });
    expect(tools['average_response_time_ms']).toBeCloseTo(rows.reduce((sum, row) => sum + (row.duration_ms ?? 0), 0) / 2, 9);
    expect(Object.values(tools.error_distribution)).toEqual([1]);
    expect(Object.keys(tools.error_distribution)[0]).toBe(
      rows
        .find((row) => row.error !== null)
        ?.error?.split('\n')[0]
        ?.slice(0, 100),
    );
    const bobs = await json<Body>(bob, `/toolservers?${PERIOD}`, 'ToolServerAnalyticsResponse');
    expect(bobs).toMatchObject({ total_requests: 0, tool_usage_stats: {}, error_distribution: {} });
    const everyone = await json<Body>(admin, `/toolservers?${PERIOD}&all_users=true`, 'ToolServerAnalyticsResponse');
    expect(everyone['total_requests']).toBe(2);
    expect((await get(bob, `/toolservers?all_users=true`)).statusCode).toBe(403);
  });

  it('reports this instance and its database, and user counts to superusers only', async () => {
    const mine = await json<Body & { instance: Body & { event_loop: Body }; database: Body & { pool: Body } }>(
      alice,
      '/system',
      'SystemAnalyticsResponse',
    );
    expect(mine['total_users']).toBe(0);
    expect(mine.instance).toMatchObject({ instance_id: api.services.instanceId, active_runs: 0 });
    expect(mine.database).toMatchObject({ reachable: true, kind: api.db.kind });
    expect(mine.database['latency_ms']).toBeGreaterThanOrEqual(0);
    expect(mine.database.pool['size']).toBeGreaterThan(0);
    for (const share of [mine['avg_cpu_usage'], mine['avg_memory_usage']]) {
      expect(share).toBeGreaterThan(0);
      expect(share).toBeLessThanOrEqual(100);
    }
    expect(mine['system_uptime_seconds']).toBeGreaterThan(0);
    expect(mine.instance.event_loop['utilization']).toBeGreaterThan(0);
    const admins = await json<Body>(admin, '/system', 'SystemAnalyticsResponse');
    expect(admins).toMatchObject({ total_users: 3, active_users_today: 2 });
  });

  it('answers document analytics as zeros: this service stores no documents', async () => {
    const documents = await json<Body>(alice, `/documents?${PERIOD}`, 'DocumentAnalyticsResponse');
    expect(documents).toMatchObject({ total_documents: 0, total_chunks: 0, total_storage_bytes: 0, most_viewed_documents: [] });
    expect((await get(alice, '/documents?period=2y')).statusCode).toBe(422);
  });

  it('points the real-time dashboard at the live feed and stops the caller’s streams', async () => {
    const started = await json<Body>(alice, '/real-time/real-time/dashboard/start', 'DashboardControlResponse', 'POST');
    expect(started).toMatchObject({ status: 'started', user_id: alice.id, stream_url: `${BASE}/stream` });
    // A live stream of Alice's and one of Bob's; stopping ends Alice's only.
    const open = (user: RegisteredUser) =>
      new Promise<{ ended: Promise<void>; close: () => void }>((resolve, reject) => {
        const req = httpRequest(`${base}${BASE}/stream`, { headers: user.auth });
        req.on('response', (response) => {
          const ended = new Promise<void>((done) => response.on('end', () => done()).on('close', () => done()));
          response.once('data', () => resolve({ ended, close: () => req.destroy() }));
        });
        req.on('error', (error) => (error.message.includes('socket hang up') ? undefined : reject(error)));
        req.end();
      });
    const alices = await open(alice);
    const bobs = await open(bob);
    let bobEnded = false;
    void bobs.ended.then(() => (bobEnded = true));
    const stopped = await json<Body>(alice, '/real-time/real-time/dashboard/stop', 'DashboardControlResponse', 'POST');
    expect(stopped).toMatchObject({ status: 'stopped', user_id: alice.id });
    await alices.ended;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(bobEnded).toBe(false);
    bobs.close();
  });
});
