import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { openDatabase, type Database } from '../../src/db/database.js';
import { createEmptyTestDatabase } from './database.js';

/** Where a server process keeps its data, how to read it once the process is gone, and the clean-up. */
export type ServerDatabase = {
  readonly env: Record<string, string>;
  readonly open: () => Promise<Database>;
  readonly cleanup: () => Promise<void>;
};

/**
 * The database for a server process of a test: a fresh PostgreSQL database when
 * DATABASE_URL is set, else a PGlite folder of its own (which only one process may open
 * at a time: read it with `open` after the server stopped).
 */
export const databaseForServer = async (prefix = 'chatter-server-'): Promise<ServerDatabase> => {
  if (loadConfig().database.url !== undefined) {
    const db = await createEmptyTestDatabase(1);
    await db.close();
    return {
      env: { DATABASE_URL: db.url },
      open: () => openDatabase({ url: db.url, dataDir: 'memory://', poolSize: 2 }),
      cleanup: db.drop,
    };
  }
  const dataDir = await mkdtemp(join(tmpdir(), prefix));
  return {
    env: { CHATTER_DATA_DIR: dataDir },
    open: () => openDatabase({ dataDir, poolSize: 2 }),
    cleanup: () => rm(dataDir, { recursive: true, force: true }),
  };
};
