import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { sql } from 'slonik';
import {
  DEFAULT_ADMIN_URL,
  backendCpuDelta,
  createBenchDatabase,
  databaseBackendCpu,
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
 * committed); and (issue 11) (d) how long after a lifecycle transition its event
 * reaches `GET /api/v1/events/stream` on another instance. A steady open-loop load of
 * chat runs (new conversation each, local model with a small per-chunk latency) goes
 * through the real server process A on a fresh PostgreSQL database, while a second
 * server process B runs on the same database, and these observers watch:
 *
 * - the feed: one SSE connection; a run is visible when its `run_completed` block arrives;
 * - /metrics: polled every `--poll-ms`; the runs counter is cumulative and the metrics
 *   processor counts a run synchronously when its span ends, so the k-th run to end (by
 *   its recorded end) is visible at the first scrape that answers a count >= k;
 * - the database: one connection polling every `--poll-ms` for runs that are terminal
 *   and whose assistant message carries its tokens;
 * - events across instances: an event stream on B (`category=workflow`); for each run,
 *   its `workflow_started` and its terminal event, from the event's own time (its
 *   `created_at`, the span event's time: the transition) to its arrival on B. The same
 *   stream on A is reported beside it for reference (no target).
 *
 * A run's end is its recorded terminal moment (workflow_runs.finished_at, the run
 * span's end). Freshness = when the observer saw it − that moment, on the one machine
 * clock. Polled sinks are late by up to one poll period; the periods are reported.
 * Targets: p99 < 1 s for each of (a)–(c); p99 < 200 ms for (d) (issue 11).
 */

const TARGET_P99_MS = 1000;
const TARGET_EVENTS_P99_MS = 200;
/** The lifecycle events measured: the first of a run, and whichever ends it. */
const STARTED_EVENT = 'workflow_started';
const TERMINAL_EVENTS = new Set([
  'workflow_completed',
  'workflow_failed',
  'workflow_cancelled',
  'workflow_timed_out',
  'workflow_interrupted',
  'budget_exceeded',
]);

const { values: flags } = parseArgs({
  options: {
    'database-url': { type: 'string', default: DEFAULT_ADMIN_URL },
    rate: { type: 'string', default: '15' },
    duration: { type: 'string', default: '25' },
    warmup: { type: 'string', default: '3' },
    'latency-ms': { type: 'string', default: '5' },
    'poll-ms': { type: 'string', default: '5' },
    // Another checkout's server (e.g. the code before a change) under this same harness.
    'server-root': { type: 'string' },
    // RUN_FLUSH_INTERVAL_MS of the server (its default when not given).
    'flush-interval-ms': { type: 'string' },
    quick: { type: 'boolean', default: false },
  },
});

const rate = positiveInt('rate', flags.rate);
const durationS = flags.quick ? 6 : positiveInt('duration', flags.duration);
const warmupS = flags.quick ? 1 : nonNegativeNumber('warmup', flags.warmup);
const latencyMs = nonNegativeNumber('latency-ms', flags['latency-ms']);
const pollMs = nonNegativeNumber('poll-ms', flags['poll-ms']);
const flushEnv: Record<string, string> =
  flags['flush-interval-ms'] === undefined
    ? {}
    : { RUN_FLUSH_INTERVAL_MS: String(positiveInt('flush-interval-ms', flags['flush-interval-ms'])) };

type Observer = { stop: () => Promise<void> };

/** A lifecycle event as it arrived on a stream: its run, its transition time, its arrival. */
type StreamedEvent = { readonly type: string; readonly runId: string; readonly at: number; readonly arrivedAt: number };

const stringField = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);

/**
 * One SSE block of the events stream, read robustly: the data is the event row
 * (`{seq, type, run_id, created_at, …}`) or the frontend's shape (`{id, type, data,
 * timestamp, metadata: {run_id, …}}`); the name is the `event:` line or `type`.
 * Undefined for comments and blocks without a run or a time.
 */
