import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const INSTALL_HINT =
  "install Debian's prometheus package (`.ci/prometheus.sh`, or `apt-get install -y prometheus`); the tests that run it are skipped without it locally and required in CI (test/helpers/requires.ts)";

/**
 * Throws when `binary` cannot be run (the tests are gated by `requireOrSkip`, so this
 * only fires when a binary that was found stops working).
 *
 * @throws Error naming the binary and how to install it.
 */
export const requireBinary = (binary: string): void => {
  const probe = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) {
    throw new Error(`\`${binary}\` is not installed or does not run (${probe.error?.message ?? probe.stderr.trim()}): ${INSTALL_HINT}`);
  }
};

/** Runs `promtool check config <file>`; its output explains any failure. */
export const promtoolCheckConfig = (file: string): { ok: boolean; output: string } => {
  requireBinary('promtool');
  const result = spawnSync('promtool', ['check', 'config', file], { encoding: 'utf8' });
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}`.trim() };
};

/** A loopback TCP port nobody listens on right now. */
export const freePort = async (): Promise<number> => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
};

export type PromSeries = { readonly metric: Readonly<Record<string, string>>; readonly value?: readonly [number, string] };

export type PromResponse =
  | {
      readonly status: 'success';
      readonly data: { readonly resultType: string; readonly result: readonly PromSeries[] | readonly [number, string] };
    }
  | { readonly status: 'error'; readonly errorType: string; readonly error: string };

export type PrometheusServer = {
  readonly url: string;
  /** GET /api/v1/query (instant query at now). */
  readonly query: (expr: string) => Promise<PromResponse>;
  /** GET /api/v1/label/__name__/values restricted to series matching `match`. */
  readonly metricNames: (match: string) => Promise<string[]>;
  /** What Prometheus wrote to stderr, for failure messages. */
  readonly log: () => string;
  readonly stop: () => Promise<void>;
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Starts `prometheus` with `config` (JSON is YAML) on a free loopback port, with a
 * temporary data directory, and waits until it is ready.
 *
 * @throws Error when the binary is missing or Prometheus exits or is not ready in time.
 */
export const startPrometheus = async (config: unknown, readyTimeoutMs = 30_000): Promise<PrometheusServer> => {
  requireBinary('prometheus');
  const dir = await mkdtemp(join(tmpdir(), 'chatter-prometheus-'));
  const configFile = join(dir, 'prometheus.yml');
  await writeFile(configFile, JSON.stringify(config, null, 2));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let stderr = '';
  const child: ChildProcess = spawn(
    'prometheus',
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = `${stderr}${chunk.toString('utf8')}`.slice(-20_000);
  });
  let exited: number | null | undefined;
  child.on('exit', (code) => {
    exited = code;
  });

  const stop = async () => {
    if (exited === undefined) {
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await Promise.race([gone, sleep(5_000).then(() => child.kill('SIGKILL'))]);
    }
    await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (exited !== undefined) {
      await stop();
      throw new Error(`prometheus exited with code ${String(exited)} before it was ready:\n${stderr}`);
    }
    const ready = await fetch(`${url}/-/ready`).then(
      (response) => response.ok,
      () => false,
    );
    if (ready) {
      break;
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus was not ready after ${readyTimeoutMs} ms:\n${stderr}`);
    }
    await sleep(100);
  }

  return {
    url,
    query: async (expr) => (await (await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: expr })}`)).json()) as PromResponse,
    metricNames: async (match) => {
      const body = (await (await fetch(`${url}/api/v1/label/__name__/values?${new URLSearchParams({ 'match[]': match })}`)).json()) as {
        data?: string[];
      };
      return body.data ?? [];
    },
    log: () => stderr,
    stop,
  };
};

/**
 * Polls `check` until it returns true.
 *
 * @throws Error with `what` (and `details()`, e.g. a server log) when it does not within `timeoutMs`.
 */
export const waitFor = async (what: string, check: () => Promise<boolean>, details?: () => string, timeoutMs = 30_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${details === undefined ? '' : `\n${details()}`}`);
    }
    await sleep(200);
  }
};
