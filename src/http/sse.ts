import type { FastifyReply } from 'fastify';

export type EventStream = {
  /** Queues one event; false once the stream is closed. */
  readonly send: (data: unknown, options?: { event?: string; id?: string | number }) => boolean;
  readonly comment: (text: string) => void;
  readonly close: () => void;
  readonly closed: () => boolean;
};

export type EventStreamOptions = {
  /** Bytes the socket may hold unsent before the stream gives up on a slow client. */
  readonly maxBufferedBytes?: number;
  /** Keep-alive comment interval; 0 disables it. */
  readonly keepAliveMs?: number;
  readonly onClose?: () => void;
};

/**
 * Turns the reply into a Server-Sent Events stream (headers set so far — CORS,
 * correlation id — are kept). A client that reads too slowly is disconnected once
 * `maxBufferedBytes` are waiting; it resumes with Last-Event-ID.
 */
export const openEventStream = (reply: FastifyReply, options: EventStreamOptions = {}): EventStream => {
  const maxBuffered = options.maxBufferedBytes ?? 1024 * 1024;
  const raw = reply.raw;
  reply.hijack();
  raw.writeHead(200, {
    ...(reply.getHeaders() as Record<string, string>),
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  let closed = false;
  const close = () => {
    if (closed) {
      return;
    }
    closed = true;
    clearInterval(keepAlive);
    if (!raw.writableEnded) {
      raw.end();
    }
    options.onClose?.();
  };
  const write = (text: string): boolean => {
    if (closed) {
      return false;
    }
    raw.write(text);
    if (raw.writableLength > maxBuffered) {
      raw.write(': too slow, disconnecting; resume with Last-Event-ID\n\n');
      close();
      return false;
    }
    return true;
  };
  const keepAlive = setInterval(() => write(': keep-alive\n\n'), options.keepAliveMs ?? 15_000);
  keepAlive.unref();
  if ((options.keepAliveMs ?? 15_000) === 0) {
    clearInterval(keepAlive);
  }
  raw.on('close', close);
  write(': connected\n\n');
  return {
    send: (data, sendOptions = {}) => {
      let text = '';
      if (sendOptions.event !== undefined) text += `event: ${sendOptions.event}\n`;
      if (sendOptions.id !== undefined) text += `id: ${sendOptions.id}\n`;
      text += `data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
      return write(text);
    },
    comment: (text) => void write(`: ${text}\n\n`),
    close,
    closed: () => closed,
  };
};
