import { sql, type DatabasePool, type DatabasePoolConnection } from 'slonik';
import { z } from 'zod';

/**
 * Bulk seeding for bench/analytics.ts: conversations, turns (user message, run, model
 * calls, tool calls, lifecycle events, assistant message) and the hourly rollups, all by
 * INSERT … SELECT over generate_series, shaped like what src/repositories/turns-repository.ts
 * and src/repositories/run-records-repository.ts write for a run:
 *
 * - model_calls.input_tokens is *all* input (uncached + cache read + cache write); failed
 *   calls have no usage (NULL tokens, cost and price, usage_source 'missing');
 * - workflow_runs.model_call_count counts the answered calls; cost is NULL only when the
 *   model has no price and a call was answered (cost_unknown);
 * - an assistant message exists only for runs with an answered call; its tokens and cost
 *   are the run's, it is created when the run finished; the user message when it started;
 * - conversation and user totals are the sums over their messages;
 * - rollups mirror src/analytics/run-record-rollups.ts: per model call (bucket of its end,
 *   uncached input, cost when priced, error when it failed, latency histogram) and per run
 *   (bucket of its end, runs_by_status, +1 error when failed); analytics_hourly_totals holds
 *   their sums over users, as src/analytics/analytics-upsert.ts writes them;
 * - the activity rollups (messages per role, conversations per status, distinct active
 *   conversations) and the day level of the hourly rollups are not written here: the
 *   triggers of migration 0014 fill them from these INSERTs, statement by statement, as
 *   they do for the live writes (test/analytics/activity-rollups.test.ts compares both
 *   with a rebuild and with the scans).
 *
 * Every seeded run lies inside one UTC hour (real runs last seconds; the rollups put a
 * call in the hour it ended, a message scan puts its tokens in the hour the run ended).
 * Randomness is hashint8extended of the row's index: the same flags give the same data.
 */

export type SeedOptions = {
  readonly messages: number;
  readonly users: number;
  readonly days: number;
  /** The heavy user's id (registered through the API, so the bench can log in as it). */
  readonly heavyUserId: string;
  /** Share of conversations that belong to the heavy user. */
  readonly heavyShare: number;
  /** Conversations per batch. */
  readonly batchConversations: number;
  readonly now: number;
  readonly log: (line: string) => void;
};

export type SeedReport = {
  readonly conversations: number;
  readonly runs: number;
  readonly messages: number;
  readonly modelCalls: number;
  readonly toolCalls: number;
  readonly events: number;
  readonly rollupRows: number;
  readonly seconds: number;
};

/** Average turns per conversation (lengths 1..19). */
const MEAN_TURNS = 10;
/** Share of turns that leave no assistant message (runs with no answered call). */
const NO_REPLY_SHARE = 0.04;

const CountRow = z.object({ n: z.number() });

const q = (connection: DatabasePoolConnection, query: ReturnType<typeof sql.unsafe>) => connection.query(query);

