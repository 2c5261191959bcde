import { Writable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { describe, expect, it } from 'vitest';
import { createAnalyticsFeed, type RunCompletedEvent } from '../../src/analytics/analytics-feed.js';
import { streamFeedEvents } from '../../src/http/feed-event-stream.js';

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

const fakeReply = (raw: SlowClientResponse) =>
  ({ raw, hijack: () => undefined, getHeaders: () => ({ 'x-correlation-id': 'corr-1' }) }) as unknown as FastifyReply;

const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('streamFeedEvents', () => {
  it('leaves a slow client’s backlog to the bounded feed queue and tells it how many events it lost', async () => {
    const feed = createAnalyticsFeed({ maxQueue: 2 });
    const subscription = feed.subscribe({ userId: 'user-a' });
    const raw = new SlowClientResponse();
    const done = streamFeedEvents({ reply: fakeReply(raw), subscription, keepAliveMs: 60_000 });
    expect(raw.head).toMatchObject({ status: 200, headers: { 'content-type': 'text/event-stream; charset=utf-8', 'x-correlation-id': 'corr-1' } });

    feed.publish(event('r1')); // written; the socket is now over its high-water mark
    await settle();
    for (const runId of ['r2', 'r3', 'r4', 'r5', 'r6']) feed.publish(event(runId));
    await settle();
    expect(raw.text).not.toContain('r2');
    raw.release();
    await settle();

    const blocks = raw.text.split('\n\n').filter((block) => block !== '');
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

  it('ends the response when the subscription closes, and writes keep-alives while idle', async () => {
    const feed = createAnalyticsFeed();
    const subscription = feed.subscribe({ allUsers: true });
    const raw = new SlowClientResponse();
    raw.release();
    const done = streamFeedEvents({ reply: fakeReply(raw), subscription, keepAliveMs: 10 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(raw.text.startsWith(': connected\n\n: keep-alive\n\n')).toBe(true);
    subscription.close();
    await done;
    expect(raw.writableEnded).toBe(true);
  });
});
