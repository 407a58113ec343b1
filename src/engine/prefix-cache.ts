// Prefix cache: a radix tree over token ids whose leaves are cached native sequences (the KV of a
// finished request's prompt and generated tokens). A new request forks the leaf holding its longest
// cached prefix; the engine reference-counts the KV blocks the fork shares, so evicting an entry
// never takes blocks from a sequence still using them. Invariants (spec/engine.md §8):
//   - reuse needs an exact token match from position 0, under the same model fingerprint;
//   - a request always computes at least its last prompt token (its logits are not stored);
//   - a trim either succeeds exactly or the reuse is refused and the prompt recomputed (ring mode);
//   - no entry is a prefix of another (the longer one supersedes it), so entries are the leaves and
//     eviction (least recently used first) only ever removes leaves.
// All methods are synchronous and must run between engine steps (the engine is busy during one).
import type { FailpointName } from './failpoints.ts';
import type { NativeEngine } from './native-api.ts';

interface Entry {
  /** The tokens the cache believes the sequence holds. */
  tokens: number[];
  seq: number;
  /** Positions actually in the native sequence (differs from tokens.length only under abort-desync). */
  kvLength: number;
  lastUsed: number;
  /** Logits after the last token; kept only for the full-hit-no-rerun failpoint. */
  lastLogits?: Float32Array;
}

class Node {
  children = new Map<number, Node>();
  entry: Entry | undefined;
  constructor(
    /** The tokens on the edge from the parent to this node. */
    public edge: number[],
    public parent: Node | undefined,
  ) {}
}

export interface PrefixCacheOptions {
  /** Identifies the model and KV settings; entries never match across fingerprints. */
  fingerprint: string;
  /** Byte budget for cached KV; 0 disables caching. */
  budgetBytes: number;
  blockSize: number;
  blockBytes: number;
  /** Bytes an entry holds outside the shared blocks (ring mode: its sliding-layer rings). */
  entryBytes: number;
  failpoints: ReadonlySet<FailpointName>;
}

export interface CacheHit {
  /** A new native sequence, owned by the caller. */
  seq: number;
  /** Prompt tokens the caller must not feed again. */
  reused: number;
  /** Only under full-hit-no-rerun: logits to sample the first token from, instead of computing them. */
  logits?: Float32Array;
}

export interface PrefixCacheStats {
  lookups: number;
  hits: number;
  reusedTokens: number;
  /** Reuses refused because the sequence could not be trimmed (ring mode past the window). */
  refusedTrims: number;
  inserts: number;
  evictions: number;
  entries: number;
  bytes: number;
  budgetBytes: number;
}

export class PrefixCache {
  private readonly roots = new Map<string, Node>();
  private clock = 0;
  private readonly counters = { lookups: 0, hits: 0, reusedTokens: 0, refusedTrims: 0, inserts: 0, evictions: 0 };

  constructor(
    private readonly engine: NativeEngine,
    private readonly options: PrefixCacheOptions,
  ) {}

  private root(): Node {
    let root = this.roots.get(this.options.fingerprint);
    if (root === undefined) this.roots.set(this.options.fingerprint, (root = new Node([], undefined)));
    return root;
  }

  /** The deepest node matching a prefix of `tokens`, and how many tokens matched. */
  private walk(tokens: readonly number[]): { node: Node; matched: number } {
    let node = this.root();
    let matched = 0;
    for (;;) {
      const child = node.children.get(tokens[matched]!);
      if (child === undefined) return { node, matched };
      let i = 0;
      while (i < child.edge.length && matched + i < tokens.length && child.edge[i] === tokens[matched + i]) i++;
      matched += i;
      if (i < child.edge.length) return { node: child, matched };
      node = child;
    }
  }

  /**
   * The most recently used entry under `node`. Any would do (every entry below a node shares the
   * node's path as a prefix); the latest is what a one-slot cache such as exo's holds, so a reuse
   * that goes wrong (failpoint kv-trim-noop) goes wrong as it did there, after the last conversation.
   */
  private entryBelow(node: Node): Entry | undefined {
    let latest: Entry | undefined;
    const stack = [node];
    while (stack.length > 0) {
      const n = stack.pop()!;
      if (n.entry !== undefined && (latest === undefined || n.entry.lastUsed > latest.lastUsed)) latest = n.entry;
      stack.push(...n.children.values());
    }
    return latest;
  }