const setup = async (c: DatabasePoolConnection, options: SeedOptions): Promise<void> => {
  await q(
    c,
    sql.unsafe`CREATE OR REPLACE FUNCTION pg_temp.h(i bigint, salt int) RETURNS bigint
    LANGUAGE sql IMMUTABLE AS 'SELECT abs(hashint8extended(i, salt::bigint))'`,
  );
  // Models: cumulative weight out of 1000, list prices per 1M tokens (src/providers/prices.json).
  await q(c, sql.unsafe`DROP TABLE IF EXISTS pg_temp.bench_models`);
  await q(
    c,
    sql.unsafe`CREATE TEMP TABLE bench_models AS SELECT * FROM (VALUES
    (0, 350, 'openai', 'gpt-4o-mini', 'gpt-4o-mini-2024-07-18', 'openai:gpt-4o-mini@2024-07-18', 0.15::numeric, 0.075::numeric, 0.15::numeric, 0.6::numeric, false),
    (1, 500, 'openai', 'gpt-4.1', 'gpt-4.1-2025-04-14', 'openai:gpt-4.1@2025-04-14', 2, 0.5, 2, 8, false),
    (2, 600, 'openai', 'o4-mini', 'o4-mini-2025-04-16', 'openai:o4-mini@2025-04-16', 1.1, 0.275, 1.1, 4.4, true),
    (3, 800, 'anthropic', 'claude-sonnet-4-5', 'claude-sonnet-4-5-20250929', 'anthropic:claude-sonnet-4-5@2025-09-29', 3, 0.3, 3.75, 15, false),
    (4, 950, 'anthropic', 'claude-haiku-4-5', 'claude-haiku-4-5-20251001', 'anthropic:claude-haiku-4-5@2025-10-15', 1, 0.1, 1.25, 5, false),
    (5, 980, 'local', 'local-echo', 'local-echo', 'local:*@2024-01-01', 0, 0, 0, 0, false),
    (6, 1000, 'openai', 'gpt-4o-audio-preview', 'gpt-4o-audio-preview-2024-12-17', NULL, NULL, NULL, NULL, NULL, false)
  ) AS m(midx, upto, provider, model, response_model, price_id, p_in, p_cr, p_cw, p_out, reasoning)`,
  );
  const missing = await c.oneFirst(sql.type(CountRow)`
    SELECT count(*)::int8 AS n FROM bench_models b
    WHERE b.price_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM model_prices p WHERE p.id = b.price_id)`);
  if (missing > 0) throw new Error('seed: a price id of the seeded models is not in model_prices');
  await q(c, sql.unsafe`DROP TABLE IF EXISTS pg_temp.bench_users`);
  await q(c, sql.unsafe`CREATE TEMP TABLE bench_users (idx int PRIMARY KEY, id text NOT NULL)`);
  await q(c, sql.unsafe`INSERT INTO bench_users VALUES (0, ${options.heavyUserId})`);
  await q(
    c,
    sql.unsafe`
    INSERT INTO bench_users SELECT g, 'bench-user-' || lpad(g::text, 6, '0') FROM generate_series(1, ${options.users - 1}::int) g`,
  );
  await q(
    c,
    sql.unsafe`
    INSERT INTO users (id, email, username, password_hash, created_at, updated_at)
    SELECT id, id || '@bench.example.com', replace(id, '-', '_'), 'not-a-real-hash',
           to_timestamp(${(options.now - (options.days + 1) * 86_400_000) / 1000}::float8),
           to_timestamp(${(options.now - (options.days + 1) * 86_400_000) / 1000}::float8)
    FROM bench_users WHERE idx > 0`,
  );
};