const parseStreamedEvent = (block: string, arrivedAt: number): StreamedEvent | undefined => {
  const lines = block.split('\n');
  const data = lines
    .filter((line) => line.startsWith('data:'))
    .map((line) => line.slice(5).replace(/^ /, ''))
    .join('\n');
  if (data === '') return undefined;
  let body: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(data);
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    body = parsed as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const metadata = typeof body['metadata'] === 'object' && body['metadata'] !== null ? (body['metadata'] as Record<string, unknown>) : {};
  const inner = typeof body['data'] === 'object' && body['data'] !== null ? (body['data'] as Record<string, unknown>) : {};
  const eventLine = lines.find((line) => line.startsWith('event:'));
  // The stored lifecycle type: `metadata.event_type` in the frontend's shape (whose
  // `type` and `event:` name are dotted, `workflow.started`), else the row's own type.
  const type = stringField(metadata['event_type']) ?? stringField(eventLine?.slice(6).trim()) ?? stringField(body['type']);
  const runId =
    stringField(body['run_id']) ?? stringField(metadata['run_id']) ?? stringField(metadata['runId']) ?? stringField(inner['run_id']);
  const time = body['created_at'] ?? body['timestamp'] ?? metadata['created_at'];
  const at = typeof time === 'number' ? time : typeof time === 'string' ? Date.parse(time) : Number.NaN;
  if (type === undefined || runId === undefined || !Number.isFinite(at)) return undefined;
  return { type, runId, at, arrivedAt };
};

/** Every lifecycle event arriving on `server`'s GET /api/v1/events/stream (category workflow). */
const watchEvents = async (server: ServerProcess, user: BenchUser, received: StreamedEvent[]): Promise<Observer> => {
  const controller = new AbortController();
  const response = await fetch(`${server.baseUrl}/api/v1/events/stream?category=workflow`, {
    headers: { authorization: user.authorization, accept: 'text/event-stream' },
    signal: controller.signal,
  });
  if (response.status !== 200 || response.body === null) {
    throw new Error(`events stream answered ${response.status}: ${await response.text()}`);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  const reading = (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        const at = Date.now();
        buffer += value.replace(/\r\n?/g, '\n');
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          const event = parseStreamedEvent(buffer.slice(0, end), at);
          buffer = buffer.slice(end + 2);
          if (event !== undefined) received.push(event);
          end = buffer.indexOf('\n\n');
        }
      }
    } catch (error) {
      if (!controller.signal.aborted) throw error;
    }
  })();
  // Subscribed once the stream answered; let the subscription settle (LISTEN, watermark).
  await sleep(300);
  return {
    stop: async () => {
      controller.abort();
      await reading.catch(() => {});
    },
  };
};

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

type EventFigures = { started: SinkFigures; terminal: SinkFigures; all: SinkFigures; out_of_order: number };

/**
 * For each measured run, the delay of its `workflow_started` and of its terminal event
 * (transition → arrival), and how many runs' events arrived in another order than their
 * transitions. An event that arrived twice counts once, at its first arrival.
 */
