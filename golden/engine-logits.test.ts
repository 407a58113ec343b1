// The engine against the numpy fp32 reference (golden/reference/gpt_oss_ref.py) on the tiny random
// checkpoint and on the talking tiny model: identical greedy tokens, identical expert routing at every
// position, and logits within a tolerance.
//
// Tolerance: |engine − reference| ≤ 1e-4 + 1e-5·|reference|. Both compute in fp32 but sum in
// different orders (numpy's pairwise/BLAS sums vs the engine's fixed SIMD lanes), which moves a
// 64–128-term dot product by a few ulps; four layers of residual stream and a 64-wide unembedding
// grow that to ~1e-5 on logits of magnitude ≤ 13 (measured max below ~2e-5). A layout or formula bug
// moves logits by ≥ 1e-2 and flips routing, so the bound separates rounding from bugs.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadCheckpoint } from '../src/engine/checkpoint.ts';
import { ensureTinyCheckpoint } from '../src/engine/make-tiny.ts';
import { ensureTinyChatCheckpoint } from '../src/engine/make-tiny-chat.ts';
import type { NativeEngine, NativeModel } from '../src/engine/native-api.ts';
import { loadNativeAddon } from '../src/engine/native-addon.ts';

interface GoldenPosition {
  position: number;
  token: number;
  top: Array<[number, number]>;
  probe: number[];
}
interface GoldenCase {
  name: string;
  prompt: number[];
  greedy: number[];
  positions: GoldenPosition[];
  routing: number[][][];
}
interface Golden {
  checkpoint: { files: Record<string, string> };
  prompt_tail: number;
  probe_ids: number[];
  cases: GoldenCase[];
}

const ATOL = 1e-4;
const RTOL = 1e-5;

describe.each([
  ['tiny-seed1.json', 'the tiny random checkpoint', () => ensureTinyCheckpoint(1)],
  ['tiny-chat.json', 'the talking tiny model', () => ensureTinyChatCheckpoint()],
] as const)('%s (%s)', (file, _what, ensureDir) => {
  const golden = JSON.parse(readFileSync(new URL(`./logits/${file}`, import.meta.url), 'utf8')) as Golden;

  let dir: string;
  let model: NativeModel;
  let engine: NativeEngine;
  let vocab: number;

  beforeAll(async () => {
    dir = await ensureDir();
    model = new (loadNativeAddon().NativeModel)(loadCheckpoint(dir));
    vocab = model.config.vocabSize;
    engine = model.createEngine({ kvBlocks: 64, kvBlockSize: 16 });
  });

  afterAll(() => {
    engine?.close();
    model?.close();
  });

  test('the checkpoint is the one the golden logits were made from', () => {
    for (const [name, sha] of Object.entries(golden.checkpoint.files)) {
      const actual = createHash('sha256')
        .update(readFileSync(join(dir, name)))
        .digest('hex');
      expect(actual, `${name} changed: regenerate golden/logits with npm run golden:update`).toBe(sha);
    }
  });

  describe.each(golden.cases.map((c) => [c.name, c] as const))('golden logits: %s', (_name, c) => {
    /** Logits and routing of every recorded position, computed the way a server would: prefill, then decode. */
    async function run() {
      const seq = engine.createSequence();
      const k = model.config.expertsPerToken;
      const layers = model.config.numLayers;
      const routing: number[][][] = [];
      const logits = new Map<number, Float32Array>();
      const collect = (r: Int32Array | undefined, n: number) => {
        for (let p = 0; p < n; p++) {
          routing.push(Array.from({ length: layers }, (_, l) => Array.from(r!.subarray((p * layers + l) * k, (p * layers + l + 1) * k))));
        }
      };
      try {
        const cut = c.prompt.length - golden.prompt_tail;
        const head = await engine.step([{ seq, tokens: Int32Array.from(c.prompt.slice(0, cut)), routing: true }]);
        collect(head[0]!.routing, cut);
        const tail = new Float32Array(golden.prompt_tail * vocab);
        const [t] = await engine.step([{ seq, tokens: Int32Array.from(c.prompt.slice(cut)), logits: 'all', logitsOut: tail, routing: true }]);
        collect(t!.routing, golden.prompt_tail);
        for (let i = 0; i < golden.prompt_tail; i++) logits.set(cut + i, tail.subarray(i * vocab, (i + 1) * vocab));
        const greedy: number[] = [t!.next];
        for (let i = 0; i < c.greedy.length; i++) {
          const out = new Float32Array(vocab);
          const [d] = await engine.step([{ seq, tokens: Int32Array.of(c.greedy[i]!), logits: 'last', logitsOut: out, routing: true }]);
          collect(d!.routing, 1);
          logits.set(c.prompt.length + i, out);
          if (i + 1 < c.greedy.length) greedy.push(d!.next);
        }
        return { routing, logits, greedy };
      } finally {
        engine.freeSequence(seq);
      }
    }

    let result: Awaited<ReturnType<typeof run>>;
    beforeAll(async () => {
      result = await run();
    });

    test('greedy continuation is identical', () => expect(result.greedy).toEqual(c.greedy));

    test('expert routing is identical at every position', () => expect(result.routing).toEqual(c.routing));

    test('logits match the reference within the tolerance', () => {
      let worst = 0;
      for (const p of c.positions) {
        const row = result.logits.get(p.position);
        expect(row, `position ${p.position} was not computed`).toBeDefined();
        const pairs: Array<[number, number]> = [...p.top, ...golden.probe_ids.map((id, i): [number, number] => [id, p.probe[i]!])];
        for (const [id, ref] of pairs) {
          const diff = Math.abs(row![id]! - ref);
          worst = Math.max(worst, diff);
          expect(diff, `position ${p.position}, token ${id}: engine ${row![id]} vs reference ${ref}`).toBeLessThanOrEqual(ATOL + RTOL * Math.abs(ref));
        }
      }
      expect(worst).toBeGreaterThan(0); // the engine is not the reference; a zero diff would mean we compared the golden with itself
    });
  });
});
