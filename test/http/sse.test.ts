import { Writable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { describe, expect, it } from 'vitest';
import { createAnalyticsFeed, type RunCompletedEvent } from '../../src/analytics/analytics-feed.js';
import { openEventStream, type EventStreamCloseReason } from '../../src/http/sse.js';
import { streamFeedEvents } from '../../src/routes/analytics.js';

const event = (runId: string): RunCompletedEvent => ({
  type: 'run_completed',
  run_id: runId,
  user_id: 'user-a',
  conversation_id: null,
  workflow: 'chat',
  status: 'completed',
  provider: 'openai',
  model: 'gpt-4o-mini',
  tokens: { input: 1, cache_read: 0, cache_write: 0, output: 1, reasoning: 0, total: 2 },
  cost: 0.000001,
  duration_ms: 10,
  at: '2026-03-02T10:00:00.000Z',
});

/** A response whose client reads only when told to: writes pile up until `release()`. */
class SlowClientResponse extends Writable {
  text = '';
  head: { status: number; headers: Record<string, unknown> } | undefined;
  private held: (() => void)[] = [];
  private reading = false;

  constructor() {
    super({ highWaterMark: 64, decodeStrings: false });
  }

  writeHead(status: number, headers: Record<string, unknown>): this {
    this.head = { status, headers };
    return this;
  }

  override _write(chunk: string, _encoding: BufferEncoding, callback: () => void): void {
    this.text += chunk;
    if (this.reading) callback();
    else this.held.push(callback);
  }

  release(): void {
    this.reading = true;
    for (const callback of this.held.splice(0)) callback();
  }
}

const fakeReply = (raw: SlowClientResponse) => {
  let hijacked = false;
  const reply = {
    raw,
    hijack: () => {
      hijacked = true;
    },
    getHeaders: () => ({ 'x-correlation-id': 'corr-1', vary: 'Origin' }),
  } as unknown as FastifyReply;
  return { reply, hijacked: () => hijacked };
};

const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

const blocksOf = (text: string) => text.split('\n\n').filter((block) => block !== '');

describe('openEventStream', () => {
  it('takes over the reply with the headers set so far plus the event-stream ones, in that order', () => {
    const raw = new SlowClientResponse();
    const { reply, hijacked } = fakeReply(raw);
    openEventStream(reply, { keepAliveMs: 0 });
    expect(hijacked()).toBe(true);
    expect(raw.head?.status).toBe(200);
    expect(Object.entries(raw.head?.headers ?? {})).toEqual([
      ['x-correlation-id', 'corr-1'],
      ['vary', 'Origin'],
      ['content-type', 'text/event-stream; charset=utf-8'],
      ['cache-control', 'no-cache, no-transform'],
      ['connection', 'keep-alive'],
      ['x-accel-buffering', 'no'],
    ]);
    expect(raw.text).toBe(': connected\n\n');
  });

  it('writes event, id and data lines, strings as is and split per line, anything else as one JSON line', () => {
    const raw = new SlowClientResponse();
    raw.release();
    const stream = openEventStream(fakeReply(raw).reply, { keepAliveMs: 0, connectedComment: false });
    expect(stream.send({ type: 'start', text: 'a\nb' })).toBe(true);
    stream.send({ seq: 7 }, { event: 'workflow_started', id: 7 });
    stream.send('two\nlines');
    stream.send('[DONE]');
    stream.comment('note');
    expect(raw.text).toBe(
      'data: {"type":"start","text":"a\\nb"}\n\n' +
        'event: workflow_started\nid: 7\ndata: {"seq":7}\n\n' +
        'data: two\ndata: lines\n\n' +
        'data: [DONE]\n\n' +
        ': note\n\n',
    );
    expect(() => stream.send({}, { event: 'bad\nname' })).toThrow(TypeError);
    expect(() => stream.send({}, { id: 'bad\rid' })).toThrow(TypeError);
  });

  it('disconnects a client that lets more than the bound pile up, once, and writes nothing after', () => {
    const raw = new SlowClientResponse();
    const reasons: EventStreamCloseReason[] = [];
    const stream = openEventStream(fakeReply(raw).reply, {
      keepAliveMs: 0,
      maxBufferedBytes: 200,
      resumable: true,
      onClose: (reason) => reasons.push(reason),
    });
    let sent = 0;
    while (stream.send({ n: sent, pad: 'x'.repeat(40) }, { id: sent })) sent += 1;
    expect(sent).toBeGreaterThan(0);
    expect(stream.closed()).toBe(true);
    expect(reasons).toEqual(['too_slow']);
    expect(raw.writableEnded).toBe(true);
    raw.release();
    expect(raw.text.endsWith(': too slow, disconnecting; resume with Last-Event-ID\n\n')).toBe(true);
    expect(stream.send({ late: true })).toBe(false);
    stream.close();
    raw.emit('close');
    expect(reasons).toEqual(['too_slow']);
  });

  it('tells the owner once when the client goes away, and resolves drained() then', async () => {
    const raw = new SlowClientResponse();
    const reasons: EventStreamCloseReason[] = [];
    const stream = openEventStream(fakeReply(raw).reply, { keepAliveMs: 0, onClose: (reason) => reasons.push(reason) });
    stream.send({ pad: 'x'.repeat(100) }); // over the 64-byte high-water mark: drained() waits
    let drained = false;
    void stream.drained().then(() => (drained = true));
    await settle();
    expect(drained).toBe(false);
    raw.emit('close');
    await settle();
    expect(drained).toBe(true);
    expect(reasons).toEqual(['client_gone']);
    expect(stream.send({})).toBe(false);
  });

  it('resolves drained() once the client has read what was written', async () => {
    const raw = new SlowClientResponse();
    const stream = openEventStream(fakeReply(raw).reply, { keepAliveMs: 0 });
    stream.send({ pad: 'x'.repeat(100) });
    let drained = false;
    void stream.drained().then(() => (drained = true));
    await settle();
    expect(drained).toBe(false);
    raw.release();
    await settle();
    expect(drained).toBe(true);
    expect(stream.closed()).toBe(false);
    stream.close();
  });

  it('writes keep-alive comments only while the socket is idle', async () => {
    const idle = new SlowClientResponse();
    idle.release();
    const idleStream = openEventStream(fakeReply(idle).reply, { keepAliveMs: 10 });
    const busy = new SlowClientResponse();
    const busyStream = openEventStream(fakeReply(busy).reply, { keepAliveMs: 10 });
    busyStream.send({ pad: 'x'.repeat(100) });
    await new Promise((resolve) => setTimeout(resolve, 60));
    idleStream.close();
    busyStream.close();
    expect(idle.text.startsWith(': connected\n\n: keep-alive\n\n: keep-alive\n\n')).toBe(true);
    expect(busy.text).not.toContain('keep-alive');
  });
});

describe('streamFeedEvents', () => {
  it('leaves a slow client’s backlog to the bounded feed queue and tells it how many events it lost', async () => {
    const feed = createAnalyticsFeed({ maxQueue: 2 });
    const subscription = feed.subscribe({ userId: 'user-a' });
    const raw = new SlowClientResponse();
    const stream = openEventStream(fakeReply(raw).reply, { keepAliveMs: 60_000, onClose: () => subscription.close() });
    const done = streamFeedEvents(stream, subscription);

    feed.publish(event('r1')); // written; the socket is now over its high-water mark
    await settle();
    for (const runId of ['r2', 'r3', 'r4', 'r5', 'r6']) feed.publish(event(runId));
    await settle();
    expect(raw.text).not.toContain('r2');
    raw.release();
    await settle();

    const blocks = blocksOf(raw.text);
    expect(blocks[0]).toBe(': connected');
    expect(blocks.slice(1).map((block) => block.split('\n')[0] + ' ' + (block.split('\n')[1] ?? ''))).toEqual([
      'event: run_completed id: r1',
      'event: dropped data: {"dropped":3}',
      'event: run_completed id: r5',
      'event: run_completed id: r6',
    ]);
    expect(JSON.parse(blocks[1]!.split('\n')[2]!.slice('data: '.length))).toEqual(event('r1'));

    raw.emit('close'); // the client went away
    await done;
    expect(feed.subscriberCount()).toBe(0);
  });

  it('resolves when the subscription closes', async () => {
    const feed = createAnalyticsFeed();
    const subscription = feed.subscribe({ allUsers: true });
    const raw = new SlowClientResponse();
    raw.release();
    const stream = openEventStream(fakeReply(raw).reply, { keepAliveMs: 0 });
    const done = streamFeedEvents(stream, subscription);
    feed.publish(event('r1'));
    await settle();
    subscription.close();
    await done;
    expect(blocksOf(raw.text).map((block) => block.split('\n')[0])).toEqual([': connected', 'event: run_completed']);
  });
});
