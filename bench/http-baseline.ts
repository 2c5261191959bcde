import { randomBytes } from 'node:crypto';
import autocannon, { type AutocannonResult } from 'autocannon';
import { sql } from 'slonik';
import { ulid } from 'ulid';
import { createAccessTokens } from '../src/auth/access-tokens.js';
import { hashToken } from '../src/auth/opaque-tokens.js';
import { loadMigrations, migrate } from '../src/db/migrations.js';
import {
  backendCpuDelta,
  createBenchDatabase,
  databaseBackendCpu,
  describeMachine,
  loadAverage,
  log,
  median,
  mismatchedConversations,
  onCleanup,
  processCpuSeconds,
  registerUser,
  round,
  sleep,
  startServer,
  type BenchDatabase,
  type Machine,
  type ServerProcess,
} from './http-support.js';
import { startStatementCounter, statementDelta, type StatementCounter, type StatementCounts } from './pg-statement-counter.js';

/**
 * `npm run bench:http -- --baseline` (issue 14, targets 1 and 2): this service and the
 * hand-written durable baseline (bench/baseline-server.ts) under the same load, in
 * rounds that alternate between them (service first in odd rounds, baseline first in
 * even ones, so drift in the machine's load falls on both), each on its own database of
 * the same PostgreSQL server, both connecting through a statement counter
 * (bench/pg-statement-counter.ts). Per round and server: requests/s, p50/p99, the server
 * process's CPU per turn (/proc utime + stime over the load window ÷ 2xx answers), the
 * PostgreSQL CPU per turn (the CPU of the client backends connected to that server's
 * database, /proc, same window ÷ 2xx), statements per turn on the request path and in
 * group-commit batches (counted apart), over the window until the last turn is written
 * ÷ conversations created (one per turn). Ratios are taken per round (service ÷ the
 * baseline of the same round) and their median reported.
 *
 * Targets: service requests/s >= 0.8 × baseline, service CPU per turn <= 1.25 ×
 * baseline (chat and tools), <= 4 request-path statements per plain chat turn.
 */

export const TARGET_THROUGHPUT_RATIO = 0.8;
export const TARGET_CPU_RATIO = 1.25;
export const TARGET_STATEMENTS_PER_CHAT_TURN = 4;

export type BaselineOptions = {
  readonly adminUrl: string;
  readonly connections: number;
  readonly warmupS: number;
  readonly durationS: number;
  readonly rounds: number;
  readonly poolSize: number;
  readonly latencyMs: number;
  readonly scenarios: readonly {
    readonly name: string;
    readonly body: Record<string, unknown>;
  }[];
  readonly serverRoot: string | undefined;
  readonly env: Record<string, string>;
};

type Side = 'service' | 'baseline';

type Target = {
  readonly side: Side;
  readonly bench: BenchDatabase;
  readonly server: ServerProcess;
  readonly counter: StatementCounter;
  readonly authorization: string;
};

export type RoundFigures = {
  readonly side: Side;
  readonly scenario: string;
  readonly round: number;
  readonly requests_per_s: number;
  readonly requests_2xx: number;
  readonly non_2xx: number;
  readonly errors: number;
  readonly latency_ms: {
    readonly p50: number;
    readonly p90: number;
    readonly p99: number;
    readonly max: number;
  };
  readonly turns_written: number;
  readonly service_cpu_ms_per_turn: number;
  readonly postgres_cpu_ms_per_turn: number;
  readonly statements_per_turn: number;
  readonly batch_statements_per_turn: number;
  readonly batches: number;
  readonly load_average: { readonly before: number; readonly after: number };
  /** Request-path statements by text, per turn (the largest first). */
  readonly statements: readonly {
    readonly sql: string;
    readonly per_turn: number;
  }[];
};

