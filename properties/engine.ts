// Engine exactness properties (spec/properties.md, "Engine"): a position's logits are a function of
// the sequence's tokens up to it — not of chunking, restored prefixes, or batch neighbours. Compared
// bit for bit, so "identical requests give identical output" becomes an exact check.
import fc from 'fast-check';
import type { NativeEngine } from '../src/engine/native-api.ts';
import { Tok } from '../src/harmony/tokens.ts';
import type { PropertyDef } from './property.ts';

/** Token ids a model meets: ordinary text tokens and harmony's formatting tokens. */
const tokenId = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 199_997 }) },
  fc.constantFrom(Tok.start, Tok.end, Tok.message, Tok.channel, Tok.call, Tok.return, Tok.constrain),
);

export const tokenSequence = (maxLength: number): fc.Arbitrary<number[]> => fc.array(tokenId, { minLength: 2, maxLength });

/** Split `length` positions into chunks: sizes from the generated list, the rest one token at a time. */
function chunks(length: number, sizes: number[]): number[] {
  const out: number[] = [];
  let left = length;
  for (const size of sizes) {
    if (left === 0) break;
    out.push(Math.min(size, left));
    left -= out.at(-1)!;
  }
  while (left-- > 0) out.push(1);
  return out;
}

/** A sequence's logits for every position, fed in the given chunks: [positions × vocab]. */
export async function logitsInChunks(engine: NativeEngine, vocab: number, tokens: number[], sizes: number[]): Promise<Float32Array> {
  const out = new Float32Array(tokens.length * vocab);
  const seq = engine.createSequence();
  try {
    let at = 0;
    for (const size of chunks(tokens.length, sizes)) {
      const view = out.subarray(at * vocab, (at + size) * vocab);
      await engine.step([{ seq, tokens: Int32Array.from(tokens.slice(at, at + size)), logits: 'all', logitsOut: view }]);
      at += size;
    }
  } finally {
    engine.freeSequence(seq);
  }
  return out;
}

/** Throws at the first bit that differs, naming the position and token id. */
export function assertBitIdentical(what: string, actual: Float32Array, expected: Float32Array, vocab: number, from = 0): void {
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i]) {
      const position = from + Math.floor(i / vocab);
      throw new Error(`${what}: logits differ at position ${position}, token ${i % vocab}: ${actual[i]} vs ${expected[i]}`);
    }
  }
}

export interface EngineUnderTest {
  engine: NativeEngine;
  vocab: number;
  maxLength: number;
}

/** E1. One prefill, random chunk sizes and token by token all give bit-identical logits. */
export function chunkInvariance(t: EngineUnderTest): PropertyDef<{ tokens: number[]; sizes: number[] }> {
  return {
    arbitrary: fc.record({
      tokens: tokenSequence(t.maxLength),
      // An empty list means token by token.
      sizes: fc.oneof(fc.array(fc.integer({ min: 1, max: t.maxLength }), { maxLength: 6 }), fc.constant<number[]>([])),
    }),
    async predicate({ tokens, sizes }) {
      const whole = await logitsInChunks(t.engine, t.vocab, tokens, [tokens.length]);
      assertBitIdentical(`chunks ${JSON.stringify(chunks(tokens.length, sizes))}`, await logitsInChunks(t.engine, t.vocab, tokens, sizes), whole, t.vocab);
    },
  };
}

/**
 * E2. After a restored prefix — a fork of a sequence that holds the prefix, or a sequence truncated
 * back to it after other tokens — the remaining positions' logits equal a fresh computation.
 */
export function restoredPrefixInvariance(t: EngineUnderTest): PropertyDef<{ tokens: number[]; cut: number; junk: number[]; viaFork: boolean }> {
  return {
    arbitrary: fc.record({ tokens: tokenSequence(t.maxLength), cut: fc.nat(), junk: tokenSequence(8), viaFork: fc.boolean() }),
    async predicate({ tokens, cut, junk, viaFork }) {
      const k = 1 + (cut % (tokens.length - 1)); // prefix length in [1, length − 1]
      const whole = await logitsInChunks(t.engine, t.vocab, tokens, [tokens.length]);
      const source = t.engine.createSequence();
      const rest = tokens.slice(k);
      const out = new Float32Array(rest.length * t.vocab);
      let seq = source;
      try {
        await t.engine.step([{ seq: source, tokens: Int32Array.from([...tokens.slice(0, k), ...(viaFork ? [] : junk)]) }]);
        if (viaFork) seq = t.engine.forkSequence(source, k);
        else if (!t.engine.truncateSequence(source, k)) throw new Error('truncate refused in full KV mode');
        await t.engine.step([{ seq, tokens: Int32Array.from(rest), logits: 'all', logitsOut: out }]);
      } finally {
        t.engine.freeSequence(source);
        if (seq !== source) t.engine.freeSequence(seq);
      }
      assertBitIdentical(viaFork ? `fork at ${k}` : `truncate to ${k}`, out, whole.subarray(k * t.vocab), t.vocab, k);
    },
  };
}

/** E3. A sequence computed in steps shared with random other sequences gets bit-identical logits. */
export function batchInvariance(t: EngineUnderTest): PropertyDef<{ tokens: number[]; sizes: number[]; others: Array<{ tokens: number[]; sizes: number[] }> }> {
  const plan = fc.record({ tokens: tokenSequence(t.maxLength), sizes: fc.array(fc.integer({ min: 1, max: 8 }), { maxLength: 6 }) });
  return {
    arbitrary: fc.record({ tokens: plan.map((p) => p.tokens), sizes: plan.map((p) => p.sizes), others: fc.array(plan, { minLength: 1, maxLength: 3 }) }),
    async predicate({ tokens, sizes, others }) {
      const alone = await logitsInChunks(t.engine, t.vocab, tokens, [tokens.length]);
      const lanes = [{ tokens, sizes: chunks(tokens.length, sizes) }, ...others.map((o) => ({ tokens: o.tokens, sizes: chunks(o.tokens.length, o.sizes) }))];
      const seqs = lanes.map(() => t.engine.createSequence());
      const done = lanes.map(() => 0);
      const step = lanes.map(() => 0);
      const out = new Float32Array(tokens.length * t.vocab);
      try {
        // Every step advances each unfinished lane by its next chunk, so chunk sizes and neighbours vary.
        while (lanes.some((lane, i) => done[i]! < lane.tokens.length)) {
          const entries = lanes.flatMap((lane, i) => {
            if (done[i]! >= lane.tokens.length) return [];
            const size = lane.sizes[step[i]!]!;
            const from = done[i]!;
            done[i]! += size;
            step[i]! += 1;
            const entry = { seq: seqs[i]!, tokens: Int32Array.from(lane.tokens.slice(from, from + size)) };
            return i === 0 ? [{ ...entry, logits: 'all' as const, logitsOut: out.subarray(from * t.vocab, (from + size) * t.vocab) }] : [entry];
          });
          await t.engine.step(entries);
        }
      } finally {
        for (const s of seqs) t.engine.freeSequence(s);
      }
      assertBitIdentical(`in a batch with ${others.length} other sequence(s)`, out, alone, t.vocab);
    },
  };
}
