import { Tiktoken } from 'js-tiktoken/lite';
import o200kBase from 'js-tiktoken/ranks/o200k_base';

/** Counts and splits text in tokens. */
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

let shared: Tiktoken | undefined;

// The o200k_base ranks (the GPT-4o family's encoding) come bundled in js-tiktoken and
// are imported as a module: nothing is fetched at run time. Building the encoder costs
// a few hundred milliseconds, so it is built once, on first use, and shared.
function encoder(): Tiktoken {
  shared ??= new Tiktoken(o200kBase);
  return shared;
}

/**
 * Builds the shared encoder now (about 2 s on first use, spent parsing the ranks) so
 * the first local model call of a freshly started service does not pay for it.
 */
export function preloadTokenizer(): void {
  encoder();
}

/** Creates a {@link TokenCounter} over the bundled o200k_base encoding. */
export function createTokenCounter(): TokenCounter {
  return {
    count: (text) => (text === '' ? 0 : encoder().encode(text).length),
    split(text) {
      const tiktoken = encoder();
      const pieces: string[] = [];
      let pending: number[] = [];
      for (const token of tiktoken.encode(text)) {
        pending.push(token);
        const piece = tiktoken.decode(pending);
        if (piece.includes('\uFFFD')) continue;
        pieces.push(piece);
        pending = [];
      }
      if (pending.length > 0) pieces.push(tiktoken.decode(pending));
      return pieces;
    },
  };
}
