import { ulid } from '../ids.js';
import type { LimitStore } from './limit-store.js';

/** A stream slot held by this instance; `release` is idempotent. */
export type StreamLease = { readonly release: () => Promise<void> };

export type StreamLeasesOptions = {
  readonly store: LimitStore;
  /** A lease not renewed for this long lapses (its instance crashed). Default 30 s. */
  readonly ttlMs?: number;
  /** How often this instance renews its leases. Default a third of the TTL. */
  readonly heartbeatMs?: number;
  readonly now?: () => number;
  readonly onError?: (error: unknown) => void;
};

/**
 * Caps on concurrent streams across instances: each open stream holds a lease in the
 * shared store, renewed by one heartbeat per instance (one statement for all its
 * leases), released when the stream ends. A crashed instance's leases lapse after the
 * TTL, so its users get their slots back without anyone cleaning up.
 */
export class StreamLeases {
  readonly #store: LimitStore;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #held = new Map<string, { key: string; id: string }>();
  readonly #heartbeat: NodeJS.Timeout;

  public constructor(options: StreamLeasesOptions) {
    this.#store = options.store;
    this.#ttlMs = options.ttlMs ?? 30_000;
    this.#now = options.now ?? Date.now;
    const onError = options.onError ?? (() => {});
    this.#heartbeat = setInterval(
      () => {
        if (this.#held.size === 0) return;
        this.#store.renewLeases([...this.#held.values()], this.#now() + this.#ttlMs).catch(onError);
      },
      options.heartbeatMs ?? Math.floor(this.#ttlMs / 3),
    );
    this.#heartbeat.unref();
  }

  /** Takes one of `max` slots of `key`, or null when every slot is held (on any instance). */
  public async acquire(key: string, max: number): Promise<StreamLease | null> {
    const id = ulid();
    const taken = await this.#store.acquireLease(key, { id, max, ttlMs: this.#ttlMs, at: this.#now() });
    if (!taken) return null;
    this.#held.set(id, { key, id });
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        this.#held.delete(id);
        await this.#store.releaseLease(key, id);
      },
    };
  }

  /** Leases held by this instance (tests, diagnostics). */
  public heldCount(): number {
    return this.#held.size;
  }

  /** Stops the heartbeat and gives back every lease still held. */
  public async close(): Promise<void> {
    clearInterval(this.#heartbeat);
    const held = [...this.#held.values()];
    this.#held.clear();
    await Promise.allSettled(held.map((lease) => this.#store.releaseLease(lease.key, lease.id)));
  }
}
