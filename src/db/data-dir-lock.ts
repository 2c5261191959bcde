import { link, open, readFile, rename, unlink } from 'node:fs/promises';
import { readFileSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

/** The lock file's name inside CHATTER_DATA_DIR. */
export const LOCK_FILE = 'chatter.lock';

type LockOwner = { pid: number; host: string; role: string; started_at: string };

/** Another process has the embedded database open: its files must not be opened twice. */
export class DataDirInUseError extends Error {
  public readonly owner: LockOwner;

  public constructor(dataDir: string, owner: LockOwner, command: string | undefined) {
    const who =
      owner.pid === process.pid && owner.host === hostname()
        ? 'this process'
        : `process ${owner.pid}${owner.host === hostname() ? '' : ` on host ${owner.host}`} (${owner.role}${command === undefined ? '' : `: ${command}`}, since ${owner.started_at})`;
    super(
      `CHATTER_DATA_DIR ${dataDir} is in use by ${who}: the embedded database belongs to one process. ` +
        'Stop that process first, or give this one another CHATTER_DATA_DIR (or a DATABASE_URL to share a PostgreSQL server).',
    );
    this.name = 'DataDirInUseError';
    this.owner = owner;
  }
}

export type DataDirLock = {
  /** Removes the lock file if it is still this process's. Idempotent. */
  readonly release: () => Promise<void>;
};

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** What the process is, where the system says (Linux `/proc`); undefined elsewhere. */
const commandOf = (pid: number): string | undefined => {
  try {
    const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((part) => part !== '')
      .join(' ');
    return command === '' ? undefined : command.length > 200 ? `${command.slice(0, 200)}…` : command;
  } catch {
    return undefined;
  }
};

const parseOwner = (text: string): LockOwner | null => {
  try {
    const owner = JSON.parse(text) as Partial<LockOwner>;
    return typeof owner.pid === 'number' && Number.isInteger(owner.pid) && owner.pid > 0
      ? { pid: owner.pid, host: owner.host ?? 'unknown', role: owner.role ?? 'unknown', started_at: owner.started_at ?? 'unknown' }
      : null;
  } catch {
    return null;
  }
};

/** A lock whose owner is gone: a process on this host that no longer runs, or a file that says nothing. */
const isStale = (owner: LockOwner | null): boolean => owner === null || (owner.host === hostname() && !isAlive(owner.pid));

const readOwner = async (path: string): Promise<LockOwner | null | undefined> => {
  try {
    return parseOwner(await readFile(path, 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
};

/**
 * Takes the data dir's lock: a file created with O_EXCL holding this process's pid, so
 * of two processes only one can have it. A lock left by a process that died (kill -9, a
 * power cut) is taken over; a live owner's is not.
 *
 * @throws DataDirInUseError naming the owning process when another live process holds it.
 */
export const lockDataDir = async (dataDir: string, role: string): Promise<DataDirLock> => {
  const path = join(dataDir, LOCK_FILE);
  const me: LockOwner = { pid: process.pid, host: hostname(), role, started_at: new Date().toISOString() };
  const content = `${JSON.stringify(me)}\n`;
  for (let attempt = 0; attempt < 5; attempt += 1) {
    try {
      const handle = await open(path, 'wx');
      try {
        await handle.writeFile(content);
        await handle.sync();
      } finally {
        await handle.close();
      }
      return holding(path, content);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = await readOwner(path);
    if (owner === undefined) continue; // released in between: try again
    if (owner !== null && owner.pid === me.pid && owner.host === me.host) {
      throw new DataDirInUseError(dataDir, owner, undefined);
    }
    if (!isStale(owner)) {
      throw new DataDirInUseError(dataDir, owner as LockOwner, commandOf((owner as LockOwner).pid));
    }
    // Stale: move it aside (only one taker's rename succeeds), then check that what was
    // moved is the stale lock and not one a faster taker just wrote.
    const aside = `${path}.stale-${process.pid}`;
    try {
      await rename(path, aside);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    const moved = await readOwner(aside);
    if (moved !== undefined && !isStale(moved ?? null)) {
      // A live lock was moved by mistake: put it back unless someone has taken the path since.
      await link(aside, path).catch(() => {});
      await unlink(aside).catch(() => {});
      throw new DataDirInUseError(dataDir, moved as LockOwner, commandOf((moved as LockOwner).pid));
    }
    await unlink(aside).catch(() => {});
  }
  throw new Error(`could not take the lock ${path}: it keeps changing`);
};

const holding = (path: string, content: string): DataDirLock => {
  let released = false;
  // process.exit() skips async cleanup: remove the lock synchronously on the way out.
  const onExit = () => {
    if (!released) releaseSync();
  };
  const stillOurs = (text: string) => text === content;
  const releaseSync = () => {
    released = true;
    try {
      if (stillOurs(readFileSync(path, 'utf8'))) unlinkSync(path);
    } catch {
      // already gone
    }
  };
  process.once('exit', onExit);
  return {
    release: async () => {
      if (released) return;
      released = true;
      process.removeListener('exit', onExit);
      try {
        if (stillOurs(await readFile(path, 'utf8'))) await unlink(path);
      } catch {
        // already gone
      }
    },
  };
};