/** One batch: conversations [from, to). */
const seedBatch = async (c: DatabasePoolConnection, options: SeedOptions, from: number, to: number): Promise<void> => {
  const nowMs = options.now;
  const spanMs = Math.floor((options.days - 0.5) * 86_400_000);
  const heavyPer1000 = Math.round(options.heavyShare * 1000);
  await q(c, sql.unsafe`DROP TABLE IF EXISTS pg_temp.bench_c, pg_temp.bench_t, pg_temp.bench_mc, pg_temp.bench_tc`);
  // Conversations: owner (the heavy user gets heavyShare), length, model, start, status.
  await q(
    c,
    sql.unsafe`
    CREATE TEMP TABLE bench_c AS
    SELECT g AS c, 'bench-conv-' || g AS id,
      CASE WHEN pg_temp.h(g, 1) % 1000 < ${heavyPer1000}::int THEN 0 ELSE 1 + (pg_temp.h(g, 2) % ${options.users - 1}::int) END AS user_idx,
      (1 + pg_temp.h(g, 3) % 19)::int AS len,
      (SELECT midx FROM bench_models WHERE upto > pg_temp.h(g, 4) % 1000 ORDER BY upto LIMIT 1) AS midx,
      ${nowMs}::int8 - 7200000 - (pg_temp.h(g, 5) % ${spanMs}::int8) AS start_ms,
      CASE WHEN pg_temp.h(g, 6) % 100 < 90 THEN 'active' WHEN pg_temp.h(g, 6) % 100 < 97 THEN 'archived' ELSE 'deleted' END AS status
    FROM generate_series(${from}::int8, ${to - 1}::int8) g`,
  );
  // Turns: status, workflow, retry; answered calls, a final failed call, tool calls.
  await q(
    c,
    sql.unsafe`
    CREATE TEMP TABLE bench_t AS
    WITH base AS (
      SELECT cv.c, cv.id AS conversation_id, cv.user_idx, cv.midx, k, cv.c * 32 + k AS i,
        cv.start_ms + k * 360000 + pg_temp.h(cv.c * 32 + k, 7) % 60000 AS t0_raw,
        pg_temp.h(cv.c * 32 + k, 8) % 1000 AS s,
        pg_temp.h(cv.c * 32 + k, 9) % 100 < 15 AS tools,
        pg_temp.h(cv.c * 32 + k, 10) % 100 < 4 AS retry_draw,
        pg_temp.h(cv.c * 32 + k, 11) % 3 = 0 AS third_call,
        pg_temp.h(cv.c * 32 + k, 12) % 2 = 0 AS coin
      FROM bench_c cv CROSS JOIN LATERAL generate_series(0, cv.len - 1) AS k
    ),
    st AS (
      SELECT *, CASE WHEN s < 930 THEN 'completed' WHEN s < 960 THEN 'failed' WHEN s < 975 THEN 'cancelled'
                     WHEN s < 985 THEN 'timedOut' WHEN s < 990 THEN 'budgetExceeded' ELSE 'interrupted' END AS status
      FROM base
    ),
    shape AS (
      SELECT *,
        (retry_draw AND status IN ('completed', 'cancelled', 'budgetExceeded')) AS retry,
        CASE status
          WHEN 'completed' THEN CASE WHEN tools THEN 2 + third_call::int ELSE 1 END
          WHEN 'failed' THEN CASE WHEN tools AND coin THEN 1 ELSE 0 END
          WHEN 'cancelled' THEN 1
          WHEN 'budgetExceeded' THEN 1
          ELSE 0 END AS n_ok,
        status IN ('failed', 'timedOut', 'interrupted') AS term_err
      FROM st
    )
    SELECT *,
      CASE WHEN tools THEN CASE WHEN status = 'completed' THEN n_ok - 1 WHEN status = 'failed' AND n_ok = 1 THEN 1 ELSE 0 END ELSE 0 END AS n_tools,
      retry::int + n_ok + term_err::int AS n_calls
    FROM shape`,
  );
  // Model calls (retry error, answered calls with a tool call after the first n_tools, final error).
  await q(
    c,
    sql.unsafe`
    CREATE TEMP TABLE bench_mc AS
    WITH calls AS (
      SELECT t.i, t.midx, t.status, j,
        CASE WHEN t.retry AND j = 0 THEN 'retry' WHEN t.term_err AND j = t.n_calls - 1 THEN 'error' ELSE 'ok' END AS kind,
        j - t.retry::int AS ok_index, t.n_tools, pg_temp.h(t.i * 8 + j, 13) AS r
      FROM bench_t t CROSS JOIN LATERAL generate_series(0, t.n_calls - 1) AS j
    ),
    lat AS (
      SELECT *,
        CASE
          WHEN kind = 'retry' THEN 5 + r % 300
          WHEN kind = 'error' AND status = 'timedOut' THEN 60000 + r % 500
          WHEN kind = 'error' THEN 5 + r % 800
          WHEN r % 100 < 10 THEN 20 + r % 81
          WHEN r % 100 < 35 THEN 101 + r % 150
          WHEN r % 100 < 65 THEN 251 + r % 250
          WHEN r % 100 < 85 THEN 501 + r % 500
          WHEN r % 100 < 95 THEN 1001 + r % 1500
          WHEN r % 100 < 98 THEN 2501 + r % 2500
          WHEN r % 100 < 99 THEN 5001 + r % 5000
          ELSE 10001 + r % 55000 END::int AS latency_ms,
        CASE WHEN kind = 'ok' AND ok_index < n_tools THEN (1 + r % 40)::int ELSE 0 END AS tool_ms
      FROM calls
    )
    SELECT *,
      15 + coalesce(sum(latency_ms + tool_ms) OVER (PARTITION BY i ORDER BY j ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS offset_ms
    FROM lat`,
  );
  // Each run inside one UTC hour: a run that would cross the hour ends just before it.
  await q(
    c,
    sql.unsafe`
    ALTER TABLE bench_t ADD COLUMN dur int, ADD COLUMN t0 int8`,
  );
  await q(
    c,
    sql.unsafe`
    UPDATE bench_t t SET dur = d.dur,
      t0 = CASE WHEN (t.t0_raw + d.dur) / 3600000 <> t.t0_raw / 3600000 THEN (t.t0_raw / 3600000 + 1) * 3600000 - d.dur - 1000 ELSE t.t0_raw END
    FROM (SELECT i, (max(offset_ms + latency_ms + tool_ms) + 10)::int AS dur FROM bench_mc GROUP BY i) d
    WHERE d.i = t.i`,
  );
  await q(
    c,
    sql.unsafe`ALTER TABLE bench_mc ADD COLUMN in_total int8, ADD COLUMN cache_read int8, ADD COLUMN cache_write int8,
    ADD COLUMN out_tokens int8, ADD COLUMN reasoning int8, ADD COLUMN cost numeric, ADD COLUMN started_ms int8`,
  );
  await q(
    c,
    sql.unsafe`
    UPDATE bench_mc mc SET
      started_ms = t.t0 + mc.offset_ms,
      in_total = CASE WHEN mc.kind = 'ok' THEN 100 + mc.r % 3000 + mc.ok_index * 250 END,
      out_tokens = CASE WHEN mc.kind = 'ok' THEN 10 + (mc.r / 7) % 700 END
    FROM bench_t t WHERE t.i = mc.i`,
  );
  await q(
    c,
    sql.unsafe`
    UPDATE bench_mc mc SET
      cache_read = CASE WHEN (mc.r / 11) % 10 < 3 THEN mc.in_total / 2 ELSE 0 END,
      cache_write = CASE WHEN m.provider = 'anthropic' AND (mc.r / 11) % 10 = 9 THEN mc.in_total / 10 ELSE 0 END,
      reasoning = CASE WHEN m.reasoning THEN mc.out_tokens / 3 ELSE 0 END
    FROM bench_models m WHERE m.midx = mc.midx AND mc.kind = 'ok'`,
  );
  await q(
    c,
    sql.unsafe`
    UPDATE bench_mc mc SET cost =
      ((mc.in_total - mc.cache_read - mc.cache_write) * m.p_in + mc.cache_read * m.p_cr + mc.cache_write * m.p_cw + mc.out_tokens * m.p_out) / 1000000
    FROM bench_models m WHERE m.midx = mc.midx AND mc.kind = 'ok' AND m.price_id IS NOT NULL`,
  );
  // Tool calls: one after each of the first n_tools answered calls.
  await q(
    c,
    sql.unsafe`
    CREATE TEMP TABLE bench_tc AS
    SELECT mc.i, mc.ok_index AS sequence, mc.started_ms + mc.latency_ms AS started_ms, mc.tool_ms,
      CASE WHEN mc.r % 2 = 0 THEN 'calculator' ELSE 'current_time' END AS tool
    FROM bench_mc mc WHERE mc.tool_ms > 0`,
  );

  // Conversations, with totals equal to the sums over the messages written below.
  await q(
    c,
    sql.unsafe`
    INSERT INTO conversations (id, user_id, title, status, llm_provider, llm_model, message_count, total_tokens, total_cost,
                               last_message_at, created_at, updated_at)
    SELECT cv.id, u.id, 'Bench conversation ' || cv.c, cv.status, m.provider, m.model, 0, 0, 0, NULL,
           to_timestamp((cv.start_ms - 1000) / 1000.0), to_timestamp((cv.start_ms - 1000) / 1000.0)
    FROM bench_c cv JOIN bench_users u ON u.idx = cv.user_idx JOIN bench_models m ON m.midx = cv.midx`,
  );
  // Runs.
  await q(
    c,
    sql.unsafe`
    INSERT INTO workflow_runs (id, user_id, conversation_id, workflow, status, terminal_reason, provider, model, input, output, error,
      input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, total_tokens, cost, cost_unknown,
      usage_missing, model_call_count, tool_call_count, started_at, finished_at, duration_ms, correlation_id, trace_id,
      instance_id, last_heartbeat_at, created_at)
    SELECT 'bench-run-' || t.i, u.id, t.conversation_id, CASE WHEN t.tools THEN 'chat_with_tools' ELSE 'chat' END, t.status,
      CASE t.status WHEN 'completed' THEN 'completed' WHEN 'failed' THEN 'non_transient_error' WHEN 'cancelled' THEN 'client_disconnected'
        WHEN 'timedOut' THEN 'run_timeout' WHEN 'budgetExceeded' THEN 'token_budget' ELSE 'shutdown' END,
      m.provider, m.model, jsonb_build_object('user_message_id', 'bench-msg-' || t.i || 'u'),
      CASE WHEN t.n_ok > 0 THEN 'Seeded answer ' || t.i END,
      CASE t.status WHEN 'failed' THEN '400 bad request' WHEN 'timedOut' THEN 'model call timed out' WHEN 'interrupted' THEN 'interrupted' END,
      coalesce(a.in_total, 0), coalesce(a.cache_read, 0), coalesce(a.cache_write, 0), coalesce(a.out_tokens, 0),
      coalesce(a.reasoning, 0), coalesce(a.in_total + a.out_tokens, 0),
      CASE WHEN m.price_id IS NULL AND t.n_ok > 0 THEN NULL ELSE coalesce(a.cost, 0) END,
      m.price_id IS NULL AND t.n_ok > 0, false, t.n_ok, t.n_tools,
      to_timestamp(t.t0 / 1000.0), to_timestamp((t.t0 + t.dur) / 1000.0), t.dur, 'bench-corr-' || t.i,
      md5(t.i::text), 'bench', to_timestamp((t.t0 + t.dur) / 1000.0), to_timestamp(t.t0 / 1000.0)
    FROM bench_t t JOIN bench_users u ON u.idx = t.user_idx JOIN bench_models m ON m.midx = t.midx
    LEFT JOIN (
      SELECT i, sum(in_total) AS in_total, sum(cache_read) AS cache_read, sum(cache_write) AS cache_write,
        sum(out_tokens) AS out_tokens, sum(reasoning) AS reasoning, sum(cost) AS cost
      FROM bench_mc WHERE kind = 'ok' GROUP BY i
    ) a ON a.i = t.i`,
  );
  // Messages: the user's when the run started, the assistant's (runs with an answered call) when it ended.
  await q(
    c,
    sql.unsafe`
    INSERT INTO messages (id, conversation_id, role, content, sequence_number, prompt_tokens, completion_tokens, total_tokens,
      cached_input_tokens, reasoning_tokens, cost, model_used, provider_used, finish_reason, response_time_ms, run_id,
      correlation_id, tool_calls, extra_metadata, created_at)
    WITH seqs AS (
      SELECT t.*, coalesce(sum(1 + (t.n_ok > 0)::int) OVER (PARTITION BY t.conversation_id ORDER BY t.k
        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)::int AS seq_u
      FROM bench_t t
    )
    SELECT 'bench-msg-' || s.i || 'u', s.conversation_id, 'user', 'Seeded question ' || s.i, s.seq_u,
      NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'bench-run-' || s.i, 'bench-corr-' || s.i, NULL, NULL,
      to_timestamp(s.t0 / 1000.0)
    FROM seqs s
    UNION ALL
    SELECT 'bench-msg-' || s.i || 'a', s.conversation_id, 'assistant', r.output, s.seq_u + 1,
      r.input_tokens, r.output_tokens, r.total_tokens, r.cache_read_tokens, r.reasoning_tokens, r.cost,
      m.response_model, m.provider, CASE WHEN s.status = 'completed' THEN 'stop' ELSE r.terminal_reason END, s.dur,
      r.id, r.correlation_id,
      CASE WHEN s.n_tools > 0 THEN (SELECT jsonb_agg(jsonb_build_object('tool', tc.tool, 'arguments', '{}'::jsonb, 'ok', true) ORDER BY tc.sequence)
                                    FROM bench_tc tc WHERE tc.i = s.i) END,
      jsonb_build_object('run_status', s.status, 'terminal_reason', r.terminal_reason, 'cache_write_tokens', r.cache_write_tokens,
        'usage_missing_calls', 0, 'cost_unknown', r.cost_unknown, 'model_calls', s.n_ok),
      to_timestamp((s.t0 + s.dur) / 1000.0)
    FROM seqs s JOIN workflow_runs r ON r.id = 'bench-run-' || s.i JOIN bench_models m ON m.midx = s.midx
    WHERE s.n_ok > 0`,
  );
  await q(
    c,
    sql.unsafe`
    INSERT INTO model_calls (id, run_id, sequence, provider, request_model, response_model, input_tokens, cache_read_tokens,
      cache_write_tokens, output_tokens, reasoning_tokens, cost, price_id, latency_ms, time_to_first_token_ms, finish_reason,
      usage_source, error, started_at, created_at)
    SELECT 'bench-call-' || mc.i || '-' || mc.j, 'bench-run-' || mc.i, mc.j, m.provider, m.model,
      CASE WHEN mc.kind = 'ok' THEN m.response_model END,
      mc.in_total, mc.cache_read, mc.cache_write, mc.out_tokens, mc.reasoning, mc.cost,
      CASE WHEN mc.kind = 'ok' THEN m.price_id END, mc.latency_ms,
      CASE WHEN mc.kind = 'ok' THEN least(mc.latency_ms, 30 + mc.r % 400) END,
      CASE WHEN mc.kind <> 'ok' THEN NULL WHEN mc.ok_index < mc.n_tools THEN 'tool_calls' ELSE 'stop' END,
      CASE WHEN mc.kind = 'ok' THEN 'provider' ELSE 'missing' END,
      CASE WHEN mc.kind = 'retry' THEN '503 overloaded' WHEN mc.kind = 'error' AND mc.status = 'timedOut' THEN 'model call timed out'
           WHEN mc.kind = 'error' AND mc.status = 'interrupted' THEN 'interrupted' WHEN mc.kind = 'error' THEN '400 bad request' END,
      to_timestamp(mc.started_ms / 1000.0), to_timestamp((mc.started_ms + mc.latency_ms) / 1000.0)
    FROM bench_mc mc JOIN bench_models m ON m.midx = mc.midx`,
  );
  await q(
    c,
    sql.unsafe`
    INSERT INTO tool_calls (id, run_id, sequence, tool, arguments, result_size, duration_ms, error, started_at, created_at)
    SELECT 'bench-tool-' || tc.i || '-' || tc.sequence, 'bench-run-' || tc.i, tc.sequence, tc.tool,
      CASE WHEN tc.tool = 'calculator' THEN '{"expression":"6*7"}'::jsonb ELSE '{}'::jsonb END, 2 + tc.tool_ms % 20, tc.tool_ms, NULL,
      to_timestamp(tc.started_ms / 1000.0), to_timestamp((tc.started_ms + tc.tool_ms) / 1000.0)
    FROM bench_tc tc`,
  );
  // Lifecycle events as the run span's events: start, one per answered call (and price_unknown), per tool, per retry, terminal.
  await q(
    c,
    sql.unsafe`
    INSERT INTO events (id, category, type, priority, user_id, conversation_id, run_id, correlation_id, data, created_at)
    SELECT 'bench-ev-' || e.i || '-' || e.n, 'workflow', e.type, e.priority, u.id, t.conversation_id, 'bench-run-' || e.i,
      'bench-corr-' || e.i, e.data || jsonb_build_object('workflow', CASE WHEN t.tools THEN 'chat_with_tools' ELSE 'chat' END),
      to_timestamp(e.at_ms / 1000.0)
    FROM (
      SELECT t.i, 0 AS n, 'workflow_started' AS type, 'normal' AS priority, '{}'::jsonb AS data, t.t0 + 5 AS at_ms FROM bench_t t
      UNION ALL
      SELECT mc.i, 1 + mc.j * 3, CASE mc.kind WHEN 'ok' THEN 'model_response' WHEN 'retry' THEN 'retry_scheduled' END, 'normal',
        CASE WHEN mc.kind = 'ok' THEN jsonb_build_object('gen_ai.usage.input_tokens', mc.in_total, 'gen_ai.usage.output_tokens', mc.out_tokens,
          'gen_ai.usage.cache_read.input_tokens', mc.cache_read, 'gen_ai.usage.cache_creation.input_tokens', mc.cache_write,
          'gen_ai.usage.cost', mc.cost) ELSE jsonb_build_object('chatter.retry.attempt', 1) END,
        mc.started_ms + mc.latency_ms
      FROM bench_mc mc WHERE mc.kind IN ('ok', 'retry')
      UNION ALL
      SELECT mc.i, 2 + mc.j * 3, 'price_unknown', 'high', '{}'::jsonb, mc.started_ms + mc.latency_ms
      FROM bench_mc mc WHERE mc.kind = 'ok' AND mc.cost IS NULL
      UNION ALL
      SELECT tc.i, 3 + tc.sequence * 3, 'tool_called', 'normal', jsonb_build_object('gen_ai.tool.name', tc.tool, 'chatter.tool.ok', true),
        tc.started_ms + tc.tool_ms
      FROM bench_tc tc
      UNION ALL
      SELECT t.i, 100, CASE t.status WHEN 'completed' THEN 'workflow_completed' WHEN 'failed' THEN 'workflow_failed'
          WHEN 'cancelled' THEN 'workflow_cancelled' WHEN 'timedOut' THEN 'workflow_timed_out' WHEN 'budgetExceeded' THEN 'budget_exceeded'
          ELSE 'workflow_interrupted' END,
        CASE WHEN t.status IN ('failed', 'timedOut', 'interrupted', 'budgetExceeded') THEN 'high' ELSE 'normal' END,
        '{}'::jsonb, t.t0 + t.dur
      FROM bench_t t
    ) e JOIN bench_t t ON t.i = e.i JOIN bench_users u ON u.idx = t.user_idx`,
  );
  // Conversation totals = sums over their messages.
  await q(
    c,
    sql.unsafe`
    UPDATE conversations cv SET message_count = s.n, total_tokens = s.tokens, total_cost = s.cost, last_message_at = s.last_at, updated_at = s.last_at
    FROM (
      SELECT m.conversation_id, count(*) AS n, coalesce(sum(m.total_tokens), 0) AS tokens, coalesce(sum(m.cost), 0) AS cost, max(m.created_at) AS last_at
      FROM messages m JOIN bench_c b ON b.id = m.conversation_id GROUP BY m.conversation_id
    ) s WHERE s.conversation_id = cv.id`,
  );
};

