import { parseArgs } from 'node:util';
import autocannon, { type AutocannonResult } from 'autocannon';
import { sql } from 'slonik';
import {
  DEFAULT_ADMIN_URL,
  backendCpuDelta,
  createBenchDatabase,
  databaseBackendCpu,
  describeMachine,
  loadAverage,
  log,
  mismatchedConversations,
  nonNegativeNumber,
  processCpuSeconds,
  positiveInt,
  registerUser,
  round,
  runMain,
  startServer,
  waitForNoActiveRuns,
  onCleanup,
  sleep,
  type BenchDatabase,
  type BenchUser,
  type ServerProcess,
} from './http-support.js';
import { runBaselineComparison } from './http-baseline.js';
import { openWalReader, snapshot, waitForStableStats, xidDelta, type WalCount, type WalReader } from './http-transactions.js';

/**
 * HTTP chat throughput (issue 7, target 2): autocannon against the real server
 * (`node --import tsx src/server.ts`, its own process) on a fresh PostgreSQL database,
 * local model with zero latency (`--latency-ms`: a delay before each streamed token),
 * POST /api/v1/workflows/execute/chat with a new conversation per request. Reports
 * requests/s, latency percentiles, CPU per request (server, database backends), non-2xx answers,
 * and the database transactions per run during the measured window: write
 * transactions (WAL of the bench database when readable; the server-wide xid counter
 * otherwise) and all committed ones (pg_stat_database). A second scenario asks for the
 * calculator (`enable_tools`: two model calls and a tool call per run) to show that
 * the writes per run do not grow with the model calls.
 * Target: write transactions per run <= 2 in both scenarios, no non-2xx answer.
 *
 * `--baseline` (issue 14) instead compares the service with a hand-written durable
 * baseline in interleaved rounds (`--rounds`): see bench/http-baseline.ts.
 */

const TARGET_WRITES_PER_RUN = 2;
const HEARTBEAT_INTERVAL_S = 15;

const { values: flags } = parseArgs({
  options: {
    'database-url': { type: 'string', default: DEFAULT_ADMIN_URL },
    connections: { type: 'string', default: '50' },
    duration: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '10' },
    'pool-size': { type: 'string', default: '10' },
    // The local model's delay before each streamed token: runs that span several of the
    // run writer's flush intervals (0: a run ends before its progress would be flushed).
    'latency-ms': { type: 'string', default: '0' },
    scenarios: { type: 'string', default: 'chat,tools' },
    // Another checkout's server (e.g. the code before a change) under this same harness.
    'server-root': { type: 'string' },
    // RUN_FLUSH_INTERVAL_MS of the server (its default when not given).
    'flush-interval-ms': { type: 'string' },
    // Backends report pg_stat_database lazily: up to 10 s after they go idle (PGSTAT_IDLE_INTERVAL).
    'stats-quiet-ms': { type: 'string' },
    quick: { type: 'boolean', default: false },
    // Issue 14: this service against the hand-written baseline (bench/http-baseline.ts), interleaved rounds.
    baseline: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '3' },
  },
});

const connections = flags.quick ? 10 : positiveInt('connections', flags.connections);
const durationS = flags.quick ? 4 : positiveInt('duration', flags.duration);
const warmupS = flags.quick ? 2 : positiveInt('warmup', flags.warmup);
const poolSize = positiveInt('pool-size', flags['pool-size']);
const latencyMs = nonNegativeNumber('latency-ms', flags['latency-ms']);
const flushEnv: Record<string, string> =
  flags['flush-interval-ms'] === undefined
    ? {}
    : { RUN_FLUSH_INTERVAL_MS: String(positiveInt('flush-interval-ms', flags['flush-interval-ms'])) };
const statsQuietMs = positiveInt('stats-quiet-ms', flags['stats-quiet-ms'] ?? (flags.quick ? '2000' : '11000'));
const scenarioNames = (flags.scenarios ?? '')
  .split(',')
  .map((name) => name.trim())
  .filter((name) => name !== '');

