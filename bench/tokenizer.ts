import { Agent, request } from 'node:http';
import { parseArgs } from 'node:util';
import { createTokenCounter, preloadTokenizer } from '../src/providers/token-counter.js';
import {
  createBenchDatabase,
  describeMachine,
  loadAverage,
  log,
  percentile,
  positiveInt,
  processCpuSeconds,
  registerUser,
  round,
  runMain,
  sleep,
  startServer,
  type BenchUser,
  type ServerProcess,
} from './http-support.js';

/**
 * Tokenizer (issue 13): counting tokens must be linear in the input and bounded per call,
 * and a long message must not stall the service.
 *
 * 1. CPU time of `count()` (the counter the local model and the cut-call estimate use)
 *    on worst-case strings — long runs without whitespace of every character class the
 *    pre-tokenizer distinguishes, random CJK and emoji, random Unicode — and on typical
 *    text, each 100,000 characters (code points, as the chat schema's maxLength counts
 *    them). Every call is timed, the first one after preload included.
 *    Target: every call < 50 ms of CPU.
 * 2. The real server process (PGlite in a temporary folder, or `--database-url`'s
 *    PostgreSQL server with a database of its own) answering 100,000-character chats
 *    without whitespace while another connection polls `/healthz` back to back.
 *    Target: `/healthz` p99 < 100 ms during the chats.
 */

const TARGET_COUNT_CPU_MS = 50;
const TARGET_HEALTHZ_P99_MS = 100;
const MAX_CHARACTERS = 100_000;

const { values: flags } = parseArgs({
  options: {
    'database-url': { type: 'string' },
    repeats: { type: 'string', default: '5' },
    quick: { type: 'boolean', default: false },
  },
});

const repeats = flags.quick ? 2 : positiveInt('repeats', flags.repeats);
const characters = flags.quick ? 20_000 : MAX_CHARACTERS;

/** A deterministic generator, so every run times the same strings. */
const random = (seed: number): (() => number) => {
  let state = seed;
  return () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 2 ** 32;
  };
};

/** `length` code points drawn from `ranges` (inclusive code point ranges). */
const randomText = (length: number, ranges: ReadonlyArray<readonly [number, number]>, seed: number): string => {
  const next = random(seed);
  const out: string[] = [];
  for (let index = 0; index < length; index += 1) {
    const [low, high] = ranges[Math.floor(next() * ranges.length)] ?? [0x61, 0x61];
    out.push(String.fromCodePoint(low + Math.floor(next() * (high - low + 1))));
  }
  return out.join('');
};

/** `unit` repeated up to exactly `length` code points. */
const run = (unit: string, length: number): string => {
  const points = [...unit];
  return Array.from({ length }, (_, index) => points[index % points.length]).join('');
};

const PROSE =
  'The committee met on Tuesday to review the budget. Costs rose by 12% in the third quarter, ' +
  "mostly because of shipping; we'll revisit the forecast in March. Questions? Ask Dana or me.\n\n";
const CODE =
  'export function total(items: Item[]): number {\n  return items.reduce((sum, item) => sum + item.price * item.quantity, 0);\n}\n\n';
const MIXED = 'Привет! 你好，世界。 Héllo wörld — こんにちは 🙂 مرحبا 12,345.67 € ok?\n';

const countCases = (length: number): Array<{ name: string; kind: 'worst' | 'typical'; text: string }> => [
  { name: "'a' run", kind: 'worst', text: run('a', length) },
  { name: "'A' run", kind: 'worst', text: run('A', length) },
  { name: "'xyz' run", kind: 'worst', text: run('xyz', length) },
  { name: 'digit run', kind: 'worst', text: run('7', length) },
  { name: 'space run', kind: 'worst', text: run(' ', length) },
  { name: "' \\n' run", kind: 'worst', text: run(' \n', length) },
  { name: "'!' run", kind: 'worst', text: run('!', length) },
  { name: 'emoji run', kind: 'worst', text: run('😀', length) },
  { name: 'CJK run', kind: 'worst', text: run('漢', length) },
  { name: 'combining marks', kind: 'worst', text: run('e\u0301', length) },
  { name: "contractions 's", kind: 'worst', text: run("'s", length) },
  { name: 'random CJK', kind: 'worst', text: randomText(length, [[0x4e00, 0x9fff]], 1) },
  { name: 'random emoji', kind: 'worst', text: randomText(length, [[0x1f300, 0x1faff]], 2) },
  {
    name: 'random Unicode',
    kind: 'worst',
    text: randomText(
      length,
      [
        [0x21, 0x7e],
        [0xa1, 0x2ff],
        [0x370, 0x52f],
        [0x600, 0x6ff],
        [0x900, 0x97f],
        [0x3040, 0x30ff],
        [0xac00, 0xd7a3],
        [0x10000, 0x10ffff],
      ],
      3,
    ),
  },
  { name: 'English prose', kind: 'typical', text: run(PROSE, length) },
  { name: 'source code', kind: 'typical', text: run(CODE, length) },
  { name: 'mixed languages', kind: 'typical', text: run(MIXED, length) },
];

