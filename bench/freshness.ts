import { parseArgs } from 'node:util';
import { sql } from 'slonik';
import {
  DEFAULT_ADMIN_URL,
  createBenchDatabase,
  describeMachine,
  loadAverage,
  log,
  nonNegativeNumber,
  processCpuSeconds,
  percentile,
  positiveInt,
  registerUser,
  round,
  runMain,
  sleep,
  startServer,
  type BenchDatabase,
  type BenchUser,
  type ServerProcess,
} from './http-support.js';

/**
 * Freshness (issue 7, target 5): how long after a run ends its figures are visible in
 * (a) GET /metrics, (b) the live analytics feed (GET /api/v1/analytics/stream, SSE),
 * (c) the database (the run row terminal and the assistant message's token fields
 * committed). A steady open-loop load of chat runs (new conversation each, local model
 * with a small per-chunk latency) goes through the real server process on a fresh
 * PostgreSQL database while three observers watch:
 *
 * - the feed: one SSE connection; a run is visible when its `run_completed` block arrives;
 * - /metrics: polled every `--poll-ms`; the runs counter is cumulative and the metrics
 *   processor counts a run synchronously when its span ends, so the k-th run to end (by
 *   its recorded end) is visible at the first scrape that answers a count >= k;
 * - the database: one connection polling every `--poll-ms` for runs that are terminal
 *   and whose assistant message carries its tokens.
 *
 * A run's end is its recorded terminal moment (workflow_runs.finished_at, the run
 * span's end). Freshness = when the observer saw it − that moment, on the one machine
 * clock. Polled sinks are late by up to one poll period; the periods are reported.
 * Target: p99 < 1 s for each sink.
 */

const TARGET_P99_MS = 1000;

const { values: flags } = parseArgs({
  options: {
    'database-url': { type: 'string', default: DEFAULT_ADMIN_URL },
    rate: { type: 'string', default: '15' },
    duration: { type: 'string', default: '25' },
    warmup: { type: 'string', default: '3' },
    'latency-ms': { type: 'string', default: '5' },
    'poll-ms': { type: 'string', default: '5' },
    quick: { type: 'boolean', default: false },
  },
});

const rate = positiveInt('rate', flags.rate);
const durationS = flags.quick ? 6 : positiveInt('duration', flags.duration);
const warmupS = flags.quick ? 1 : nonNegativeNumber('warmup', flags.warmup);
const latencyMs = nonNegativeNumber('latency-ms', flags['latency-ms']);
const pollMs = nonNegativeNumber('poll-ms', flags['poll-ms']);

type Observer = { stop: () => Promise<void> };

/** Seen-at time of each run on the SSE feed. */
const watchFeed = async (server: ServerProcess, user: BenchUser, seen: Map<string, number>): Promise<Observer> => {
  const controller = new AbortController();
  const response = await fetch(`${server.baseUrl}/api/v1/analytics/stream`, {
    headers: { authorization: user.authorization, accept: 'text/event-stream' },
    signal: controller.signal,
  });
  if (response.status !== 200 || response.body === null) {
    throw new Error(`analytics stream answered ${response.status}: ${await response.text()}`);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  const reading = (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        const at = Date.now();
        buffer += value;
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block
            .split('\n')
            .filter((line) => line.startsWith('data:'))
            .map((line) => line.slice(5).trim())
            .join('\n');
          if (/^event: *run_completed$/m.test(block) && data !== '') {
            const event = JSON.parse(data) as { run_id: string };
            if (!seen.has(event.run_id)) seen.set(event.run_id, at);
          }
          end = buffer.indexOf('\n\n');
        }
      }
    } catch (error) {
      if (!controller.signal.aborted) throw error;
    }
  })();
  // Only `: connected` has arrived so far; let the subscription settle.
  await sleep(100);
  return {
    stop: async () => {
      controller.abort();
      await reading.catch(() => {});
    },
  };
};

const RUNS_SAMPLE = /^chatter_workflow_runs(?:_total)?(?:\{[^}]*\})? ([0-9.eE+-]+)/;

