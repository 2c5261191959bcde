import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import {
  DEFAULT_ADMIN_URL,
  createBenchDatabase,
  describeMachine,
  loadAverage,
  log,
  positiveInt,
  processCpuSeconds,
  registerUser,
  round,
  runMain,
  sleep,
  startServer,
} from './http-support.js';

/**
 * On-CPU profile of a chat turn (issue 14): the real server (`src/server.ts`, its own
 * process, PostgreSQL, default LOG_LEVEL, every feature on) under autocannon load, with
 * V8's sampling CPU profiler started over the inspector protocol after the warm-up and
 * stopped at the end of the measured window, so start-up and warm-up are left out. Every
 * sample's self time goes to a group by where its function lives (package or source
 * folder; native code and Node's own modules count for the package that called them:
 * a socket write from `pg` is pg's, one from Fastify's reply Fastify's); per-turn figures divide by the 2xx answers in the window. The process CPU
 * (/proc) over the same window is split into the main thread's and the other threads'
 * (V8's GC helpers and compiler, libuv); the samples' shares are applied to the main
 * thread's CPU time, since the sampler's clock is wall time.
 *
 *   npm run bench:profile [-- --scenario chat|tools --duration 20 --warmup 10 --connections 50 --out profile.cpuprofile]
 */

const { values: flags } = parseArgs({
  options: {
    'database-url': { type: 'string', default: DEFAULT_ADMIN_URL },
    scenario: { type: 'string', default: 'chat' },
    connections: { type: 'string', default: '50' },
    duration: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '10' },
    'interval-us': { type: 'string', default: '200' },
    out: { type: 'string' },
    'server-root': { type: 'string' },
    quick: { type: 'boolean', default: false },
  },
});

const BODIES: Record<string, Record<string, unknown>> = {
  chat: { message: 'Hello there, how are you today?' },
  tools: { message: 'What is 1234 * 5678?', enable_tools: true },
};
const body = BODIES[flags.scenario ?? 'chat'];
if (body === undefined) throw new Error(`--scenario: chat or tools, got ${flags.scenario}`);
const connections = flags.quick ? 10 : positiveInt('connections', flags.connections);
const durationS = flags.quick ? 4 : positiveInt('duration', flags.duration);
const warmupS = flags.quick ? 2 : positiveInt('warmup', flags.warmup);
const intervalUs = positiveInt('interval-us', flags['interval-us']);

type CallFrame = { functionName: string; url: string; lineNumber: number };
type ProfileNode = { id: number; callFrame: CallFrame; children?: number[] };
type CpuProfile = {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
};

/** The groups of the breakdown, first match wins: [label, test on the frame's package or path]. */
const GROUPS: readonly (readonly [string, RegExp])[] = [
  [
    'LangChain / LangGraph (+ langsmith, p-queue, uuid)',
    /^(@langchain\/|langsmith|p-queue|p-retry|p-timeout|p-finally|eventemitter3|uuid|js-tiktoken|decamelize|camelcase|ansi-styles|mustache|zod-to-json-schema)/,
  ],
  ['pg (driver, protocol, types)', /^(pg|pg-protocol|pg-types|pg-pool|pg-connection-string|pgpass|postgres-)/],
  ['slonik + zod', /^(slonik|@slonik\/|zod|sql-tag|roarr|serialize-error|iso8601-duration|postgres-interval|safe-stable-stringify)/],
  ['xstate + run runtime (src/runtime, machines/)', /^(xstate|@xstate\/|src\/runtime|machines)/],
  ['graphs, providers, tools (src/graphs, src/providers, src/tools)', /^src\/(graphs|providers|tools)/],
  [
    'fastify, auth, HTTP, pino (src/auth, src/http, src/routes, src/chat, src/limits)',
    /^(fastify|@fastify\/|find-my-way|avvio|light-my-request|fast-json-stringify|fast-querystring|fast-uri|ajv|json-schema-ref-resolver|process-warning|toad-cache|secure-json-parse|rfdc|pino|sonic-boom|thread-stream|on-exit-leak-free|quick-format-unescaped|fast-redact|@pinojs\/|helmet|abstract-logging|fast-decode-uri-component|ret|safe-regex2|content-type|src\/(auth|http|routes|chat|limits|logger))/,
  ],
  ['OpenTelemetry (+ otel/)', /^(@opentelemetry\/|otel|require-in-the-middle|import-in-the-middle|shimmer|module-details-from-path)/],
  ['persistence, repositories, analytics, events (src/)', /^src\/(persistence|repositories|analytics|events|db|control)/],
  ['ulid', /^ulid/],
  ['tsx / esbuild (loader)', /^(tsx|esbuild|get-tsconfig)/],
];