/** The hourly rollups of every run in the database, by the rules of src/analytics/run-record-rollups.ts. */
const seedRollups = async (c: DatabasePoolConnection): Promise<void> => {
  await q(
    c,
    sql.unsafe`
    INSERT INTO analytics_hourly (bucket_start, user_id, provider, model, input_tokens, cache_read_tokens, cache_write_tokens,
      output_tokens, reasoning_tokens, cost, model_calls, runs_total, runs_by_status, errors, latency_sum_ms, latency_count,
      latency_buckets, updated_at)
    WITH deltas AS (
      SELECT date_trunc('hour', (mc.started_at + mc.latency_ms * interval '1 millisecond') AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS bucket,
        r.user_id, mc.provider, mc.request_model AS model,
        coalesce(mc.input_tokens - mc.cache_read_tokens - mc.cache_write_tokens, 0) AS input_tokens,
        coalesce(mc.cache_read_tokens, 0) AS cache_read_tokens, coalesce(mc.cache_write_tokens, 0) AS cache_write_tokens,
        coalesce(mc.output_tokens, 0) AS output_tokens, coalesce(mc.reasoning_tokens, 0) AS reasoning_tokens,
        coalesce(mc.cost, 0) AS cost, 1 AS model_calls, NULL::text AS status, (mc.error IS NOT NULL)::int AS errors,
        mc.latency_ms::int8 AS latency_ms,
        CASE WHEN mc.latency_ms <= 100 THEN 0 WHEN mc.latency_ms <= 250 THEN 1 WHEN mc.latency_ms <= 500 THEN 2
             WHEN mc.latency_ms <= 1000 THEN 3 WHEN mc.latency_ms <= 2500 THEN 4 WHEN mc.latency_ms <= 5000 THEN 5
             WHEN mc.latency_ms <= 10000 THEN 6 WHEN mc.latency_ms <= 30000 THEN 7 WHEN mc.latency_ms <= 60000 THEN 8 ELSE 9 END AS bucket_index
      FROM model_calls mc JOIN workflow_runs r ON r.id = mc.run_id
      UNION ALL
      SELECT date_trunc('hour', r.finished_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', r.user_id, r.provider, r.model,
        0, 0, 0, 0, 0, 0, 0, r.status, (r.status = 'failed')::int, NULL, NULL
      FROM workflow_runs r
    ),
    sums AS (
      SELECT bucket, user_id, provider, model,
        sum(input_tokens) AS input_tokens, sum(cache_read_tokens) AS cache_read_tokens, sum(cache_write_tokens) AS cache_write_tokens,
        sum(output_tokens) AS output_tokens, sum(reasoning_tokens) AS reasoning_tokens, sum(cost) AS cost,
        sum(model_calls) AS model_calls, count(status) AS runs_total, sum(errors) AS errors,
        coalesce(sum(latency_ms), 0) AS latency_sum_ms, count(latency_ms) AS latency_count,
        jsonb_build_array(${sql.join(
          Array.from({ length: 10 }, (_, index) => sql.fragment`count(*) FILTER (WHERE bucket_index = ${index}::int)`),
          sql.fragment`, `,
        )}) AS latency_buckets
      FROM deltas GROUP BY bucket, user_id, provider, model
    ),
    statuses AS (
      SELECT bucket, user_id, provider, model, jsonb_object_agg(status, n) AS runs_by_status
      FROM (SELECT bucket, user_id, provider, model, status, count(*) AS n FROM deltas WHERE status IS NOT NULL
            GROUP BY bucket, user_id, provider, model, status) x
      GROUP BY bucket, user_id, provider, model
    )
    SELECT s.bucket, s.user_id, s.provider, s.model, s.input_tokens, s.cache_read_tokens, s.cache_write_tokens, s.output_tokens,
      s.reasoning_tokens, s.cost, s.model_calls, s.runs_total, coalesce(st.runs_by_status, '{}'::jsonb), s.errors,
      s.latency_sum_ms, s.latency_count, s.latency_buckets, now()
    FROM sums s LEFT JOIN statuses st USING (bucket, user_id, provider, model)`,
  );
};

