import fc from 'fast-check';
import { Tiktoken } from 'js-tiktoken/lite';
import o200kBase from 'js-tiktoken/ranks/o200k_base';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTokenCounter, preloadTokenizer } from '../../src/providers/token-counter.js';

// The reference: js-tiktoken's own encoder over the same ranks, with special-token strings
// read as text (the counter never treats user text as control tokens). Its merge is
// quadratic in a piece's length, so it only sees short runs here.
let reference: Tiktoken;
const counter = createTokenCounter();
const referenceCount = (text: string): number => reference.encode(text, [], []).length;
const utf8Length = (text: string): number => Buffer.byteLength(text, 'utf8');

// Characters from the classes the pre-tokenizer treats differently: ASCII letters of both
// cases, digits, spaces and newlines, punctuation, contractions, accents and combining
// marks, CJK, Cyrillic, emoji (surrogate pairs, ZWJ sequences), a lone surrogate, U+FFFD.
const ALPHABET = [
  'a',
  'b',
  'z',
  'A',
  'Q',
  '0',
  '7',
  ' ',
  '  ',
  '\n',
  '\r\n',
  '\t',
  '.',
  ',',
  '!',
  '/',
  "'s",
  "'LL",
  'é',
  'e\u0301',
  'ß',
  '漢',
  '字',
  'か',
  'ж',
  'Ω',
  '€',
  '😀',
  '👩‍👩‍👧',
  '🇫🇷',
  '\uD800',
  '\uFFFD',
  '<|endoftext|>',
];
const character = fc.constantFrom(...ALPHABET);
/** Text made of runs of one character: the shape that made counting quadratic. */
const runs = (maxRun: number, maxRuns: number) =>
  fc
    .array(fc.tuple(character, fc.integer({ min: 1, max: maxRun })), { minLength: 1, maxLength: maxRuns })
    .map((parts) => parts.map(([text, times]) => text.repeat(times)).join(''));

beforeAll(() => {
  preloadTokenizer();
  reference = new Tiktoken(o200kBase);
});

describe('createTokenCounter', () => {
  it('counts exactly what js-tiktoken counts, for any short text', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), fc.string({ unit: 'grapheme', maxLength: 200 }), runs(40, 12)),
        (text) => {
          expect(counter.count(text)).toBe(referenceCount(text));
        },
      ),
      { numRuns: 400 },
    );
  });

  it.each([
    ['prose', "The quick brown fox jumps over the lazy dog. It didn't care; 12,345 times!\n\n".repeat(40)],
    ['a run of one letter', 'a'.repeat(2000)],
    ['a run of capitals', 'A'.repeat(2000)],
    ['a run of emoji', '😀'.repeat(600)],
    ['a run of CJK', '漢字'.repeat(400)],
    ['a run of three letters', 'xyz'.repeat(700)],
    ['a run of spaces', ' '.repeat(3000)],
    ['digits', '9'.repeat(3000)],
  ])('counts %s exactly', (_label, text) => {
    expect(counter.count(text)).toBe(referenceCount(text));
  });

  it('counts special-token strings as the text they are', () => {
    const text = 'please ignore <|endoftext|> and <|endofprompt|>';
    expect(counter.count(text)).toBe(referenceCount(text));
    expect(counter.count('<|endoftext|>')).toBeGreaterThan(1);
  });

  it('gives sane counts for any text up to 100,000 characters', () => {
    const long = fc.oneof(
      runs(100_000, 3),
      runs(5_000, 40),
      fc.string({ unit: 'binary', minLength: 1, maxLength: 20_000 }),
      fc.tuple(character, fc.integer({ min: 50_000, max: 100_000 })).map(([text, times]) => text.repeat(times)),
    );
    fc.assert(
      fc.property(long, (raw) => {
        const text = raw.slice(0, 100_000);
        const count = counter.count(text);
        expect(Number.isInteger(count)).toBe(true);
        // Every token is one to 128 bytes long (o200k_base's longest token).
        expect(count).toBeLessThanOrEqual(utf8Length(text));
        expect(count).toBeGreaterThanOrEqual(Math.ceil(utf8Length(text) / 128));
        // Appending text never loses the tokens before it (within one boundary token).
        expect(counter.count(`${text} x`)).toBeGreaterThanOrEqual(count);
      }),
      { numRuns: 25 },
    );
  });

  it('counts nothing in empty text', () => {
    expect(counter.count('')).toBe(0);
    expect(counter.split('')).toEqual([]);
  });

  it('splits text into pieces that concatenate back to it, never halving a character', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 300 }), runs(300, 10)), (text) => {
        const pieces = counter.split(text);
        expect(pieces.join('')).toBe(text);
        // One piece per token, except where tokens were merged to keep a character whole.
        expect(pieces.length).toBeLessThanOrEqual(counter.count(text));
        for (const piece of pieces) {
          expect(piece).not.toBe('');
          // A piece never starts with the second half of a surrogate pair.
          const first = piece.charCodeAt(0);
          if (first >= 0xdc00 && first <= 0xdfff) {
            const before = text.charCodeAt(text.indexOf(piece) - 1);
            expect(before >= 0xd800 && before <= 0xdbff).toBe(false);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('splits ordinary text into its tokens', () => {
    const text = 'Hello, world! Counting 12345 tokens.';
    const pieces = counter.split(text);
    expect(pieces.join('')).toBe(text);
    expect(pieces).toEqual(reference.encode(text, [], []).map((token) => reference.decode([token])));
  });
});