const rowCounts = async (bench: BenchDatabase): Promise<{ conversations: number; running: number }> =>
  (await bench.db.pool.one(sql.unsafe`
    SELECT (SELECT count(*) FROM conversations)::int AS conversations,
           (SELECT count(*) FROM workflow_runs WHERE status = 'running')::int AS running`)) as {
    conversations: number;
    running: number;
  };

/**
 * Waits until the server has written every turn it took: no run `running` and the
 * conversation count still for a second. Read on the bench's own connection (not
 * through the counter), so waiting adds no statement to the server's figures.
 */
const settle = async (bench: BenchDatabase): Promise<number> => {
  let last = -1;
  let since = Date.now();
  const deadline = Date.now() + 120_000;
  for (;;) {
    const counts = await rowCounts(bench);
    if (counts.running > 0 || counts.conversations !== last) {
      last = counts.conversations;
      since = Date.now();
    } else if (Date.now() - since >= 1_000) {
      return counts.conversations;
    }
    if (Date.now() > deadline) throw new Error(`${bench.name}: turns still being written after 120 s`);
    await sleep(200);
  }
};

const cannon = (target: Target, body: Record<string, unknown>, connections: number, seconds: number): Promise<AutocannonResult> =>
  Promise.resolve(
    autocannon({
      url: `${target.server.baseUrl}/api/v1/workflows/execute/chat`,
      method: 'POST',
      connections,
      duration: seconds,
      timeout: 30,
      headers: {
        authorization: target.authorization,
        'content-type': 'application/json',
      },
      body: JSON.stringify(body),
    }),
  );

const measure = async (
  target: Target,
  scenario: BaselineOptions['scenarios'][number],
  roundIndex: number,
  options: BaselineOptions,
): Promise<RoundFigures> => {
  const conversationsBefore = await settle(target.bench);
  const statementsBefore: StatementCounts = target.counter.counts();
  const loadBefore = loadAverage();
  const cpuBefore = processCpuSeconds(target.server.child.pid);
  const postgresBefore = await databaseBackendCpu(target.bench.admin, target.bench.name);
  const result = await cannon(target, scenario.body, options.connections, options.durationS);
  const cpuSeconds = processCpuSeconds(target.server.child.pid) - cpuBefore;
  const postgresSeconds = backendCpuDelta(postgresBefore, await databaseBackendCpu(target.bench.admin, target.bench.name));
  const loadAfter = loadAverage();
  const conversationsAfter = await settle(target.bench);
  const statements = statementDelta(statementsBefore, target.counter.counts());
  const turns = conversationsAfter - conversationsBefore;
  const perTurn = (value: number, of: number) => (of === 0 ? Number.NaN : round(value / of, 3));
  const figures: RoundFigures = {
    side: target.side,
    scenario: scenario.name,
    round: roundIndex,
    requests_per_s: round(result.requests.average, 1),
    requests_2xx: result['2xx'],
    non_2xx: result.non2xx,
    errors: result.errors,
    latency_ms: {
      p50: result.latency.p50,
      p90: result.latency.p90,
      p99: result.latency.p99,
      max: result.latency.max,
    },
    turns_written: turns,
    service_cpu_ms_per_turn: perTurn(cpuSeconds * 1000, result['2xx']),
    postgres_cpu_ms_per_turn: perTurn(postgresSeconds * 1000, result['2xx']),
    statements_per_turn: perTurn(statements.requestPath, turns),
    batch_statements_per_turn: perTurn(statements.batch, turns),
    batches: statements.batches,
    load_average: { before: loadBefore, after: loadAfter },
    statements: [...statements.byText]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)
      .map(([text, count]) => ({ sql: text, per_turn: perTurn(count, turns) })),
  };
  log(
    `[${scenario.name} ${roundIndex} ${target.side}] ${figures.requests_per_s} req/s, p50 ${figures.latency_ms.p50} ms, p99 ${figures.latency_ms.p99} ms; ` +
      `CPU per turn ${figures.service_cpu_ms_per_turn} ms server, ${figures.postgres_cpu_ms_per_turn} ms PostgreSQL; ` +
      `${figures.statements_per_turn} statements per turn (+ ${figures.batch_statements_per_turn} in ${figures.batches} batches); load ${loadBefore} → ${loadAfter}`,
  );
  return figures;
};

