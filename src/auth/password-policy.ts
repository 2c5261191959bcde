import common from './data/common-passwords.json' with { type: 'json' };

/**
 * The password policy of NIST SP 800-63B §5.1.1.2 (memorized secrets): a minimum length,
 * no composition rules, and a check against values known to be common or derived from
 * the account. Each failed rule has its own name and message, so the 422 says which.
 */

export const MIN_PASSWORD_LENGTH = 8;
/** The contract's maximum (`PasswordChange.new_password`, `UserCreate.password`). */
export const MAX_PASSWORD_LENGTH = 128;

export type PasswordRule = 'too_short' | 'all_whitespace' | 'contains_username' | 'contains_email' | 'common_password';

export type PasswordViolation = { readonly rule: PasswordRule; readonly message: string };

const COMMON = new Set(common.passwords.map((entry) => entry.toLowerCase()));

/** Digits and punctuation people append to a listed password ("sunshine2024!"). */
const TRAILING_DECORATION = /[\d\p{P}\p{S}\s]+$/u;
/** Shorter account names would match inside ordinary passwords by chance. */
const MIN_NAME_LENGTH = 3;

/** Length in Unicode code points, as NIST counts (not UTF-16 units). */
const codePoints = (value: string): number => [...value].length;

const isCommon = (lowered: string): boolean => {
  if (COMMON.has(lowered)) return true;
  const stem = lowered.replace(TRAILING_DECORATION, '');
  return stem.length >= 4 && stem !== lowered && COMMON.has(stem);
};

/**
 * The first rule the password breaks, or null when it is acceptable. `username` and
 * `email` are the account's (the email's local part is what people reuse).
 */
export const checkPassword = (
  password: string,
  account: { readonly username: string; readonly email: string },
): PasswordViolation | null => {
  const normalised = password.normalize('NFKC');
  if (codePoints(normalised) < MIN_PASSWORD_LENGTH) {
    return { rule: 'too_short', message: `Password must be at least ${MIN_PASSWORD_LENGTH} characters long` };
  }
  if (normalised.trim() === '') {
    return { rule: 'all_whitespace', message: 'Password must not be only spaces' };
  }
  const lowered = normalised.toLowerCase();
  const username = account.username.normalize('NFKC').toLowerCase();
  if (username.length >= MIN_NAME_LENGTH && lowered.includes(username)) {
    return { rule: 'contains_username', message: 'Password must not be or contain the username' };
  }
  const email = account.email.normalize('NFKC').toLowerCase();
  const localPart = email.split('@')[0] ?? '';
  if (lowered.includes(email) || (localPart.length >= MIN_NAME_LENGTH && lowered.includes(localPart))) {
    return { rule: 'contains_email', message: 'Password must not be or contain the email address' };
  }
  if (isCommon(lowered) || isCommon(lowered.replace(/\s+/g, ''))) {
    return { rule: 'common_password', message: 'Password is too common (it is on the list of most-used passwords); choose another' };
  }
  return null;
};
