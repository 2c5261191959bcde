import { createServer, connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A real TCP proxy in front of PostgreSQL (or the PGlite socket server) that can play a
 * network failure: refuse connections while "down", or let a COMMIT reach the server
 * and then cut the connection before its reply gets back — the one failure where the
 * client cannot know whether its transaction committed — or a silent partition.
 */
export type TcpProxy = {
  readonly port: number;
  /** `url` with host and port replaced by the proxy's. */
  readonly urlThrough: (url: string) => string;
  /** Resolves once a COMMIT went through and its reply was swallowed. */
  readonly cutAfterNextCommit: () => Promise<void>;
  readonly setDown: (down: boolean) => void;
  /**
   * A silent partition: while on, no byte goes through either way and no socket is
   * closed (connections opened meanwhile are accepted and hang); when it ends, what was
   * held back is delivered in order, as TCP does once a link comes back.
   */
  readonly setBlackholed: (blackholed: boolean) => void;
  readonly close: () => Promise<void>;
};

const COMMIT = Buffer.from('COMMIT');

export const createTcpProxy = async (target: { host: string; port: number }): Promise<TcpProxy> => {
  const sockets = new Set<Socket>();
  let down = false;
  let armed: (() => void) | undefined;
  let blackholed = false;
  /** What the cut held back, in order: delivered when it ends, as TCP would after a partition. */
  let held: (() => void)[] = [];
  const unlessBlackholed = (action: () => void) => {
    if (blackholed) held.push(action);
    else action();
  };

  const server = createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    sockets.add(client);
    let upstream: Socket | undefined;
    let cutOnReply: (() => void) | undefined;
    const destroyBoth = () => {
      client.destroy();
      upstream?.destroy();
      sockets.delete(client);
      if (upstream !== undefined) sockets.delete(upstream);
    };
    const connectUpstream = () => {
      if (client.destroyed) return;
      const socket = connect(target.port, target.host);
      upstream = socket;
      sockets.add(socket);
      socket.on('data', (chunk: Buffer) =>
        unlessBlackholed(() => {
          if (cutOnReply !== undefined) {
            const done = cutOnReply;
            cutOnReply = undefined;
            destroyBoth();
            done();
            return;
          }
          client.write(chunk);
        }),
      );
      socket.on('error', () => unlessBlackholed(destroyBoth));
      socket.on('close', () => unlessBlackholed(destroyBoth));
    };
    // A connection opened during a cut reaches the server only once the cut ends.
    unlessBlackholed(connectUpstream);
    client.on('data', (chunk: Buffer) => {
      if (armed !== undefined && chunk.includes(COMMIT)) {
        cutOnReply = armed;
        armed = undefined;
      }
      unlessBlackholed(() => upstream?.write(chunk));
    });
    client.on('error', () => unlessBlackholed(destroyBoth));
    client.on('close', () => unlessBlackholed(destroyBoth));
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
    setBlackholed: (value) => {
      blackholed = value;
      if (!value) {
        const actions = held;
        held = [];
        for (const action of actions) action();
      }
    },
    close: async () => {
      blackholed = false;
      held = [];
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
