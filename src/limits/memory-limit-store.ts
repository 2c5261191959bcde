import { windowState, type LimitStore, type WindowSpec } from './limit-store.js';

type Window = { times: number[]; windowMs: number };

/**
 * The one-process store (embedded PGlite only: one database, one instance). Plain maps,
 * bounded in keys; JavaScript runs each call to completion, so check-and-count is atomic.
 */
export const createMemoryLimitStore = (options: { maxKeys?: number } = {}): LimitStore => {
  const maxKeys = options.maxKeys ?? 100_000;
  const windows = new Map<string, Window>();
  const leases = new Map<string, Map<string, number>>();

  const prune = (window: Window, at: number): void => {
    const cutoff = at - window.windowMs;
    let first = 0;
    while (first < window.times.length && (window.times[first] ?? 0) <= cutoff) first += 1;
    if (first > 0) window.times.splice(0, first);
  };

  const evict = (at: number): void => {
    for (const [key, window] of windows) {
      prune(window, at);
      if (window.times.length === 0) windows.delete(key);
    }
    // Still full: drop the least recently counted keys (a Map keeps insertion order).
    const excess = windows.size - Math.floor(maxKeys * 0.9);
    let removed = 0;
    for (const key of windows.keys()) {
      if (removed >= excess) break;
      windows.delete(key);
      removed += 1;
    }
  };

  const hitOne = (spec: WindowSpec, at: number) => {
    const window = windows.get(spec.key) ?? { times: [], windowMs: spec.windowMs };
    window.windowMs = spec.windowMs;
    prune(window, at);
    // Kept in order even when `at` is older than the newest (a caller's clock behind).
    let index = window.times.length;
    while (index > 0 && (window.times[index - 1] ?? 0) > at) index -= 1;
    window.times.splice(index, 0, at);
    if (window.times.length > spec.limit + 1) window.times.splice(0, window.times.length - (spec.limit + 1));
    windows.delete(spec.key);
    windows.set(spec.key, window);
    if (windows.size > maxKeys) evict(at);
    return windowState(window.times, spec, at, true);
  };

  const liveLeases = (key: string, at: number): Map<string, number> => {
    const held = leases.get(key) ?? new Map<string, number>();
    for (const [id, until] of held) if (until <= at) held.delete(id);
    return held;
  };

  return {
    kind: 'memory',
    hit: async (specs, event) => specs.map((spec) => hitOne(spec, event.at)),
    unhit: async (keys, event) => {
      for (const key of keys) {
        const window = windows.get(key);
        const index = window?.times.lastIndexOf(event.at) ?? -1;
        if (window !== undefined && index >= 0) window.times.splice(index, 1);
      }
    },
    peek: async (spec, at) => {
      const window = windows.get(spec.key);
      return windowState(window?.times ?? [], spec, at, false);
    },
    reset: async (keys) => {
      for (const key of keys) windows.delete(key);
    },
    acquireLease: async (key, lease) => {
      const held = liveLeases(key, lease.at);
      if (held.size >= lease.max) {
        if (held.size === 0) leases.delete(key);
        return false;
      }
      held.set(lease.id, lease.at + lease.ttlMs);
      leases.set(key, held);
      return true;
    },
    renewLeases: async (list, until) => {
      for (const { key, id } of list) {
        const held = leases.get(key);
        if (held?.has(id) === true) held.set(id, until);
      }
    },
    releaseLease: async (key, id) => {
      const held = leases.get(key);
      held?.delete(id);
      if (held?.size === 0) leases.delete(key);
    },
    close: async () => {
      windows.clear();
      leases.clear();
    },
  };
};
