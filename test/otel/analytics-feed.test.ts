import { describe, expect, it } from 'vitest';
import { createAnalyticsFeed, type RunCompletedEvent } from '../../src/analytics/analytics-feed.js';

const event = (userId: string, runId: string): RunCompletedEvent => ({
  type: 'run_completed',
  run_id: runId,
  user_id: userId,
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

describe('createAnalyticsFeed', () => {
  it('keeps only the newest events of a slow subscriber and counts the dropped ones', () => {
    const feed = createAnalyticsFeed({ maxQueue: 3 });
    const slow = feed.subscribe({ userId: 'user-a' });
    for (const runId of ['r1', 'r2', 'r3', 'r4', 'r5']) feed.publish(event('user-a', runId));
    expect(slow.poll().map((received) => received.run_id)).toEqual(['r3', 'r4', 'r5']);
    expect(slow.dropped()).toBe(2);
    expect(slow.poll()).toEqual([]);
  });

  it('streams a user’s events through async iteration until the subscription closes', async () => {
    const feed = createAnalyticsFeed();
    const subscription = feed.subscribe({ userId: 'user-a' });
    const received: string[] = [];
    const consuming = (async () => {
      for await (const next of subscription) received.push(next.run_id);
    })();
    feed.publish(event('user-a', 'r1'));
    feed.publish(event('user-b', 'r2'));
    await Promise.resolve();
    feed.publish(event('user-a', 'r3'));
    await new Promise((resolve) => setImmediate(resolve));
    subscription.close();
    await consuming;
    expect(received).toEqual(['r1', 'r3']);
    expect(feed.subscriberCount()).toBe(0);
    feed.publish(event('user-a', 'r4')); // after close: goes nowhere
    expect(subscription.poll()).toEqual([]);
  });

  it('stops delivering to a subscriber that leaves a for-await loop early', async () => {
    const feed = createAnalyticsFeed();
    const subscription = feed.subscribe({ allUsers: true });
    feed.publish(event('user-a', 'r1'));
    feed.publish(event('user-b', 'r2'));
    for await (const next of subscription) {
      expect(next.run_id).toBe('r1');
      break;
    }
    expect(feed.subscriberCount()).toBe(0);
  });
});