type CountResult = {
  readonly case: string;
  readonly kind: 'worst' | 'typical';
  readonly characters: number;
  readonly utf16_units: number;
  readonly tokens: number;
  readonly cpu_ms: { readonly first: number; readonly median: number; readonly max: number };
};

const cpuMs = (since: NodeJS.CpuUsage): number => {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
};

const measureCounting = (): CountResult[] => {
  const counter = createTokenCounter();
  const results: CountResult[] = [];
  for (const { name, kind, text } of countCases(characters)) {
    const times: number[] = [];
    let tokens = 0;
    for (let repeat = 0; repeat < repeats; repeat += 1) {
      const start = process.cpuUsage();
      tokens = counter.count(text);
      times.push(cpuMs(start));
    }
    const result: CountResult = {
      case: name,
      kind,
      characters: [...text].length,
      utf16_units: text.length,
      tokens,
      cpu_ms: { first: round(times[0] ?? Number.NaN), median: round(percentile(times, 50)), max: round(Math.max(...times)) },
    };
    log(
      `count ${name}: ${result.tokens} tokens, first ${result.cpu_ms.first} ms, median ${result.cpu_ms.median} ms, max ${result.cpu_ms.max} ms CPU`,
    );
    results.push(result);
  }
  return results;
};

/** GET /healthz back to back on one keep-alive connection of its own until stopped. */
const pollHealth = (baseUrl: string): { stop: () => Promise<number[]> } => {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const latencies: number[] = [];
  let running = true;
  const once = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const started = performance.now();
      const req = request(`${baseUrl}/healthz`, { agent }, (response) => {
        response.resume();
        response.on('end', () =>
          response.statusCode === 200
            ? resolve(performance.now() - started)
            : reject(new Error(`/healthz answered ${response.statusCode}`)),
        );
      });
      req.on('error', reject);
      req.end();
    });
  const loop = (async () => {
    while (running) {
      latencies.push(await once());
      await sleep(2);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      agent.destroy();
      return latencies;
    },
  };
};

type ChatResult = {
  readonly case: string;
  readonly characters: number;
  readonly status: number;
  readonly response_ms: number;
  readonly prompt_tokens: number | null;
  readonly server_cpu_ms: number;
  readonly healthz: { readonly polls: number; readonly p50_ms: number; readonly p99_ms: number; readonly max_ms: number };
};

const chatCases = (length: number): Array<{ name: string; text: string }> =>
  flags.quick
    ? [{ name: "'a' run", text: run('a', length) }]
    : [
        { name: "'a' run", text: run('a', length) },
        { name: 'emoji run', text: run('😀', length) },
        { name: 'random CJK', text: randomText(length, [[0x4e00, 0x9fff]], 1) },
        { name: 'digit run', text: run('7', length) },
      ];

