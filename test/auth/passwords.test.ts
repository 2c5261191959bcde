import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hashPassword, isPasswordHash, needsRehash, verifyPassword } from '../../src/auth/passwords.js';

const FAST = { N: 2 ** 10, r: 8, p: 1 };

describe('password hashing', () => {
  it('produces scrypt$N$r$p$salt$hash with the default cost, salted', async () => {
    const first = await hashPassword('hunter2-hunter2');
    const second = await hashPassword('hunter2-hunter2');
    expect(first).toMatch(/^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/);
    expect(first).not.toBe(second);
    expect(isPasswordHash(first)).toBe(true);
    expect(needsRehash(first)).toBe(false);
  });

  it('verifies the right password and refuses any other', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ minLength: 1, maxLength: 40 }), fc.string({ minLength: 1, maxLength: 40 }), async (password, other) => {
        const stored = await hashPassword(password, FAST);
        expect(await verifyPassword(password, stored)).toBe(true);
        if (other.normalize('NFKC') !== password.normalize('NFKC')) {
          expect(await verifyPassword(other, stored)).toBe(false);
        }
      }),
      { numRuns: 25 },
    );
  });

  it('verifies hashes made with other parameters and flags them for rehashing', async () => {
    const weak = await hashPassword('secret', FAST);
    expect(weak.startsWith('scrypt$1024$8$1$')).toBe(true);
    expect(await verifyPassword('secret', weak)).toBe(true);
    expect(needsRehash(weak)).toBe(true);
  });

  it('refuses malformed or tampered hashes without throwing', async () => {
    const stored = await hashPassword('secret', FAST);
    const parts = stored.split('$');
    const tamperedKey = [...parts.slice(0, 5), `${parts[5]?.slice(0, -2)}AA`].join('$');
    for (const bad of [
      '',
      'not-a-hash',
      'bcrypt$...',
      'scrypt$3$8$1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5',
      'scrypt$1073741824$8$1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5',
      tamperedKey,
    ]) {
      expect(await verifyPassword('secret', bad), bad).toBe(false);
    }
  });
});