const countOf = async (pool: DatabasePool, table: string): Promise<number> =>
  pool.oneFirst(sql.type(CountRow)`SELECT count(*)::int8 AS n FROM ${sql.identifier([table])}`);

/**
 * Seeds `options.messages` messages' worth of turns into an empty, migrated database
 * (PostgreSQL), then the rollups of those runs, then ANALYZE.
 */
export const seedAnalytics = async (pool: DatabasePool, options: SeedOptions): Promise<SeedReport> => {
  const started = performance.now();
  const turns = Math.ceil(options.messages / (2 - NO_REPLY_SHARE));
  const conversations = Math.max(1, Math.round(turns / MEAN_TURNS));
  await pool.connect(async (connection) => {
    await setup(connection, options);
    for (let from = 0; from < conversations; from += options.batchConversations) {
      const to = Math.min(conversations, from + options.batchConversations);
      const batchStart = performance.now();
      await connection.transaction(async (tx) => {
        await tx.query(sql.unsafe`SET LOCAL synchronous_commit = off`);
        await seedBatch(tx as unknown as DatabasePoolConnection, options, from, to);
      });
      options.log(
        `seed: conversations ${to}/${conversations} (${((performance.now() - batchStart) / 1000).toFixed(1)} s batch, ${((performance.now() - started) / 1000).toFixed(0)} s total)`,
      );
    }
    await q(
      connection,
      sql.unsafe`
      UPDATE users u SET total_tokens = s.tokens, total_cost = s.cost
      FROM (SELECT c.user_id, sum(m.total_tokens) AS tokens, coalesce(sum(m.cost), 0) AS cost
            FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE m.role = 'assistant' GROUP BY c.user_id) s
      WHERE s.user_id = u.id`,
    );
    options.log('seed: rollups from the seeded runs');
    await seedRollups(connection);
    // The same rows summed over users, as applyRollups upserts them (migration 0004).
    await q(
      connection,
      sql.unsafe`
      INSERT INTO analytics_hourly_totals (bucket_start, provider, model, input_tokens, cache_read_tokens, cache_write_tokens,
        output_tokens, reasoning_tokens, cost, model_calls, runs_total, runs_by_status, errors, latency_sum_ms, latency_count,
        latency_buckets, updated_at)
      SELECT s.bucket_start, s.provider, s.model, s.input_tokens, s.cache_read_tokens, s.cache_write_tokens, s.output_tokens,
        s.reasoning_tokens, s.cost, s.model_calls, s.runs_total, coalesce(st.runs_by_status, '{}'::jsonb), s.errors,
        s.latency_sum_ms, s.latency_count, lb.latency_buckets, now()
      FROM (
        SELECT bucket_start, provider, model, sum(input_tokens) AS input_tokens, sum(cache_read_tokens) AS cache_read_tokens,
          sum(cache_write_tokens) AS cache_write_tokens, sum(output_tokens) AS output_tokens, sum(reasoning_tokens) AS reasoning_tokens,
          sum(cost) AS cost, sum(model_calls) AS model_calls, sum(runs_total) AS runs_total, sum(errors) AS errors,
          sum(latency_sum_ms) AS latency_sum_ms, sum(latency_count) AS latency_count
        FROM analytics_hourly GROUP BY 1, 2, 3
      ) AS s
      LEFT JOIN (
        SELECT bucket_start, provider, model, jsonb_object_agg(key, n) AS runs_by_status
        FROM (SELECT h.bucket_start, h.provider, h.model, e.key, sum(e.value::int8) AS n
              FROM analytics_hourly h CROSS JOIN LATERAL jsonb_each_text(h.runs_by_status) e GROUP BY 1, 2, 3, 4) AS x
        GROUP BY 1, 2, 3
      ) AS st USING (bucket_start, provider, model)
      JOIN (
        SELECT bucket_start, provider, model, jsonb_build_array(${sql.join(
          Array.from({ length: 10 }, (_, index) => sql.fragment`sum((latency_buckets ->> ${index}::int)::int8)`),
          sql.fragment`, `,
        )}) AS latency_buckets
        FROM analytics_hourly GROUP BY 1, 2, 3
      ) AS lb USING (bucket_start, provider, model)`,
    );
    options.log('seed: ANALYZE');
    await q(connection, sql.unsafe`ANALYZE`);
  });
  return {
    conversations: await countOf(pool, 'conversations'),
    runs: await countOf(pool, 'workflow_runs'),
    messages: await countOf(pool, 'messages'),
    modelCalls: await countOf(pool, 'model_calls'),
    toolCalls: await countOf(pool, 'tool_calls'),
    events: await countOf(pool, 'events'),
    rollupRows: await countOf(pool, 'analytics_hourly'),
    seconds: (performance.now() - started) / 1000,
  };
};
