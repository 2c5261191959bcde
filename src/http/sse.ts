import type { FastifyReply, FastifyRequest } from 'fastify';

/** Why a stream ended: the client went away, it read too slowly, or the server ended it. */
export type EventStreamCloseReason = 'client_gone' | 'too_slow' | 'ended';

export type EventStream = {
  /**
   * Writes one event: `event:` and `id:` lines when given, then the data (a string as is,
   * anything else as JSON) as `data:` lines, then a blank line. False once the stream is
   * closed, including when this write put it past its buffer bound.
   */
  readonly send: (data: unknown, options?: { readonly event?: string; readonly id?: string | number }) => boolean;
  /** Writes a `: text` comment line (ignored by clients). */
  readonly comment: (text: string) => boolean;
  /**
   * Resolves once the socket has taken what was written (below its high-water mark) or the
   * stream closed: producers that can wait keep their backlog upstream instead of in memory.
   */
  readonly drained: () => Promise<void>;
  /** Ends the response (idempotent). */
  readonly close: () => void;
  readonly closed: () => boolean;
};

export type EventStreamOptions = {
  /** Bytes the socket may hold unsent before the stream gives up on a slow client (default 1 MiB). */
  readonly maxBufferedBytes?: number;
  /** Interval of the `: keep-alive` comments on an idle stream; 0 disables them (default 15 s). */
  readonly keepAliveMs?: number;
  /** Starts the body with a `: connected` comment (default true). */
  readonly connectedComment?: boolean;
  /** The client can resume with Last-Event-ID: the too-slow notice says so. */
  readonly resumable?: boolean;
  /** Called once when the stream ends, whatever ended it. */
  readonly onClose?: (reason: EventStreamCloseReason) => void;
};

const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024;
const DEFAULT_KEEP_ALIVE_MS = 15_000;
const LINE_BREAK = /[\r\n]/;

const dataLines = (data: unknown): string =>
  // JSON.stringify escapes line breaks, so JSON is one line; a string is split per the SSE spec.
  (typeof data === 'string' ? data.split(/\r\n|\r|\n/) : [JSON.stringify(data)]).map((line) => `data: ${line}\n`).join('');

/**
 * Turns the reply into a Server-Sent Events stream: takes it over (`reply.hijack()`),
 * writes the head with the headers set so far (CORS, correlation id, rate limits) plus the
 * event-stream ones, and from then on owns the raw response.
 *
 * Back-pressure: a producer that can wait awaits `drained()` after writing; one that
 * cannot (tokens of a running model, events pushed by a hub) writes on, and a client that
 * lets more than `maxBufferedBytes` pile up unsent is told so in a comment and
 * disconnected (`onClose('too_slow')`), so a slow reader never holds unbounded memory.
 * Keep-alive comments go out only on an idle socket.
 *
 * @throws TypeError from `send` when an event name or id holds a line break (it would
 * split the event).
 */
export const openEventStream = (reply: FastifyReply, options: EventStreamOptions = {}): EventStream => {
  const maxBuffered = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
  const keepAliveMs = options.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS;
  const raw = reply.raw;
  reply.hijack();
  raw.writeHead(200, {
    ...(reply.getHeaders() as Record<string, string | string[]>),
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });

  let closed = false;
  let keepAlive: NodeJS.Timeout | undefined;
  const waiting = new Set<() => void>();
  const wakeWaiting = (): void => {
    for (const resume of waiting) resume();
    waiting.clear();
  };
  const close = (reason: EventStreamCloseReason): void => {
    if (closed) return;
    closed = true;
    clearInterval(keepAlive);
    raw.off('drain', wakeWaiting);
    wakeWaiting();
    if (!raw.writableEnded) raw.end();
    options.onClose?.(reason);
  };
  const write = (text: string): boolean => {
    if (closed || raw.writableEnded || raw.destroyed) return false;
    raw.write(text);
    if (raw.writableLength > maxBuffered) {
      raw.write(`: too slow, disconnecting${options.resumable === true ? '; resume with Last-Event-ID' : ''}\n\n`);
      close('too_slow');
      return false;
    }
    return true;
  };

  raw.on('drain', wakeWaiting);
  raw.once('close', () => close('client_gone'));
  if (keepAliveMs > 0) {
    keepAlive = setInterval(() => {
      // Pending data keeps the connection busy anyway.
      if (!raw.writableNeedDrain) write(': keep-alive\n\n');
    }, keepAliveMs);
    keepAlive.unref();
  }
  if (options.connectedComment !== false) write(': connected\n\n');

  return {
    send: (data, sendOptions = {}) => {
      let text = '';
      if (sendOptions.event !== undefined) {
        if (LINE_BREAK.test(sendOptions.event)) throw new TypeError('an SSE event name cannot hold a line break');
        text += `event: ${sendOptions.event}\n`;
      }
      if (sendOptions.id !== undefined) {
        if (LINE_BREAK.test(String(sendOptions.id))) throw new TypeError('an SSE event id cannot hold a line break');
        text += `id: ${sendOptions.id}\n`;
      }
      return write(`${text}${dataLines(data)}\n`);
    },
    comment: (text) => write(`: ${text.replace(/\r\n|\r|\n/g, ' ')}\n\n`),
    drained: () => (closed || !raw.writableNeedDrain ? Promise.resolve() : new Promise<void>((resolve) => waiting.add(resolve))),
    close: () => close('ended'),
    closed: () => closed,
  };
};

/** The `Last-Event-ID` header a reconnecting client sent, if any (the route validates its form). */
export const lastEventIdOf = (request: FastifyRequest): string | undefined => {
  const header = request.headers['last-event-id'];
  return typeof header === 'string' ? header.trim() : undefined;
};