type Scenario = { readonly name: 'chat' | 'tools'; readonly body: Record<string, unknown> };
const SCENARIOS: Record<string, Scenario> = {
  chat: { name: 'chat', body: { message: 'Hello there, how are you today?' } },
  // The local model answers arithmetic with a calculator call, then a reply from its result.
  tools: { name: 'tools', body: { message: 'What is 1234 * 5678?', enable_tools: true } },
};
for (const name of scenarioNames) {
  if (SCENARIOS[name] === undefined) throw new Error(`--scenarios: unknown scenario ${name} (chat, tools)`);
}

type Counts = { runs: number; completed: number; modelCalls: number; toolCalls: number; messages: number };

const countRows = async (bench: BenchDatabase): Promise<Counts> => {
  const row = (await bench.db.pool.one(sql.unsafe`
    SELECT (SELECT count(*) FROM workflow_runs)::int AS runs,
           (SELECT count(*) FROM workflow_runs WHERE status = 'completed')::int AS completed,
           (SELECT count(*) FROM model_calls)::int AS model_calls,
           (SELECT count(*) FROM tool_calls)::int AS tool_calls,
           (SELECT count(*) FROM messages)::int AS messages`)) as {
    runs: number;
    completed: number;
    model_calls: number;
    tool_calls: number;
    messages: number;
  };
  return { runs: row.runs, completed: row.completed, modelCalls: row.model_calls, toolCalls: row.tool_calls, messages: row.messages };
};

/**
 * Waits until everything the load sent has finished: no run in flight on the server,
 * none `running` in the database and no new run row for half a second (a request cut
 * off by autocannon may still be on its way to beginTurn). Returns how many statements
 * it ran on the bench database (each one transaction there).
 */
const waitForQuiet = async (bench: BenchDatabase, server: ServerProcess, user: BenchUser): Promise<number> => {
  let statements = await waitForNoActiveRuns(server.baseUrl, user);
  let lastRuns = -1;
  let quietSince = Date.now();
  for (;;) {
    await sleep(250);
    statements += await waitForNoActiveRuns(server.baseUrl, user);
    const row = (await bench.db.pool.one(sql.unsafe`
      SELECT count(*)::int AS runs, count(*) FILTER (WHERE status = 'running')::int AS running FROM workflow_runs`)) as {
      runs: number;
      running: number;
    };
    statements += 1;
    if (Date.now() - quietSince > 10_000) {
      log(`waiting for the load to settle: ${row.runs} runs, ${row.running} running`);
    }
    if (row.running > 0 || row.runs !== lastRuns) {
      lastRuns = row.runs;
      quietSince = Date.now();
    } else if (Date.now() - quietSince >= 500) {
      return statements;
    }
  }
};

const cannon = (server: ServerProcess, user: BenchUser, scenario: Scenario, seconds: number): Promise<AutocannonResult> =>
  Promise.resolve(
    autocannon({
      url: `${server.baseUrl}/api/v1/workflows/execute/chat`,
      method: 'POST',
      connections,
      duration: seconds,
      timeout: 30,
      headers: { authorization: user.authorization, 'content-type': 'application/json' },
      body: JSON.stringify(scenario.body),
    }),
  );

type ScenarioResult = {
  readonly scenario: string;
  readonly requests_per_s: number;
  readonly requests_2xx: number;
  readonly latency_ms: { p50: number; p90: number; p99: number; max: number };
  readonly non_2xx: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly runs: number;
  readonly runs_completed: number;
  readonly model_calls_per_run: number;
  readonly tool_calls_per_run: number;
  /** Exact for this database (WAL), null when the WAL was not readable. */
  readonly wal_write_transactions: number | null;
  readonly wal_cluster_write_transactions: number | null;
  readonly xid_write_transactions: number;
  readonly heartbeat_transactions_estimate: number;
  readonly write_transactions_per_run: number;
  readonly write_method: 'wal' | 'xid';
  readonly committed_transactions: number;
  readonly committed_transactions_per_run: number;
  readonly other_databases_wrote: boolean | null;
  readonly load_average: { before: number; after: number };
  readonly server_cpu_cores: number;
  /** The server process's CPU (user + system) per 2xx answer in the measured window. */
  readonly server_cpu_ms_per_request: number;
  /** The bench database's PostgreSQL backends (not the WAL writer, checkpointer, …); NaN when /proc is not readable. */
  readonly database_cpu_cores: number;
  readonly database_cpu_ms_per_request: number;
};