const measureChat = async (server: ServerProcess, user: BenchUser, name: string, text: string): Promise<ChatResult> => {
  const cpuBefore = processCpuSeconds(server.child.pid);
  const poller = pollHealth(server.baseUrl);
  await sleep(200);
  const started = performance.now();
  const response = await fetch(`${server.baseUrl}/api/v1/workflows/execute/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: user.authorization },
    body: JSON.stringify({ message: text }),
  });
  const body = (await response.json()) as { message?: { prompt_tokens?: number | null } };
  const responseMs = performance.now() - started;
  await sleep(200);
  const latencies = await poller.stop();
  const result: ChatResult = {
    case: name,
    characters: [...text].length,
    status: response.status,
    response_ms: round(responseMs),
    prompt_tokens: body.message?.prompt_tokens ?? null,
    server_cpu_ms: round((processCpuSeconds(server.child.pid) - cpuBefore) * 1000),
    healthz: {
      polls: latencies.length,
      p50_ms: round(percentile(latencies, 50)),
      p99_ms: round(percentile(latencies, 99)),
      max_ms: round(Math.max(...latencies)),
    },
  };
  log(
    `chat ${name}: ${result.status} in ${result.response_ms} ms, ${result.prompt_tokens} prompt tokens, server CPU ${result.server_cpu_ms} ms; ` +
      `/healthz ${result.healthz.polls} polls, p50 ${result.healthz.p50_ms} ms, p99 ${result.healthz.p99_ms} ms, max ${result.healthz.max_ms} ms`,
  );
  return { ...result };
};

runMain(async () => {
  const loadBefore = loadAverage();
  log(`counting: ${characters.toLocaleString('en')} characters per string, ${repeats} calls each`);
  const preloadStart = process.cpuUsage();
  preloadTokenizer();
  log(`preload: ${round(cpuMs(preloadStart))} ms CPU`);
  const counting = measureCounting();

  let databaseVersion = 'PGlite (embedded, temporary folder)';
  const env: Record<string, string> = { LOCAL_MODEL_LATENCY_MS: '0' };
  if (flags['database-url'] !== undefined) {
    const bench = await createBenchDatabase(flags['database-url'], 'tokenizer');
    databaseVersion = bench.version;
    env['DATABASE_URL'] = bench.url;
  }
  const machine = describeMachine(databaseVersion);
  const server = await startServer(env);
  log(`server: ${server.baseUrl} (pid ${server.child.pid}) on ${databaseVersion}`);
  const user = await registerUser(server.baseUrl, 'tokenizer');
  const chats: ChatResult[] = [];
  for (const { name, text } of chatCases(characters)) chats.push(await measureChat(server, user, name, text));
  await server.stop();
  const loadAfter = loadAverage();

  const worstCount = counting.reduce((worst, result) => (result.cpu_ms.max > worst.cpu_ms.max ? result : worst));
  const allPolls = chats.flatMap((chat) => [chat.healthz.p99_ms]);
  const worstP99 = Math.max(...allPolls);
  const worstHealthz = Math.max(...chats.map((chat) => chat.healthz.max_ms));

  console.log('');
  console.log(`Tokenizer: count() CPU per call and /healthz latency during ${characters.toLocaleString('en')}-character chats`);
  console.log(
    `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}; 1-min load average ${loadBefore} → ${loadAfter}`,
  );
  console.log(`database: ${machine.database}`);
  for (const r of counting) {
    console.log(
      `- count ${r.case} (${r.kind}, ${r.characters} chars, ${r.utf16_units} UTF-16 units): ${r.tokens} tokens; CPU first ${r.cpu_ms.first} ms, median ${r.cpu_ms.median} ms, max ${r.cpu_ms.max} ms`,
    );
  }
  for (const c of chats) {
    console.log(
      `- chat ${c.case} (${c.characters} chars): ${c.status} in ${c.response_ms} ms, ${c.prompt_tokens} prompt tokens, server CPU ${c.server_cpu_ms} ms; ` +
        `/healthz ${c.healthz.polls} polls: p50 ${c.healthz.p50_ms} ms, p99 ${c.healthz.p99_ms} ms, max ${c.healthz.max_ms} ms`,
    );
  }

  const problems: string[] = [];
  if (!(worstCount.cpu_ms.max < TARGET_COUNT_CPU_MS)) {
    problems.push(`count ${worstCount.case}: ${worstCount.cpu_ms.max} ms CPU in one call, target ${TARGET_COUNT_CPU_MS} ms MISSED`);
  }
  if (!(worstP99 < TARGET_HEALTHZ_P99_MS))
    problems.push(`/healthz p99 ${worstP99} ms during a chat, target ${TARGET_HEALTHZ_P99_MS} ms MISSED`);
  for (const c of chats) {
    if (c.status !== 200 || c.prompt_tokens === null)
      problems.push(`chat ${c.case}: answered ${c.status} with prompt_tokens ${c.prompt_tokens}`);
  }
  const met = problems.length === 0;
  console.log(
    `target: every count() call < ${TARGET_COUNT_CPU_MS} ms CPU (worst ${worstCount.cpu_ms.max} ms, ${worstCount.case}), ` +
      `/healthz p99 < ${TARGET_HEALTHZ_P99_MS} ms during each chat (worst p99 ${worstP99} ms, worst single ${worstHealthz} ms): ` +
      (met ? 'target met' : problems.join('; ')),
  );
  return {
    met,
    summary: {
      benchmark: 'tokenizer',
      machine,
      load_average: { before: loadBefore, after: loadAfter },
      characters,
      repeats,
      counting,
      chats,
      worst_count_cpu_ms: worstCount.cpu_ms.max,
      worst_healthz_p99_ms: worstP99,
      worst_healthz_ms: worstHealthz,
      target_count_cpu_ms: TARGET_COUNT_CPU_MS,
      target_healthz_p99_ms: TARGET_HEALTHZ_P99_MS,
      target_met: met,
    },
  };
});
