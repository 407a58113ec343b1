// o200k byte-pair encoding in O(n log n) on any input. tiktoken's algorithm exactly: split the text
// with the o200k pattern, look each piece up whole, else merge its bytes pair by pair, always the
// pair of lowest rank (leftmost on ties). tiktoken and gpt-tokenizer rescan every pair after each
// merge, which is quadratic on a long piece (a run without spaces is one piece); here the pairs sit
// in a heap (keyed rank, then position) over a linked list of parts, so each merge costs O(log n).
//
// The ranks are gpt-tokenizer's copy of o200k_base. Where gpt-tokenizer 4.0.0 itself differs from
// tiktoken we follow tiktoken: its byte lookup decodes candidate bytes with a BOM-stripping
// TextDecoder, so it never produces the nine tokens that start with U+FEFF (e.g. 5574 = U+FEFF).
import ranks from 'gpt-tokenizer/bpeRanks/o200k_base';

/**
 * tiktoken's o200k pre-tokenizer (`pat_str`) in JS syntax, with tiktoken's (Rust regex) meanings
 * where JS's differ: `\s` is Unicode White_Space (JS's \s holds U+FEFF and not U+0085), and the
 * contractions' `(?i:'s|…)` folds ſ (U+017F) to s as Unicode case folding does (JS has no inline
 * `(?i:…)` before Node 23). hf-tokenizer.test.ts checks both against the tokenizers library.
 */
const WHITE_SPACE = String.raw`\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000`;
const S = `[${WHITE_SPACE}]`;
const NOT_S = `[^${WHITE_SPACE}]`;
const CONTRACTION = String.raw`(?:'(?:[sS\u017f]|[dD]|[mM]|[tT]|[lL][lL]|[vV][eE]|[rR][eE]))?`;
const O200K_PATTERN = [
  String.raw`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+${CONTRACTION}`,
  String.raw`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*${CONTRACTION}`,
  String.raw`\p{N}{1,3}`,
  String.raw` ?[^${WHITE_SPACE}\p{L}\p{N}]+[\r\n/]*`,
  `${S}*[\\r\\n]+`,
  `${S}+(?!${NOT_S})`,
  `${S}+`,
].join('|');
/** One instance (encoding is synchronous, so never re-entered); lastIndex is reset per text. */
const O200K_SPLIT = new RegExp(O200K_PATTERN, 'gu');

interface Vocabulary {
  /** Token text → rank, for every token whose bytes are UTF-8 (a piece found here needs no merging). */
  byText: Map<string, number>;
  /** Token bytes as a binary string (one char per byte) → rank, for every token. */
  byBytes: Map<string, number>;
  /** The rank of each two-byte token by (first byte << 8 | second byte), or -1. */
  byteBigrams: Int32Array;
  /** The longest token, in bytes (128 for o200k). */
  maxTokenBytes: number;
}

/**
 * Built on first use (0.1–0.2 s), then kept on globalThis: it is immutable data derived from the
 * ranks, and a fresh module graph (vitest's resetModules, as the render-purity property uses) would
 * otherwise build it again each time.
 */
const VOCABULARY = Symbol.for('amnesia.harmony.o200k-vocabulary');
let vocabulary: Vocabulary | undefined;

function vocab(): Vocabulary {
  if (vocabulary !== undefined) return vocabulary;
  const global = globalThis as { [VOCABULARY]?: Vocabulary };
  vocabulary = global[VOCABULARY] ??= buildVocabulary();
  return vocabulary;
}

function buildVocabulary(): Vocabulary {
  const byText = new Map<string, number>();
  const byBytes = new Map<string, number>();
  const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const scratch = Buffer.alloc(1024);
  let maxTokenBytes = 1;
  ranks.forEach((entry, rank) => {
    let binary: string;
    if (typeof entry === 'string') {
      byText.set(entry, rank);
      // ASCII text is its own binary string.
      binary = /^[\x00-\x7f]*$/.test(entry) ? entry : scratch.toString('latin1', 0, scratch.write(entry, 'utf8'));
    } else {
      const bytes = Buffer.from(entry);
      binary = bytes.toString('latin1');
      try {
        byText.set(strict.decode(bytes), rank);
      } catch {
        // Not UTF-8 on its own (a fragment of a character): only a merge can make it.
      }
    }
    byBytes.set(binary, rank);
    if (binary.length > maxTokenBytes) maxTokenBytes = binary.length;
  });
  const byteBigrams = new Int32Array(65536);
  for (let pair = 0; pair < 65536; pair++) byteBigrams[pair] = byBytes.get(String.fromCharCode(pair >> 8, pair & 255)) ?? -1;
  return { byText, byBytes, byteBigrams, maxTokenBytes };
}