const runScenario = async (
  bench: BenchDatabase,
  server: ServerProcess,
  user: BenchUser,
  wal: WalReader,
  scenario: Scenario,
): Promise<ScenarioResult> => {
  log(`[${scenario.name}] warm-up: ${connections} connections, ${warmupS} s`);
  const warm = await cannon(server, user, scenario, warmupS);
  log(`[${scenario.name}] warm-up: ${round(warm.requests.average, 1)} req/s, non-2xx ${warm.non2xx}, errors ${warm.errors}`);
  await waitForQuiet(bench, server, user);
  const rowsBefore = await countRows(bench);
  await waitForStableStats(bench.admin, bench.name, statsQuietMs, statsQuietMs + 20_000);
  const before = await snapshot(bench.admin, bench.name);

  log(`[${scenario.name}] measuring: ${connections} connections, ${durationS} s`);
  const started = Date.now();
  const loadBefore = loadAverage();
  const cpuBefore = processCpuSeconds(server.child.pid);
  const databaseCpuBefore = await databaseBackendCpu(bench.admin, bench.name);
  const result = await cannon(server, user, scenario, durationS);
  const serverCpuSeconds = processCpuSeconds(server.child.pid) - cpuBefore;
  const databaseCpuSeconds = backendCpuDelta(databaseCpuBefore, await databaseBackendCpu(bench.admin, bench.name));
  const cannonS = (Date.now() - started) / 1000;
  const serverCpu = round(serverCpuSeconds / cannonS, 2);
  const perRequestMs = (seconds: number) => (result['2xx'] === 0 ? Number.NaN : round((seconds * 1000) / result['2xx'], 2));
  const loadAfter = loadAverage();
  // Requests cut off at the end still finish (and commit) on the server.
  const probes = await waitForQuiet(bench, server, user);
  const windowS = (Date.now() - started) / 1000;
  await waitForStableStats(bench.admin, bench.name, statsQuietMs, statsQuietMs + 20_000);
  const after = await snapshot(bench.admin, bench.name);
  const rowsAfter = await countRows(bench);

  let walCount: WalCount | null = null;
  if (wal.available) {
    log(`[${scenario.name}] reading the window's WAL (${before.lsn} → ${after.lsn})`);
    walCount = await wal.count(before.lsn, after.lsn);
  }
  const runs = rowsAfter.runs - rowsBefore.runs;
  const xidWrites = xidDelta(before, after);
  const heartbeats = Math.floor(windowS / HEARTBEAT_INTERVAL_S);
  const writes = walCount?.benchWrites ?? xidWrites;
  // The bench's own probes: each /executions/active request is one read-only transaction
  // (the token's user lookup), each runs count one.
  const committed = after.xactCommit - before.xactCommit - probes;
  const per = (value: number) => (runs === 0 ? Number.NaN : round(value / runs, 3));
  const figures: ScenarioResult = {
    scenario: scenario.name,
    requests_per_s: round(result.requests.average, 1),
    requests_2xx: result['2xx'],
    latency_ms: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
    non_2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    runs,
    runs_completed: rowsAfter.completed - rowsBefore.completed,
    model_calls_per_run: per(rowsAfter.modelCalls - rowsBefore.modelCalls),
    tool_calls_per_run: per(rowsAfter.toolCalls - rowsBefore.toolCalls),
    wal_write_transactions: walCount?.benchWrites ?? null,
    wal_cluster_write_transactions: walCount?.clusterWrites ?? null,
    xid_write_transactions: xidWrites,
    heartbeat_transactions_estimate: heartbeats,
    write_transactions_per_run: per(writes),
    write_method: walCount === null ? 'xid' : 'wal',
    committed_transactions: committed,
    committed_transactions_per_run: per(committed),
    // The xid counter is server-wide: more xids than this database's writes (plus the
    // bench's own pg_current_xact_id) means another database wrote meanwhile.
    other_databases_wrote: walCount === null ? null : xidWrites > walCount.benchWrites + 1,
    load_average: { before: loadBefore, after: loadAfter },
    server_cpu_cores: serverCpu,
    server_cpu_ms_per_request: perRequestMs(serverCpuSeconds),
    database_cpu_cores: round(databaseCpuSeconds / cannonS, 2),
    database_cpu_ms_per_request: perRequestMs(databaseCpuSeconds),
  };
  log(
    `[${scenario.name}] ${figures.requests_per_s} req/s, p50 ${figures.latency_ms.p50} ms, p99 ${figures.latency_ms.p99} ms, ` +
      `${runs} runs, ${figures.write_transactions_per_run} write tx/run (${figures.write_method}), ` +
      `${figures.committed_transactions_per_run} committed tx/run, ${figures.model_calls_per_run} model calls/run, ` +
      `CPU per request ${figures.server_cpu_ms_per_request} ms server, ${figures.database_cpu_ms_per_request} ms database`,
  );
  return figures;
};

