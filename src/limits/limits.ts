import type { LimitStore } from './limit-store.js';
import { StreamLeases } from './stream-leases.js';

/** The shared limits as routes use them (`app.limits`, decorated by the auth plugin). */
export type Limits = {
  readonly store: LimitStore;
  /** Concurrent stream caps (events and analytics streams per user). */
  readonly streams: StreamLeases;
  /** The clock the limits count with (tests move it). */
  readonly now: () => number;
  /** Gives back this instance's leases and closes the store's connections. */
  readonly close: () => Promise<void>;
};

export const createLimits = (options: {
  store: LimitStore;
  now?: () => number;
  leaseTtlMs?: number;
  onError?: (error: unknown) => void;
}): Limits => {
  const now = options.now ?? Date.now;
  const streams = new StreamLeases({
    store: options.store,
    now,
    ...(options.leaseTtlMs === undefined ? {} : { ttlMs: options.leaseTtlMs }),
    ...(options.onError === undefined ? {} : { onError: options.onError }),
  });
  return {
    store: options.store,
    streams,
    now,
    close: async () => {
      await streams.close();
      await options.store.close();
    },
  };
};