const eventFigures = (received: readonly StreamedEvent[], runs: readonly { id: string }[]): EventFigures => {
  const byRun = new Map<string, StreamedEvent[]>();
  for (const event of received) {
    const list = byRun.get(event.runId) ?? [];
    list.push(event);
    byRun.set(event.runId, list);
  }
  const started: number[] = [];
  const terminal: number[] = [];
  const missing = { started: 0, terminal: 0 };
  let outOfOrder = 0;
  for (const run of runs) {
    const events = byRun.get(run.id) ?? [];
    const first = events.find((event) => event.type === STARTED_EVENT);
    const last = events.find((event) => TERMINAL_EVENTS.has(event.type));
    if (first === undefined) missing.started += 1;
    else started.push(first.arrivedAt - first.at);
    if (last === undefined) missing.terminal += 1;
    else terminal.push(last.arrivedAt - last.at);
    if (events.some((event, index) => index > 0 && event.at < (events[index - 1]?.at ?? 0))) outOfOrder += 1;
  }
  return {
    started: figuresOf(started, missing.started),
    terminal: figuresOf(terminal, missing.terminal),
    all: figuresOf([...started, ...terminal], missing.started + missing.terminal),
    out_of_order: outOfOrder,
  };
};

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
  // One secret for both instances, so a token from A is valid on B.
  const env = {
    DATABASE_URL: bench.url,
    LOCAL_MODEL_LATENCY_MS: String(latencyMs),
    JWT_SECRET: randomBytes(48).toString('base64url'),
    ...flushEnv,
  };
  const root = flags['server-root'];
  // A migrates the database; B starts on it afterwards.
  const server = await startServer(env, undefined, root);
  log(
    `server A: ${server.baseUrl} (pid ${server.child.pid}), local model ${latencyMs} ms per chunk${root === undefined ? '' : `, code from ${root}`}`,
  );
  const serverB = await startServer(env, undefined, root);
  log(`server B: ${serverB.baseUrl} (pid ${serverB.child.pid}), same database, no load`);
  const user = await registerUser(server.baseUrl, 'fresh');

  const feedSeen = new Map<string, number>();
  const dbSeen = new Map<string, number>();
  const metricSamples: Array<[number, number]> = [];
  const metricPeriods: number[] = [];
  const dbPeriods: number[] = [];
  const eventsOnB: StreamedEvent[] = [];
  const eventsOnA: StreamedEvent[] = [];
  const feed = await watchFeed(server, user, feedSeen);
  const streamB = await watchEvents(serverB, user, eventsOnB);
  const streamA = await watchEvents(server, user, eventsOnA);
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
  const cpuBeforeB = processCpuSeconds(serverB.child.pid);
  const databaseCpuBefore = await databaseBackendCpu(bench.admin, bench.name);
  log(`measuring: ${rate} runs/s for ${durationS} s`);
  const progress = setInterval(
    () =>
      log(
        `  ${load.sent} sent, ${load.ok} answered, ${dbSeen.size} in the database, ${feedSeen.size} on the feed, ${eventsOnB.length} events on B`,
      ),
    5_000,
  );
  try {
    await offerLoad(server, user, durationS, load);
  } finally {
    clearInterval(progress);
  }
  const measuredS = (Date.now() - measuredFrom) / 1000;
  const serverCpuSeconds = processCpuSeconds(server.child.pid) - cpuBefore;
  const serverCpu = round(serverCpuSeconds / measuredS, 2);
  const serverBCpu = round((processCpuSeconds(serverB.child.pid) - cpuBeforeB) / measuredS, 2);
  const databaseCpuSeconds = backendCpuDelta(databaseCpuBefore, await databaseBackendCpu(bench.admin, bench.name));
  // At a fixed offered rate, CPU per run compares code versions even on a busy machine.
  const offered = Math.round(durationS * rate);
  const cpuPerRun = {
    server_a_ms: round((serverCpuSeconds * 1000) / offered, 2),
    database_backends_ms: round((databaseCpuSeconds * 1000) / offered, 2),
  };
  const loadAfter = loadAverage();
  // Give the observers time to see the last runs (a late one would count as slower, not lost).
  await sleep(3_000);
  await Promise.all([feed.stop(), metrics.stop(), database.stop(), streamB.stop(), streamA.stop()]);
  await Promise.all([server.stop(), serverB.stop()]);

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
  const eventsB = eventFigures(eventsOnB, measured);
  const eventsA = eventFigures(eventsOnA, measured);
  const resolution = { metrics_poll: periodFigures(metricPeriods), database_poll: periodFigures(dbPeriods) };
  const notCompleted = measured.filter((run) => run.status !== 'completed').length;

  console.log('');
  console.log("Freshness: time from a run's end (workflow_runs.finished_at, the run span's end) to its figures being visible");
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}`);
  console.log(`database: ${machine.database}`);
  console.log(
    `load: ${rate} runs/s open loop for ${durationS} s (+${warmupS} s warm-up), local model ${latencyMs} ms per chunk${flushEnv['RUN_FLUSH_INTERVAL_MS'] === undefined ? '' : `, RUN_FLUSH_INTERVAL_MS ${flushEnv['RUN_FLUSH_INTERVAL_MS']}`}; ${measured.length} runs measured (${notCompleted} not completed), ${load.ok} of ${load.sent} requests answered 2xx`,
  );
  console.log(
    `machine load: 1-min load average ${loadBefore} → ${loadAfter} on ${machine.cores} cores; the server process used ${serverCpu} cores while measured (${cpuPerRun.server_a_ms} ms CPU per run), server B ${serverBCpu} cores, the bench database's backends ${cpuPerRun.database_backends_ms} ms per run`,
  );
  console.log(
    `observers: /metrics polled every ${pollMs} ms (period p50 ${resolution.metrics_poll.p50_ms} ms, p99 ${resolution.metrics_poll.p99_ms} ms), database polled every ${pollMs} ms (period p50 ${resolution.database_poll.p50_ms} ms, p99 ${resolution.database_poll.p99_ms} ms), feed pushed over SSE`,
  );
  const line = (name: string, figures: SinkFigures) =>
    `- ${name}: p50 ${figures.p50_ms} ms, p95 ${figures.p95_ms} ms, p99 ${figures.p99_ms} ms, max ${figures.max_ms} ms (min ${figures.min_ms} ms); ${figures.seen} seen, ${figures.missing} never seen`;
  for (const [name, figures] of Object.entries(sinks)) console.log(line(name, figures));
  console.log("Event delivery: time from a lifecycle transition (the event's created_at) to its arrival on GET /api/v1/events/stream");
  for (const [where, figures] of [
    ['on B (other instance)', eventsB],
    ['on A (same instance, reference)', eventsA],
  ] as const) {
    for (const kind of ['started', 'terminal', 'all'] as const) console.log(line(`${where}, ${kind}`, figures[kind]));
  }
  if (eventsB.out_of_order > 0) console.log(`  ${eventsB.out_of_order} runs whose events arrived on B out of order`);
  const problems: string[] = [];
  for (const [name, figures] of Object.entries(sinks)) {
    if (figures.missing > 0) problems.push(`${name}: ${figures.missing} runs never seen`);
    if (!(figures.p99_ms < TARGET_P99_MS))
      problems.push(`${name}: p99 ${figures.p99_ms} ms, target MISSED by ${round(figures.p99_ms - TARGET_P99_MS, 1)} ms`);
  }
  for (const [name, figures] of Object.entries({ started: eventsB.started, terminal: eventsB.terminal, all: eventsB.all })) {
    if (figures.missing > 0) problems.push(`events on B, ${name}: ${figures.missing} never seen`);
    if (!(figures.p99_ms < TARGET_EVENTS_P99_MS)) {
      problems.push(
        `events on B, ${name}: p99 ${figures.p99_ms} ms, target MISSED by ${round(figures.p99_ms - TARGET_EVENTS_P99_MS, 1)} ms`,
      );
    }
  }
  if (measured.length === 0) problems.push('no run was measured');
  if (load.failed > 0)
    problems.push(`${load.failed} requests failed (${[...load.statuses].map(([status, n]) => `${status}: ${n}`).join(', ')})`);
  const met = problems.length === 0;
  console.log(
    `target: p99 < ${TARGET_P99_MS} ms for each sink, events on another instance p99 < ${TARGET_EVENTS_P99_MS} ms: ${met ? 'target met' : problems.join('; ')}`,
  );
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
      server_b_cpu_cores: serverBCpu,
      cpu_per_run: cpuPerRun,
      requests: { sent: load.sent, ok: load.ok, failed: load.failed },
      resolution,
      sinks,
      events_other_instance: eventsB,
      events_same_instance: eventsA,
      server_root: root ?? null,
      run_flush_interval_ms: flushEnv['RUN_FLUSH_INTERVAL_MS'] ?? null,
      target_p99_ms: TARGET_P99_MS,
      target_events_p99_ms: TARGET_EVENTS_P99_MS,
      target_met: met,
    },
  };
});
