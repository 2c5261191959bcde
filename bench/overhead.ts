import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { HumanMessage } from '@langchain/core/messages';
import { createGraph } from '../src/graphs/build-graph.js';
import { getTemplate } from '../src/graphs/templates.js';
import { ScriptedChatModel, type ScriptedTurn } from '../test/helpers/scripted-chat-model.js';
import type { RunRequest } from '../src/runtime/run-runtime.js';
import { createToolRegistry } from '../src/tools/tool-registry.js';
import {
  BENCH_PROMPT,
  BENCH_REPLY,
  BENCH_RESPONSE_MODEL,
  BENCH_USAGE,
  DEFAULT_ADMIN_URL,
  beginBenchTurn,
  createBenchStack,
  createOwners,
  describeMachine,
  median,
  round,
  createPhaseProfiler,
  runBench,
  runToDurable,
  type BenchStack,
  type Owner,
} from './runtime-stack.js';

/**
 * Runtime overhead (issue 7, target 1): the same scripted model and `chat` graph,
 * 50 concurrent workers, measured in one process: bare `graph.invoke` runs/s versus
 * full runs (beginTurn, actor, spans, every span processor, records committed to
 * PostgreSQL). Target: full >= 0.8 x bare. Phases are repeated (bare, full, run-only,
 * bare, full, run-only, ...) and medians reported, to even out drift.
 */

const TARGET_RATIO = 0.8;

const { values: flags } = parseArgs({
  options: {
    'database-url': { type: 'string', default: DEFAULT_ADMIN_URL },
    concurrency: { type: 'string', default: '50' },
    runs: { type: 'string', default: '3000' },
    rounds: { type: 'string', default: '3' },
    'warmup-runs': { type: 'string', default: '1000' },
    quick: { type: 'boolean', default: false },
    /** Simulated provider latency before each reply (default 0: the runtime's own cost alone). */
    'latency-ms': { type: 'string', default: '0' },
    /** Write a CPU profile of each measured phase to this directory. */
    'cpu-profile-dir': { type: 'string' },
  },
});

const positive = (name: string, value: string | undefined): number => {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed <= 0) {
    throw new Error(`--${name} must be a positive integer, got ${value}`);
  }
  return parsed;
};

const concurrency = positive('concurrency', flags.concurrency);
const runsPerPhase = flags.quick ? 300 : positive('runs', flags.runs);
const rounds = flags.quick ? 2 : positive('rounds', flags.rounds);
const warmupRuns = flags.quick ? 200 : positive('warmup-runs', flags['warmup-runs']);

const latencyMs = Number(flags['latency-ms']);
if (!Number.isInteger(latencyMs) || latencyMs < 0) {
  throw new Error(`--latency-ms must be a non-negative integer, got ${flags['latency-ms']}`);
}
const reply: ScriptedTurn = { content: BENCH_REPLY, usage: BENCH_USAGE, latencyMs };
const scriptedModel = (turns: number) =>
  new ScriptedChatModel({ turns: Array.from({ length: turns }, () => reply), model: BENCH_RESPONSE_MODEL, provider: 'openai' });

type PhaseResult = { runsPerS: number; cpuMsPerRun: number; wallMs: number };

/** Runs `total` items on `concurrency` workers; each worker takes the next index until none are left. */
const measure = async (total: number, work: (worker: number, index: number) => Promise<void>): Promise<PhaseResult> => {
  let next = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_unused, worker) => {
      for (let index = next++; index < total; index = next++) {
        await work(worker, index);
      }
    }),
  );
  const wallMs = performance.now() - started;
  const used = process.cpuUsage(cpu);
  return { runsPerS: (total * 1000) / wallMs, cpuMsPerRun: (used.user + used.system) / 1000 / total, wallMs };
};

/** Bare: one compiled `chat` graph per worker (built like the services build it), invoked in a loop. */
const barePhase = async (stack: BenchStack, total: number): Promise<PhaseResult> => {
  const tools = createToolRegistry();
  const perWorker = Math.ceil(total / concurrency) + 1;
  const graphs = Array.from({ length: concurrency }, () =>
    createGraph(getTemplate('chat'), { model: scriptedModel(perWorker), tools, toolCallLimit: stack.config.runtime.toolCallLimit }),
  );
  return measure(total, async (worker) => {
    const result = await graphs[worker]!.invoke({ messages: [new HumanMessage(BENCH_PROMPT)] });
    if (result.messages.at(-1)?.getType() !== 'ai') {
      throw new Error('bare run ended without an AI message');
    }
  });
};

/** Full: per run, beginTurn (user message + run row), runtime.start, await done with records committed. */
const fullPhase = async (stack: BenchStack, owners: readonly Owner[], total: number): Promise<PhaseResult> =>
  measure(total, async (worker) => {
    const request = await beginBenchTurn(stack, owners[worker]!);
    await runToDurable(stack, request);
  });