  /** A new sequence holding the longest cached prefix of `prompt` (at most prompt.length − 1 tokens). */
  acquire(prompt: readonly number[]): CacheHit {
    this.counters.lookups++;
    const { node, matched } = this.walk(prompt);
    const entry = matched > 0 ? this.entryBelow(node) : undefined;
    if (entry === undefined) return { seq: this.engine.createSequence(), reused: 0 };
    entry.lastUsed = ++this.clock;

    const fullHit = matched >= prompt.length;
    if (fullHit && entry.lastLogits !== undefined && this.options.failpoints.has('full-hit-no-rerun')) {
      // llama.cpp #4902: a full hit samples from the logits the previous request ended with.
      return { ...this.trimmedCopy(entry, prompt.length)!, logits: entry.lastLogits };
    }
    const reuse = Math.min(matched, prompt.length - 1);
    if (reuse === 0) return { seq: this.engine.createSequence(), reused: 0 };
    const hit = this.partialBlockSkip(entry, reuse) ?? this.trimmedCopy(entry, reuse);
    if (hit === undefined) {
      this.counters.refusedTrims++;
      return { seq: this.engine.createSequence(), reused: 0 };
    }
    this.counters.hits++;
    this.counters.reusedTokens += hit.reused;
    return hit;
  }

  /**
   * Failpoint partial-block-skip: the hit keeps only the full blocks of the reused prefix (the
   * partial last block is left behind, as if it were never copied) but reports the whole prefix as
   * reused, so the tokens of the partial block are never computed and every later position is off
   * by their number. Undefined when off or the prefix ends on a block boundary.
   */
  private partialBlockSkip(entry: Entry, reuse: number): CacheHit | undefined {
    const full = reuse - (reuse % this.options.blockSize);
    if (!this.options.failpoints.has('partial-block-skip') || full === reuse) return undefined;
    const hit = this.trimmedCopy(entry, full);
    return hit && { ...hit, reused: reuse };
  }

  /**
   * A copy of the entry's sequence trimmed to `length` — copy, then trim, as exo and mlx-lm do — or
   * undefined when the engine cannot trim that far (ring mode past the window): never a stale copy.
   */
  private trimmedCopy(entry: Entry, length: number): CacheHit | undefined {
    const seq = this.engine.forkSequence(entry.seq, entry.kvLength);
    if (this.engine.truncateSequence(seq, Math.min(length, entry.kvLength))) return { seq, reused: length };
    this.engine.freeSequence(seq);
    return undefined;
  }

  /**
   * Hands a finished request's sequence to the cache (the cache now owns `seq`). `tokens` are the
   * tokens it holds; `kvLength` what the engine actually computed (they differ only under the
   * abort-desync failpoint).
   */
  insert(tokens: readonly number[], seq: number, kvLength: number, lastLogits?: Float32Array): void {
    if (this.options.budgetBytes <= 0 || tokens.length === 0) {
      this.engine.freeSequence(seq);
      return;
    }
    this.counters.inserts++;
    const { node, matched } = this.walk(tokens);
    if (matched === tokens.length) {
      // Already covered by a longer (or equal) entry: keep that one.
      const covering = this.entryBelow(node);
      if (covering !== undefined) covering.lastUsed = ++this.clock;
      this.engine.freeSequence(seq);
      return;
    }
    const entry: Entry = { tokens: [...tokens], seq, kvLength, lastUsed: ++this.clock };
    if (lastLogits !== undefined && this.options.failpoints.has('full-hit-no-rerun')) entry.lastLogits = lastLogits;

    let parent = node;
    const consumedAtNode = this.depth(node);
    if (matched < consumedAtNode) {
      // The match ends inside node's edge: split it.
      parent = this.split(node, node.edge.length - (consumedAtNode - matched));
    } else if (node.entry !== undefined) {
      // The new tokens extend an entry: the new one supersedes it (node stays, as the new leaf's parent).
      this.freeSequenceOf(node.entry, false);
      node.entry = undefined;
    }
    const leaf = new Node(tokens.slice(matched), parent);
    leaf.entry = entry;
    parent.children.set(leaf.edge[0]!, leaf);
    this.evictToBudget();
  }