/** Where a frame's code lives: a package name, a source folder, or a V8/Node pseudo-frame. */
const locate = (frame: CallFrame, root: string): string => {
  const { url, functionName } = frame;
  if (url === '') {
    if (functionName === '(garbage collector)') return '(garbage collector)';
    if (functionName === '(program)' || functionName === '(idle)' || functionName === '(root)') return functionName;
    return '(native)';
  }
  const modules = url.lastIndexOf('node_modules/');
  if (modules >= 0) {
    const parts = url.slice(modules + 'node_modules/'.length).split('/');
    return parts[0]?.startsWith('@') === true ? `${parts[0]}/${parts[1]}` : (parts[0] ?? url);
  }
  if (url.startsWith('node:')) return 'node:' + (url.slice(5).split('/')[1] ?? url.slice(5)).replace(/\.js$/, '');
  const path = url.replace(/^file:\/\//, '');
  if (path.startsWith(root)) {
    const parts = path.slice(root.length).split('/');
    return parts.length > 2 ? `${parts[0]}/${parts[1]}` : (parts[0] ?? path);
  }
  return path;
};

const groupOf = (location: string): string => {
  if (location === '(garbage collector)') return 'GC (main thread)';
  if (location === '(program)' || location === '(native)') return 'V8 / native (program, builtins)';
  if (location.startsWith('node:')) return 'Node core, not called from a package (event loop, microtasks, timers)';
  for (const [label, test] of GROUPS) if (test.test(location)) return label;
  return `other: ${location}`;
};

/** Self time (µs) per frame location, from the samples. */
const selfTimes = (
  profile: CpuProfile,
  root: string,
): {
  byLocation: Map<string, number>;
  byFunction: Map<string, number>;
  idleUs: number;
  totalUs: number;
} => {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parents = new Map<number, ProfileNode>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node);
  // Native code and Node's own modules (writev, randomBytes, structuredClone, …) count for
  // the package that called them; only what nothing in userland called stays Node's.
  const owner = (node: ProfileNode): ProfileNode => {
    const inNode = (frame: CallFrame) => frame.url.startsWith('node:') || (frame.url === '' && locate(frame, root) === '(native)');
    let current: ProfileNode | undefined = node;
    while (current !== undefined && inNode(current.callFrame)) {
      current = parents.get(current.id);
    }
    return current === undefined || current.callFrame.functionName === '(root)' ? node : current;
  };
  const byLocation = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let idleUs = 0;
  let totalUs = 0;
  profile.samples.forEach((id, index) => {
    const delta = profile.timeDeltas[index + 1] ?? profile.timeDeltas[index] ?? 0;
    const node = nodes.get(id);
    if (node === undefined) return;
    const location = locate(owner(node).callFrame, root);
    totalUs += delta;
    if (location === '(idle)') {
      idleUs += delta;
      return;
    }
    byLocation.set(location, (byLocation.get(location) ?? 0) + delta);
    const name = `${node.callFrame.functionName || '(anonymous)'} ${location}${node.callFrame.url === '' ? '' : `:${node.callFrame.lineNumber + 1}`}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + delta);
  });
  return { byLocation, byFunction, idleUs, totalUs };
};

/** CPU seconds of a process's main thread (its tid is its pid), from /proc; NaN where unreadable. */
const mainThreadCpuSeconds = (pid: number | undefined): number => {
  try {
    const fields = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
};

/** A minimal inspector client over the global WebSocket. */
const inspector = async (wsUrl: string) => {
  const socket = new WebSocket(wsUrl);
  await new Promise<void>((resolve, reject) => {
    socket.addEventListener('open', () => resolve(), { once: true });
    socket.addEventListener('error', () => reject(new Error(`cannot connect to the inspector at ${wsUrl}`)), { once: true });
  });
  let next = 1;
  const pending = new Map<number, (result: unknown) => void>();
  socket.addEventListener('message', (event) => {
    const message = JSON.parse(String(event.data)) as {
      id?: number;
      result?: unknown;
      error?: { message: string };
    };
    if (message.id === undefined) return;
    pending.get(message.id)?.(message.error === undefined ? message.result : new Error(message.error.message));
    pending.delete(message.id);
  });
  const send = async <T>(method: string, params: object = {}): Promise<T> => {
    const id = next++;
    const result = await new Promise<unknown>((resolve) => {
      pending.set(id, resolve);
      socket.send(JSON.stringify({ id, method, params }));
    });
    if (result instanceof Error) throw result;
    return result as T;
  };
  return { send, close: () => socket.close() };
};

runMain(async () => {
  const bench = await createBenchDatabase(flags['database-url'] ?? DEFAULT_ADMIN_URL, 'profile');
  const machine = describeMachine(bench.version);
  const root = `${resolve(flags['server-root'] ?? fileURLToPath(new URL('../', import.meta.url)))}/`;
  const server = await startServer(
    {
      DATABASE_URL: bench.url,
      LOCAL_MODEL_LATENCY_MS: '0',
      LOG_LEVEL: 'info',
      NODE_OPTIONS: '--inspect=127.0.0.1:0',
    },
    undefined,
    flags['server-root'],
  );
  const wsUrl = /Debugger listening on (ws:\/\/\S+)/.exec(server.output())?.[1];
  if (wsUrl === undefined) throw new Error(`the server printed no inspector address:\n${server.output()}`);
  const user = await registerUser(server.baseUrl);
  const load = (seconds: number) =>
    autocannon({
      url: `${server.baseUrl}/api/v1/workflows/execute/chat`,
      method: 'POST',
      connections,
      duration: seconds,
      timeout: 30,
      headers: {
        authorization: user.authorization,
        'content-type': 'application/json',
      },
      body: JSON.stringify(body),
    });
  log(`warm-up: ${connections} connections, ${warmupS} s (${flags.scenario})`);
  await load(warmupS);
  await sleep(1_000);

  const client = await inspector(wsUrl);
  await client.send('Profiler.enable');
  await client.send('Profiler.setSamplingInterval', { interval: intervalUs });
  const loadBefore = loadAverage();
  const cpuBefore = processCpuSeconds(server.child.pid);
  const mainBefore = mainThreadCpuSeconds(server.child.pid);
  await client.send('Profiler.start');
  log(`profiling: ${connections} connections, ${durationS} s`);
  const result = await load(durationS);
  const { profile } = await client.send<{ profile: CpuProfile }>('Profiler.stop');
  const cpuSeconds = processCpuSeconds(server.child.pid) - cpuBefore;
  const mainSeconds = mainThreadCpuSeconds(server.child.pid) - mainBefore;
  const loadAfter = loadAverage();
  client.close();
  await server.stop();
  if (flags.out !== undefined) await writeFile(flags.out, JSON.stringify(profile));

  const turns = result['2xx'];
  const { byLocation, byFunction, idleUs, totalUs } = selfTimes(profile, root);
  const busyUs = totalUs - idleUs;
  const byGroup = new Map<string, number>();
  for (const [location, us] of byLocation) byGroup.set(groupOf(location), (byGroup.get(groupOf(location)) ?? 0) + us);
  const perTurn = (us: number) => round(us / 1000 / turns, 3);
  // Samples are taken on a wall-clock timer: on a busy machine the thread is often off
  // the CPU between two of them. Each group gets its share of the samples applied to
  // the main thread's CPU time (/proc), so the figures are CPU, not wall time.
  const cpuOf = (us: number) => perTurn((us / busyUs) * mainSeconds * 1e6);
  const rows = [...byGroup].sort((a, b) => b[1] - a[1]);

  console.log('');
  console.log(`CPU profile of a chat turn (${flags.scenario}), POST /api/v1/workflows/execute/chat, new conversation per request`);
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}; ${machine.database.split(' on ')[0]}`);
  console.log(
    `load: ${connections} connections, ${warmupS} s warm-up, ${durationS} s profiled (sampling every ${intervalUs} µs); 1-min load average ${loadBefore} → ${loadAfter}`,
  );
  console.log(
    `${turns} turns (${round(result.requests.average, 1)} req/s); process CPU ${perTurn(cpuSeconds * 1e6)} ms per turn (/proc): ` +
      `main thread ${perTurn(mainSeconds * 1e6)} ms, other threads (GC helpers, compiler, libuv) ${perTurn((cpuSeconds - mainSeconds) * 1e6)} ms; ` +
      `main-thread samples cover ${perTurn(busyUs)} ms of wall time per turn`,
  );
  console.log('');
  console.log('| group | ms per turn | share of main-thread CPU |');
  console.log('|---|---|---|');
  for (const [group, us] of rows) console.log(`| ${group} | ${cpuOf(us)} | ${round((100 * us) / busyUs, 1)} % |`);
  console.log(`| other threads (GC helpers, compiler, libuv) | ${perTurn((cpuSeconds - mainSeconds) * 1e6)} | — |`);
  console.log('');
  console.log('top functions (self time per turn):');
  for (const [name, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
    console.log(`  ${cpuOf(us).toFixed(3).padStart(7)} ms  ${name}`);
  }
  console.log('');
  console.log('other locations over 0.02 ms per turn:');
  for (const [location, us] of [...byLocation].sort((a, b) => b[1] - a[1])) {
    if (groupOf(location).startsWith('other') && us / 1000 / turns > 0.02)
      console.log(`  ${cpuOf(us).toFixed(3).padStart(7)} ms  ${location}`);
  }
  return {
    met: true,
    summary: {
      benchmark: 'profile',
      scenario: flags.scenario,
      machine,
      connections,
      duration_s: durationS,
      turns,
      requests_per_s: round(result.requests.average, 1),
      load_average: { before: loadBefore, after: loadAfter },
      process_cpu_ms_per_turn: perTurn(cpuSeconds * 1e6),
      main_thread_cpu_ms_per_turn: perTurn(mainSeconds * 1e6),
      other_threads_cpu_ms_per_turn: perTurn((cpuSeconds - mainSeconds) * 1e6),
      groups_ms_per_turn: Object.fromEntries(rows.map(([group, us]) => [group, cpuOf(us)])),
    },
  };
});