/** The longest o200k token in bytes: a text of n UTF-8 bytes is at least ⌈n / this⌉ tokens. */
export function maxTokenBytes(): number {
  return vocab().maxTokenBytes;
}

/** Below this many bytes a piece is merged by rescanning its pairs (tiktoken's way: no allocation). */
const SHORT_PIECE = 32;

/** tiktoken's own merge, O(n²): for short pieces, where it is the fastest. */
function mergeShort(bin: string, out: number[], v: Vocabulary): void {
  const { byBytes } = v;
  const starts = mergeParts(bin, byBytes);
  for (let i = 0; i + 1 < starts.length; i++) out.push(byBytes.get(bin.slice(starts[i]!, starts[i + 1]!))!);
}

/**
 * tiktoken's merge loop over the bytes `bin` (one char per byte), until `parts` parts are left or no
 * pair has a rank: where each part starts, then the end. Also how hf-tokenizer.ts finds the merge
 * that makes a token (the loop stopped at two parts).
 */
export function mergeParts(bin: string, byBytes: ReadonlyMap<string, number>, parts = 1): number[] {
  const n = bin.length;
  // starts[i]: where part i begins (starts[parts] = n); pairs[i]: rank of parts i and i + 1 joined.
  const starts: number[] = [];
  const pairs: number[] = [];
  for (let i = 0; i <= n; i++) starts.push(i);
  for (let i = 0; i + 1 < n; i++) pairs.push(byBytes.get(bin.slice(i, i + 2)) ?? Infinity);
  while (starts.length - 1 > parts) {
    let best = Infinity;
    let at = -1;
    for (let i = 0; i < pairs.length; i++) {
      if (pairs[i]! < best) {
        best = pairs[i]!;
        at = i;
      }
    }
    if (at < 0) break;
    starts.splice(at + 1, 1);
    pairs.splice(at, 1);
    if (at < pairs.length) pairs[at] = byBytes.get(bin.slice(starts[at]!, starts[at + 2]!)) ?? Infinity;
    if (at > 0) pairs[at - 1] = byBytes.get(bin.slice(starts[at - 1]!, starts[at + 1]!)) ?? Infinity;
  }
  return starts;
}

/** A heap key: rank × 2^32 + position, so keys order by rank, then leftmost (exact in a double). */
const POSITION = 2 ** 32;

/**
 * The same merges in O(n log n), for long pieces. Parts are linked by `next`/`prev` (the part
 * starting at byte i ends at next[i]); `key[i]` is rank × 2^32 + i for the pair of part i and the part
 * after it, or -1 when that pair has no rank. A binary min-heap of keys gives tiktoken's choice, the
 * lowest rank, leftmost on ties. A merge changes two pairs (the merged part's and its left
 * neighbour's): their new keys are pushed and the old ones left in the heap, recognised as stale when
 * they surface (key[i] differs: a pair's span from i only grows, so its key never comes back), and
 * dropped in bulk when the heap fills. Memory: about 30 bytes per byte of the piece.
 */