  private depth(node: Node): number {
    let d = 0;
    for (let n: Node | undefined = node; n !== undefined; n = n.parent) d += n.edge.length;
    return d;
  }

  /** Splits `node`'s edge after `at` tokens; returns the new upper node. */
  private split(node: Node, at: number): Node {
    const upper = new Node(node.edge.slice(0, at), node.parent);
    node.parent!.children.set(upper.edge[0]!, upper);
    node.edge = node.edge.slice(at);
    node.parent = upper;
    upper.children.set(node.edge[0]!, node);
    return upper;
  }

  private nodeOf(entry: Entry): Node | undefined {
    const { node, matched } = this.walk(entry.tokens);
    return matched === entry.tokens.length && node.entry === entry ? node : undefined;
  }

  private freeSequenceOf(entry: Entry, evicted: boolean): void {
    if (evicted) this.counters.evictions++;
    // evict-referenced: the engine returns even blocks other sequences share to the pool.
    const unsafe = evicted && this.options.failpoints.has('evict-referenced');
    if (unsafe) this.engine.setDebug({ freeSharedBlocks: true });
    try {
      this.engine.freeSequence(entry.seq);
    } finally {
      if (unsafe) this.engine.setDebug({ freeSharedBlocks: false });
    }
  }

  /** Removes a leaf entry (and frees its sequence), pruning and merging the path above it. */
  private removeEntry(entry: Entry, evicted: boolean): void {
    const node = this.nodeOf(entry)!;
    node.entry = undefined;
    this.freeSequenceOf(entry, evicted);
    let n: Node | undefined = node;
    while (n?.parent !== undefined && n.entry === undefined && n.children.size === 0) {
      n.parent.children.delete(n.edge[0]!);
      n = n.parent;
    }
    // Merge a pass-through node (one child, no entry) with its child to keep the tree compressed.
    if (n?.parent !== undefined && n.entry === undefined && n.children.size === 1) {
      const [child] = n.children.values();
      child!.edge = [...n.edge, ...child!.edge];
      child!.parent = n.parent;
      n.parent.children.set(child!.edge[0]!, child!);
    }
  }

  private entries(): Entry[] {
    const out: Entry[] = [];
    const stack = [...this.roots.values()];
    while (stack.length > 0) {
      const n = stack.pop()!;
      if (n.entry !== undefined) out.push(n.entry);
      stack.push(...n.children.values());
    }
    return out;
  }

  /**
   * Bytes the cache holds: per tree node the blocks its edge spans (a fork shares the full blocks of
   * the prefix and copies the partial one, so a node at depths [a, b) costs ⌈b/B⌉ − ⌊a/B⌋ blocks),
   * plus each entry's own bytes outside the blocks.
   */
  bytes(): number {
    const { blockSize: b, blockBytes, entryBytes } = this.options;
    let blocks = 0;
    let entries = 0;
    const stack: Array<[Node, number]> = [...this.roots.values()].map((r): [Node, number] => [r, 0]);
    while (stack.length > 0) {
      const [n, start] = stack.pop()!;
      const end = start + n.edge.length;
      if (n.edge.length > 0) blocks += Math.ceil(end / b) - Math.floor(start / b);
      if (n.entry !== undefined) entries++;
      for (const c of n.children.values()) stack.push([c, end]);
    }
    return blocks * blockBytes + entries * entryBytes;
  }

  /** Evicts least recently used entries until the cache fits its budget. */
  evictToBudget(budget = this.options.budgetBytes): void {
    while (this.bytes() > budget) {
      const lru = this.entries().reduce<Entry | undefined>((a, e) => (a === undefined || e.lastUsed < a.lastUsed ? e : a), undefined);
      if (lru === undefined) return;
      this.removeEntry(lru, true);
    }
  }

  /** Drops every entry (a cold cache for the harness's baseline). */
  flush(): void {
    for (const e of this.entries()) this.removeEntry(e, true);
  }

  stats(): PrefixCacheStats {
    return { ...this.counters, entries: this.entries().length, bytes: this.bytes(), budgetBytes: this.options.budgetBytes };
  }
}
