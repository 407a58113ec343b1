// The native engine (native/, built by `npm run build:native`) on the tiny checkpoint: exactness
// (bit-identical logits whatever the chunking, batching, thread count, fork or truncation), the
// KV block pool, ring mode, validation that changes nothing, and the numpy reference's goldens.
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, test } from 'vitest';
import { loadCheckpoint } from './checkpoint.ts';
import { ensureTinyCheckpoint } from './make-tiny.ts';
import { loadNativeAddon } from './native-addon.ts';
import type { NativeAddon, NativeEngine, NativeEngineOptions, NativeModel, NativeModelSpec, NativeStepEntry } from './native-api.ts';

let addon: NativeAddon;
let spec: NativeModelSpec;
let model: NativeModel;
let V: number;

beforeAll(async () => {
  addon = loadNativeAddon();
  spec = loadCheckpoint(await ensureTinyCheckpoint());
  model = new addon.NativeModel(spec);
  V = model.config.vocabSize;
});

/** Deterministic pseudo-random token ids (mixed ordinary and harmony ids). */
function tokens(n: number, seed: number): Int32Array {
  const out = new Int32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s % 7 === 0 ? 200000 + (s % 13) : s % 200000;
  }
  return out;
}

function engine(opts: Partial<NativeEngineOptions> = {}): NativeEngine {
  return model.createEngine({ kvBlocks: 64, kvBlockSize: 16, ...opts });
}

/** Bitwise equality of two float arrays (NaN payloads and signed zeros included). */
function sameBits(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function row(all: Float32Array, i: number): Float32Array {
  return all.subarray(i * V, (i + 1) * V);
}

function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
  return best;
}

/** Feeds `toks` to a new sequence of `eng` in chunks of the given sizes; returns every position's logits. */
async function runChunks(eng: NativeEngine, toks: Int32Array, chunks: number[], seq = eng.createSequence()): Promise<Float32Array> {
  const out = new Float32Array(toks.length * V);
  let at = 0;
  for (const c of chunks) {
    const n = Math.min(c, toks.length - at);
    if (n <= 0) break;
    const buf = out.subarray(at * V, (at + n) * V);
    await eng.step([{ seq, tokens: toks.slice(at, at + n), logits: 'all', logitsOut: buf }]);
    at += n;
  }
  expect(at).toBe(toks.length);
  return out;
}

function expectRowsEqual(a: Float32Array, b: Float32Array, rows: number, what: string): void {
  for (let i = 0; i < rows; i++) {
    if (!sameBits(row(a, i), row(b, i))) throw new Error(`${what}: logits of position ${i} differ`);
  }
}

const PROMPT = tokens(37, 7); // > sliding window 8, spans several 16-position blocks

