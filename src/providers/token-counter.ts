import o200kBase from 'js-tiktoken/ranks/o200k_base';
import { bytePairBoundaries, type Ranks } from './byte-pair-merge.js';

/**
 * Counts and splits text in o200k_base tokens (the GPT-4o family's encoding).
 *
 * Both are exact for every input (they agree with tiktoken's encoding of the text, with
 * special-token strings such as `<|endoftext|>` read as plain text, the way a provider
 * reads them in a user's message) and take time O(n log n) in the text's length, whatever
 * the text: a 100,000-character run without whitespace costs about as much as 100,000
 * characters of prose, a few tens of milliseconds (`npm run bench:tokenizer`).
 */
export type TokenCounter = {
  /** Number of tokens in `text`. */
  count(text: string): number;
  /**
   * `text` cut at token boundaries: pieces that concatenate back to `text` exactly.
   * A token that ends inside a multi-byte character is merged with the next, so no
   * piece holds half a character.
   */
  split(text: string): string[];
};

type Encoding = {
  /** The pre-tokenizer: tiktoken's pattern, which cuts text into the pieces BPE merges. */
  pieces: RegExp;
  ranks: Ranks;
};

let shared: Encoding | undefined;

// The o200k_base ranks come bundled in js-tiktoken and are imported as a module: nothing
// is fetched at run time. Only the data is used: js-tiktoken's own encoder merges each
// piece in O(n²) (a whole-piece rescan, joining strings, after every merge), which let
// one long run without whitespace stall the process for minutes. Parsing the ranks costs
// a few hundred milliseconds, so it is done once, on first use, and shared.
function encoding(): Encoding {
  if (shared === undefined) {
    const ranks = new Map<string, number>();
    const pairs = new Int32Array(256 * 256).fill(-1);
    for (const line of o200kBase.bpe_ranks.split('\n')) {
      if (line === '') continue;
      const [, offset, ...tokens] = line.split(' ');
      const base = Number.parseInt(offset ?? '', 10);
      tokens.forEach((token, index) => {
        const bytes = Buffer.from(token, 'base64');
        ranks.set(bytes.toString('latin1'), base + index);
        if (bytes.length === 2) pairs[(bytes[0] as number) * 256 + (bytes[1] as number)] = base + index;
      });
    }
    // The pattern is linear on V8's backtracking engine: every alternative is a run of
    // one character class (or two overlapping ones, given up after one backtrack over
    // the run), and every position starts a match, so no position is scanned twice
    // without the match moving past it (bench:tokenizer times its worst cases).
    shared = {
      pieces: new RegExp(o200kBase.pat_str, 'gu'),
      ranks: { tokens: ranks, pairs },
    };
  }
  return shared;
}

// A few thousand characters of the shapes counting meets (prose, a long run of one
// letter, CJK, emoji, digits): counting them once at preload lets V8 compile the hot
// loops before the first request does, which halves the first long message's cost.
const WARM_UP = [
  'The quick brown fox jumps over the lazy dog, 12345 times. '.repeat(20),
  'a'.repeat(2000),
  '漢字かな'.repeat(500),
  '😀'.repeat(1000),
].join('\n');

/**
 * Parses the bundled ranks and warms the counting code now (a few hundred milliseconds)
 * so the first local model call of a freshly started service does not pay for it.
 */
export function preloadTokenizer(): void {
  const counter = createTokenCounter();
  counter.count(WARM_UP);
  counter.split(WARM_UP);
}

// eslint-disable-next-line no-control-regex -- the ASCII range itself
const ASCII = /^[\u0000-\u007f]*$/;

/** Calls `visit` with each pre-tokenized piece of `text`, in order, covering all of it. */
function forEachPiece(text: string, visit: (piece: string) => void): void {
  const { pieces } = encoding();
  pieces.lastIndex = 0;
  let covered = 0;
  for (let match = pieces.exec(text); match !== null; match = pieces.exec(text)) {
    // Every character starts a match of the pattern; a gap would be dropped by tiktoken
    // and is kept here as a piece of its own so `split` still covers the text.
    if (match.index > covered) visit(text.slice(covered, match.index));
    if (match[0] === '') {
      pieces.lastIndex += 1;
      continue;
    }
    visit(match[0]);
    covered = match.index + match[0].length;
  }
  if (covered < text.length) visit(text.slice(covered));
}

/** The piece's UTF-8 bytes as a binary string (what the rank table is keyed by). */
function utf8Bytes(piece: string): string {
  return ASCII.test(piece) ? piece : Buffer.from(piece, 'utf8').toString('latin1');
}

/** Byte offsets at which the piece's tokens start. */
function tokenStarts(bytes: string): number[] {
  const { ranks } = encoding();
  if (ranks.tokens.has(bytes)) return [0];
  return bytePairBoundaries(bytes, ranks);
}

/** For each UTF-8 byte offset of `piece` that falls between two code points, its UTF-16 offset; -1 elsewhere. */
function unitOffsets(piece: string, byteLength: number): Int32Array {
  const offsets = new Int32Array(byteLength + 1).fill(-1);
  let bytes = 0;
  for (let unit = 0; unit < piece.length; ) {
    offsets[bytes] = unit;
    const code = piece.codePointAt(unit) as number;
    // A lone surrogate is encoded as U+FFFD: three bytes, one unit.
    bytes += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
    unit += code >= 0x10000 ? 2 : 1;
  }
  offsets[bytes] = piece.length;
  return offsets;
}

function splitPiece(piece: string, into: string[]): void {
  const bytes = utf8Bytes(piece);
  const starts = tokenStarts(bytes);
  if (bytes === piece) {
    starts.forEach((start, index) => into.push(piece.slice(start, starts[index + 1] ?? piece.length)));
    return;
  }
  const offsets = unitOffsets(piece, bytes.length);
  let from = 0;
  for (const start of [...starts.slice(1), bytes.length]) {
    const unit = offsets[start] as number;
    if (unit < 0) continue; // inside a character: merge with the next token
    into.push(piece.slice(from, unit));
    from = unit;
  }
}

/** Creates a {@link TokenCounter} over the bundled o200k_base encoding. */
export function createTokenCounter(): TokenCounter {
  return {
    count(text) {
      let total = 0;
      forEachPiece(text, (piece) => {
        total += tokenStarts(utf8Bytes(piece)).length;
      });
      return total;
    },
    split(text) {
      const pieces: string[] = [];
      forEachPiece(text, (piece) => splitPiece(piece, pieces));
      return pieces;
    },
  };
}
