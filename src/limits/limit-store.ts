/**
 * Where per-user and per-address limits are counted: sliding-window event counters
 * (chat rate limits, login and register throttles) and leases on concurrent streams.
 * Several instances must agree on them, so with PostgreSQL they live in PostgreSQL
 * (or in Redis when `REDIS_URL` is set); only the single embedded (PGlite) instance
 * counts in memory. Every store takes the time from its caller (`at`, epoch ms), so
 * the instances' clocks and a test's simulated clock are used the same way.
 */

/** One sliding window to count an event in. */
export type WindowSpec = {
  /** Names what is counted and for whom, e.g. `chat:minute:<user id>`. */
  readonly key: string;
  readonly windowMs: number;
  /** The events allowed inside the window; the store keeps at most `limit + 1` per key. */
  readonly limit: number;
};

/** A counted event: its time, and an id that tells it apart from others at the same millisecond. */
export type LimitEvent = { readonly id: string; readonly at: number };

/** A window as seen right after (hit) or without (peek) the event. */
export type WindowState = {
  /** Events inside the window (for `hit`, this one included; capped at `limit + 1`). */
  readonly count: number;
  /** The newest other event in the window, epoch ms, or null. */
  readonly previousAt: number | null;
  /** Past the limit: milliseconds until one more event would fit; else 0. */
  readonly retryAfterMs: number;
};

export type LimitStoreKind = 'memory' | 'postgres' | 'redis';

export type LimitStore = {
  readonly kind: LimitStoreKind;
  /**
   * Counts the event in every window, each atomically (concurrent hits on one key from
   * any instance each see the others), and answers each window's state in order.
   */
  readonly hit: (windows: readonly WindowSpec[], event: LimitEvent) => Promise<WindowState[]>;
  /** Takes the event back from these keys (an attempt refused, or a login that succeeded). */
  readonly unhit: (keys: readonly string[], event: LimitEvent) => Promise<void>;
  /** The window's state without counting anything. */
  readonly peek: (window: WindowSpec, at: number) => Promise<WindowState>;
  /** Forgets every event of these keys. */
  readonly reset: (keys: readonly string[]) => Promise<void>;
  /**
   * Takes one of `max` leases on `key` (a stream slot), valid until `at + ttlMs` unless
   * renewed; null when all are held. Atomic across instances.
   */
  readonly acquireLease: (key: string, lease: { id: string; max: number; ttlMs: number; at: number }) => Promise<boolean>;
  /** Extends the leases (the holder's heartbeat); a crashed holder's leases expire. */
  readonly renewLeases: (leases: readonly { key: string; id: string }[], until: number) => Promise<void>;
  readonly releaseLease: (key: string, id: string) => Promise<void>;
  readonly close: () => Promise<void>;
};

/**
 * The state of a window from its events' times (ascending). `counted` tells whether
 * `at` is among them (after a hit) or not (a peek): the retry time is when enough of
 * the oldest events have left the window for one more to fit.
 */
export const windowState = (times: readonly number[], spec: WindowSpec, at: number, counted: boolean): WindowState => {
  const live = times.filter((time) => time > at - spec.windowMs);
  const count = live.length;
  const others = [...live];
  if (counted) {
    const own = others.lastIndexOf(at);
    if (own >= 0) others.splice(own, 1);
  }
  const previousAt = others.length === 0 ? null : Math.max(...others);
  // Others in the window besides this event: past the limit when they fill it.
  const retryAfterMs = others.length >= spec.limit ? Math.max(1, (others[others.length - spec.limit] ?? at) + spec.windowMs - at) : 0;
  return { count, previousAt, retryAfterMs };
};

/** Keys in one order everywhere, so concurrent multi-key updates lock rows without deadlocks. */
export const sortedUnique = <T extends { key: string }>(items: readonly T[]): T[] =>
  [...new Map(items.map((item) => [item.key, item])).values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