describe('native engine', () => {
  test('loads and reports its kernel set', () => {
    expect(['avx512', 'avx2', 'scalar']).toContain(addon.simd());
    expect(model.config.hiddenSize).toBe(64);
    expect(model.config.vocabSize).toBe(201088);
    expect(model.config.slidingLayers).toEqual([true, false, true, false]);
    const eng = engine();
    expect(eng.kvStats()).toEqual({ blockSize: 16, blocksTotal: 64, blocksFree: 64, blockBytes: 4 * 2 * 16 * 2 * 16 * 4 });
    eng.close();
  });

  test('greedy decode runs; next is the argmax of the returned logits', async () => {
    const eng = engine();
    const seq = eng.createSequence();
    const logits = new Float32Array(V);
    let [r] = await eng.step([{ seq, tokens: PROMPT, logits: 'last', logitsOut: logits }]);
    expect(r!.next).toBe(argmax(logits));
    expect(eng.sequenceLength(seq)).toBe(PROMPT.length);
    for (let i = 0; i < 6; i++) {
      const next = r!.next;
      [r] = await eng.step([{ seq, tokens: Int32Array.of(next), logits: 'last', logitsOut: logits }]);
      expect(r!.next).toBe(argmax(logits));
      expect(Number.isInteger(r!.next) && r!.next >= 0 && r!.next < V).toBe(true);
    }
    expect(eng.sequenceLength(seq)).toBe(PROMPT.length + 6);
    // 'none' still returns the greedy token
    const [r2] = await eng.step([{ seq, tokens: Int32Array.of(r!.next) }]);
    expect(Number.isInteger(r2!.next)).toBe(true);
    expect(r2!.routing).toBeUndefined();
    eng.close();
  });

  test("logits for 'all' rows match token-by-token and any chunking, bit for bit", async () => {
    const whole = await runChunks(engine(), PROMPT, [PROMPT.length]);
    const byToken = await runChunks(engine({ kvBlockSize: 4, threads: 1 }), PROMPT, Array(PROMPT.length).fill(1));
    expectRowsEqual(whole, byToken, PROMPT.length, 'one step vs token by token');
    const chunked = await runChunks(engine({ kvBlockSize: 5, threads: 2 }), PROMPT, [3, 1, 9, 2, 8, 5, 16]);
    expectRowsEqual(whole, chunked, PROMPT.length, 'one step vs chunks');
    // 'last' equals the matching 'all' row
    const eng = engine();
    const last = new Float32Array(V);
    const [r] = await eng.step([{ seq: eng.createSequence(), tokens: PROMPT, logits: 'last', logitsOut: last }]);
    expect(sameBits(last, row(whole, PROMPT.length - 1))).toBe(true);
    expect(r!.next).toBe(argmax(last));
  });

  test('batch composition and thread count do not change a sequence', async () => {
    const alone = await runChunks(engine({ threads: 1 }), PROMPT, [20, 17]);
    const eng = engine({ threads: 2, kvBlockSize: 8 });
    const x = eng.createSequence();
    const others = [eng.createSequence(), eng.createSequence()];
    await eng.step([{ seq: others[0]!, tokens: tokens(11, 3) }]);
    const out = new Float32Array(PROMPT.length * V);
    const routing: Int32Array[] = [];
    // step 1: x's first 20 tokens beside a decode token and a 5-token prefill of other sequences
    let res = await eng.step([
      { seq: others[0]!, tokens: Int32Array.of(5) },
      { seq: x, tokens: PROMPT.slice(0, 20), logits: 'all', logitsOut: out.subarray(0, 20 * V), routing: true },
      { seq: others[1]!, tokens: tokens(5, 4), routing: true },
    ]);
    routing.push(res[1]!.routing!);
    expect(res[2]!.routing!.length).toBe(5 * 4 * 2);
    // step 2: the rest, with x first this time
    res = await eng.step([
      { seq: x, tokens: PROMPT.slice(20), logits: 'all', logitsOut: out.subarray(20 * V), routing: true },
      { seq: others[1]!, tokens: tokens(30, 5) },
    ]);
    routing.push(res[0]!.routing!);
    expectRowsEqual(alone, out, PROMPT.length, 'alone vs batched');
    // routing: positions x layers x k, experts in range, top-k distinct
    const r = Int32Array.from([...routing[0]!, ...routing[1]!]);
    expect(r.length).toBe(PROMPT.length * 4 * 2);
    for (let i = 0; i < r.length; i += 2) {
      expect(r[i]).not.toBe(r[i + 1]);
      expect(r[i]! >= 0 && r[i]! < 8 && r[i + 1]! >= 0 && r[i + 1]! < 8).toBe(true);
    }
    const single = engine();
    const [rs] = await single.step([{ seq: single.createSequence(), tokens: PROMPT, routing: true }]);
    expect([...rs!.routing!]).toEqual([...r]);
  });

  test('forked sequences give bit-identical logits to recomputation (shared blocks, partial copy, copy-on-write)', async () => {
    const tail = tokens(9, 11);
    const eng = engine({ kvBlockSize: 16 });
    const a = eng.createSequence();
    await eng.step([{ seq: a, tokens: PROMPT }]);
    const free0 = eng.kvStats().blocksFree; // 3 blocks used (37 positions)
    const b = eng.forkSequence(a, 32); // 2 full blocks shared, nothing copied
    expect(eng.kvStats().blocksFree).toBe(free0);
    const c = eng.forkSequence(a, 20); // 1 full block shared, partial block copied
    expect(eng.kvStats().blocksFree).toBe(free0 - 1);
    expect(eng.sequenceLength(b)).toBe(32);
    expect(eng.sequenceLength(c)).toBe(20);
    // a rolls back into its (shared) second block and writes there: copy-on-write must protect b
    expect(eng.truncateSequence(a, 20)).toBe(true);
    const outA = new Float32Array(tail.length * V);
    const outB = new Float32Array(tail.length * V);
    const outC = new Float32Array(tail.length * V);
    await eng.step([
      { seq: a, tokens: tail, logits: 'all', logitsOut: outA },
      { seq: b, tokens: tail, logits: 'all', logitsOut: outB },
      { seq: c, tokens: tail, logits: 'all', logitsOut: outC },
    ]);
    const ref = async (prefixLen: number) => {
      const full = Int32Array.from([...PROMPT.slice(0, prefixLen), ...tail]);
      return (await runChunks(engine(), full, [full.length])).subarray(prefixLen * V);
    };
    const ref20 = await ref(20);
    expectRowsEqual(outA, ref20, tail.length, 'a after truncate + copy-on-write');
    expectRowsEqual(outC, ref20, tail.length, 'fork at 20');
    expectRowsEqual(outB, await ref(32), tail.length, 'fork at 32');
    eng.freeSequence(a);
    eng.freeSequence(b);
    eng.freeSequence(c);
    expect(eng.kvStats().blocksFree).toBe(eng.kvStats().blocksTotal);
    expect(() => eng.sequenceLength(a)).toThrow(/unknown sequence/);
  });

  test('truncate then re-feed gives identical logits', async () => {
    const eng = engine({ kvBlockSize: 4 });
    const seq = eng.createSequence();
    const first = await runChunks(eng, PROMPT, [PROMPT.length], seq);
    for (const cut of [25, 24, 3, 0]) {
      expect(eng.truncateSequence(seq, cut)).toBe(true);
      expect(eng.sequenceLength(seq)).toBe(cut);
      const again = new Float32Array((PROMPT.length - cut) * V);
      await eng.step([{ seq, tokens: PROMPT.slice(cut), logits: 'all', logitsOut: again }]);
      expectRowsEqual(first.subarray(cut * V), again, PROMPT.length - cut, `re-feed after truncate to ${cut}`);
    }
    expect(eng.truncateSequence(seq, PROMPT.length)).toBe(true); // no-op
    expect(() => eng.truncateSequence(seq, PROMPT.length + 1)).toThrow(/outside/);
  });

  test('ring mode: same logits as full KV; rollback within the slack works, beyond it returns false and changes nothing', async () => {
    const full = await runChunks(engine(), PROMPT, [PROMPT.length]);
    // window 8 + slack 4: a 37-token prefill is processed in ring-safe sub-chunks
    const eng = engine({ slidingKv: 'ring', ringSlack: 4, kvBlockSize: 4 });
    const seq = eng.createSequence();
    const ringAll = await runChunks(eng, PROMPT.slice(0, 30), [30], seq);
    expectRowsEqual(full, ringAll, 30, 'ring vs full');
    // ring holds positions [18, 30); continuing at 27 needs keys from 20: fine
    expect(eng.truncateSequence(seq, 27)).toBe(true);
    const again = new Float32Array(10 * V);
    await eng.step([{ seq, tokens: PROMPT.slice(27), logits: 'all', logitsOut: again }]);
    expectRowsEqual(full.subarray(27 * V), again, 10, 'ring re-feed after truncate within slack');
    // now at 37, ring holds [25, 37); truncating to 30 needs keys from 23: impossible
    const stats = eng.kvStats();
    expect(eng.truncateSequence(seq, 30)).toBe(false);
    expect(eng.sequenceLength(seq)).toBe(37);
    expect(eng.kvStats()).toEqual(stats);
    expect(() => eng.forkSequence(seq, 30)).toThrow(/ring/);
    // nothing stale: the sequence continues exactly as a full-KV one
    const more = tokens(5, 99);
    const outRing = new Float32Array(5 * V);
    await eng.step([{ seq, tokens: more, logits: 'all', logitsOut: outRing }]);
    const both = Int32Array.from([...PROMPT, ...more]);
    const ref = await runChunks(engine(), both, [both.length]);
    expectRowsEqual(ref.subarray(37 * V), outRing, 5, 'ring continuation');
    // truncate to 0 always works; a fork inside the window works
    const f = eng.forkSequence(seq, 40);
    const outFork = new Float32Array(2 * V);
    await eng.step([{ seq: f, tokens: more.slice(3), logits: 'all', logitsOut: outFork }]);
    expectRowsEqual(ref.subarray(40 * V), outFork, 2, 'ring fork');
    expect(eng.truncateSequence(seq, 0)).toBe(true);
    expect(eng.sequenceLength(seq)).toBe(0);
  });

  test('every step validation rejects without changing state, and the engine keeps working', async () => {
    const eng = engine({ kvBlocks: 8, kvBlockSize: 4 });
    const seq = eng.createSequence();
    const other = eng.createSequence();
    await eng.step([{ seq, tokens: PROMPT.slice(0, 10) }]);
    const stats = eng.kvStats();
    const good = (): NativeStepEntry => ({ seq: other, tokens: PROMPT.slice(0, 3) });
    const bad: [string, unknown, RegExp][] = [
      ['unknown sequence', [good(), { seq: 12345, tokens: Int32Array.of(1) }], /unknown sequence/],
      [
        'sequence twice',
        [
          { seq, tokens: Int32Array.of(1) },
          { seq, tokens: Int32Array.of(2) },
        ],
        /twice/,
      ],
      ['empty tokens', [good(), { seq, tokens: new Int32Array(0) }], /empty/],
      ['negative token', [good(), { seq, tokens: Int32Array.of(5, -1) }], /outside \[0, 201088\)/],
      ['token = vocab', [good(), { seq, tokens: Int32Array.of(V) }], /outside \[0, 201088\)/],
      ['logitsOut too small', [good(), { seq, tokens: Int32Array.of(1, 2), logits: 'all', logitsOut: new Float32Array(2 * V - 1) }], /too small/],
      ['logitsOut missing', [good(), { seq, tokens: Int32Array.of(1), logits: 'last' }], /logitsOut/],
      ['tokens not Int32Array', [good(), { seq, tokens: [1, 2] }], /Int32Array/],
      ['bad logits mode', [good(), { seq, tokens: Int32Array.of(1), logits: 'first', logitsOut: new Float32Array(V) }], /logits/],
      ['not an array', { seq, tokens: Int32Array.of(1) }, /array/],
      ['out of KV blocks', [good(), { seq, tokens: tokens(23, 1) }], /out of KV blocks/],
    ];
    for (const [what, entries, msg] of bad) {
      await expect(eng.step(entries as NativeStepEntry[]), what).rejects.toThrow(msg);
      expect(eng.sequenceLength(seq), what).toBe(10);
      expect(eng.sequenceLength(other), what).toBe(0);
      expect(eng.kvStats(), what).toEqual(stats);
    }
    // still works, and gives the same logits as a fresh engine
    const out = new Float32Array(3 * V);
    await eng.step([{ seq, tokens: PROMPT.slice(10, 13), logits: 'all', logitsOut: out }]);
    const ref = await runChunks(engine(), PROMPT.slice(0, 13), [13]);
    expectRowsEqual(ref.subarray(10 * V), out, 3, 'after rejected steps');
    // exactly filling the pool works; one more position does not
    const s2 = eng.createSequence();
    const free = eng.kvStats().blocksFree;
    await expect(eng.step([{ seq: s2, tokens: tokens(free * 4 + 1, 2) }])).rejects.toThrow(/out of KV blocks/);
    await eng.step([{ seq: s2, tokens: tokens(free * 4, 2) }]);
    expect(eng.kvStats().blocksFree).toBe(0);
    expect(() => eng.forkSequence(seq, 13)).toThrow(/out of KV blocks/); // needs a block for the partial copy
    const f = eng.forkSequence(seq, 12); // full blocks only: fine
    expect(eng.sequenceLength(f)).toBe(12);
    // a step in flight makes structural calls fail instead of racing
    eng.freeSequence(s2);
    const p = eng.step([{ seq, tokens: Int32Array.of(1) }]);
    expect(() => eng.truncateSequence(seq, 0)).toThrow(/busy/);
    await expect(eng.step([{ seq: other, tokens: Int32Array.of(1) }])).rejects.toThrow(/busy/);
    await p;
    expect(eng.sequenceLength(seq)).toBe(14);
    eng.close();
    await expect(eng.step([{ seq, tokens: Int32Array.of(1) }])).rejects.toThrow(/closed/);
    expect(() => eng.createSequence()).toThrow(/closed/);
  });

  test('negative control: batchVariantReduction makes chunked logits differ', async () => {
    const eng = engine();
    eng.setDebug({ batchVariantReduction: true });
    const whole = await runChunks(eng, PROMPT, [PROMPT.length]);
    const byToken = await runChunks(eng, PROMPT, Array(PROMPT.length).fill(1));
    let differ = 0;
    for (let i = 0; i < PROMPT.length; i++) if (!sameBits(row(whole, i), row(byToken, i))) differ++;
    expect(differ).toBeGreaterThan(0);
    // single-token steps are unaffected by the switch
    eng.setDebug({ batchVariantReduction: false });
    expectRowsEqual(byToken, await runChunks(eng, PROMPT, Array(PROMPT.length).fill(1)), PROMPT.length, 'T = 1 with and without the switch');
    // and with it off again, one step equals token by token
    expectRowsEqual(byToken, await runChunks(eng, PROMPT, [PROMPT.length]), PROMPT.length, 'switch off');
  });

  test('negative control: kvTrimNoop (exo #1362) reports success but keeps the stale tail; off, truncation is exact', async () => {
    const first = await runChunks(engine(), PROMPT, [PROMPT.length]);
    // feed PROMPT, "truncate" to 25, re-feed PROMPT[25..]; returns what truncate said, the length
    // after it, and the re-fed logits
    const scenario = async (noop: boolean, opts: Partial<NativeEngineOptions>) => {
      const eng = engine(opts);
      eng.setDebug({ kvTrimNoop: noop, freeSharedBlocks: false });
      const seq = eng.createSequence();
      await eng.step([{ seq, tokens: PROMPT }]);
      const stats = eng.kvStats();
      const ok = eng.truncateSequence(seq, 25);
      const len = eng.sequenceLength(seq);
      if (noop) expect(eng.kvStats()).toEqual(stats); // nothing released either
      const again = new Float32Array((PROMPT.length - 25) * V);
      await eng.step([{ seq, tokens: PROMPT.slice(25), logits: 'all', logitsOut: again }]);
      return { ok, len, again, eng, seq };
    };
    const differing = (a: Float32Array) => {
      let n = 0;
      for (let i = 0; i < PROMPT.length - 25; i++) if (!sameBits(row(first, 25 + i), row(a, i))) n++;
      return n;
    };
    for (const opts of [{ kvBlockSize: 4 }, { kvBlockSize: 4, slidingKv: 'ring' as const, ringSlack: 16 }]) {
      const what = opts.slidingKv ?? 'full';
      const bug = await scenario(true, opts);
      expect(bug.ok, what).toBe(true);
      expect(bug.len, what).toBe(PROMPT.length); // unchanged: the tail stays
      expect(bug.eng.sequenceLength(bug.seq), what).toBe(PROMPT.length + (PROMPT.length - 25)); // appended after the stale tail
      expect(differing(bug.again), what).toBeGreaterThan(0);
      const good = await scenario(false, opts);
      expect(good.ok, what).toBe(true);
      expect(good.len, what).toBe(25);
      expect(differing(good.again), what).toBe(0);
      // switching the bug off again restores exact truncation on the same engine
      bug.eng.setDebug({ kvTrimNoop: false });
      expect(bug.eng.truncateSequence(bug.seq, 0)).toBe(true);
      expectRowsEqual(first, await runChunks(bug.eng, PROMPT, [PROMPT.length], bug.seq), PROMPT.length, `${what}: after switching off`);
      bug.eng.close();
      good.eng.close();
    }
    // ring mode: with the switch on, even a rollback the ring cannot do "succeeds" (the honest answer is false)
    const ring = engine({ slidingKv: 'ring', ringSlack: 4, kvBlockSize: 4 });
    const seq = ring.createSequence();
    await ring.step([{ seq, tokens: PROMPT }]);
    expect(ring.truncateSequence(seq, 20)).toBe(false);
    ring.setDebug({ kvTrimNoop: true });
    expect(ring.truncateSequence(seq, 20)).toBe(true);
    expect(ring.sequenceLength(seq)).toBe(PROMPT.length);
    expect(() => ring.truncateSequence(seq, PROMPT.length + 1)).toThrow(/outside/); // arguments are still checked
    expect(() => ring.setDebug({ kvTrimNoop: 1 as unknown as boolean })).toThrow(/kvTrimNoop must be a boolean/);
    ring.close();
  });

  test("negative control: freeSharedBlocks lets a new sequence overwrite a fork's shared blocks; off, the fork is exact", async () => {
    const tail = tokens(9, 11);
    const ref = async (prefixLen: number) => {
      const full = Int32Array.from([...PROMPT.slice(0, prefixLen), ...tail]);
      return (await runChunks(engine(), full, [full.length])).subarray(prefixLen * V);
    };
    const ref32 = await ref(32);
    const ref30 = await ref(30);
    // parent: PROMPT (10 blocks of 4); child: a fork at 32 sharing 8 full blocks; free the parent;
    // an intruder sequence then takes blocks from the top of the free list and fills them
    const scenario = async (bug: boolean) => {
      const eng = engine({ kvBlockSize: 4, kvBlocks: 64 });
      eng.setDebug({ freeSharedBlocks: bug, kvTrimNoop: false });
      const total = eng.kvStats().blocksTotal;
      const parent = eng.createSequence();
      await eng.step([{ seq: parent, tokens: PROMPT }]);
      const child = eng.forkSequence(parent, 32);
      expect(eng.kvStats().blocksFree).toBe(total - 10);
      eng.freeSequence(parent);
      // with the bug the 8 shared blocks are counted free although the child still uses them
      expect(eng.kvStats().blocksFree).toBe(bug ? total : total - 8);
      const intruder = eng.createSequence();
      await eng.step([{ seq: intruder, tokens: tokens(40, 5) }]);
      const at32 = new Float32Array(tail.length * V);
      await eng.step([{ seq: child, tokens: tail, logits: 'all', logitsOut: at32 }]);
      // roll the child back into a (possibly re-handed-out) shared block: copy-on-write path
      expect(eng.truncateSequence(child, 30)).toBe(true);
      const at30 = new Float32Array(tail.length * V);
      await eng.step([
        { seq: child, tokens: tail, logits: 'all', logitsOut: at30 },
        { seq: intruder, tokens: tokens(3, 6) },
      ]);
      const free = eng.kvStats().blocksFree;
      expect(free >= 0 && free <= total).toBe(true);
      // free the child while the intruder still holds blocks it shares: the free bit must keep
      // them from being listed twice when the intruder goes too
      eng.freeSequence(child);
      expect(eng.kvStats().blocksFree).toBeLessThanOrEqual(total);
      eng.freeSequence(intruder);
      expect(eng.kvStats().blocksFree).toBe(total);
      // and the pool still works: a full-pool sequence gets every block exactly once, exactly
      const s = eng.createSequence();
      await eng.step([{ seq: s, tokens: tokens(total * 4, 9) }]);
      expect(eng.kvStats().blocksFree).toBe(0);
      eng.freeSequence(s);
      expect(eng.kvStats().blocksFree).toBe(total);
      const again = await runChunks(eng, PROMPT, [PROMPT.length]);
      expectRowsEqual(await runChunks(engine(), PROMPT, [PROMPT.length]), again, PROMPT.length, `bug=${bug}: fresh sequence afterwards`);
      eng.close();
      return { at32, at30 };
    };
    const countDiff = (a: Float32Array, b: Float32Array) => {
      let n = 0;
      for (let i = 0; i < tail.length; i++) if (!sameBits(row(a, i), row(b, i))) n++;
      return n;
    };
    const bug = await scenario(true);
    expect(countDiff(bug.at32, ref32)).toBeGreaterThan(0);
    expect(countDiff(bug.at30, ref30)).toBeGreaterThan(0);
    const good = await scenario(false);
    expectRowsEqual(ref32, good.at32, tail.length, 'fork at 32 after the parent was freed');
    expectRowsEqual(ref30, good.at30, tail.length, 'fork truncated to 30 after the parent was freed');
    expect(() => engine().setDebug({ freeSharedBlocks: 'yes' as unknown as boolean })).toThrow(/freeSharedBlocks must be a boolean/);
  });

  test('matches the numpy reference goldens (greedy tokens, routing, logits within 1e-4)', async () => {
    const path = fileURLToPath(new URL('../../golden/logits/tiny-seed1.json', import.meta.url));
    expect(existsSync(path)).toBe(true);
    const golden = JSON.parse(readFileSync(path, 'utf8')) as {
      probe_ids: number[];
      cases: {
        name: string;
        prompt: number[];
        greedy: number[];
        routing: number[][][];
        positions: { position: number; top: [number, number][]; probe: number[] }[];
      }[];
    };
    const c = golden.cases[0]!;
    const seqTokens = Int32Array.from([...c.prompt, ...c.greedy]);
    const eng = engine({ kvBlocks: 16 });
    const all = new Float32Array(seqTokens.length * V);
    const [r] = await eng.step([{ seq: eng.createSequence(), tokens: seqTokens, logits: 'all', logitsOut: all, routing: true }]);
    expect([...r!.routing!]).toEqual(c.routing.flat(2));
    let maxDiff = 0;
    for (const pos of c.positions) {
      for (const [id, v] of pos.top) maxDiff = Math.max(maxDiff, Math.abs(all[pos.position * V + id]! - v));
      golden.probe_ids.forEach((id, j) => (maxDiff = Math.max(maxDiff, Math.abs(all[pos.position * V + id]! - pos.probe[j]!))));
      expect(argmax(row(all, pos.position))).toBe(pos.top[0]![0]);
    }
    expect(maxDiff).toBeLessThan(1e-4);
    // greedy decode, one token per step
    const dec = engine({ kvBlocks: 16 });
    const seq = dec.createSequence();
    let [g] = await dec.step([{ seq, tokens: Int32Array.from(c.prompt) }]);
    const gen = [g!.next];
    while (gen.length < c.greedy.length) {
      [g] = await dec.step([{ seq, tokens: Int32Array.of(gen[gen.length - 1]!) }]);
      gen.push(g!.next);
    }
    expect(gen).toEqual(c.greedy);
  });

  test('F32 copies of the non-expert weights (in a second file, at odd offsets) give the same bits as BF16', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'amnesia-native-f32-'));
    try {
      const f32spec = structuredClone(spec);
      const chunks: Buffer[] = [Buffer.alloc(3)]; // odd start: every F32 tensor is unaligned
      let offset = 3;
      const fd = openSync(spec.files[0]!, 'r');
      try {
        for (const t of f32spec.tensors) {
          if (t.dtype !== 'BF16' || t.name.includes('embed_tokens') || t.name.includes('lm_head') || spec.files.length !== 1) continue;
          const raw = Buffer.alloc(t.byteLength);
          readSync(fd, raw, 0, t.byteLength, t.offset);
          const out = Buffer.alloc(t.byteLength * 2);
          for (let i = 0; i < t.byteLength / 2; i++) out.writeUInt32LE((raw.readUInt16LE(2 * i) << 16) >>> 0, 4 * i);
          Object.assign(t, { dtype: 'F32', file: 1, offset, byteLength: out.length });
          chunks.push(out);
          offset += out.length;
        }
      } finally {
        closeSync(fd);
      }
      expect(chunks.length).toBeGreaterThan(40);
      writeFileSync(join(dir, 'f32.bin'), Buffer.concat(chunks));
      f32spec.files.push(join(dir, 'f32.bin'));
      const m = new addon.NativeModel(f32spec);
      const eng = m.createEngine({ kvBlocks: 16 });
      const out = new Float32Array(PROMPT.length * V);
      await eng.step([{ seq: eng.createSequence(), tokens: PROMPT, logits: 'all', logitsOut: out }]);
      expectRowsEqual(await runChunks(engine(), PROMPT, [PROMPT.length]), out, PROMPT.length, 'F32 vs BF16 weights');
      eng.close();
      m.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a corrupt spec throws a clear error instead of crashing', () => {
    const clone = (): NativeModelSpec => structuredClone(spec);
    const idx = (s: NativeModelSpec, name: string) => s.tensors.findIndex((t) => t.name === name);
    let s = clone();
    const q = s.tensors[idx(s, 'model.layers.1.self_attn.q_proj.weight')]!;
    q.offset = 1e12;
    expect(() => new addon.NativeModel(s)).toThrow(/model\.layers\.1\.self_attn\.q_proj\.weight.*past the end/);
    s = clone();
    s.tensors[idx(s, 'lm_head.weight')]!.shape = [V, 32];
    expect(() => new addon.NativeModel(s)).toThrow(/lm_head\.weight.*byteLength/);
    s = clone();
    const k = s.tensors[idx(s, 'model.layers.0.self_attn.k_proj.weight')]!;
    k.shape = [k.shape[1]!, k.shape[0]!]; // transposed: same size, wrong shape
    expect(() => new addon.NativeModel(s)).toThrow(/k_proj\.weight.*expected shape \[32, 64\]/);
    s = clone();
    s.tensors[idx(s, 'model.layers.2.mlp.experts.down_proj_blocks')]!.dtype = 'BF16';
    expect(() => new addon.NativeModel(s)).toThrow(/down_proj_blocks/);
    s = clone();
    s.tensors.splice(idx(s, 'model.norm.weight'), 1);
    expect(() => new addon.NativeModel(s)).toThrow(/missing tensor "model\.norm\.weight"/);
    s = clone();
    s.files = ['/nonexistent/model.safetensors'];
    expect(() => new addon.NativeModel(s)).toThrow(/cannot open/);
    s = clone();
    s.config.hiddenSize = 48;
    expect(() => new addon.NativeModel(s)).toThrow(/multiple of 32/);
    expect(() => new addon.NativeModel({} as NativeModelSpec)).toThrow(/config/);
    expect(() => model.createEngine({} as NativeEngineOptions)).toThrow(/kvBlocks/);
    expect(() => model.createEngine({ kvBlocks: 4, slidingKv: 'nope' as 'ring' })).toThrow(/slidingKv/);
  });

  test('model.close() keeps existing engines working until they close', async () => {
    const m = new addon.NativeModel(spec);
    const eng = m.createEngine({ kvBlocks: 8 });
    m.close();
    expect(() => m.createEngine({ kvBlocks: 8 })).toThrow(/closed/);
    const out = new Float32Array(V);
    await eng.step([{ seq: eng.createSequence(), tokens: PROMPT.slice(0, 5), logits: 'last', logitsOut: out }]);
    const ref = await runChunks(engine(), PROMPT.slice(0, 5), [5]);
    expect(sameBits(out, row(ref, 4))).toBe(true);
    eng.close();
  });
});
