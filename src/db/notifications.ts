import { EventEmitter } from 'node:events';
import pg from 'pg';
import { sql, type DatabasePool, type DatabaseTransactionConnection } from 'slonik';
import type { Logger } from 'pino';
import type { Database } from './database.js';

/** Announces new rows of `events` (payload: the highest new `seq`). */
export const EVENTS_CHANNEL = 'chatter_events';

/** PostgreSQL refuses NOTIFY payloads of 8000 bytes or more. */
export const MAX_NOTIFY_PAYLOAD_BYTES = 7_900;

export type NotificationHandler = (payload: string) => void;

/** Sends a notification from inside `Notifier.transaction`: delivered only if it commits. */
export type Notify = (channel: string, payload: string) => void;

/**
 * Notifications between instances: `LISTEN`/`NOTIFY` on PostgreSQL, delivered at commit
 * to every instance's listeners (this one included); on the embedded database (which
 * belongs to one process) an in-process emitter with the same rules.
 * A payload names rows (ids, sequence numbers); the rows are the truth, so a listener
 * that missed notifications (a reconnect) catches up by reading them (`onReconnect`).
 */
export type Notifier = {
  /** Calls `handler` with each payload sent on `channel`; resolves once listening. */
  readonly listen: (channel: string, handler: NotificationHandler) => Promise<() => void>;
  /**
   * Runs `work` in one transaction of `pool`; what it sends with `notify` is delivered
   * when (and only if) the transaction commits, with no extra transaction.
   */
  readonly transaction: <T>(pool: DatabasePool, work: (tx: DatabaseTransactionConnection, notify: Notify) => Promise<T>) => Promise<T>;
  /** Called after the listening connection was lost and is back (notifications may have been missed). */
  readonly onReconnect: (handler: () => void) => () => void;
  readonly close: () => Promise<void>;
};

const checkPayload = (channel: string, payload: string): void => {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(channel)) {
    throw new Error(`invalid notification channel ${JSON.stringify(channel)}`);
  }
  if (Buffer.byteLength(payload) > MAX_NOTIFY_PAYLOAD_BYTES) {
    throw new Error(`notification payload on ${channel} is ${Buffer.byteLength(payload)} bytes (limit ${MAX_NOTIFY_PAYLOAD_BYTES})`);
  }
};

/** The in-process notifier of the embedded database (and of tests without a server). */
export const createLocalNotifier = (): Notifier => {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  return {
    listen: async (channel, handler) => {
      emitter.on(channel, handler);
      return () => emitter.off(channel, handler);
    },
    transaction: async (pool, work) => {
      const pending: [string, string][] = [];
      const result = await pool.transaction((tx) =>
        work(tx, (channel, payload) => {
          checkPayload(channel, payload);
          pending.push([channel, payload]);
        }),
      );
      // As PostgreSQL does: after the commit, never inside the caller's stack.
      queueMicrotask(() => {
        for (const [channel, payload] of pending) emitter.emit(channel, payload);
      });
      return result;
    },
    onReconnect: () => () => {},
    close: async () => {
      emitter.removeAllListeners();
    },
  };
};

export type PostgresNotifierOptions = {
  readonly connectionUri: string;
  readonly logger: Logger;
  /** First delay before reconnecting the listening connection; doubles up to 10 s. */
  readonly reconnectBaseMs?: number;
};

/**
 * One dedicated connection per process LISTENs on every channel in use (slonik's pool
 * hands connections back, which would drop a LISTEN); it reconnects with backoff and
 * re-LISTENs. Sending goes through the caller's own transaction (`pg_notify`).
 */
