import { createHash, randomBytes } from 'node:crypto';

/**
 * Refresh tokens and API keys are random strings shown to their owner once; the
 * database keeps only their SHA-256. A fast hash is enough here: the inputs carry 256
 * bits of randomness, so there is nothing to brute-force (passwords are another matter).
 */

export const API_KEY_PREFIX = 'chk_';
const REFRESH_TOKEN_PREFIX = 'chr_';
/** How much of an API key is kept in clear so its owner can recognise it in a list. */
const VISIBLE_KEY_CHARS = API_KEY_PREFIX.length + 8;

const randomToken = (prefix: string): string => `${prefix}${randomBytes(32).toString('base64url')}`;

/** SHA-256, hex: what the database stores and looks keys up by. */
export const hashToken = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

export const generateRefreshToken = (): string => randomToken(REFRESH_TOKEN_PREFIX);

export type GeneratedApiKey = { readonly key: string; readonly hash: string; readonly prefix: string };

/** A new `chk_…` key with its hash and the short prefix stored beside it. */
export const generateApiKey = (): GeneratedApiKey => {
  const key = randomToken(API_KEY_PREFIX);
  return { key, hash: hashToken(key), prefix: key.slice(0, VISIBLE_KEY_CHARS) };
};

export const looksLikeApiKey = (token: string): boolean => token.startsWith(API_KEY_PREFIX);

/** What a key list shows instead of the key: its prefix and an ellipsis. */
export const maskApiKey = (prefix: string): string => `${prefix}…`;
