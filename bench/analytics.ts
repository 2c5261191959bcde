/**
 * Analytics at volume (issue 7, target 4; issue 14, target 3): seeds N messages' worth of
 * runs into a fresh PostgreSQL database (plus their hourly rollups; the activity rollups and
 * day level come from migration 0014's triggers, as for live writes), pushes real runs through the real
 * pipeline, then times every analytics route of the real HTTP app on loopback against
 * the same figures computed by scanning messages/runs/model calls, and checks they agree.
 *
 *   npm run bench:analytics -- [--quick] [--messages 1000000] [--database-url postgres://…] [--keep]
 *
 * Target: every analytics route p95 < 50 ms. Exit 0 met, 1 missed (or figures disagree), 2 error.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir, totalmem, type as osType, release as osRelease } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { createPool, sql } from 'slonik';
import { ulid } from 'ulid';
import { z } from 'zod';
import { resolveAnalyticsWindow } from '../src/analytics/analytics-window.js';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { openDatabase, type Database } from '../src/db/database.js';
import { loadMigrations, migrate } from '../src/db/migrations.js';
import { createLogger } from '../src/logger.js';
import { ScriptedChatModel } from '../test/helpers/scripted-chat-model.js';
import { createServices, type Services } from '../src/services.js';
import { pushRealRuns } from './analytics-real-runs.js';
import { compareRoute, expectedFigures, scanFigures, SCAN_PARTS, type ReportRoute, type ScanScope } from './analytics-scan.js';
import { seedAnalytics, type SeedReport } from './analytics-seed.js';

const TARGET_P95_MS = 50;
const JWT_SECRET = 'bench-analytics-secret-0123456789-abcdefghijklmnop';

const { values: flags } = parseArgs({
  options: {
    'database-url': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/postgres' },
    messages: { type: 'string' },
    users: { type: 'string' },
    days: { type: 'string', default: '90' },
    requests: { type: 'string' },
    warmup: { type: 'string' },
    'scan-runs': { type: 'string' },
    'route-seconds': { type: 'string' },
    'scan-seconds': { type: 'string' },
    'real-runs': { type: 'string', default: '50' },
    quick: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
const quick = flags.quick === true;
const int = (text: string | undefined, fallback: number): number => {
  const value = text === undefined ? fallback : Number(text);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`not a count: ${text}`);
  return value;
};
const opts = {
  adminUrl: flags['database-url'] ?? 'postgres://postgres@127.0.0.1:5432/postgres',
  messages: int(flags.messages, quick ? 20_000 : 1_000_000),
  users: Math.max(2, int(flags.users, quick ? 100 : 1000)),
  days: Math.max(1, int(flags.days, 90)),
  requests: int(flags.requests, quick ? 30 : 200),
  warmup: int(flags.warmup, quick ? 3 : 20),
  scanRuns: Math.max(1, int(flags['scan-runs'], quick ? 3 : 5)),
  /** Time budget per route configuration: fewer than `requests` samples when a route is slow. */
  routeSeconds: int(flags['route-seconds'], quick ? 5 : 15),
  /** Time budget of the scans per configuration (at least 2 runs). */
  scanSeconds: int(flags['scan-seconds'], quick ? 3 : 6),
  realRuns: int(flags['real-runs'], 50),
  keep: flags.keep === true,
};

const log = (line: string) => console.log(`[analytics ${new Date().toISOString().slice(11, 19)}] ${line}`);

const withDatabase = (url: string, name: string) => {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
};

const percentile = (sorted: readonly number[], p: number): number =>
  sorted.length === 0 ? Number.NaN : (sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? Number.NaN);

type Timing = { n: number; p50: number; p95: number; p99: number };
const summarise = (samples: number[]): Timing => {
  const sorted = [...samples].sort((a, b) => a - b);
  return { n: sorted.length, p50: percentile(sorted, 0.5), p95: percentile(sorted, 0.95), p99: percentile(sorted, 0.99) };
};

/** Runs `once` `warmup` times, then up to `count` timed times within `seconds`. */
const timeIt = async (once: () => Promise<unknown>, count: number, warmup: number, seconds: number, atLeast = 5): Promise<Timing> => {
  for (let i = 0; i < warmup; i += 1) await once();
  const samples: number[] = [];
  const deadline = performance.now() + seconds * 1000;
  while (samples.length < count && (samples.length < atLeast || performance.now() < deadline)) {
    const start = performance.now();
    await once();
    samples.push(performance.now() - start);
  }
  return summarise(samples);
};

