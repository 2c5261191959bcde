import { monitorEventLoopDelay, performance, type Histogram } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { sql } from 'slonik';
import { z } from 'zod';
import type { BaseChatModel } from '@langchain/core/language_models/chat_models';
import { ScriptedChatModel, type ScriptedTurn } from '../test/helpers/scripted-chat-model.js';
import type { RunOutcome, RunRequest } from '../src/runtime/run-runtime.js';
import {
  BENCH_REPLY,
  BENCH_RESPONSE_MODEL,
  BENCH_USAGE,
  DEFAULT_ADMIN_URL,
  beginBenchTurn,
  createBenchStack,
  createOwners,
  createPhaseProfiler,
  describeMachine,
  round,
  runBench,
  startBenchTurn,
  type BenchStack,
} from './runtime-stack.js';
import { CallHold, HeldChatModel } from './runtime-held-model.js';

/**
 * Concurrency (issue 7, target 3): N runs in flight at once (default 10 000), streaming
 * (onToken set), each model call answering after `latency-ms` of simulated latency,
 * through the production services on PostgreSQL with every span processor. The turns
 * are saved first (not measured); then a gc'd baseline, then every run is started.
 * Reports completion and durability, resident memory and heap per in-flight run, and
 * event-loop delay (10 ms resolution) over the in-flight period and its parts.
 * Targets: < 100 KB per run, p99 delay < 100 ms.
 */

const TARGET_KB_PER_RUN = 100;
const TARGET_P99_MS = 100;