/** Run only, prepared: the turns are saved first (not measured). */
const prepareRunOnly = async (stack: BenchStack, total: number): Promise<RunRequest[]> => {
  const owners = await createOwners(stack.db.pool, total);
  const requests: RunRequest[] = new Array<RunRequest>(total);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let index = next++; index < total; index = next++) {
        requests[index] = await beginBenchTurn(stack, owners[index]!);
      }
    }),
  );
  return requests;
};

/** Run only: runtime.start + done, committed, for turns saved beforehand. */
const runOnlyPhase = (stack: BenchStack, requests: readonly RunRequest[]): Promise<PhaseResult> =>
  measure(requests.length, (_worker, index) => runToDurable(stack, requests[index]!));

const format = (result: PhaseResult): string =>
  `${round(result.runsPerS)} runs/s (${round(result.wallMs / 1000, 2)} s, ${round(result.cpuMsPerRun, 3)} ms CPU/run)`;

let stack: BenchStack | undefined;

const main = async (): Promise<boolean> => {
  console.log(
    `overhead: ${concurrency} concurrent, ${runsPerPhase} runs per phase, ${rounds} rounds, ${warmupRuns} warm-up runs, model latency ${latencyMs} ms`,
  );
  const bench = await createBenchStack({
    adminUrl: flags['database-url'],
    label: 'overhead',
    createChatModel: () => scriptedModel(1),
  });
  stack = bench;
  console.log(describeMachine(bench.machine));
  console.log(`database ${bench.databaseName}, pool size ${bench.config.database.poolSize}`);
  const owners = await createOwners(bench.db.pool, concurrency);

  console.log('warming up (bare, full, run only)...');
  await barePhase(bench, warmupRuns);
  await fullPhase(bench, owners, warmupRuns);
  await runOnlyPhase(bench, await prepareRunOnly(bench, Math.min(warmupRuns, 500)));

  const profiler = await createPhaseProfiler(flags['cpu-profile-dir']);
  const bare: PhaseResult[] = [];
  const full: PhaseResult[] = [];
  const runOnly: PhaseResult[] = [];
  for (let roundIndex = 1; roundIndex <= rounds; roundIndex += 1) {
    const b = await profiler.profile(`bare-${roundIndex}`, () => barePhase(bench, runsPerPhase));
    bare.push(b);
    console.log(`round ${roundIndex}/${rounds} bare:     ${format(b)}`);
    const f = await profiler.profile(`full-${roundIndex}`, () => fullPhase(bench, owners, runsPerPhase));
    full.push(f);
    console.log(`round ${roundIndex}/${rounds} full:     ${format(f)}`);
    const requests = await prepareRunOnly(bench, runsPerPhase);
    const r = await profiler.profile(`run-only-${roundIndex}`, () => runOnlyPhase(bench, requests));
    runOnly.push(r);
    console.log(`round ${roundIndex}/${rounds} run only: ${format(r)}`);
  }

  await profiler.close();
  const writer = bench.services.writer.stats();
  const bareRps = median(bare.map((r) => r.runsPerS));
  const fullRps = median(full.map((r) => r.runsPerS));
  const runOnlyRps = median(runOnly.map((r) => r.runsPerS));
  const ratio = fullRps / bareRps;
  const met = ratio >= TARGET_RATIO;
  console.log('');
  console.log('summary (medians)');
  console.log(`  bare graph.invoke:          ${round(bareRps)} runs/s, ${round(median(bare.map((r) => r.cpuMsPerRun)), 3)} ms CPU/run`);
  console.log(`  full (beginTurn + run):     ${round(fullRps)} runs/s, ${round(median(full.map((r) => r.cpuMsPerRun)), 3)} ms CPU/run`);
  console.log(
    `  full, run only (detail):    ${round(runOnlyRps)} runs/s, ${round(median(runOnly.map((r) => r.cpuMsPerRun)), 3)} ms CPU/run (ratio ${round(runOnlyRps / bareRps, 3)})`,
  );
  console.log(
    `  writer: ${writer.committed} records committed in ${writer.transactions} transactions, ${writer.spooled} spooled, ${writer.deadLettered} dead-lettered`,
  );
  console.log(`  ${describeMachine(bench.machine)}`);
  console.log(
    `  target: full >= ${TARGET_RATIO} x bare; ratio ${round(ratio, 3)}: ${met ? 'target met' : `target MISSED by ${round(TARGET_RATIO - ratio, 3)}`}`,
  );
  console.log(JSON.stringify({ bare_runs_per_s: round(bareRps), full_runs_per_s: round(fullRps), ratio: round(ratio, 3) }));
  return met;
};

runBench(main, async () => {
  await stack?.close();
});
