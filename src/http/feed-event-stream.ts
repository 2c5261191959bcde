import type { FastifyReply } from 'fastify';
import type { AnalyticsFeedEvent, FeedSubscription } from '../analytics/analytics-feed.js';

export type FeedEventStreamOptions = {
  readonly reply: FastifyReply;
  readonly subscription: FeedSubscription;
  /** Interval of the comment lines that keep an idle stream open through proxies. */
  readonly keepAliveMs: number;
};

const eventBlock = (event: AnalyticsFeedEvent): string =>
  // JSON.stringify escapes newlines, so the payload is one `data:` line.
  `event: ${event.type}\nid: ${event.run_id}\ndata: ${JSON.stringify(event)}\n\n`;

/**
 * Sends a feed subscription as Server-Sent Events: `: connected`, then one
 * `event:`/`id:`/`data:` block per event, a `: keep-alive` comment every `keepAliveMs`,
 * and an `event: dropped` block (`{"dropped": n}`) before the next event when the
 * subscriber's bounded queue lost events. Writes wait for the socket to drain, so a
 * slow client's backlog stays in the feed's bounded queue, not in socket buffers.
 *
 * Takes over the reply (`reply.hijack()`), keeping the headers set so far (CORS,
 * correlation id). Resolves once the stream is over: the client went away (the
 * subscription is then closed) or the subscription was closed (the response is then
 * ended).
 */
export const streamFeedEvents = async ({ reply, subscription, keepAliveMs }: FeedEventStreamOptions): Promise<void> => {
  const raw = reply.raw;
  reply.hijack();
  raw.writeHead(200, {
    ...(reply.getHeaders() as Record<string, string | string[]>),
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  let open = true;
  raw.once('close', () => {
    open = false;
    subscription.close(); // ends the loop below
  });
  const drained = (): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        raw.off('drain', done);
        raw.off('close', done);
        resolve();
      };
      raw.on('drain', done);
      raw.on('close', done);
    });
  const write = async (chunk: string): Promise<void> => {
    if (open && !raw.writableEnded && !raw.write(chunk)) {
      await drained();
    }
  };
  const keepAlive = setInterval(() => {
    // Only on an idle socket: pending data keeps the connection busy anyway.
    if (open && !raw.writableEnded && !raw.writableNeedDrain) raw.write(': keep-alive\n\n');
  }, keepAliveMs);
  try {
    await write(': connected\n\n');
    let reportedDrops = 0;
    for (;;) {
      const next = await subscription.next();
      if (next.done === true) break;
      const dropped = subscription.dropped();
      if (dropped > reportedDrops) {
        await write(`event: dropped\ndata: ${JSON.stringify({ dropped: dropped - reportedDrops })}\n\n`);
        reportedDrops = dropped;
      }
      await write(eventBlock(next.value));
    }
  } finally {
    clearInterval(keepAlive);
    subscription.close();
    if (open && !raw.writableEnded) raw.end();
  }
};