function mergeLong(bin: string, out: number[], v: Vocabulary): void {
  const n = bin.length;
  const { byBytes, byteBigrams, maxTokenBytes } = v;
  const next = new Int32Array(n);
  const prev = new Int32Array(n);
  const key = new Float64Array(n);
  let heap = new Float64Array(n + (n >> 1));
  let size = 0;
  for (let i = 0; i < n; i++) {
    next[i] = i + 1;
    prev[i] = i - 1;
    const rank = i + 1 < n ? byteBigrams[(bin.charCodeAt(i) << 8) | bin.charCodeAt(i + 1)]! : -1;
    key[i] = rank < 0 ? -1 : rank * POSITION + i;
    if (rank >= 0) heap[size++] = key[i]!;
  }
  // A sorted array is a heap.
  heap.subarray(0, size).sort();

  const keyOf = (start: number, end: number): number => {
    if (end - start > maxTokenBytes) return -1;
    const rank = byBytes.get(bin.slice(start, end));
    return rank === undefined ? -1 : rank * POSITION + start;
  };
  const push = (k: number): void => {
    if (size === heap.length) {
      let live = 0;
      for (let h = 0; h < size; h++) if (key[heap[h]! % POSITION] === heap[h]) heap[live++] = heap[h]!;
      size = live;
      if (2 * size > heap.length) {
        const larger = new Float64Array(2 * heap.length);
        larger.set(heap.subarray(0, size));
        heap = larger;
      }
      heap.subarray(0, size).sort();
    }
    let h = size++;
    while (h > 0) {
      const parent = (h - 1) >> 1;
      if (heap[parent]! <= k) break;
      heap[h] = heap[parent]!;
      h = parent;
    }
    heap[h] = k;
  };

  while (size > 0) {
    const top = heap[0]!;
    const last = heap[--size]!;
    let h = 0;
    for (;;) {
      let child = 2 * h + 1;
      if (child >= size) break;
      if (child + 1 < size && heap[child + 1]! < heap[child]!) child++;
      if (heap[child]! >= last) break;
      heap[h] = heap[child]!;
      h = child;
    }
    heap[h] = last;
    const i = top % POSITION;
    if (key[i] !== top) continue;
    // Merge part i with the part after it, j; k is the part after that (or n).
    const j = next[i]!;
    const k = next[j]!;
    key[j] = -1;
    next[i] = k;
    key[i] = -1;
    if (k < n) {
      prev[k] = i;
      key[i] = keyOf(i, next[k]!);
      if (key[i]! >= 0) push(key[i]!);
    }
    const p = prev[i]!;
    if (p >= 0) {
      key[p] = keyOf(p, k);
      if (key[p]! >= 0) push(key[p]!);
    }
  }
  for (let i = 0; i < n; i = next[i]!) out.push(byBytes.get(bin.slice(i, next[i]))!);
}

/** Recently merged short pieces (text → tokens), as gpt-tokenizer keeps: text repeats its words. */
const MERGE_CACHE_SIZE = 8192;
const mergeCache = new Map<string, readonly number[]>();

/**
 * Appends the o200k tokens of `text` (as plain text: special-token text stays text) to `out`, unless
 * `out` would then hold more than `limit` tokens: then it stops early, as soon as that is certain
 * (before merging a piece that must exceed it), and returns false. `out` then holds a prefix.
 */
export function encodeOrdinary(text: string, out: number[], limit = Infinity): boolean {
  const v = vocab();
  const pattern = O200K_SPLIT;
  pattern.lastIndex = 0;
  for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) {
    const piece = m[0];
    const whole = v.byText.get(piece);
    if (whole !== undefined) {
      if (out.length >= limit) return false;
      out.push(whole);
      continue;
    }
    const cached = mergeCache.get(piece);
    if (cached !== undefined) {
      if (out.length + cached.length > limit) return false;
      for (const t of cached) out.push(t);
      continue;
    }
    // A piece of n UTF-16 units is at least n UTF-8 bytes: one that cannot fit is not even converted.
    if (out.length + Math.ceil(piece.length / v.maxTokenBytes) > limit) return false;
    // Lone surrogates become U+FFFD here, as in TextEncoder (and so in tiktoken's JS ports).
    const bin = Buffer.from(piece, 'utf8').toString('latin1');
    if (out.length + Math.ceil(bin.length / v.maxTokenBytes) > limit) return false;
    const rank = v.byBytes.get(bin);
    if (rank !== undefined) out.push(rank);
    else if (bin.length >= SHORT_PIECE) mergeLong(bin, out, v);
    else {
      const from = out.length;
      mergeShort(bin, out, v);
      if (mergeCache.size >= MERGE_CACHE_SIZE) mergeCache.clear();
      mergeCache.set(piece, out.slice(from));
    }
    if (out.length > limit) return false;
  }
  return true;
}
