import { appendFile } from 'node:fs/promises';
import type { RunRecord } from '../../otel/processors/run-record.js';

/**
 * Appends records to a run-record spool file without the writer, in the writer's format
 * (one JSON record a line): a test's stand-in for a process that crashed right after its
 * spool write.
 */
export const appendToSpool = (path: string, records: readonly RunRecord[]): Promise<void> =>
  appendFile(path, records.map((record) => `${JSON.stringify(record)}\n`).join(''));
