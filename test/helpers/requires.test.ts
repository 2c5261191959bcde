import { afterEach, describe, expect, it } from 'vitest';
import { binaryOnPath, fileExists, requireOrSkip } from './requires.js';

describe('requireOrSkip', () => {
  const ci = process.env['CI'];
  afterEach(() => {
    if (ci === undefined) delete process.env['CI'];
    else process.env['CI'] = ci;
  });

  it('gives the plain describe when the requirement is present', () => {
    expect(requireOrSkip('node', binaryOnPath(process.execPath, 'it runs this test'))).toBe(describe);
  });

  it('skips with the reason when missing locally, and fails when missing in CI', () => {
    const missing = fileExists('/nonexistent/chatter/contract.json', 'a folder beside the repository');
    delete process.env['CI'];
    const skipping = requireOrSkip('the contract', missing);
    expect(skipping).not.toBe(describe);
    process.env['CI'] = 'true';
    expect(() => requireOrSkip('the contract', missing)).toThrow(
      'needs the contract: /nonexistent/chatter/contract.json does not exist (a folder beside the repository) (required in CI)',
    );
    expect(() => requireOrSkip('a binary', binaryOnPath('chatter-no-such-binary', 'install it'))).toThrow(
      /chatter-no-such-binary` is not on PATH/,
    );
  });
});
