import { randomFillSync } from 'node:crypto';
import { monotonicFactory as ulidMonotonicFactory, ulid as ulidWith, type ULIDFactory } from 'ulid';

/**
 * ULIDs for the service's ids. The `ulid` package draws its randomness one byte per
 * character, each a call into node:crypto (about 50 µs an id, five ids and more a chat
 * turn); here the bytes come from a pool that node:crypto refills 4 KiB at a time: the
 * same cryptographic randomness, the same uniform characters, one refill per ~250 ids.
 */
const POOL = new Uint8Array(4096);
let offset = POOL.length;

/** The `ulid` package's PRNG contract: a number in [0, 1), here one pooled random byte / 256. */
const pooledRandom = (): number => {
  if (offset === POOL.length) {
    randomFillSync(POOL);
    offset = 0;
  }
  return POOL[offset++]! / 256;
};

/** A new ULID (time `seedTime`, default now). */
export const ulid = (seedTime?: number): string => ulidWith(seedTime, pooledRandom);

/** A generator of ULIDs that increase strictly within the same millisecond, on the pooled randomness. */
export const monotonicFactory = (): ULIDFactory => ulidMonotonicFactory(pooledRandom);
