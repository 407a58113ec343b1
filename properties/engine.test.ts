// Engine exactness on the tiny checkpoint, and each property's negative control: with the engine's
// batch-variant reduction switched on (vLLM #5898's bug class) the same property must fail.
import { test } from '@fast-check/vitest';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { loadCheckpoint } from '../src/engine/checkpoint.ts';
import { ensureTinyCheckpoint } from '../src/engine/make-tiny.ts';
import type { NativeEngine, NativeModel } from '../src/engine/native-api.ts';
import { loadNativeAddon } from '../src/engine/native-addon.ts';
import { batchInvariance, chunkInvariance, restoredPrefixInvariance, type EngineUnderTest } from './engine.ts';
import { failureOf, type PropertyDef } from './property.ts';

// Sequences up to 24 tokens cross the tiny model's sliding window (8) three times; every run
// compares full-vocabulary logits (201088 per position), so the run count is kept modest.
const MAX_LENGTH = 24;
const RUNS = { numRuns: 100 };

let model: NativeModel;
let engine: NativeEngine;
// Filled in by beforeAll; the property predicates read engine and vocab only when they run.
const t: EngineUnderTest = { engine: undefined as unknown as NativeEngine, vocab: 0, maxLength: MAX_LENGTH };

beforeAll(async () => {
  model = new (loadNativeAddon().NativeModel)(loadCheckpoint(await ensureTinyCheckpoint(1)));
  engine = model.createEngine({ kvBlocks: 256, kvBlockSize: 4 });
  t.engine = engine;
  t.vocab = model.config.vocabSize;
});

afterAll(() => {
  engine?.close();
  model?.close();
});

const e1 = chunkInvariance(t);
const e2 = restoredPrefixInvariance(t);
const e3 = batchInvariance(t);

describe('engine exactness', () => {
  test.prop([e1.arbitrary], RUNS)('E1 chunk invariance: one prefill, random chunks and token by token give bit-identical logits', (v) => e1.predicate(v));
  test.prop([e2.arbitrary], RUNS)('E2 restored-prefix invariance: a forked or truncated prefix gives bit-identical logits', (v) => e2.predicate(v));
  test.prop([e3.arbitrary], RUNS)('E3 batch invariance: other sequences in the same steps change no bit', (v) => e3.predicate(v));
});

describe('negative controls: a batch-variant reduction breaks each property', () => {
  for (const [name, def] of Object.entries({ E1: e1, E2: e2, E3: e3 } as Record<string, PropertyDef<unknown>>)) {
    test(name, async () => {
      engine.setDebug({ batchVariantReduction: true });
      try {
        const failure = await failureOf(def, 100);
        expect(failure?.message, 'the property did not catch the batch-variant reduction').toMatch(/logits differ/);
      } finally {
        engine.setDebug({ batchVariantReduction: false });
      }
    });
  }
});
