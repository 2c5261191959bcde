import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { ulid } from 'ulid';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export const freePort = async (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });

export type ServerProcess = {
  readonly baseUrl: string;
  readonly child: ChildProcess;
  readonly output: () => string;
  /** Sends the signal and resolves with the exit code. */
  readonly stop: (signal?: NodeJS.Signals) => Promise<number | null>;
};

/**
 * Runs `src/server.ts` in its own process, as `npm start` does, and waits until
 * `/healthz` answers. The environment is exactly `env` plus PATH (and no trace export
 * unless `env` asks for one).
 */
export const startServerProcess = async (
  env: Record<string, string>,
  { timeoutMs = 30_000 }: { timeoutMs?: number } = {},
): Promise<ServerProcess> => {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env['PATH'] ?? '',
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'warn',
      OTEL_TRACES_EXPORTER: 'none',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const baseUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`server exited with ${child.exitCode}:\n${output}`);
    }
    try {
      const response = await fetch(`${baseUrl}/healthz`);
      if (response.ok) {
        break;
      }
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server did not answer /healthz within ${timeoutMs} ms:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    baseUrl,
    child,
    output: () => output,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null) {
        child.kill(signal);
      }
      return exited;
    },
  };
};

export type JsonResponse = { readonly status: number; readonly body: Record<string, unknown> | null };

/** A request to a listening server (`token` as a bearer token, `body` as JSON); the answer's body parsed, null when it is not JSON. */
export const requestJson = async (
  server: { readonly baseUrl: string },
  method: string,
  path: string,
  { token, body }: { token?: string; body?: unknown } = {},
): Promise<JsonResponse> => {
  const response = await fetch(`${server.baseUrl}${path}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json().catch(() => null)) as Record<string, unknown> | null };
};

export type ServerUser = { readonly id: string; readonly username: string; readonly password: string; readonly token: string };

/**
 * Registers a new user (a fresh username) through a listening server.
 *
 * @throws Error unless the server answers 201.
 */
export const registerThrough = async (
  server: { readonly baseUrl: string },
  { username = `user_${ulid().toLowerCase().slice(-10)}` } = {},
): Promise<ServerUser> => {
  const password = 'correct horse battery staple';
  const response = await requestJson(server, 'POST', '/api/v1/auth/register', {
    body: { email: `${username}@example.com`, username, password },
  });
  if (response.status !== 201) throw new Error(`register failed: ${response.status} ${JSON.stringify(response.body)}`);
  const body = response.body as { access_token: string; user: { id: string } };
  return { id: body.user.id, username, password, token: body.access_token };
};
