import { createConnection } from 'node:net';

/** Where the suite finds Redis: `REDIS_URL`, else the local server on the default port. */
const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';

const answersPing = (url: string): Promise<boolean> =>
  new Promise((resolve) => {
    const { hostname, port } = new URL(url);
    const socket = createConnection({ host: hostname, port: Number(port || 6379) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
  });

/**
 * Redis for the tests that need it. Missing locally, they are skipped with this reason;
 * in CI (`CI=true`) a missing Redis fails the suite instead (`.ci/run` starts one).
 */
export const redisAvailability = async (): Promise<{ url: string | undefined; reason: string }> => {
  if (await answersPing(REDIS_URL)) return { url: REDIS_URL, reason: '' };
  const reason = `needs Redis at ${REDIS_URL} (set REDIS_URL); skipped locally, required in CI`;
  if (process.env['CI'] === 'true') throw new Error(`CI=true: ${reason}`);
  return { url: undefined, reason };
};