/** A user of the baseline's database with a live session, and an access token the baseline accepts. */
const baselineUser = async (bench: BenchDatabase, jwtSecret: string): Promise<string> => {
  const userId = ulid();
  const sessionId = ulid();
  await bench.db.pool.query(sql.unsafe`
    INSERT INTO users (id, email, username, password_hash) VALUES (${userId}, ${`${userId}@example.com`}, ${`baseline_${userId}`}, 'x')`);
  await bench.db.pool.query(sql.unsafe`
    INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at)
    VALUES (${sessionId}, ${userId}, ${sessionId}, ${hashToken(randomBytes(32).toString('hex'))}, now() + interval '1 day')`);
  const { token } = createAccessTokens({
    secret: jwtSecret,
    ttlSeconds: 24 * 3600,
  }).sign({ userId, sessionId });
  return `Bearer ${token}`;
};

const throughCounter = (url: string, port: number): string => {
  const parsed = new URL(url);
  parsed.hostname = '127.0.0.1';
  parsed.port = String(port);
  return parsed.toString();
};

export type ScenarioComparison = {
  readonly scenario: string;
  readonly service: Readonly<Record<string, number>>;
  readonly baseline: Readonly<Record<string, number>>;
  /** Medians of the per-round ratios service ÷ baseline. */
  readonly ratios: {
    readonly requests_per_s: number;
    readonly service_cpu_per_turn: number;
    readonly postgres_cpu_per_turn: number;
    readonly statements_per_turn: number;
  };
};

const FIGURES = [
  'requests_per_s',
  'service_cpu_ms_per_turn',
  'postgres_cpu_ms_per_turn',
  'statements_per_turn',
  'batch_statements_per_turn',
] as const;

const medians = (rounds: readonly RoundFigures[]): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const key of FIGURES) out[key] = round(median(rounds.map((r) => r[key])), 3);
  out['p50_ms'] = median(rounds.map((r) => r.latency_ms.p50));
  out['p99_ms'] = median(rounds.map((r) => r.latency_ms.p99));
  return out;
};

const compare = (scenario: string, rounds: readonly RoundFigures[]): ScenarioComparison => {
  const service = rounds.filter((r) => r.side === 'service');
  const baseline = rounds.filter((r) => r.side === 'baseline');
  const ratio = (key: (typeof FIGURES)[number]) =>
    round(median(service.map((s) => s[key] / (baseline.find((b) => b.round === s.round)?.[key] ?? Number.NaN))), 3);
  return {
    scenario,
    service: medians(service),
    baseline: medians(baseline),
    ratios: {
      requests_per_s: ratio('requests_per_s'),
      service_cpu_per_turn: ratio('service_cpu_ms_per_turn'),
      postgres_cpu_per_turn: ratio('postgres_cpu_ms_per_turn'),
      statements_per_turn: ratio('statements_per_turn'),
    },
  };
};

const printStatements = (label: string, rounds: readonly RoundFigures[]): void => {
  const last = rounds.at(-1);
  if (last === undefined) return;
  console.log(`    ${label} request-path statements per turn (round ${last.round}):`);
  for (const s of last.statements) console.log(`      ${s.per_turn.toFixed(3).padStart(7)}  ${s.sql}`);
};

