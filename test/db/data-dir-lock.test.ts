import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { DataDirInUseError, LOCK_FILE, lockDataDir } from '../../src/db/data-dir-lock.js';
import { startServerProcess } from '../helpers/server-process.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** `npm run migrate` (`tsx src/db/migrate-cli.ts`) on `dataDir`, as its own process. */
const runMigrate = (dataDir: string): Promise<{ code: number | null; output: string; ms: number }> =>
  new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/db/migrate-cli.ts'], {
      cwd: ROOT,
      env: { PATH: process.env['PATH'] ?? '', CHATTER_DATA_DIR: dataDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => resolve({ code, output, ms: performance.now() - started }));
  });

/** The pid of a process that has exited (so no process has it right now). */
const deadPid = (): number => {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(child.stdout);
};

describe('the embedded database belongs to one process', () => {
  const dirs: string[] = [];
  const dataDir = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'chatter-lock-'));
    dirs.push(dir);
    return dir;
  };
  afterAll(async () => {
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('makes a second server and `npm run migrate` on a data dir in use exit at once, naming the first process', async () => {
    const dir = await dataDir();
    const first = await startServerProcess({ CHATTER_DATA_DIR: dir, CHATTER_ENV: 'test' }, { timeoutMs: 60_000 });
    try {
      const pid = first.child.pid;
      const lock = JSON.parse(await readFile(join(dir, LOCK_FILE), 'utf8')) as { pid: number; role: string };
      expect(lock).toMatchObject({ pid, role: 'server' });

      const error = await startServerProcess({ CHATTER_DATA_DIR: dir, CHATTER_ENV: 'test' }, { timeoutMs: 30_000 }).then(
        () => new Error('the second server started'),
        (failure: unknown) => failure as Error,
      );
      expect(error.message).toMatch(/^server exited with 1:/);
      expect(error.message).toContain(`is in use by process ${pid} (server: `);
      expect(error.message).toMatch(/src\/server\.ts/);

      const migrate = await runMigrate(dir);
      expect(migrate.code, migrate.output).toBe(1);
      expect(migrate.output).toContain(`is in use by process ${pid} (server: `);
      // The first one still serves, untouched.
      expect((await fetch(`${first.baseUrl}/readyz`)).status).toBe(200);
    } finally {
      expect(await first.stop('SIGTERM')).toBe(0);
    }
    // A clean exit releases the lock: the next process opens the data dir.
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    const migrate = await runMigrate(dir);
    expect(migrate.code, migrate.output).toBe(0);
    expect(migrate.output).toMatch(/^pglite: 0 migration\(s\) applied/);
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  }, 120_000);

  it('takes over the lock of a process that died without releasing it', async () => {
    const dir = await dataDir();
    const stale = { pid: deadPid(), host: hostname(), role: 'server', started_at: '2020-01-01T00:00:00.000Z' };
    await writeFile(join(dir, LOCK_FILE), JSON.stringify(stale));
    const migrate = await runMigrate(dir);
    expect(migrate.code, migrate.output).toBe(0);
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  }, 60_000);

  it('refuses a second lock in one process and gives it once released', async () => {
    const dir = await dataDir();
    const lock = await lockDataDir(dir, 'test');
    await expect(lockDataDir(dir, 'test')).rejects.toThrow(DataDirInUseError);
    await expect(lockDataDir(dir, 'test')).rejects.toThrow(/in use by this process/);
    await lock.release();
    const again = await lockDataDir(dir, 'test');
    await again.release();
    await again.release();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  });
});
