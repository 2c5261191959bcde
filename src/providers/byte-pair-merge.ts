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
 *
 * Looking a candidate up costs O(1) and allocates nothing: both halves of a candidate
 * are tokens, so its hash is computed from theirs (a polynomial hash, combined the way
 * a rolling hash is), probed in an open-addressing table, and confirmed byte by byte.
 */

/** Rank table of one encoding, built once by {@link createBytePairMerger}. */
export type BytePairMerger = {
  /** Rank of `bytes[0, length)` if it is one token, else -1. */
  rankOf(bytes: Uint8Array, length: number): number;
  /** Number of tokens `bytes[0, length)` merges into (see {@link BytePairMerger.boundaries}). */
  count(bytes: Uint8Array, length: number): number;
  /**
   * Byte offsets where the tokens of `bytes[0, length)` start, in order (the first is 0;
   * the last token ends at `length`). Every byte value must be a token of its own.
   * @throws RangeError when the piece is 2^31 bytes or longer.
   */
  boundaries(bytes: Uint8Array, length: number): number[];
};

// Heap entries are single numbers, rank · 2^31 + start: ordering by them orders by rank,
// then by position, which is exactly the reference's "lowest rank, leftmost" choice.
// Ranks are below 2^21, so the key stays below 2^53 and exact.
const POSITION = 2 ** 31;
const MULTIPLIER = 0x01000193;
const TABLE_BITS = 20;

/**
 * Builds the merger over `tokens` (the byte sequence of each rank, by rank; holes allowed).
 * @throws RangeError when a token is longer than 255 bytes.
 */
export function createBytePairMerger(tokens: ReadonlyArray<Uint8Array | undefined>): BytePairMerger {
  return new RankTable(tokens);
}

// A class with methods rather than closures: the hot path creates no function objects
// per piece (tsx's keep-names helper made per-call closures show in profiles).
class RankTable implements BytePairMerger {
  private readonly maxLength: number;
  /** power[k] = MULTIPLIER^k mod 2^32: hash(a + b) = hash(a) · power[|b|] + hash(b). */
  private readonly power: Int32Array;
  private readonly store: Uint8Array;
  private readonly offset: Int32Array;
  private readonly size: Uint8Array;
  private readonly hashes: Int32Array;
  private readonly byteRank = new Int32Array(256).fill(-1);
  /** Slots hold rank + 1 (0: empty); 2^20 slots for ~200,000 tokens keeps probes short. */
  private readonly table = new Int32Array(1 << TABLE_BITS);

  constructor(tokens: ReadonlyArray<Uint8Array | undefined>) {
    const count = tokens.length;
    let maxLength = 1;
    let totalBytes = 0;
    for (const token of tokens) {
      if (token === undefined) continue;
      if (token.length > 255) throw new RangeError(`token of ${token.length} bytes`);
      maxLength = Math.max(maxLength, token.length);
      totalBytes += token.length;
    }
    this.maxLength = maxLength;
    this.power = new Int32Array(maxLength + 1);
    this.power[0] = 1;
    for (let k = 1; k <= maxLength; k += 1) this.power[k] = Math.imul(this.power[k - 1] as number, MULTIPLIER);
    this.store = new Uint8Array(totalBytes);
    this.offset = new Int32Array(count);
    this.size = new Uint8Array(count);
    this.hashes = new Int32Array(count);

    let cursor = 0;
    tokens.forEach((token, rank) => {
      if (token === undefined) return;
      this.store.set(token, cursor);
      this.offset[rank] = cursor;
      this.size[rank] = token.length;
      cursor += token.length;
      let hash = 0;
      for (const byte of token) hash = (Math.imul(hash, MULTIPLIER) + byte) | 0;
      this.hashes[rank] = hash;
      if (token.length === 1) this.byteRank[token[0] as number] = rank;
      let slot = slotOf(hash);
      while (this.table[slot] !== 0) slot = (slot + 1) & (this.table.length - 1);
      this.table[slot] = rank + 1;
    });
  }

  rankOf(bytes: Uint8Array, length: number): number {
    let hash = 0;
    for (let index = 0; index < length; index += 1) hash = (Math.imul(hash, MULTIPLIER) + (bytes[index] as number)) | 0;
    return this.find(bytes, 0, length, hash);
  }

  count(bytes: Uint8Array, length: number): number {
    if (length <= 1) return length;
    return length - this.merge(bytes, length).merges;
  }

  boundaries(bytes: Uint8Array, length: number): number[] {
    if (length <= 1) return length === 0 ? [] : [0];
    const { next } = this.merge(bytes, length);
    const starts: number[] = [];
    for (let start = 0; start < length; start = next[start] as number) starts.push(start);
    return starts;
  }

