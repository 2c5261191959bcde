import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * Password hashing with node:crypto's scrypt (no native addon to rebuild per Node
 * version). The stored string names its algorithm and parameters,
 * `scrypt$N$r$p$salt$hash` (salt and hash base64url), so the cost can be raised later
 * and old hashes still verify.
 */

export type ScryptParameters = { readonly N: number; readonly r: number; readonly p: number };

/**
 * N=2^15, r=8, p=1: 32 MiB of memory per hash, the usual interactive-login setting
 * (the cost is in the stored string, so raising it later only needs `needsRehash`).
 */
export const DEFAULT_SCRYPT: ScryptParameters = { N: 2 ** 15, r: 8, p: 1 };

const SALT_BYTES = 16;
const KEY_BYTES = 32;
const PREFIX = 'scrypt';

const derive = (password: string, salt: Buffer, parameters: ScryptParameters, keyLength: number): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const options: ScryptOptions = {
      N: parameters.N,
      r: parameters.r,
      p: parameters.p,
      // scrypt needs 128·N·r bytes; node's default ceiling (32 MiB) is exactly N=2^15, r=8.
      maxmem: 256 * parameters.N * parameters.r + 1024 * 1024,
    };
    scrypt(password.normalize('NFKC'), salt, keyLength, options, (error, key) => (error === null ? resolve(key) : reject(error)));
  });

/** Hashes a password into `scrypt$N$r$p$salt$hash`. */
export const hashPassword = async (password: string, parameters: ScryptParameters = DEFAULT_SCRYPT): Promise<string> => {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, parameters, KEY_BYTES);
  return [PREFIX, parameters.N, parameters.r, parameters.p, salt.toString('base64url'), key.toString('base64url')].join('$');
};

type ParsedHash = { readonly parameters: ScryptParameters; readonly salt: Buffer; readonly key: Buffer };

const isPowerOfTwo = (value: number): boolean => Number.isSafeInteger(value) && value > 1 && (value & (value - 1)) === 0;

const parseHash = (stored: string): ParsedHash | null => {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== PREFIX) {
    return null;
  }
  const [, n, r, p, salt, key] = parts as [string, string, string, string, string, string];
  const parameters = { N: Number(n), r: Number(r), p: Number(p) };
  // Bounds keep a corrupted or hostile row from asking for gigabytes of memory.
  if (
    !isPowerOfTwo(parameters.N) ||
    parameters.N > 2 ** 20 ||
    !(parameters.r >= 1 && parameters.r <= 32) ||
    !(parameters.p >= 1 && parameters.p <= 16)
  ) {
    return null;
  }
  const saltBytes = Buffer.from(salt, 'base64url');
  const keyBytes = Buffer.from(key, 'base64url');
  if (saltBytes.length < 8 || keyBytes.length < 16) {
    return null;
  }
  return { parameters, salt: saltBytes, key: keyBytes };
};

/** True when `stored` is a hash string this module can verify. */
export const isPasswordHash = (stored: string): boolean => parseHash(stored) !== null;

/**
 * Checks a password against a stored hash in constant time. An unparseable hash
 * verifies nothing (false), it does not throw.
 */
export const verifyPassword = async (password: string, stored: string): Promise<boolean> => {
  const parsed = parseHash(stored);
  if (parsed === null) {
    return false;
  }
  const key = await derive(password, parsed.salt, parsed.parameters, parsed.key.length);
  return timingSafeEqual(key, parsed.key);
};

/** True when a hash was made with weaker parameters than `target` (rehash on next login). */
export const needsRehash = (stored: string, target: ScryptParameters = DEFAULT_SCRYPT): boolean => {
  const parsed = parseHash(stored);
  return parsed === null || parsed.parameters.N < target.N || parsed.parameters.r < target.r || parsed.parameters.p < target.p;
};