runMain(async () => {
  if (flags.baseline) {
    return runBaselineComparison({
      adminUrl: flags['database-url'] ?? DEFAULT_ADMIN_URL,
      connections,
      warmupS,
      durationS: flags.quick ? durationS : positiveInt('duration', flags.duration),
      rounds: flags.quick ? 1 : positiveInt('rounds', flags.rounds),
      poolSize,
      latencyMs,
      scenarios: scenarioNames.map((name) => SCENARIOS[name]!),
      serverRoot: flags['server-root'],
      env: flushEnv,
    });
  }
  const bench = await createBenchDatabase(flags['database-url'] ?? DEFAULT_ADMIN_URL, 'http');
  const machine = describeMachine(bench.version);
  log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}`);
  log(`database: ${bench.name} on ${machine.database}`);
  const server = await startServer(
    {
      DATABASE_URL: bench.url,
      DATABASE_POOL_SIZE: String(poolSize),
      LOCAL_MODEL_LATENCY_MS: String(latencyMs),
      ...flushEnv,
    },
    undefined,
    flags['server-root'],
  );
  log(
    `server: ${server.baseUrl} (pid ${server.child.pid}), pool size ${poolSize}${flags['server-root'] === undefined ? '' : `, code from ${flags['server-root']}`}`,
  );
  const user = await registerUser(server.baseUrl);
  const wal = await openWalReader(bench.admin, bench.oid, `chatter_bench_${process.pid}`);
  onCleanup(() => wal.release());
  log(wal.available ? 'write transactions: counted in the WAL of the bench database' : `write transactions: xid counter (${wal.reason})`);

  const results: ScenarioResult[] = [];
  for (const name of scenarioNames) {
    const scenario = SCENARIOS[name];
    if (scenario !== undefined) results.push(await runScenario(bench, server, user, wal, scenario));
  }
  const sanity = await mismatchedConversations(bench);
  await server.stop();

  console.log('');
  console.log('HTTP chat throughput (POST /api/v1/workflows/execute/chat, new conversation per request)');
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}`);
  console.log(`database: ${machine.database}`);
  console.log(
    `load: ${connections} connections, ${warmupS} s warm-up, ${durationS} s measured, server pool ${poolSize}, local model ${latencyMs} ms per token${flushEnv['RUN_FLUSH_INTERVAL_MS'] === undefined ? '' : `, RUN_FLUSH_INTERVAL_MS ${flushEnv['RUN_FLUSH_INTERVAL_MS']}`}`,
  );
  for (const r of results) {
    console.log(
      `- ${r.scenario}: ${r.requests_per_s} req/s; latency p50 ${r.latency_ms.p50} ms, p90 ${r.latency_ms.p90} ms, p99 ${r.latency_ms.p99} ms, max ${r.latency_ms.max} ms`,
    );
    console.log(
      `    ${r.requests_2xx} 2xx, ${r.non_2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts; ${r.runs} runs (${r.runs_completed} completed), ${r.model_calls_per_run} model calls and ${r.tool_calls_per_run} tool calls per run`,
    );
    console.log(
      `    write transactions: ${r.write_transactions_per_run} per run (${r.write_method === 'wal' ? `${r.wal_write_transactions} in this database's WAL` : `${r.xid_write_transactions} by the server-wide xid counter`}` +
        `, incl. ~${r.heartbeat_transactions_estimate} heartbeat updates); xid counter ${r.xid_write_transactions}` +
        (r.other_databases_wrote === true ? ' (other databases wrote meanwhile: the xid figure is inflated)' : ''),
    );
    console.log(
      `    machine load: 1-min load average ${r.load_average.before} → ${r.load_average.after} on ${machine.cores} cores; the server process used ${r.server_cpu_cores} cores ` +
        `(${r.server_cpu_ms_per_request} ms CPU per request), the bench database's backends ${r.database_cpu_cores} cores (${r.database_cpu_ms_per_request} ms per request)`,
    );
    console.log(
      `    committed transactions (pg_stat_database, read-only ones included: token lookups, budget/history reads, reply read-back): ${r.committed_transactions_per_run} per run` +
        (statsQuietMs < 11_000
          ? ` (approximate: stats waited for only ${statsQuietMs} ms of quiet, backends may report up to 10 s late)`
          : ''),
    );
  }
  console.log(`sanity: ${sanity.checked} conversations checked, ${sanity.mismatched} whose totals differ from their messages' sums`);

  const problems: string[] = [];
  for (const r of results) {
    if (!(r.write_transactions_per_run <= TARGET_WRITES_PER_RUN)) {
      problems.push(
        `${r.scenario}: ${r.write_transactions_per_run} write transactions per run, target MISSED by ${round(r.write_transactions_per_run - TARGET_WRITES_PER_RUN, 3)}`,
      );
    }
    if (r.non_2xx > 0 || r.errors > 0) problems.push(`${r.scenario}: ${r.non_2xx} non-2xx answers, ${r.errors} errors`);
    if (r.runs === 0) problems.push(`${r.scenario}: no run completed`);
  }
  const tools = results.find((r) => r.scenario === 'tools');
  if (tools !== undefined && !(tools.model_calls_per_run > 1))
    problems.push(`tools: ${tools.model_calls_per_run} model calls per run (expected several)`);
  if (sanity.mismatched > 0) problems.push(`${sanity.mismatched} conversations with totals that differ from their messages`);
  const met = problems.length === 0;
  console.log(
    `target: <= ${TARGET_WRITES_PER_RUN} write transactions per run whatever the model calls, no non-2xx: ${met ? 'target met' : problems.join('; ')}`,
  );
  return {
    met,
    summary: {
      benchmark: 'http',
      machine,
      connections,
      warmup_s: warmupS,
      duration_s: durationS,
      pool_size: poolSize,
      local_model_latency_ms: latencyMs,
      run_flush_interval_ms: flushEnv['RUN_FLUSH_INTERVAL_MS'] ?? null,
      server_root: flags['server-root'] ?? null,
      stats_quiet_ms: statsQuietMs,
      scenarios: results,
      sanity,
      target_write_transactions_per_run: TARGET_WRITES_PER_RUN,
      target_met: met,
    },
  };
});
