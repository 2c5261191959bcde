/**
 * Byte-pair merging, the step of a BPE tokenizer that turns one pre-tokenized piece into
 * tokens: start from single bytes and keep merging the adjacent pair whose concatenation
 * has the lowest rank (the leftmost one on a tie) until no adjacent pair is a token.
 *
 * This is the same rule as tiktoken's (and js-tiktoken's) `bytePairMerge`, which rescans
 * every pair after each merge: O(n²) in the piece's length, with a string join per pair
 * on every scan, so one long run without whitespace (100,000 `a`s) took minutes. Here the
 * candidate pairs sit in a binary min-heap keyed by (rank, position) and each merge only
 * re-ranks its two new neighbours: O(n log n), with the same result for every input.
 */

/** The rank table: byte sequences that are tokens, and their ranks. */
export type Ranks = {
  /** A sequence as a binary string (one UTF-16 unit per byte, 0–255) → its rank, if it is a token. */
  tokens: ReadonlyMap<string, number>;
  /** Rank of each two-byte token at `first · 256 + second`, -1 for pairs that are not tokens. */
  pairs: Int32Array;
};

// Heap entries are single numbers, rank · 2^32 + start: ordering by them orders by rank,
// then by position, which is exactly the reference's "lowest rank, leftmost" choice.
// Ranks are below 2^21, so the key stays below 2^53 and exact.
const POSITION = 2 ** 32;

/**
 * Byte offsets where the tokens of `bytes` start, in order (the first is 0; the last token
 * ends at `bytes.length`).
 * @throws RangeError when the piece is 2^32 bytes or longer.
 */
export function bytePairBoundaries(bytes: string, ranks: Ranks): number[] {
  const length = bytes.length;
  if (length >= POSITION) throw new RangeError(`piece of ${length} bytes is too long to merge`);
  if (length <= 1) return length === 0 ? [] : [0];

  // Parts form a linked list over their start offsets; a part ends where the next begins.
  const next = new Int32Array(length);
  const previous = new Int32Array(length);
  const alive = new Uint8Array(length).fill(1);
  // The rank of the pair starting at each part (-1: not a token), so stale heap entries
  // (pushed before a neighbour merged) are recognised when popped.
  const pairRank = new Int32Array(length).fill(-1);
  // Each merge pushes at most two entries: 3n bounds the heap.
  const heap: Heap = { values: new Float64Array(3 * length), size: 0 };

  for (let index = 0; index < length; index += 1) {
    next[index] = index + 1;
    previous[index] = index - 1;
  }
  // Two-byte pairs come from a flat table: no string slicing for the n - 1 first pairs.
  for (let index = 0; index + 1 < length; index += 1) {
    const found = ranks.pairs[bytes.charCodeAt(index) * 256 + bytes.charCodeAt(index + 1)] as number;
    if (found >= 0) {
      pairRank[index] = found;
      heap.values[heap.size++] = found * POSITION + index;
    }
  }
  heapify(heap);

  const rerank = (start: number): void => {
    const middle = next[start] as number;
    const end = middle < length ? (next[middle] as number) : length;
    const found = middle < length ? ranks.tokens.get(bytes.slice(start, end)) : undefined;
    pairRank[start] = found ?? -1;
    if (found !== undefined) push(heap, found * POSITION + start);
  };

  while (heap.size > 0) {
    const entry = pop(heap);
    const start = entry % POSITION;
    const entryRank = (entry - start) / POSITION;
    if (alive[start] === 0 || pairRank[start] !== entryRank) continue;
    // Merge the part at `start` with the one after it.
    const middle = next[start] as number;
    const end = next[middle] as number;
    alive[middle] = 0;
    next[start] = end;
    if (end < length) previous[end] = start;
    rerank(start);
    if (start > 0) rerank(previous[start] as number);
  }

  const starts: number[] = [];
  for (let start = 0; start < length; start = next[start] as number) starts.push(start);
  return starts;
}

type Heap = { values: Float64Array; size: number };

function heapify(heap: Heap): void {
  for (let index = (heap.size >> 1) - 1; index >= 0; index -= 1) siftDown(heap, index);
}

function push(heap: Heap, value: number): void {
  const values = heap.values;
  let index = heap.size++;
  while (index > 0) {
    const parent = (index - 1) >> 1;
    const above = values[parent] as number;
    if (above <= value) break;
    values[index] = above;
    index = parent;
  }
  values[index] = value;
}

function pop(heap: Heap): number {
  const values = heap.values;
  const top = values[0] as number;
  heap.size -= 1;
  if (heap.size > 0) {
    values[0] = values[heap.size] as number;
    siftDown(heap, 0);
  }
  return top;
}

function siftDown(heap: Heap, from: number): void {
  const { values, size } = heap;
  const value = values[from] as number;
  let index = from;
  for (;;) {
    let child = 2 * index + 1;
    if (child >= size) break;
    const right = child + 1;
    if (right < size && (values[right] as number) < (values[child] as number)) child = right;
    const below = values[child] as number;
    if (below >= value) break;
    values[index] = below;
    index = child;
  }
  values[index] = value;
}
