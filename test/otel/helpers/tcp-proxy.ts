import { createServer, connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A real TCP proxy in front of PostgreSQL (or the PGlite socket server) that can play a
 * network failure: refuse connections while "down", or let a COMMIT reach the server
 * and then cut the connection before its reply gets back — the one failure where the
 * client cannot know whether its transaction committed.
 */
export type TcpProxy = {
  readonly port: number;
  /** `url` with host and port replaced by the proxy's. */
  readonly urlThrough: (url: string) => string;
  /** Resolves once a COMMIT went through and its reply was swallowed. */
  readonly cutAfterNextCommit: () => Promise<void>;
  readonly setDown: (down: boolean) => void;
  readonly close: () => Promise<void>;
};

const COMMIT = Buffer.from('COMMIT');

export const createTcpProxy = async (target: { host: string; port: number }): Promise<TcpProxy> => {
  const sockets = new Set<Socket>();
  let down = false;
  let armed: (() => void) | undefined;

  const server = createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const upstream = connect(target.port, target.host);
    sockets.add(client);
    sockets.add(upstream);
    let cutOnReply: (() => void) | undefined;
    const destroyBoth = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('data', (chunk: Buffer) => {
      if (armed !== undefined && chunk.includes(COMMIT)) {
        cutOnReply = armed;
        armed = undefined;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (cutOnReply !== undefined) {
        const done = cutOnReply;
        cutOnReply = undefined;
        destroyBoth();
        done();
        return;
      }
      client.write(chunk);
    });
    client.on('error', destroyBoth);
    upstream.on('error', destroyBoth);
    client.on('close', destroyBoth);
    upstream.on('close', destroyBoth);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    port,
    urlThrough: (url) => {
      const parsed = new URL(url);
      parsed.hostname = '127.0.0.1';
      parsed.port = String(port);
      return parsed.toString();
    },
    cutAfterNextCommit: () =>
      new Promise<void>((resolve) => {
        armed = resolve;
      }),
    setDown: (value) => {
      down = value;
      if (value) {
        for (const socket of sockets) socket.destroy();
        sockets.clear();
      }
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
};

/** The host and port a postgres:// URL points at. */
export const targetOf = (url: string): { host: string; port: number } => {
  const parsed = new URL(url);
  return { host: parsed.hostname, port: Number(parsed.port || 5432) };
};