/** Runs the comparison; returns whether every target is met and the summary line. */
export const runBaselineComparison = async (options: BaselineOptions): Promise<{ met: boolean; summary: object }> => {
  const adminPort = Number(new URL(options.adminUrl).port || 5432);
  const jwtSecret = randomBytes(48).toString('base64url');

  const serviceDb = await createBenchDatabase(options.adminUrl, 'http');
  const baselineDb = await createBenchDatabase(options.adminUrl, 'baseline');
  const machine: Machine = describeMachine(serviceDb.version);
  log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}; database: ${machine.database}`);
  // The baseline's database gets the service's schema: the same tables and indexes to write.
  await migrate(baselineDb.db.pool, await loadMigrations());

  const counters = await Promise.all([
    startStatementCounter({ host: '127.0.0.1', port: adminPort }),
    startStatementCounter({ host: '127.0.0.1', port: adminPort }),
  ]);
  for (const counter of counters) onCleanup(() => counter.close());
  const [serviceCounter, baselineCounter] = counters as [StatementCounter, StatementCounter];

  const service = await startServer(
    {
      DATABASE_URL: throughCounter(serviceDb.url, serviceCounter.port),
      DATABASE_POOL_SIZE: String(options.poolSize),
      LOCAL_MODEL_LATENCY_MS: String(options.latencyMs),
      // The default level: request logging is part of what is measured.
      LOG_LEVEL: 'info',
      ...options.env,
    },
    undefined,
    options.serverRoot,
  );
  const baseline = await startServer({}, undefined, undefined, (port) => [
    'bench/baseline-server.ts',
    '--database-url',
    throughCounter(baselineDb.url, baselineCounter.port),
    '--port',
    String(port),
    '--jwt-secret',
    jwtSecret,
    '--pool-size',
    String(options.poolSize),
    '--latency-ms',
    String(options.latencyMs),
  ]);
  log(`service: ${service.baseUrl} (pid ${service.child.pid}); baseline: ${baseline.baseUrl} (pid ${baseline.child.pid})`);
  const serviceUser = await registerUser(service.baseUrl);
  const targets: Record<Side, Target> = {
    service: {
      side: 'service',
      bench: serviceDb,
      server: service,
      counter: serviceCounter,
      authorization: serviceUser.authorization,
    },
    baseline: {
      side: 'baseline',
      bench: baselineDb,
      server: baseline,
      counter: baselineCounter,
      authorization: await baselineUser(baselineDb, jwtSecret),
    },
  };

  const all: RoundFigures[] = [];
  const comparisons: ScenarioComparison[] = [];
  for (const scenario of options.scenarios) {
    for (const side of ['service', 'baseline'] as const) {
      log(`[${scenario.name}] warm-up ${side}: ${options.connections} connections, ${options.warmupS} s`);
      await cannon(targets[side], scenario.body, options.connections, options.warmupS);
      await settle(targets[side].bench);
    }
    const rounds: RoundFigures[] = [];
    for (let index = 1; index <= options.rounds; index += 1) {
      const order: readonly Side[] = index % 2 === 1 ? ['service', 'baseline'] : ['baseline', 'service'];
      for (const side of order) rounds.push(await measure(targets[side], scenario, index, options));
    }
    all.push(...rounds);
    comparisons.push(compare(scenario.name, rounds));
  }
  const sanity = {
    service: await mismatchedConversations(serviceDb),
    baseline: await mismatchedConversations(baselineDb),
  };
  await service.stop();
  await baseline.stop();

  console.log('');
  console.log('HTTP chat turn, this service against the hand-written durable baseline (bench/baseline-server.ts)');
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}`);
  console.log(`database: ${machine.database}`);
  console.log(
    `load: ${options.connections} connections, ${options.warmupS} s warm-up per server and scenario, ${options.rounds} interleaved rounds of ${options.durationS} s per server, ` +
      `pool ${options.poolSize}, local model ${options.latencyMs} ms per token; service at LOG_LEVEL=info with every feature on`,
  );
  const loads = all.flatMap((r) => [r.load_average.before, r.load_average.after]);
  console.log(`1-min load average during the rounds: ${Math.min(...loads)} – ${Math.max(...loads)} on ${machine.cores} cores`);
  const problems: string[] = [];
  for (const c of comparisons) {
    const s = c.service;
    const b = c.baseline;
    console.log(`- ${c.scenario} (medians of ${options.rounds} rounds; ratio = median of per-round service ÷ baseline):`);
    console.log(
      '    | server | req/s | p50 | p99 | service CPU / turn | PostgreSQL CPU / turn | statements / turn | batch statements / turn |',
    );
    for (const [label, f] of [
      ['baseline', b],
      ['service', s],
    ] as const) {
      console.log(
        `    | ${label} | ${f['requests_per_s']} | ${f['p50_ms']} ms | ${f['p99_ms']} ms | ${f['service_cpu_ms_per_turn']} ms | ${f['postgres_cpu_ms_per_turn']} ms | ${f['statements_per_turn']} | ${f['batch_statements_per_turn']} |`,
      );
    }
    console.log(
      `    | ratio | ${c.ratios.requests_per_s} | | | ${c.ratios.service_cpu_per_turn} | ${c.ratios.postgres_cpu_per_turn} | ${c.ratios.statements_per_turn} | |`,
    );
    const scenarioRounds = all.filter((r) => r.scenario === c.scenario);
    printStatements(
      'service',
      scenarioRounds.filter((r) => r.side === 'service'),
    );
    printStatements(
      'baseline',
      scenarioRounds.filter((r) => r.side === 'baseline'),
    );
    if (!(c.ratios.requests_per_s >= TARGET_THROUGHPUT_RATIO)) {
      problems.push(`${c.scenario}: req/s ratio ${c.ratios.requests_per_s} < ${TARGET_THROUGHPUT_RATIO}`);
    }
    if (!(c.ratios.service_cpu_per_turn <= TARGET_CPU_RATIO)) {
      problems.push(`${c.scenario}: CPU per turn ratio ${c.ratios.service_cpu_per_turn} > ${TARGET_CPU_RATIO}`);
    }
    if (c.scenario === 'chat' && !(Number(s['statements_per_turn']) <= TARGET_STATEMENTS_PER_CHAT_TURN)) {
      problems.push(`chat: ${s['statements_per_turn']} request-path statements per turn > ${TARGET_STATEMENTS_PER_CHAT_TURN}`);
    }
  }
  for (const r of all) {
    if (r.non_2xx > 0 || r.errors > 0) problems.push(`${r.scenario} round ${r.round} ${r.side}: ${r.non_2xx} non-2xx, ${r.errors} errors`);
  }
  for (const [side, s] of Object.entries(sanity)) {
    console.log(`sanity (${side}): ${s.checked} conversations checked, ${s.mismatched} whose totals differ from their messages' sums`);
    if (s.mismatched > 0) problems.push(`${side}: ${s.mismatched} conversations whose totals differ from their messages`);
  }
  const met = problems.length === 0;
  console.log(
    `targets: req/s >= ${TARGET_THROUGHPUT_RATIO} x baseline, CPU per turn <= ${TARGET_CPU_RATIO} x baseline, <= ${TARGET_STATEMENTS_PER_CHAT_TURN} statements per chat turn: ` +
      (met ? 'all met' : `MISSED: ${problems.join('; ')}`),
  );
  return {
    met,
    summary: {
      benchmark: 'http-baseline',
      machine,
      connections: options.connections,
      warmup_s: options.warmupS,
      duration_s: options.durationS,
      rounds: options.rounds,
      pool_size: options.poolSize,
      local_model_latency_ms: options.latencyMs,
      server_root: options.serverRoot ?? null,
      comparisons,
      round_figures: all.map(({ statements: _statements, ...figures }) => figures),
      sanity,
      targets: {
        throughput_ratio: TARGET_THROUGHPUT_RATIO,
        cpu_ratio: TARGET_CPU_RATIO,
        statements_per_chat_turn: TARGET_STATEMENTS_PER_CHAT_TURN,
      },
      target_met: met,
    },
  };
};
