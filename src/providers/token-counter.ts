import o200kBase from 'js-tiktoken/ranks/o200k_base';
import { createBytePairMerger, type BytePairMerger } from './byte-pair-merge.js';

/**
 * Counts and splits text in o200k_base tokens (the GPT-4o family's encoding).
 *
 * Both are exact for every input: they agree with tiktoken's encoding of the text, with
 * special-token strings such as `<|endoftext|>` read as plain text (the way a provider
 * reads them in a user's message). Both take time O(n log n) in the text's length,
 * whatever the text: a 100,000-character run without whitespace costs about as much as
 * 100,000 characters of prose, tens of milliseconds (`npm run bench:tokenizer`).
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
  merger: BytePairMerger;
};

let shared: Encoding | undefined;

// The o200k_base ranks come bundled in js-tiktoken and are imported as a module: nothing
// is fetched at run time. Only the data is used: js-tiktoken's own encoder merges each
// piece in O(n²) (a whole-piece rescan, joining strings, after every merge), which let
// one long run without whitespace stall the process for minutes. Parsing the ranks costs
// a few hundred milliseconds, so it is done once, on first use, and shared.
function encoding(): Encoding {
  if (shared === undefined) {
    const tokens: Uint8Array[] = [];
    for (const line of o200kBase.bpe_ranks.split('\n')) {
      if (line === '') continue;
      const [, offset, ...encoded] = line.split(' ');
      const base = Number.parseInt(offset ?? '', 10);
      encoded.forEach((token, index) => {
        tokens[base + index] = Buffer.from(token, 'base64');
      });
    }
    // The pattern is linear on V8's backtracking engine: every alternative is a run of
    // one character class (or two overlapping ones, given up after one backtrack over
    // the run), and every position starts a match, so no position is scanned twice
    // without the match moving past it (bench:tokenizer times its worst cases).
    shared = { pieces: new RegExp(o200kBase.pat_str, 'gu'), merger: createBytePairMerger(tokens) };
  }
  return shared;
}

// A few thousand characters of the shapes counting meets (prose, a long run of one
// letter, CJK, emoji, digits): counting them once at preload lets V8 compile the hot
// loops before the first request does.
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

// One buffer for the UTF-8 bytes of the piece being merged (three bytes per UTF-16 unit
// at most), grown on demand; one kept past 1 MiB would hold memory for a rare piece.
// Module state rather than a returned object: counting allocates nothing per piece.
const KEPT_BUFFER_BYTES = 1 << 20;
let buffer = new Uint8Array(1024);
/** The bytes {@link writeUtf8} last wrote (`buffer`, or a one-off array for a huge piece). */
let written = buffer;
/** Whether that piece was all ASCII (its bytes are its characters). */
let writtenAscii = true;
const encoder = new TextEncoder();

/** Writes the piece's UTF-8 bytes into `written` (lone surrogates as U+FFFD, like tiktoken) and returns their number. */
function writeUtf8(piece: string): number {
  const room = piece.length * 3;
  if (room > buffer.length) {
    written = new Uint8Array(room);
    if (room <= KEPT_BUFFER_BYTES) buffer = written;
  } else {
    written = buffer;
  }
  writtenAscii = true;
  for (let index = 0; index < piece.length; index += 1) {
    const code = piece.charCodeAt(index);
    if (code >= 0x80) {
      writtenAscii = false;
      return encoder.encodeInto(piece, written).written;
    }
    written[index] = code;
  }
  return piece.length;
}

/** Number of tokens in a piece. */
function pieceTokens(piece: string): number {
  const { merger } = encoding();
  const length = writeUtf8(piece);
  return merger.rankOf(written, length) >= 0 ? 1 : merger.count(written, length);
}

/** For each UTF-8 byte offset of `piece` that falls between two code points, its UTF-16 offset; -1 elsewhere. */
function unitOffsets(piece: string, byteLength: number): Int32Array {
  const offsets = new Int32Array(byteLength + 1).fill(-1);
  let bytes = 0;
  for (let unit = 0; unit < piece.length;) {
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
  const { merger } = encoding();
  const length = writeUtf8(piece);
  const starts = merger.rankOf(written, length) >= 0 ? [0] : merger.boundaries(written, length);
  if (writtenAscii) {
    starts.forEach((start, index) => into.push(piece.slice(start, starts[index + 1] ?? piece.length)));
    return;
  }
  const offsets = unitOffsets(piece, length);
  let from = 0;
  for (const start of [...starts.slice(1), length]) {
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
        total += pieceTokens(piece);
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
