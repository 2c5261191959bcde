/** Far above any limit in use; bounds the memory one key can take. */
const MAX_EVENTS_PER_KEY = 1000;

/**
 * Counts events per key over a sliding time window, in memory. Used to lock out
 * repeated failed logins; state is per process (several instances each keep their own
 * count, which loosens the limit by the number of instances but never blocks wrongly).
 */
export class SlidingWindowCounter {
  readonly #windowMs: number;
  readonly #maxKeys: number;
  readonly #now: () => number;
  /** Event times per key, oldest first. A Map keeps insertion order for eviction. */
  readonly #events = new Map<string, number[]>();

  public constructor(options: { windowMs: number; maxKeys?: number; now?: () => number }) {
    this.#windowMs = options.windowMs;
    this.#maxKeys = options.maxKeys ?? 100_000;
    this.#now = options.now ?? Date.now;
  }

  /** Events for `key` inside the window ending now. */
  public count(key: string): number {
    return this.#live(key).length;
  }

  /** Records one event for `key`; returns its time (to take it back with `unhit`). */
  public hit(key: string): number {
    const events = this.#live(key);
    const at = this.#now();
    events.push(at);
    if (events.length > MAX_EVENTS_PER_KEY) {
      events.splice(0, events.length - MAX_EVENTS_PER_KEY);
    }
    // Re-insert so the most recently active keys are evicted last.
    this.#events.delete(key);
    this.#events.set(key, events);
    if (this.#events.size > this.#maxKeys) {
      this.#evict();
    }
    return at;
  }

  /** Takes back one event recorded at `at` (an attempt counted up front that turned out fine). */
  public unhit(key: string, at: number): void {
    const events = this.#events.get(key);
    const index = events?.lastIndexOf(at) ?? -1;
    if (events !== undefined && index >= 0) {
      events.splice(index, 1);
      if (events.length === 0) {
        this.#events.delete(key);
      }
    }
  }

  /** Forgets `key` (a successful login clears its account's failures). */
  public reset(key: string): void {
    this.#events.delete(key);
  }

  /**
   * Milliseconds until `key` drops below `limit` events, or 0 when it already is.
   */
  public retryAfterMs(key: string, limit: number): number {
    const events = this.#live(key);
    if (events.length < limit) {
      return 0;
    }
    // Once the (length - limit + 1) oldest events have left the window, one more is allowed.
    const releasing = events[events.length - limit] ?? this.#now();
    return Math.max(1, releasing + this.#windowMs - this.#now());
  }

  #live(key: string): number[] {
    const events = this.#events.get(key);
    if (events === undefined) {
      return [];
    }
    const cutoff = this.#now() - this.#windowMs;
    let first = 0;
    while (first < events.length && (events[first] ?? 0) <= cutoff) {
      first += 1;
    }
    if (first === events.length) {
      this.#events.delete(key);
      return [];
    }
    if (first > 0) {
      events.splice(0, first);
    }
    return events;
  }

  #evict(): void {
    // Drop expired keys first, then the least recently active ones.
    for (const key of [...this.#events.keys()]) {
      this.#live(key);
    }
    // Down to 90% so a full table does not rescan on every new key.
    const excess = this.#events.size - Math.floor(this.#maxKeys * 0.9);
    let removed = 0;
    for (const key of this.#events.keys()) {
      if (removed >= excess) {
        break;
      }
      this.#events.delete(key);
      removed += 1;
    }
  }
}
