import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * Counts the SQL statements a server sends PostgreSQL, on the wire: a TCP relay between
 * one server process and PostgreSQL that reads the frontend protocol (nothing is
 * changed or delayed beyond the relay itself). A statement is one simple `Query`
 * message or one `Execute` of the extended protocol (what `pg` sends for a parameterised
 * query; BEGIN/COMMIT go as simple queries): what PostgreSQL parses, plans and runs,
 * whichever client library sent it. pg_stat_statements would say the same from the
 * server side, but it needs `shared_preload_libraries` (a restart of a shared server).
 *
 * Statements are grouped by transaction on each connection: a `BEGIN`/`START
 * TRANSACTION` … `COMMIT`/`ROLLBACK` block, or one statement alone. A block that writes
 * the run writer's tables (`applied_runs`, `model_calls`, `tool_calls`, `events`) is a
 * group-commit batch, counted apart (amortised over the runs it carries); everything
 * else is the request path (with the rare background statements: heartbeats, gauges).
 */

export type StatementCounts = {
  /** Statements outside group-commit batches. */
  readonly requestPath: number;
  /** Statements inside group-commit batches (BEGIN and COMMIT included). */
  readonly batch: number;
  readonly batches: number;
  /** Request-path statements by their text (first 90 characters, whitespace collapsed). */
  readonly byText: ReadonlyMap<string, number>;
};

export type StatementCounter = {
  /** Where the server should connect instead of PostgreSQL. */
  readonly port: number;
  readonly counts: () => StatementCounts;
  readonly close: () => Promise<void>;
};

const BATCH_TABLES = /\b(applied_runs|model_calls|tool_calls|events)\b/i;
const BEGIN = /^\s*(BEGIN|START TRANSACTION)\b/i;
const END = /^\s*(COMMIT|ROLLBACK|END)\b/i;

const normalise = (text: string): string => text.replace(/\s+/g, ' ').trim().slice(0, 90);

/** Reads NUL-terminated strings from a protocol message body. */
const cString = (body: Buffer, offset: number): [string, number] => {
  const end = body.indexOf(0, offset);
  const stop = end < 0 ? body.length : end;
  return [body.toString('utf8', offset, stop), stop + 1];
};

/** Relays 127.0.0.1:<port> to `target`, counting what goes to PostgreSQL. */
export const startStatementCounter = async (target: { host: string; port: number }): Promise<StatementCounter> => {
  let requestPath = 0;
  let batch = 0;
  let batches = 0;
  const byText = new Map<string, number>();
  const sockets = new Set<Socket>();

  const settle = (statements: readonly string[], inBlock: boolean): void => {
    if (inBlock && statements.some((text) => BATCH_TABLES.test(text))) {
      batch += statements.length;
      batches += 1;
      return;
    }
    requestPath += statements.length;
    for (const text of statements) {
      const key = normalise(text);
      byText.set(key, (byText.get(key) ?? 0) + 1);
    }
  };

  const relay = (client: Socket): void => {
    const upstream = createConnection(target);
    sockets.add(client);
    sockets.add(upstream);
    const prepared = new Map<string, string>();
    const portals = new Map<string, string>();
    let pending: Buffer = Buffer.alloc(0);
    let started = false;
    let block: string[] | null = null;

    const statement = (text: string): void => {
      if (block === null) {
        if (BEGIN.test(text)) {
          block = [text];
        } else {
          settle([text], false);
        }
        return;
      }
      block.push(text);
      if (END.test(text)) {
        settle(block, true);
        block = null;
      }
    };

    const parse = (): void => {
      for (;;) {
        if (!started) {
          // The startup packet (and an SSL/GSS request before it) has no type byte.
          if (pending.length < 4) return;
          const length = pending.readInt32BE(0);
          if (pending.length < length) return;
          const code = pending.readInt32BE(4);
          pending = pending.subarray(length);
          if (code !== 80877103 && code !== 80877104) started = true;
          continue;
        }
        if (pending.length < 5) return;
        const length = pending.readInt32BE(1);
        if (pending.length < length + 1) return;
        const type = String.fromCharCode(pending[0]!);
        const body = pending.subarray(5, length + 1);
        pending = pending.subarray(length + 1);
        if (type === 'Q') {
          statement(cString(body, 0)[0]);
        } else if (type === 'P') {
          const [name, next] = cString(body, 0);
          prepared.set(name, cString(body, next)[0]);
        } else if (type === 'B') {
          const [portal, next] = cString(body, 0);
          portals.set(portal, prepared.get(cString(body, next)[0]) ?? '?');
        } else if (type === 'E') {
          statement(portals.get(cString(body, 0)[0]) ?? '?');
        }
      }
    };

    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      parse();
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  };

  const server: Server = createServer(relay);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    port,
    counts: () => ({ requestPath, batch, batches, byText: new Map(byText) }),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
};

/** The counts between two readings. */
export const statementDelta = (before: StatementCounts, after: StatementCounts): StatementCounts => {
  const byText = new Map<string, number>();
  for (const [text, count] of after.byText) {
    const delta = count - (before.byText.get(text) ?? 0);
    if (delta > 0) byText.set(text, delta);
  }
  return {
    requestPath: after.requestPath - before.requestPath,
    batch: after.batch - before.batch,
    batches: after.batches - before.batches,
    byText,
  };
};
