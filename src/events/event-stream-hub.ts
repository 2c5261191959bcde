import type { FastifyBaseLogger } from 'fastify';
import { EVENTS_CHANNEL, type Notifier } from '../db/notifications.js';
import { matchesFilter, type EventFilter, type EventRow, type EventsRepository } from '../repositories/events-repository.js';

export type EventSubscriber = {
  readonly filter: EventFilter;
  /** Receives each matching event once, in insertion order. */
  readonly deliver: (event: EventRow) => void;
};

export type EventSubscription = { readonly close: () => void };

type Subscriber = EventSubscriber & { lastSeq: number; seen: Set<number> };

/** Rows committed late can carry a lower sequence number than rows already seen. */
const LOOKBACK = 500;
const MAX_SEEN = 5_000;

/**
 * One reader per process for the events table, fanning new events out to the live SSE
 * connections whose filters match. It reads when a commit announces new events
 * (NOTIFY on EVENTS_CHANNEL, from any instance) and, as a safety net for rows written
 * without an announcement, every `pollIntervalMs`. The database is the source of truth,
 * so a client resumes from its Last-Event-ID (the event's `seq`) on any instance.
 */
export class EventStreamHub {
  private readonly repository: EventsRepository;
  private readonly logger: FastifyBaseLogger;
  private readonly pollIntervalMs: number;
  private readonly subscribers = new Set<Subscriber>();
  private watermark: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  /** An announcement came while a read was under way: read again after it. */
  private again = false;
  private readonly notifier: Notifier | undefined;
  private unlisten: Promise<() => void> | undefined;
  private stopReconnect: (() => void) | undefined;

  public constructor(options: { repository: EventsRepository; logger: FastifyBaseLogger; notifier?: Notifier; pollIntervalMs?: number }) {
    this.repository = options.repository;
    this.logger = options.logger;
    this.notifier = options.notifier;
    this.pollIntervalMs = options.pollIntervalMs ?? (options.notifier === undefined ? 250 : 1_000);
  }

  public get size(): number {
    return this.subscribers.size;
  }

  /**
   * Subscribes; with `afterSeq`, first replays the matching events after it.
   */
  public async subscribe(subscriber: EventSubscriber, afterSeq: number | undefined): Promise<EventSubscription> {
    const entry: Subscriber = { ...subscriber, lastSeq: 0, seen: new Set() };
    entry.lastSeq = afterSeq ?? (await this.repository.latestSeq());
    // The poller looks back LOOKBACK sequence numbers for rows committed late; the rows
    // already there at or before the starting point are the client's past (it saw them,
    // or it asked for what comes next), never to be sent as new.
    const past = await this.repository.after(subscriber.filter, Math.max(0, entry.lastSeq - LOOKBACK), LOOKBACK);
    for (const event of past) {
      if (event.seq <= entry.lastSeq) {
        entry.seen.add(event.seq);
      }
    }
    if (afterSeq !== undefined) {
      for (;;) {
        const backlog = await this.repository.after(subscriber.filter, entry.lastSeq, 500);
        for (const event of backlog) {
          this.push(entry, event);
        }
        if (backlog.length < 500) {
          break;
        }
      }
    }
    this.watermark ??= entry.lastSeq;
    this.watermark = Math.min(this.watermark, entry.lastSeq);
    this.subscribers.add(entry);
    await this.start();
    return {
      close: () => {
        this.subscribers.delete(entry);
        if (this.subscribers.size === 0) {
          this.stop();
        }
      },
    };
  }

  public stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.watermark = undefined;
    const unlisten = this.unlisten;
    this.unlisten = undefined;
    void unlisten?.then((stop) => stop());
    this.stopReconnect?.();
    this.stopReconnect = undefined;
  }

  private push(subscriber: Subscriber, event: EventRow): void {
    if (subscriber.seen.has(event.seq) || !matchesFilter(event, subscriber.filter)) {
      return;
    }
    subscriber.seen.add(event.seq);
    if (subscriber.seen.size > MAX_SEEN) {
      const [oldest] = subscriber.seen;
      if (oldest !== undefined) subscriber.seen.delete(oldest);
    }
    subscriber.lastSeq = Math.max(subscriber.lastSeq, event.seq);
    subscriber.deliver(event);
  }

  private async start(): Promise<void> {
    if (this.timer !== undefined) {
      return;
    }
    this.timer = setInterval(() => void this.poll(), this.pollIntervalMs);
    this.timer.unref();
    if (this.notifier !== undefined) {
      this.unlisten = this.notifier.listen(EVENTS_CHANNEL, () => void this.poll());
      this.stopReconnect = this.notifier.onReconnect(() => void this.poll());
      await this.unlisten;
      // Rows committed between the subscriber's starting point and the LISTEN.
      void this.poll();
    }
  }

  private async poll(): Promise<void> {
    if (this.watermark === undefined) {
      return;
    }
    if (this.polling) {
      this.again = true;
      return;
    }
    this.polling = true;
    this.again = false;
    try {
      const from = Math.max(0, this.watermark - LOOKBACK);
      const events = await this.repository.after({ userId: null }, from, 1_000);
      for (const event of events) {
        for (const subscriber of this.subscribers) {
          if (event.seq > subscriber.lastSeq - LOOKBACK) {
            this.push(subscriber, event);
          }
        }
      }
      const newest = events.at(-1)?.seq;
      // The hub may have stopped (last subscriber gone) while this read was under way.
      if (newest !== undefined && this.watermark !== undefined) {
        this.watermark = Math.max(this.watermark, newest);
      }
    } catch (error) {
      this.logger.warn({ err: error }, 'event stream poll failed');
    } finally {
      this.polling = false;
    }
    if (this.again) {
      void this.poll();
    }
  }
}
