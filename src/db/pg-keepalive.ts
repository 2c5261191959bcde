import { createRequire } from 'node:module';

type PgClient = { connection?: { stream?: { setKeepAlive?: (enable: boolean, initialDelayMs: number) => unknown } } };
type PgClientClass = { prototype: { connect: (...args: unknown[]) => unknown } & Record<symbol, unknown> };

const PATCHED = Symbol.for('chatter.pgKeepAlive');

/** The `pg` that slonik's driver loads (a dependency of @slonik/pg-driver, not of ours). */
const driverPg = (): { Client: PgClientClass } => {
  const driverPackage = createRequire(import.meta.url).resolve('@slonik/pg-driver/package.json');
  return createRequire(driverPackage)('pg') as { Client: PgClientClass };
};

/**
 * Turns TCP keepalives on for every PostgreSQL connection slonik opens. slonik builds
 * the `pg` client's configuration itself and passes no `keepAlive`, so the socket is
 * set up here, just before `Client#connect` opens it (Node applies a keepalive set on
 * a socket that is not connected yet once it connects). Without keepalives an idle
 * connection to a server behind a dead link is never noticed.
 */
export const enablePgKeepAlive = (initialDelayMs: number): void => {
  const { Client } = driverPg();
  const prototype = Client.prototype;
  if (prototype[PATCHED] !== undefined) {
    prototype[PATCHED] = initialDelayMs;
    return;
  }
  prototype[PATCHED] = initialDelayMs;
  const connect = prototype.connect;
  prototype.connect = function (this: PgClient, ...args: unknown[]) {
    this.connection?.stream?.setKeepAlive?.(true, prototype[PATCHED] as number);
    return connect.apply(this, args);
  };
};
