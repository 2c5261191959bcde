import { describe, expect, it } from 'vitest';
import { checkPassword } from '../../src/auth/password-policy.js';
import common from '../../src/auth/data/common-passwords.json' with { type: 'json' };

const account = { username: 'ada_l', email: 'ada.lovelace@example.com' };
const ruleOf = (password: string) => checkPassword(password, account)?.rule ?? null;

describe('password policy (NIST SP 800-63B)', () => {
  it('accepts long, uncommon passwords, passphrases with spaces included', () => {
    expect(ruleOf('correct horse battery staple')).toBeNull();
    expect(ruleOf('analytical-engine')).toBeNull();
    expect(ruleOf('Zq8#vL2m')).toBeNull();
  });

  it('refuses fewer than 8 characters, counting code points, not UTF-16 units', () => {
    expect(ruleOf('Zq8#vL2')).toBe('too_short');
    // Four emoji are eight UTF-16 units but four characters.
    expect(ruleOf('🔑🔑🔑🔑')).toBe('too_short');
  });

  it('refuses a password of spaces only', () => {
    expect(ruleOf('          ')).toBe('all_whitespace');
    expect(ruleOf('\t\t\t\t\t\t\t\t')).toBe('all_whitespace');
  });

  it('refuses the username or the email (or its local part), also inside a longer password', () => {
    expect(ruleOf('ada_l')).toBe('too_short');
    expect(ruleOf('ADA_L2024!!')).toBe('contains_username');
    expect(ruleOf('my ada_l password')).toBe('contains_username');
    expect(ruleOf('ada.lovelace@example.com')).toBe('contains_email');
    expect(ruleOf('ada.lovelace-rules')).toBe('contains_email');
  });

  it('refuses the bundled common passwords, in any case and with digits or symbols appended', () => {
    expect(ruleOf('password')).toBe('common_password');
    expect(ruleOf('12345678')).toBe('common_password');
    expect(ruleOf('Password1')).toBe('common_password');
    expect(ruleOf('QWERTYUIOP')).toBe('common_password');
    expect(ruleOf('sunshine2024!')).toBe('common_password');
    expect(ruleOf('iloveyou!!')).toBe('common_password');
  });

  it('refuses every entry of the bundled list of 8 characters or more', () => {
    const long = common.passwords.filter((entry) => [...entry].length >= 8);
    expect(long.length).toBeGreaterThan(400);
    for (const entry of long) expect(ruleOf(entry), entry).not.toBeNull();
  });

  it('names the rule in its message', () => {
    expect(checkPassword('short', account)?.message).toMatch(/at least 8 characters/);
    expect(checkPassword('password123', account)?.message).toMatch(/too common/);
  });
});