type Row = {
  route: string;
  scope: string;
  window: string;
  http: Timing;
  scan: Timing | null;
  agree: boolean | null;
};

const main = async (): Promise<number> => {
  const name = `chatter_bench_analytics_${ulid().toLowerCase()}`;
  const url = withDatabase(opts.adminUrl, name);
  const admin = await createPool(opts.adminUrl, { maxPoolSize: 1 });
  const cleanups: (() => Promise<unknown>)[] = [];
  // Steps run newest first, each once, whoever asks (the end of main, an error, SIGINT).
  const cleanup = async () => {
    for (let step = cleanups.pop(); step !== undefined; step = cleanups.pop()) {
      await step().catch((error: unknown) => log(`cleanup step failed: ${String(error)}`));
    }
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(2)));
  try {
    const serverVersion = await admin.oneFirst(sql.type(z.object({ v: z.string() }))`SELECT current_setting('server_version') AS v`);
    const machine = {
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      memory_gib: Math.round((totalmem() / 2 ** 30) * 10) / 10,
      os: `${osType()} ${osRelease()}`,
      node: process.version,
      database: `PostgreSQL ${serverVersion}`,
    };
    log(
      `machine: ${JSON.stringify(machine)}; load average ${loadavg()
        .map((value) => value.toFixed(2))
        .join(' ')} (the machine may be shared)`,
    );
    log(`options: ${JSON.stringify({ ...opts, adminUrl: undefined })}`);
    await admin.query(sql.unsafe`CREATE DATABASE ${sql.identifier([name])}`);
    cleanups.push(async () => {
      if (opts.keep) {
        log(`kept database ${name}`);
        return;
      }
      await admin.query(sql.unsafe`DROP DATABASE IF EXISTS ${sql.identifier([name])} WITH (FORCE)`);
      log(`dropped database ${name}`);
    });
    log(`created database ${name}`);

    const db: Database = await openDatabase({ url, dataDir: 'memory://', poolSize: 10 });
    cleanups.push(() => db.close());
    const bulk: Database = await openDatabase({ url, dataDir: 'memory://', poolSize: 2, statementTimeoutMs: 3_600_000 });
    cleanups.push(() => bulk.close());
    const migrations = await migrate(db.pool, await loadMigrations());
    log(`migrated: ${migrations.applied.join(', ')}`);

    const spoolDir = await mkdtemp(join(tmpdir(), 'chatter-bench-analytics-'));
    cleanups.push(() => rm(spoolDir, { recursive: true, force: true }));
    const config = loadConfig({
      CHATTER_ENV: 'test',
      LOG_LEVEL: 'silent',
      DATABASE_URL: url,
      JWT_SECRET,
      CHATTER_INSTANCE_ID: 'bench-analytics',
      MODEL_RETRY_BASE_MS: '5',
      DEFAULT_PROVIDER: 'openai',
      OPENAI_API_KEY: 'sk-bench',
    });
    const logger = createLogger(config);
    let model: ScriptedChatModel | undefined;
    // The telemetry SDK reads OTEL_* from the process environment; its default exports
    // traces to localhost:4318, whose retries would load the benchmark and delay close.
    process.env['OTEL_TRACES_EXPORTER'] ??= 'none';
    const services: Services = await createServices({
      config,
      db,
      logger,
      spoolDir,
      createChatModel: () => {
        if (model === undefined) throw new Error('no scripted model');
        return model;
      },
    });
    cleanups.push(async () => {
      await services.runtime.shutdown(1_000);
      await services.close();
    });
    const app: FastifyInstance = await buildApp({ config, db, logger, services });
    cleanups.push(() => app.close());
    await app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    log(`app listening on ${base}`);

    const register = async (username: string) => {
      const response = await fetch(`${base}/api/v1/auth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: `${username}@bench.example.com`, username, password: 'correct horse battery staple' }),
      });
      if (response.status !== 201) throw new Error(`register ${username}: ${response.status} ${await response.text()}`);
      const body = (await response.json()) as { access_token: string; user: { id: string } };
      return { id: body.user.id, token: body.access_token };
    };
    const heavy = await register('bench_heavy_user');
    const adminUser = await register('bench_admin');
    await db.pool.query(sql.unsafe`UPDATE users SET is_superuser = true WHERE id = ${adminUser.id}`);

    const seed: SeedReport = await seedAnalytics(bulk.pool, {
      messages: opts.messages,
      users: opts.users,
      days: opts.days,
      heavyUserId: heavy.id,
      heavyShare: 0.05,
      batchConversations: quick ? 1_000 : 10_000,
      now: Date.now(),
      log,
    });
    log(`seeded: ${JSON.stringify(seed)}`);
    // What migration 0014's triggers filled from the seed's INSERTs.
    const rowsOf = async (table: string) =>
      bulk.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*)::int8 AS n FROM ${sql.identifier([table])}`);
    const derived = {
      spanRows: await rowsOf('analytics_spans'),
      activityRows: (await rowsOf('activity_rollups')) + (await rowsOf('conversation_activity')),
    };

    const realUsers = [heavy.id, adminUser.id, 'bench-user-000001', 'bench-user-000002'].filter(
      (id) => opts.users > 2 || !id.startsWith('bench-user-000002'),
    );
    const real = await pushRealRuns({
      pool: db.pool,
      services,
      script: (turns) => {
        model = new ScriptedChatModel({ turns, model: 'gpt-4o-mini-2024-07-18' });
        return model;
      },
      userIds: realUsers,
      count: opts.realRuns,
    });
    log(`real runs through the pipeline: ${JSON.stringify(real)}`);

    const scopes: { label: string; token: string; query: string; scan: ScanScope }[] = [
      { label: 'heavy user', token: heavy.token, query: '', scan: { userId: heavy.id } },
      { label: 'admin all users', token: adminUser.token, query: '&all_users=true', scan: { allUsers: true } },
    ];
    const get = async (path: string, token: string): Promise<string> => {
      const response = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
      const text = await response.text();
      if (response.status !== 200) throw new Error(`GET ${path}: ${response.status} ${text.slice(0, 300)}`);
      return text;
    };

    const rows: Row[] = [];
    const problems: string[] = [];
    // The floor every route pays: an authenticated request that reads one row (auth, JSON, loopback).
    const floor = await timeIt(() => get('/api/v1/auth/me', heavy.token), opts.requests, opts.warmup, opts.routeSeconds);
    log(`floor GET /api/v1/auth/me: p50 ${floor.p50.toFixed(1)} p95 ${floor.p95.toFixed(1)} p99 ${floor.p99.toFixed(1)} ms (n=${floor.n})`);
    const routes: ReportRoute[] = ['usage', 'performance', 'conversations', 'dashboard'];
    const periods = ['24h', '7d', '30d', '90d'] as const;
    for (const scope of scopes) {
      for (const period of periods) {
        for (const route of routes) {
          const path = `/api/v1/analytics/${route}?period=${period}${scope.query}`;
          const label = `${route} ${scope.label} ${period}`;
          // Figures: the route's body against the scan over the same window (again if the hour turned meanwhile).
          let agree = false;
          for (let attempt = 0; attempt < 2; attempt += 1) {
            const before = resolveAnalyticsWindow({ period }, Date.now());
            const body = JSON.parse(await get(path, scope.token)) as Record<string, unknown>;
            const expected = expectedFigures(await scanFigures(bulk.pool, scope.scan, before, SCAN_PARTS[route]));
            if (resolveAnalyticsWindow({ period }, Date.now()).from.getTime() !== before.from.getTime()) continue;
            const found = compareRoute(route, label, body, expected);
            problems.push(...found.slice(0, 10));
            agree = found.length === 0;
            break;
          }
          const http = await timeIt(() => get(path, scope.token), opts.requests, opts.warmup, opts.routeSeconds);
          const window = resolveAnalyticsWindow({ period }, Date.now());
          const scan = await timeIt(
            () => scanFigures(bulk.pool, scope.scan, window, SCAN_PARTS[route]),
            opts.scanRuns,
            1,
            opts.scanSeconds,
            2,
          );
          rows.push({ route: `/analytics/${route}`, scope: scope.label, window: period, http, scan, agree });
          log(
            `${label}: p50 ${http.p50.toFixed(1)} p95 ${http.p95.toFixed(1)} p99 ${http.p99.toFixed(1)} ms (n=${http.n}); scan p50 ${scan.p50.toFixed(1)} p95 ${scan.p95.toFixed(1)} ms; ${agree ? 'figures agree' : 'FIGURES DISAGREE'}`,
          );
        }
      }
      for (const window of ['15m', '1h', '24h'] as const) {
        const path = `/api/v1/monitoring/workflows?window=${window}${scope.query}`;
        const http = await timeIt(() => get(path, scope.token), opts.requests, opts.warmup, opts.routeSeconds);
        rows.push({ route: '/monitoring/workflows', scope: scope.label, window, http, scan: null, agree: null });
        log(
          `monitoring/workflows ${scope.label} ${window}: p50 ${http.p50.toFixed(1)} p95 ${http.p95.toFixed(1)} p99 ${http.p99.toFixed(1)} ms (n=${http.n})`,
        );
      }
    }

    const fmt = (value: number | undefined) => (value === undefined || Number.isNaN(value) ? '-' : value.toFixed(1));
    console.log('');
    console.log(
      `Analytics at volume: ${seed.messages} messages, ${seed.runs} runs, ${seed.modelCalls} model calls, ${seed.rollupRows} hourly rollup rows, ${derived.spanRows} span rows, ${derived.activityRows} activity rows, ${opts.users} users, ${opts.days} days (+${opts.realRuns} real runs)`,
    );
    console.log(
      `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memory_gib} GiB, ${machine.os}, Node ${machine.node}, ${machine.database}; load average at the end ${loadavg()
        .map((value) => value.toFixed(2))
        .join(' ')} (shared machine: other jobs may run)`,
    );
    console.log('');
    const header = ['route', 'scope', 'window', 'n', 'p50 ms', 'p95 ms', 'p99 ms', 'scan p50', 'scan p95', 'figures', 'p95<50'];
    const table = rows.map((row) => [
      row.route,
      row.scope,
      row.window,
      String(row.http.n),
      fmt(row.http.p50),
      fmt(row.http.p95),
      fmt(row.http.p99),
      fmt(row.scan?.p50),
      fmt(row.scan?.p95),
      row.agree === null ? '-' : row.agree ? 'agree' : 'DIFFER',
      row.http.p95 < TARGET_P95_MS ? 'yes' : 'NO',
    ]);
    const widths = header.map((title, index) => Math.max(title.length, ...table.map((cells) => (cells[index] ?? '').length)));
    const line = (cells: readonly string[]) => cells.map((cell, index) => cell.padEnd(widths[index] ?? 0)).join('  ');
    console.log(line(header));
    for (const cells of table) console.log(line(cells));
    console.log('');
    for (const problem of problems.slice(0, 30)) console.log(`disagreement: ${problem}`);
    const worst = rows.reduce((max, row) => Math.max(max, row.http.p95), 0);
    const missed = rows.filter((row) => !(row.http.p95 < TARGET_P95_MS));
    const agreeAll = rows.every((row) => row.agree !== false);
    console.log(
      `n: timed sequential requests after ${opts.warmup} warm-up ones, ${opts.requests} unless the route's ${opts.routeSeconds} s budget ran out first; scans: up to ${opts.scanRuns} runs within ${opts.scanSeconds} s.`,
    );
    console.log(
      `Floor (GET /api/v1/auth/me, not an analytics route): p50 ${fmt(floor.p50)} p95 ${fmt(floor.p95)} p99 ${fmt(floor.p99)} ms`,
    );
    console.log(`Target: every analytics route p95 < ${TARGET_P95_MS} ms.`);
    console.log(
      missed.length === 0
        ? `target met (worst p95 ${worst.toFixed(1)} ms)`
        : `target MISSED by ${(worst - TARGET_P95_MS).toFixed(1)} ms (worst p95 ${worst.toFixed(1)} ms; ${missed.length} of ${rows.length} configurations over)`,
    );
    console.log(agreeAll ? 'figures: routes agree exactly with the scans' : 'figures: routes DISAGREE with the scans');
    await cleanup();
    console.log(
      JSON.stringify({
        target_p95_ms: TARGET_P95_MS,
        met: missed.length === 0,
        figures_agree: agreeAll,
        worst_p95_ms: Math.round(worst * 10) / 10,
        seed,
        derived_rows: derived,
        real_runs: real,
        floor_auth_me: { p50_ms: Math.round(floor.p50 * 10) / 10, p95_ms: Math.round(floor.p95 * 10) / 10 },
        load_average: loadavg().map((value) => Math.round(value * 100) / 100),
        machine,
        routes: rows.map((row) => ({
          route: row.route,
          scope: row.scope,
          window: row.window,
          n: row.http.n,
          p50_ms: Math.round(row.http.p50 * 10) / 10,
          p95_ms: Math.round(row.http.p95 * 10) / 10,
          p99_ms: Math.round(row.http.p99 * 10) / 10,
          scan_p50_ms: row.scan === null ? null : Math.round(row.scan.p50 * 10) / 10,
          scan_p95_ms: row.scan === null ? null : Math.round(row.scan.p95 * 10) / 10,
          figures_agree: row.agree,
        })),
      }),
    );
    return missed.length === 0 && agreeAll ? 0 : 1;
  } finally {
    await cleanup();
    await admin.end();
  }
};

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`bench:analytics failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(2);
  },
);
