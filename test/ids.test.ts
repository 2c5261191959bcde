import { decodeTime, isValid } from 'ulid';
import { describe, expect, it } from 'vitest';
import { monotonicFactory, ulid } from '../src/ids.js';

describe('ids', () => {
  it('makes valid ULIDs carrying the given time', () => {
    const at = Date.UTC(2026, 11, 3, 12, 0, 0);
    const id = ulid(at);
    expect(isValid(id)).toBe(true);
    expect(decodeTime(id)).toBe(at);
  });

  it('draws distinct random parts across more than one refill of the pool', () => {
    const at = Date.now();
    const ids = Array.from({ length: 2_000 }, () => ulid(at));
    expect(new Set(ids).size).toBe(ids.length);
    // Every character of the random part's alphabet turns up: the bytes are not stuck.
    const chars = new Set(ids.flatMap((id) => [...id.slice(10)]));
    expect(chars.size).toBe(32);
  });

  it('increases strictly within one millisecond from a monotonic factory', () => {
    const next = monotonicFactory();
    const at = Date.now();
    const ids = Array.from({ length: 100 }, () => next(at));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