export const createPostgresNotifier = (options: PostgresNotifierOptions): Notifier => {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  const reconnects = new EventEmitter();
  reconnects.setMaxListeners(0);
  const channels = new Map<string, number>();
  let client: pg.Client | undefined;
  let connecting: Promise<pg.Client> | undefined;
  let closed = false;
  let retryMs = options.reconnectBaseMs ?? 250;
  let retryTimer: NodeJS.Timeout | undefined;

  const quote = (channel: string) => `"${channel}"`;

  const connect = (): Promise<pg.Client> => {
    if (client !== undefined) return Promise.resolve(client);
    connecting ??= (async () => {
      const next = new pg.Client({
        connectionString: options.connectionUri,
        keepAlive: true,
        keepAliveInitialDelayMillis: 10_000,
        connectionTimeoutMillis: 5_000,
        application_name: 'chatter-listener',
      });
      next.on('notification', (message) => emitter.emit(message.channel, message.payload ?? ''));
      next.on('error', (error) => {
        options.logger.warn({ err: error }, 'notification connection failed; reconnecting');
        lost(next);
      });
      next.on('end', () => lost(next));
      try {
        await next.connect();
        for (const channel of channels.keys()) await next.query(`LISTEN ${quote(channel)}`);
      } catch (error) {
        next.removeAllListeners('end');
        await next.end().catch(() => undefined);
        throw error;
      }
      client = next;
      retryMs = options.reconnectBaseMs ?? 250;
      return next;
    })().finally(() => {
      connecting = undefined;
    });
    return connecting;
  };

  const lost = (which: pg.Client): void => {
    if (client !== which && client !== undefined) return;
    client = undefined;
    which.removeAllListeners('end');
    which.end().catch(() => undefined);
    scheduleReconnect();
  };

  const scheduleReconnect = (): void => {
    if (closed || retryTimer !== undefined || channels.size === 0) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      connect().then(
        () => reconnects.emit('reconnect'),
        (error: unknown) => {
          options.logger.warn({ err: error }, 'notification connection still down');
          retryMs = Math.min(retryMs * 2, 10_000);
          scheduleReconnect();
        },
      );
    }, retryMs);
    retryTimer.unref();
  };

  return {
    listen: async (channel, handler) => {
      checkPayload(channel, '');
      emitter.on(channel, handler);
      const count = channels.get(channel) ?? 0;
      channels.set(channel, count + 1);
      if (count === 0) {
        try {
          const connection = client ?? (await connect());
          // connect() LISTENs on every known channel itself when it makes a new client.
          if (connection === client) await connection.query(`LISTEN ${quote(channel)}`);
        } catch (error) {
          options.logger.warn({ err: error }, 'cannot LISTEN yet; will retry');
          scheduleReconnect();
        }
      }
      return () => {
        emitter.off(channel, handler);
        const left = (channels.get(channel) ?? 1) - 1;
        if (left > 0) {
          channels.set(channel, left);
          return;
        }
        channels.delete(channel);
        client?.query(`UNLISTEN ${quote(channel)}`).catch(() => undefined);
      };
    },
    transaction: (pool, work) =>
      pool.transaction(async (tx) => {
        const pending: [string, string][] = [];
        const result = await work(tx, (channel, payload) => {
          checkPayload(channel, payload);
          pending.push([channel, payload]);
        });
        if (pending.length > 0) {
          await tx.query(sql.unsafe`
            SELECT pg_notify(n.channel, n.payload)
            FROM ${sql.unnest(pending, ['text', 'text'])} AS n(channel, payload)`);
        }
        return result;
      }),
    onReconnect: (handler) => {
      reconnects.on('reconnect', handler);
      return () => reconnects.off('reconnect', handler);
    },
    close: async () => {
      closed = true;
      clearTimeout(retryTimer);
      emitter.removeAllListeners();
      reconnects.removeAllListeners();
      const current = client;
      client = undefined;
      if (current !== undefined) {
        current.removeAllListeners('end');
        await current.end().catch(() => undefined);
      }
    },
  };
};

/** The notifier for `db`: PostgreSQL's LISTEN/NOTIFY, or in-process for the embedded database. */
export const createNotifier = (db: Pick<Database, 'kind' | 'connectionUri'>, logger: Logger): Notifier =>
  db.kind === 'pglite' ? createLocalNotifier() : createPostgresNotifier({ connectionUri: db.connectionUri, logger });