/** (time, runs counted) after every scrape of /metrics, and the scrape periods. */
const watchMetrics = (server: ServerProcess, samples: Array<[number, number]>, periods: number[]): Observer => {
  let running = true;
  const loop = (async () => {
    let last = Date.now();
    while (running) {
      const response = await fetch(`${server.baseUrl}/metrics`);
      const text = await response.text();
      const at = Date.now();
      let count = 0;
      for (const line of text.split('\n')) {
        const match = RUNS_SAMPLE.exec(line);
        if (match?.[1] !== undefined) count += Number(match[1]);
      }
      samples.push([at, count]);
      periods.push(at - last);
      last = at;
      await sleep(pollMs);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
    },
  };
};

/** Seen-at time of each run whose terminal row and assistant message's tokens are committed. */
const watchDatabase = (bench: BenchDatabase, seen: Map<string, number>, periods: number[]): Observer => {
  let running = true;
  const loop = (async () => {
    let last = Date.now();
    // Commits follow the runs' ends closely; look back a margin behind the newest end seen.
    let cursorMs = 0;
    while (running) {
      const rows = (await bench.db.pool.any(sql.unsafe`
        SELECT r.id, (extract(epoch FROM r.finished_at) * 1000)::float8 AS finished_ms
        FROM workflow_runs r JOIN messages m ON m.run_id = r.id AND m.role = 'assistant'
        WHERE r.status <> 'running' AND m.total_tokens IS NOT NULL
          AND r.finished_at >= ${sql.timestamp(new Date(cursorMs - 5_000))}`)) as Array<{ id: string; finished_ms: number }>;
      const at = Date.now();
      for (const row of rows) {
        if (!seen.has(row.id)) seen.set(row.id, at);
        cursorMs = Math.max(cursorMs, row.finished_ms);
      }
      periods.push(at - last);
      last = at;
      await sleep(pollMs);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
    },
  };
};

type Load = { sent: number; ok: number; failed: number; statuses: Map<number, number> };

/** Open loop: one chat request every 1/rate s for `seconds`, whatever the answers take. */
const offerLoad = async (server: ServerProcess, user: BenchUser, seconds: number, load: Load): Promise<void> => {
  const pending: Promise<void>[] = [];
  const started = Date.now();
  const total = Math.round(seconds * rate);
  for (let index = 0; index < total; index += 1) {
    const due = started + (index * 1000) / rate;
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait);
    load.sent += 1;
    pending.push(
      fetch(`${server.baseUrl}/api/v1/workflows/execute/chat`, {
        method: 'POST',
        headers: { authorization: user.authorization, 'content-type': 'application/json' },
        body: JSON.stringify({ message: `Freshness probe ${index}: how fresh are the figures?` }),
      })
        .then(async (response) => {
          await response.arrayBuffer();
          load.statuses.set(response.status, (load.statuses.get(response.status) ?? 0) + 1);
          if (response.ok) load.ok += 1;
          else load.failed += 1;
        })
        .catch(() => {
          load.failed += 1;
        }),
    );
  }
  await Promise.all(pending);
};

type SinkFigures = { seen: number; missing: number; p50_ms: number; p95_ms: number; p99_ms: number; max_ms: number; min_ms: number };

const figuresOf = (lags: readonly number[], missing: number): SinkFigures => ({
  seen: lags.length,
  missing,
  p50_ms: round(percentile(lags, 50), 1),
  p95_ms: round(percentile(lags, 95), 1),
  p99_ms: round(percentile(lags, 99), 1),
  max_ms: round(Math.max(...lags), 1),
  min_ms: round(Math.min(...lags), 1),
});

const periodFigures = (periods: readonly number[]) => ({
  p50_ms: round(percentile(periods, 50), 1),
  p99_ms: round(percentile(periods, 99), 1),
  max_ms: round(Math.max(...periods), 1),
});

runMain(async () => {
  const bench = await createBenchDatabase(flags['database-url'] ?? DEFAULT_ADMIN_URL, 'freshness');
  const machine = describeMachine(bench.version);
  log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}`);
  log(`database: ${bench.name} on ${machine.database}`);
  const server = await startServer({ DATABASE_URL: bench.url, LOCAL_MODEL_LATENCY_MS: String(latencyMs) });
  log(`server: ${server.baseUrl} (pid ${server.child.pid}), local model ${latencyMs} ms per chunk`);
  const user = await registerUser(server.baseUrl, 'fresh');

  const feedSeen = new Map<string, number>();
  const dbSeen = new Map<string, number>();
  const metricSamples: Array<[number, number]> = [];
  const metricPeriods: number[] = [];
  const dbPeriods: number[] = [];
  const feed = await watchFeed(server, user, feedSeen);
  const metrics = watchMetrics(server, metricSamples, metricPeriods);
  const database = watchDatabase(bench, dbSeen, dbPeriods);

  const load: Load = { sent: 0, ok: 0, failed: 0, statuses: new Map() };
  if (warmupS > 0) {
    log(`warm-up: ${rate} runs/s for ${warmupS} s`);
    await offerLoad(server, user, warmupS, load);
  }
  const measuredFrom = Date.now();
  const loadBefore = loadAverage();
  const cpuBefore = processCpuSeconds(server.child.pid);
  log(`measuring: ${rate} runs/s for ${durationS} s`);
  const progress = setInterval(() => log(`  ${load.sent} sent, ${load.ok} answered, ${dbSeen.size} in the database, ${feedSeen.size} on the feed`), 5_000);
  try {
    await offerLoad(server, user, durationS, load);
  } finally {
    clearInterval(progress);
  }
  const measuredS = (Date.now() - measuredFrom) / 1000;
  const serverCpu = round((processCpuSeconds(server.child.pid) - cpuBefore) / measuredS, 2);
  const loadAfter = loadAverage();
  // Give the observers time to see the last runs (a late one would count as slower, not lost).
  await sleep(3_000);
  await Promise.all([feed.stop(), metrics.stop(), database.stop()]);
  await server.stop();

  const runs = (await bench.db.pool.any(sql.unsafe`
    SELECT id, status, (extract(epoch FROM finished_at) * 1000)::float8 AS finished_ms
    FROM workflow_runs ORDER BY finished_at, id`)) as Array<{ id: string; status: string; finished_ms: number | null }>;
  const finished = runs.filter((run): run is { id: string; status: string; finished_ms: number } => run.finished_ms !== null);
  const measured = finished.filter((run) => run.finished_ms >= measuredFrom);

  const lags = { metrics: [] as number[], feed: [] as number[], database: [] as number[] };
  const missing = { metrics: 0, feed: 0, database: 0 };
  // The k-th run to end is counted once the counter reads k (runs are counted as their spans end).
  let sample = 0;
  for (const [index, run] of finished.entries()) {
    while (sample < metricSamples.length && (metricSamples[sample]?.[1] ?? 0) < index + 1) sample += 1;
    if (run.finished_ms < measuredFrom) continue;
    const metricAt = metricSamples[sample]?.[0];
    if (metricAt === undefined) missing.metrics += 1;
    else lags.metrics.push(metricAt - run.finished_ms);
    const feedAt = feedSeen.get(run.id);
    if (feedAt === undefined) missing.feed += 1;
    else lags.feed.push(feedAt - run.finished_ms);
    const dbAt = dbSeen.get(run.id);
    if (dbAt === undefined) missing.database += 1;
    else lags.database.push(dbAt - run.finished_ms);
  }
  const sinks = {
    metrics: figuresOf(lags.metrics, missing.metrics),
    analytics_feed: figuresOf(lags.feed, missing.feed),
    database: figuresOf(lags.database, missing.database),
  };
  const resolution = { metrics_poll: periodFigures(metricPeriods), database_poll: periodFigures(dbPeriods) };
  const notCompleted = measured.filter((run) => run.status !== 'completed').length;

  console.log('');
  console.log('Freshness: time from a run\'s end (workflow_runs.finished_at, the run span\'s end) to its figures being visible');
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}`);
  console.log(`database: ${machine.database}`);
  console.log(`load: ${rate} runs/s open loop for ${durationS} s (+${warmupS} s warm-up), local model ${latencyMs} ms per chunk; ${measured.length} runs measured (${notCompleted} not completed), ${load.ok} of ${load.sent} requests answered 2xx`);
  console.log(`machine load: 1-min load average ${loadBefore} → ${loadAfter} on ${machine.cores} cores; the server process used ${serverCpu} cores while measured`);
  console.log(`observers: /metrics polled every ${pollMs} ms (period p50 ${resolution.metrics_poll.p50_ms} ms, p99 ${resolution.metrics_poll.p99_ms} ms), database polled every ${pollMs} ms (period p50 ${resolution.database_poll.p50_ms} ms, p99 ${resolution.database_poll.p99_ms} ms), feed pushed over SSE`);
  for (const [name, figures] of Object.entries(sinks)) {
    console.log(`- ${name}: p50 ${figures.p50_ms} ms, p95 ${figures.p95_ms} ms, p99 ${figures.p99_ms} ms, max ${figures.max_ms} ms (min ${figures.min_ms} ms); ${figures.seen} seen, ${figures.missing} never seen`);
  }
  const problems: string[] = [];
  for (const [name, figures] of Object.entries(sinks)) {
    if (figures.missing > 0) problems.push(`${name}: ${figures.missing} runs never seen`);
    if (!(figures.p99_ms < TARGET_P99_MS)) problems.push(`${name}: p99 ${figures.p99_ms} ms, target MISSED by ${round(figures.p99_ms - TARGET_P99_MS, 1)} ms`);
  }
  if (measured.length === 0) problems.push('no run was measured');
  if (load.failed > 0) problems.push(`${load.failed} requests failed (${[...load.statuses].map(([status, n]) => `${status}: ${n}`).join(', ')})`);
  const met = problems.length === 0;
  console.log(`target: p99 < ${TARGET_P99_MS} ms for each sink: ${met ? 'target met' : problems.join('; ')}`);
  return {
    met,
    summary: {
      benchmark: 'freshness',
      machine,
      rate_per_s: rate,
      duration_s: durationS,
      warmup_s: warmupS,
      local_model_latency_ms: latencyMs,
      poll_ms: pollMs,
      runs_measured: measured.length,
      load_average: { before: loadBefore, after: loadAfter },
      server_cpu_cores: serverCpu,
      requests: { sent: load.sent, ok: load.ok, failed: load.failed },
      resolution,
      sinks,
      target_p99_ms: TARGET_P99_MS,
      target_met: met,
    },
  };
});
