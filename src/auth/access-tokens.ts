import { createHmac, timingSafeEqual } from 'node:crypto';
import { ulid } from '../ids.js';

/**
 * HS256 JSON Web Tokens with node:crypto. Only what this service issues is accepted:
 * header `{"alg":"HS256","typ":"JWT"}` exactly (no `none`, no algorithm switching),
 * a signature compared in constant time, then `exp`/`iat`/`nbf`/`typ`/`iss` checked, and a
 * lifetime (`exp − iat`) longer than the configured one refused: a token is only ever
 * what `sign` made. Whether its session still lives is the caller's check (auth-plugin).
 */

export type AccessTokenClaims = {
  /** The user id. */
  readonly sub: string;
  /** This token's id; logout lists it as revoked until `exp`. */
  readonly jti: string;
  /** The session (refresh-token family) the token was issued for. */
  readonly sid: string;
  readonly iat: number;
  /** Not before (epoch seconds); `sign` sets it to `iat`. Optional on input (tokens from before it existed). */
  readonly nbf?: number;
  readonly exp: number;
};

export type AccessTokenRejection = 'malformed' | 'bad_signature' | 'expired' | 'not_yet_valid' | 'lifetime_too_long' | 'wrong_type';

/** A token that cannot be accepted; `reason` goes to the security event, never to the client. */
export class AccessTokenError extends Error {
  public readonly reason: AccessTokenRejection;
  /** The subject, when the signature was valid (an expired token still names its user). */
  public readonly subject: string | undefined;

  public constructor(reason: AccessTokenRejection, subject?: string) {
    super(`access token rejected: ${reason}`);
    this.name = 'AccessTokenError';
    this.reason = reason;
    this.subject = subject;
  }
}

export type AccessTokens = {
  readonly ttlSeconds: number;
  readonly sign: (input: { userId: string; sessionId: string }) => { token: string; claims: AccessTokenClaims };
  /** @throws AccessTokenError */
  readonly verify: (token: string) => AccessTokenClaims;
};

const ISSUER = 'chatter';
const HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
const SEGMENT = /^[A-Za-z0-9_-]+$/;
/** Clock skew tolerated between instances when checking `iat`. */
const LEEWAY_SECONDS = 30;

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

const decodeJson = (segment: string): unknown => {
  try {
    return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
};

/** Builds the signer/verifier for access tokens. `now` returns epoch milliseconds. */
export const createAccessTokens = (options: {
  readonly secret: string;
  readonly ttlSeconds: number;
  readonly now?: () => number;
}): AccessTokens => {
  const now = options.now ?? Date.now;
  const mac = (input: string): Buffer => createHmac('sha256', options.secret).update(input).digest();

  const sign: AccessTokens['sign'] = ({ userId, sessionId }) => {
    const iat = Math.floor(now() / 1000);
    const claims: AccessTokenClaims = { sub: userId, jti: ulid(), sid: sessionId, iat, nbf: iat, exp: iat + options.ttlSeconds };
    const payload = Buffer.from(JSON.stringify({ ...claims, iss: ISSUER, typ: 'access' })).toString('base64url');
    const signingInput = `${HEADER}.${payload}`;
    return { token: `${signingInput}.${mac(signingInput).toString('base64url')}`, claims };
  };

  const verify: AccessTokens['verify'] = (token) => {
    const parts = token.split('.');
    if (parts.length !== 3 || !parts.every((part) => SEGMENT.test(part))) {
      throw new AccessTokenError('malformed');
    }
    const [header, payload, signature] = parts as [string, string, string];
    // Comparing the header byte for byte rules out alg=none and any other algorithm.
    if (header !== HEADER) {
      throw new AccessTokenError('malformed');
    }
    const expected = mac(`${header}.${payload}`);
    const given = Buffer.from(signature, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected) || given.toString('base64url') !== signature) {
      throw new AccessTokenError('bad_signature');
    }
    const body = decodeJson(payload);
    if (
      !isRecord(body) ||
      typeof body['sub'] !== 'string' ||
      typeof body['jti'] !== 'string' ||
      typeof body['sid'] !== 'string' ||
      !Number.isSafeInteger(body['iat']) ||
      !Number.isSafeInteger(body['exp']) ||
      (body['nbf'] !== undefined && !Number.isSafeInteger(body['nbf']))
    ) {
      throw new AccessTokenError('malformed');
    }
    const claims: AccessTokenClaims = {
      sub: body['sub'],
      jti: body['jti'],
      sid: body['sid'],
      iat: body['iat'] as number,
      ...(body['nbf'] === undefined ? {} : { nbf: body['nbf'] as number }),
      exp: body['exp'] as number,
    };
    if (body['typ'] !== 'access' || body['iss'] !== ISSUER) {
      throw new AccessTokenError('wrong_type', claims.sub);
    }
    const seconds = now() / 1000;
    if (claims.exp <= seconds) {
      throw new AccessTokenError('expired', claims.sub);
    }
    if (claims.iat > seconds + LEEWAY_SECONDS || (claims.nbf !== undefined && claims.nbf > seconds + LEEWAY_SECONDS)) {
      throw new AccessTokenError('not_yet_valid', claims.sub);
    }
    // A valid signature with a longer life than this service gives (a leaked key's forgery,
    // or a token from before the TTL was lowered) is not accepted past the configured TTL.
    if (claims.exp - claims.iat > options.ttlSeconds) {
      throw new AccessTokenError('lifetime_too_long', claims.sub);
    }
    return claims;
  };

  return { ttlSeconds: options.ttlSeconds, sign, verify };
};