  /**
   * Runs the merges over bytes[0, length) (length ≥ 2); the parts are then the linked
   * list `next` from 0.
   */
  private merge(bytes: Uint8Array, length: number): Workspace {
    if (length >= POSITION) throw new RangeError(`piece of ${length} bytes is too long to merge`);
    const work = workspace(length);
    const { next, previous, partRank, pairRank, heap } = work;

    for (let index = 0; index < length; index += 1) {
      next[index] = index + 1;
      previous[index] = index - 1;
      partRank[index] = this.byteRank[bytes[index] as number] as number;
      pairRank[index] = -1;
    }
    for (let index = 0; index + 1 < length; index += 1) {
      const found = this.pair(bytes, length, work, index);
      if (found >= 0) {
        pairRank[index] = found;
        heap.values[heap.size++] = found * POSITION + index;
      }
    }
    heapify(heap);

    while (heap.size > 0) {
      const entry = pop(heap);
      const start = entry % POSITION;
      const entryRank = (entry - start) / POSITION;
      if (pairRank[start] !== entryRank) continue;
      // Merge the part at `start` with the one after it.
      const middle = next[start] as number;
      const end = next[middle] as number;
      pairRank[middle] = -1;
      partRank[start] = entryRank;
      next[start] = end;
      if (end < length) previous[end] = start;
      this.rerank(bytes, length, work, start);
      if (start > 0) this.rerank(bytes, length, work, previous[start] as number);
      work.merges += 1;
    }
    return work;
  }

  /** Re-ranks the pair starting at `start` and queues it if it is a token. */
  private rerank(bytes: Uint8Array, length: number, work: Workspace, start: number): void {
    const found = this.pair(bytes, length, work, start);
    work.pairRank[start] = found;
    if (found >= 0) push(work.heap, found * POSITION + start);
  }

  /** Rank of the pair starting at `start`, from its two parts' tokens, or -1. */
  private pair(bytes: Uint8Array, length: number, work: Workspace, start: number): number {
    const middle = work.next[start] as number;
    if (middle >= length) return -1;
    const end = work.next[middle] as number;
    const left = work.partRank[start] as number;
    const right = work.partRank[middle] as number;
    const hash =
      (Math.imul(this.hashes[left] as number, this.power[this.size[right] as number] as number) + (this.hashes[right] as number)) | 0;
    return this.find(bytes, start, end - start, hash);
  }

  /** Rank of bytes[start, start + length) with the given hash, or -1. */
  private find(bytes: Uint8Array, start: number, length: number, hash: number): number {
    if (length > this.maxLength) return -1;
    const { table, hashes, size, offset, store } = this;
    for (let slot = slotOf(hash); ; slot = (slot + 1) & (table.length - 1)) {
      const entry = table[slot] as number;
      if (entry === 0) return -1;
      const rank = entry - 1;
      if (hashes[rank] !== hash || size[rank] !== length) continue;
      const at = offset[rank] as number;
      let same = true;
      for (let index = 0; index < length && same; index += 1) same = store[at + index] === bytes[start + index];
      if (same) return rank;
    }
  }
}

function slotOf(hash: number): number {
  return Math.imul(hash, 0x9e3779b1) >>> (32 - TABLE_BITS);
}

type Heap = { values: Float64Array; size: number };

/**
 * Per-piece state. Parts form a linked list over their start offsets (a part ends where
 * the next begins); `partRank` is the token each part is, `pairRank` the rank of the
 * pair it starts (-1: not a token; also set on parts merged away), so stale heap entries
 * are recognised when popped. The heap starts with at most n − 1 entries and each merge
 * pops one and pushes at most two, so it never holds more than 2n.
 */
type Workspace = { next: Int32Array; previous: Int32Array; partRank: Int32Array; pairRank: Int32Array; heap: Heap; merges: number };

// Most pieces are a few bytes long: one workspace is reused for every piece up to this
// size (allocating typed arrays per piece dominated the cost of text with many pieces).
// A longer piece (only a message made of one huge run of characters has one) uses a
// second workspace, kept for LARGE_WORKSPACE_KEEP_MS after its last use and then left
// to the garbage collector: a burst of such messages allocates (and collects) it once.
const REUSED_WORKSPACE_BYTES = 1 << 16;
const LARGE_WORKSPACE_KEEP_MS = 10_000;
let reused: Workspace | undefined;
let large: Workspace | undefined;
let largeRelease: NodeJS.Timeout | undefined;

const largeWorkspace = (length: number): Workspace => {
  if (large === undefined || large.next.length < length) large = allocate(length);
  clearTimeout(largeRelease);
  largeRelease = setTimeout(() => {
    large = undefined;
  }, LARGE_WORKSPACE_KEEP_MS);
  largeRelease.unref();
  large.heap.size = 0;
  large.merges = 0;
  return large;
};

const allocate = (capacity: number): Workspace => ({
  next: new Int32Array(capacity),
  previous: new Int32Array(capacity),
  partRank: new Int32Array(capacity),
  pairRank: new Int32Array(capacity),
  heap: { values: new Float64Array(2 * capacity), size: 0 },
  merges: 0,
});

function workspace(length: number): Workspace {
  if (length > REUSED_WORKSPACE_BYTES) return largeWorkspace(length);
  reused ??= allocate(1024);
  if (reused.next.length < length) reused = allocate(Math.min(REUSED_WORKSPACE_BYTES, Math.max(length, 2 * reused.next.length)));
  reused.heap.size = 0;
  reused.merges = 0;
  return reused;
}

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
