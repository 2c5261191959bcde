import { diag } from '@opentelemetry/api';
import type { RunCompletedEvent } from '../../otel/processors/analytics-span-processor.js';

export type { RunCompletedEvent } from '../../otel/processors/analytics-span-processor.js';

export type AnalyticsFeedEvent = RunCompletedEvent;

/** Whose events a subscriber receives: one user's, or everyone's (admins). */
export type FeedFilter = { readonly userId: string } | { readonly allUsers: true };

export type FeedSubscription = AsyncIterable<AnalyticsFeedEvent> & {
  /** The next event; waits for one when the queue is empty; `done` once closed. */
  readonly next: () => Promise<IteratorResult<AnalyticsFeedEvent, undefined>>;
  /** Takes every queued event now, without waiting. */
  readonly poll: () => AnalyticsFeedEvent[];
  /** Events this subscriber lost because its queue was full (oldest dropped first). */
  readonly dropped: () => number;
  readonly close: () => void;
};

export type AnalyticsFeed = {
  /** Delivers to every matching subscriber synchronously. Never throws. */
  readonly publish: (event: AnalyticsFeedEvent) => void;
  readonly subscribe: (filter: FeedFilter) => FeedSubscription;
  readonly subscriberCount: () => number;
};

export type AnalyticsFeedOptions = {
  /** Events queued per subscriber before the oldest is dropped (default 256). */
  readonly maxQueue?: number;
};

type Subscriber = {
  readonly matches: (event: AnalyticsFeedEvent) => boolean;
  readonly deliver: (event: AnalyticsFeedEvent) => void;
};

/**
 * In-process publish/subscribe for live analytics (SSE/WebSocket routes subscribe).
 * Each subscriber has its own bounded queue, so a slow consumer loses its own oldest
 * events and never holds memory or delays the publisher or the others.
 */
export const createAnalyticsFeed = ({ maxQueue = 256 }: AnalyticsFeedOptions = {}): AnalyticsFeed => {
  const subscribers = new Set<Subscriber>();

  const subscribe = (filter: FeedFilter): FeedSubscription => {
    const queue: AnalyticsFeedEvent[] = [];
    let waiter: ((result: IteratorResult<AnalyticsFeedEvent, undefined>) => void) | undefined;
    let dropped = 0;
    let closed = false;

    const subscriber: Subscriber = {
      matches: 'userId' in filter ? (event) => event.user_id === filter.userId : () => true,
      deliver: (event) => {
        if (waiter !== undefined) {
          const resolve = waiter;
          waiter = undefined;
          resolve({ done: false, value: event });
          return;
        }
        queue.push(event);
        if (queue.length > maxQueue) {
          queue.shift();
          dropped += 1;
        }
      },
    };
    subscribers.add(subscriber);

    const close = (): void => {
      if (closed) return;
      closed = true;
      subscribers.delete(subscriber);
      queue.length = 0;
      waiter?.({ done: true, value: undefined });
      waiter = undefined;
    };
    const next = (): Promise<IteratorResult<AnalyticsFeedEvent, undefined>> => {
      const event = queue.shift();
      if (event !== undefined) return Promise.resolve({ done: false, value: event });
      if (closed) return Promise.resolve({ done: true, value: undefined });
      return new Promise((resolve) => {
        waiter = resolve;
      });
    };

    return {
      next,
      poll: () => queue.splice(0, queue.length),
      dropped: () => dropped,
      close,
      [Symbol.asyncIterator]: () => ({
        next,
        return: async () => {
          close();
          return { done: true, value: undefined };
        },
      }),
    };
  };

  const publish = (event: AnalyticsFeedEvent): void => {
    for (const subscriber of subscribers) {
      try {
        if (subscriber.matches(event)) subscriber.deliver(event);
      } catch (error) {
        diag.error('analytics feed: delivery failed', error);
      }
    }
  };

  return { publish, subscribe, subscriberCount: () => subscribers.size };
};