const { values: flags } = parseArgs({
  options: {
    'database-url': { type: 'string', default: DEFAULT_ADMIN_URL },
    runs: { type: 'string', default: '10000' },
    'latency-ms': { type: 'string', default: '2000' },
    /** Spread the reply's chunks evenly over the latency instead of sending them all after it. */
    spread: { type: 'boolean', default: false },
    /**
     * Count the latency from each model call, with no hold: when starting every run takes
     * longer than the latency, the first runs end before the last start.
     */
    'from-call': { type: 'boolean', default: false },
    /** Runs started per event-loop turn (HTTP requests arrive one per turn; 1 is the realistic value). */
    'start-batch': { type: 'string', default: '1' },
    /** Zero-latency runs first, so the measured ones do not pay for JIT compilation. */
    'warmup-runs': { type: 'string', default: '500' },
    quick: { type: 'boolean', default: false },
    /** Write CPU profiles of the start burst and of the rest to this directory. */
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

const runs = flags.quick ? 300 : positive('runs', flags.runs);
const latencyMs = positive('latency-ms', flags['latency-ms']);
const startBatch = positive('start-batch', flags['start-batch']);
const warmupRuns = flags.quick ? 100 : positive('warmup-runs', flags['warmup-runs']);
const chunkCount = BENCH_REPLY.match(/\s*\S+\s*|\s+/g)?.length ?? 1;

/**
 * The simulated latency. By default each model call is held until every run has
 * started, then answers `latencyMs` plus its own offset from the first call later
 * (bench/runtime-held-model.ts), so that all runs are in flight at once and the
 * answers come spread like the calls; then the reply's chunks stream back to back (or,
 * with --spread, evenly over `latencyMs` after the offset). With --from-call there is
 * no hold: the call waits `latencyMs` (or spreads its chunks over it) from its start.
 */
const chunkSpacing = Math.round(latencyMs / chunkCount);
const spreadTurn: ScriptedTurn = { content: BENCH_REPLY, usage: BENCH_USAGE, latencyMs: chunkSpacing, chunkDelayMs: chunkSpacing };
const immediateTurn: ScriptedTurn = { content: BENCH_REPLY, usage: BENCH_USAGE };
const hold = new CallHold(flags.spread ? 0 : latencyMs);
const scripted = (turn: ScriptedTurn) => new ScriptedChatModel({ turns: [turn], model: BENCH_RESPONSE_MODEL, provider: 'openai' });
const measuredModel = (): BaseChatModel => {
  if (flags['from-call']) {
    return scripted(flags.spread ? spreadTurn : { ...immediateTurn, latencyMs });
  }
  return new HeldChatModel({ turns: [flags.spread ? spreadTurn : immediateTurn], model: BENCH_RESPONSE_MODEL, provider: 'openai', hold });
};
let createModel: () => BaseChatModel = () => scripted(immediateTurn);

const gc = (): void => {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (collect === undefined) {
    throw new Error('run with --expose-gc (npm run bench:concurrency does)');
  }
  collect();
  collect();
};

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

type Delay = { p50: number; p99: number; max: number; mean: number; samples: number };

const delayOf = (histogram: Histogram): Delay => ({
  // In nanoseconds.
  p50: round(histogram.percentile(50) / 1e6),
  p99: round(histogram.percentile(99) / 1e6),
  max: round(histogram.max / 1e6),
  mean: round(histogram.mean / 1e6),
  samples: histogram.count,
});

const describeDelay = (label: string, delay: Delay): string =>
  `${label}: p50 ${delay.p50} ms, p99 ${delay.p99} ms, max ${delay.max} ms (${delay.samples} samples)`;

const mb = (bytes: number): number => round(bytes / 2 ** 20);

let stack: BenchStack | undefined;

const main = async (): Promise<boolean> => {
  console.log(
    `concurrency: ${runs} runs in flight, streaming, ${latencyMs} ms model latency (${
      flags.spread ? `${chunkCount} chunks spread over it` : `then ${chunkCount} chunks at once`
    }, ${flags['from-call'] ? 'counted from each call' : 'counted after every run has started, answers spread like the calls'}), ${startBatch} start(s) per event-loop turn`,
  );
  const bench = await createBenchStack({
    adminUrl: flags['database-url'],
    label: 'concurrency',
    createChatModel: () => createModel(),
  });
  stack = bench;
  console.log(describeMachine(bench.machine));
  console.log(
    `database ${bench.databaseName}, pool size ${bench.config.database.poolSize}, run timeout ${bench.config.runtime.runTimeoutMs} ms`,
  );

  let tokens = 0;
  const onToken = (text: string): void => {
    tokens += text.length > 0 ? 1 : 0;
  };
  /** Not measured: users, conversations and saved turns (user message + run row). */
  const saveTurns = async (count: number): Promise<RunRequest[]> => {
    const owners = await createOwners(bench.db.pool, count);
    const requests = new Array<RunRequest>(count);
    let next = 0;
    await Promise.all(
      Array.from({ length: bench.config.database.poolSize * 2 }, async () => {
        for (let index = next++; index < count; index = next++) {
          requests[index] = await beginBenchTurn(bench, owners[index]!, { streaming: true, onToken });
          if (index > 0 && index % 2000 === 0) {
            console.log(`  saved ${index} turns`);
          }
        }
      }),
    );
    return requests;
  };

  const warmup = await saveTurns(warmupRuns);
  const warmupOutcomes = await Promise.all(warmup.map((request) => startBenchTurn(bench, request).done));
  const warmupFailed = warmupOutcomes.filter((outcome) => outcome.status !== 'completed' || outcome.durable !== 'database');
  if (warmupFailed.length > 0) {
    throw new Error(`${warmupFailed.length} warm-up runs did not complete durably`);
  }
  console.log(`warmed up with ${warmupRuns} zero-latency runs`);
  createModel = measuredModel;
  tokens = 0;

  const preparing = performance.now();
  const requests = await saveTurns(runs);
  const measuredIds = requests.map((request) => request.runId);
  console.log(`saved ${runs} turns in ${round((performance.now() - preparing) / 1000, 1)} s`);

  gc();
  const baseline = process.memoryUsage();
  console.log(`baseline: rss ${mb(baseline.rss)} MiB, heapUsed ${mb(baseline.heapUsed)} MiB`);

  // The overall figure includes the one forced gc pause of the peak sample (reported
  // separately); the segments exclude it.
  const overall = monitorEventLoopDelay({ resolution: 10 });
  const startBurst = monitorEventLoopDelay({ resolution: 10 });
  const steady = monitorEventLoopDelay({ resolution: 10 });
  const completing = monitorEventLoopDelay({ resolution: 10 });
  overall.enable();
  startBurst.enable();

  let done = 0;
  let firstDoneAt: number | undefined;
  let peakRss = 0;
  let peakInFlight = 0;
  const statuses = new Map<string, number>();
  const durability = new Map<string, number>();
  const onDone = (outcome: RunOutcome): void => {
    done += 1;
    if (firstDoneAt === undefined) {
      firstDoneAt = performance.now();
      steady.disable();
      completing.enable();
    }
    statuses.set(outcome.status, (statuses.get(outcome.status) ?? 0) + 1);
    durability.set(outcome.durable, (durability.get(outcome.durable) ?? 0) + 1);
  };
  let started = 0;
  const sampler = setInterval(() => {
    const rss = process.memoryUsage.rss();
    peakRss = Math.max(peakRss, rss);
    peakInFlight = Math.max(peakInFlight, started - done);
  }, 100);

  const profiler = await createPhaseProfiler(flags['cpu-profile-dir']);
  const t0 = performance.now();
  const handles: Promise<void>[] = [];
  await profiler.profile('start-burst', async () => {
    for (let index = 0; index < runs; index += 1) {
      handles.push(startBenchTurn(bench, requests[index]!).done.then(onDone));
      started += 1;
      if (started % startBatch === 0) {
        await yieldToLoop();
      }
    }
  });
  const allStartedAt = performance.now();
  startBurst.disable();
  const inFlightAtStart = started - done;
  let inFlight: NodeJS.MemoryUsage | undefined;
  let inFlightCount = 0;
  let gcMs = 0;
  if (done === 0) {
    // The peak sample, with every run in flight.
    const gcStarted = performance.now();
    gc();
    gcMs = performance.now() - gcStarted;
    inFlight = process.memoryUsage();
    inFlightCount = started - done;
    steady.enable();
  }
  hold.release();
  console.log(
    `started ${runs} runs in ${round((allStartedAt - t0) / 1000, 2)} s; ${inFlightAtStart} in flight when the last started` +
      (inFlight === undefined ? '' : `; rss ${mb(inFlight.rss)} MiB, heapUsed ${mb(inFlight.heapUsed)} MiB after gc`),
  );
  const progress = setInterval(() => console.log(`  ${done}/${runs} done`), 2_000);
  await profiler.profile('in-flight', () => Promise.all(handles));
  const endedAt = performance.now();
  await profiler.close();
  clearInterval(progress);
  clearInterval(sampler);
  overall.disable();
  steady.disable();
  completing.disable();

  const counted = await bench.db.pool.one(sql.type(z.object({ completed_runs: z.number(), assistant_messages: z.number() }))`
    SELECT (SELECT count(*) FROM workflow_runs WHERE status = 'completed' AND id = ANY(${sql.array(measuredIds, 'text')}))::int
             AS completed_runs,
           (SELECT count(*) FROM messages WHERE role = 'assistant' AND total_tokens IS NOT NULL
              AND run_id = ANY(${sql.array(measuredIds, 'text')}))::int AS assistant_messages`);

  const completed = statuses.get('completed') ?? 0;
  const durableInDb = durability.get('database') ?? 0;
  const allDone = completed === runs && durableInDb === runs && counted.completed_runs === runs && counted.assistant_messages === runs;
  const rssPerRunKb = inFlight === undefined ? Number.NaN : (inFlight.rss - baseline.rss) / inFlightCount / 1024;
  const heapPerRunKb = inFlight === undefined ? Number.NaN : (inFlight.heapUsed - baseline.heapUsed) / inFlightCount / 1024;
  const delay = delayOf(overall);
  const memoryMet = rssPerRunKb < TARGET_KB_PER_RUN;
  const delayMet = delay.p99 < TARGET_P99_MS;
  const writer = bench.services.writer.stats();

  console.log('');
  console.log('summary');
  console.log(
    `  runs: ${runs}; status ${JSON.stringify(Object.fromEntries(statuses))}; durable ${JSON.stringify(Object.fromEntries(durability))}`,
  );
  console.log(
    `  database: ${counted.completed_runs} completed run rows, ${counted.assistant_messages} assistant messages with usage; writer ${writer.committed} records in ${writer.transactions} transactions`,
  );
  console.log(`  streamed chunks seen by onToken: ${tokens}`);
  console.log(
    `  wall: ${round((endedAt - t0) / 1000, 2)} s from first start to all done (start burst ${round((allStartedAt - t0) / 1000, 2)} s, ` +
      `first done at ${firstDoneAt === undefined ? '-' : round((firstDoneAt - t0) / 1000, 2)} s)`,
  );
  console.log(`  peak in flight ${peakInFlight}; peak rss ${mb(peakRss)} MiB`);
  console.log(
    inFlight === undefined
      ? '  memory: no moment with every run in flight (the first run ended before the last started)'
      : `  memory per in-flight run (${inFlightCount} in flight): rss ${round(rssPerRunKb)} KB, heapUsed ${round(heapPerRunKb)} KB ` +
          `(rss ${mb(baseline.rss)} → ${mb(inFlight.rss)} MiB, heap ${mb(baseline.heapUsed)} → ${mb(inFlight.heapUsed)} MiB)`,
  );
  console.log(`  ${describeDelay('event-loop delay, in flight (overall)', delay)}; the forced gc took ${round(gcMs)} ms`);
  console.log(`  ${describeDelay('  start burst', delayOf(startBurst))}`);
  console.log(`  ${describeDelay('  steady (all started, none done)', delayOf(steady))}`);
  console.log(`  ${describeDelay('  completions', delayOf(completing))}`);
  console.log(`  ${describeMachine(bench.machine)}`);
  const verdict = (met: boolean, by: string) => (met ? 'target met' : `target MISSED by ${by}`);
  console.log(`  target: all complete, durable: ${allDone ? 'target met' : 'target MISSED'}`);
  console.log(`  target: < ${TARGET_KB_PER_RUN} KB per run: ${verdict(memoryMet, `${round(rssPerRunKb - TARGET_KB_PER_RUN)} KB`)}`);
  console.log(`  target: p99 delay < ${TARGET_P99_MS} ms: ${verdict(delayMet, `${round(delay.p99 - TARGET_P99_MS)} ms`)}`);
  console.log(
    JSON.stringify({
      runs,
      completed,
      durable_in_database: durableInDb,
      all_completed: allDone,
      rss_kb_per_run: round(rssPerRunKb),
      heap_kb_per_run: round(heapPerRunKb),
      event_loop_delay_ms: { p50: delay.p50, p99: delay.p99, max: delay.max },
      wall_s: round((endedAt - t0) / 1000, 2),
      start_burst_s: round((allStartedAt - t0) / 1000, 2),
      latency_ms: latencyMs,
      latency_from: flags['from-call'] ? 'call' : 'last start',
    }),
  );
  return allDone && memoryMet && delayMet;
};

runBench(main, async () => {
  await stack?.close();
});
