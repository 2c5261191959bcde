import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AccessTokenError, createAccessTokens } from '../../src/auth/access-tokens.js';

const SECRET = 'unit-test-secret-0123456789-abcdefghijklmn';

const rejection = (verify: () => unknown): string | undefined => {
  try {
    verify();
    return undefined;
  } catch (error) {
    return error instanceof AccessTokenError ? error.reason : 'other';
  }
};

describe('access tokens', () => {
  it('round-trips its claims and expires after the TTL', () => {
    let now = 1_800_000_000_000;
    const tokens = createAccessTokens({ secret: SECRET, ttlSeconds: 1800, now: () => now });
    const { token, claims } = tokens.sign({ userId: 'user-1', sessionId: 'session-1' });
    expect(token.split('.')).toHaveLength(3);
    expect(tokens.verify(token)).toEqual(claims);
    expect(claims).toMatchObject({ sub: 'user-1', sid: 'session-1', exp: claims.iat + 1800 });
    now += 1799_000;
    expect(tokens.verify(token).sub).toBe('user-1');
    now += 1000;
    expect(rejection(() => tokens.verify(token))).toBe('expired');
  });

  it('gives each token its own id', () => {
    const tokens = createAccessTokens({ secret: SECRET, ttlSeconds: 60 });
    const a = tokens.sign({ userId: 'u', sessionId: 's' }).claims.jti;
    const b = tokens.sign({ userId: 'u', sessionId: 's' }).claims.jti;
    expect(a).not.toBe(b);
  });

  it('refuses every single-character change to the token', () => {
    const tokens = createAccessTokens({ secret: SECRET, ttlSeconds: 60 });
    const { token } = tokens.sign({ userId: 'user-1', sessionId: 's' });
    for (let index = 0; index < token.length; index += 1) {
      const char = token[index];
      if (char === '.') {
        continue;
      }
      const changed = `${token.slice(0, index)}${char === 'a' ? 'b' : 'a'}${token.slice(index + 1)}`;
      expect(
        rejection(() => tokens.verify(changed)),
        `position ${index}`,
      ).toBeDefined();
    }
  });

  it('refuses tokens from another secret, tokens from the future and non-JWT strings', () => {
    const tokens = createAccessTokens({ secret: SECRET, ttlSeconds: 60 });
    const other = createAccessTokens({ secret: `${SECRET}-other`, ttlSeconds: 60 });
    expect(rejection(() => tokens.verify(other.sign({ userId: 'u', sessionId: 's' }).token))).toBe('bad_signature');
    const future = createAccessTokens({ secret: SECRET, ttlSeconds: 60, now: () => Date.now() + 3600_000 });
    expect(rejection(() => tokens.verify(future.sign({ userId: 'u', sessionId: 's' }).token))).toBe('not_yet_valid');
    for (const garbage of ['', 'abc', 'a.b', 'a.b.c.d', '!!.!!.!!']) {
      expect(rejection(() => tokens.verify(garbage))).toBe('malformed');
    }
  });
});

describe('access token time claims', () => {
  const forge = (claims: Record<string, unknown>): string => {
    const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
    const payload = Buffer.from(JSON.stringify({ iss: 'chatter', typ: 'access', sub: 'u', jti: 'j', sid: 's', ...claims })).toString(
      'base64url',
    );
    const signature = createHmac('sha256', SECRET).update(`${header}.${payload}`).digest('base64url');
    return `${header}.${payload}.${signature}`;
  };
  const nowSeconds = 1_800_000_000;
  const tokens = createAccessTokens({ secret: SECRET, ttlSeconds: 1800, now: () => nowSeconds * 1000 });

  it('sets nbf to iat and honours it: a token not yet valid is refused', () => {
    const { claims } = tokens.sign({ userId: 'u', sessionId: 's' });
    expect(claims.nbf).toBe(claims.iat);
    expect(rejection(() => tokens.verify(forge({ iat: nowSeconds, nbf: nowSeconds + 3600, exp: nowSeconds + 1800 })))).toBe(
      'not_yet_valid',
    );
    expect(tokens.verify(forge({ iat: nowSeconds - 10, nbf: nowSeconds - 10, exp: nowSeconds + 1790 })).sub).toBe('u');
  });

  it('refuses a lifetime (exp − iat) longer than the configured one, even with a valid signature', () => {
    expect(rejection(() => tokens.verify(forge({ iat: nowSeconds, exp: nowSeconds + 1801 })))).toBe('lifetime_too_long');
    expect(rejection(() => tokens.verify(forge({ iat: nowSeconds, exp: nowSeconds + 10 * 365 * 86_400 })))).toBe('lifetime_too_long');
    expect(tokens.verify(forge({ iat: nowSeconds, exp: nowSeconds + 1800 })).sub).toBe('u');
  });

  it('refuses a non-integer nbf', () => {
    expect(rejection(() => tokens.verify(forge({ iat: nowSeconds, nbf: 'soon', exp: nowSeconds + 60 })))).toBe('malformed');
  });
});
