// Runtime history properties on the tiny model, and every runtime failpoint (RUNTIME_FAILPOINTS) as a
// negative control: with it on, the property must fail and fast-check must shrink the history to at
// most 4 requests (exo #1362's minimal case is p1, p2, p1).
import { test } from '@fast-check/vitest';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { loadCheckpoint } from '../src/engine/checkpoint.ts';
import { RUNTIME_FAILPOINTS, type FailpointName } from '../src/engine/failpoints.ts';
import { ensureTinyCheckpoint } from '../src/engine/make-tiny.ts';
import type { NativeModel, NativeModelSpec } from '../src/engine/native-api.ts';
import { loadNativeAddon } from '../src/engine/native-addon.ts';
import { Runtime, type RuntimeOptions } from '../src/engine/runtime.ts';
import { failureOf } from './property.ts';
import { historyIndependence, memoBaseline, minimizeHistory, requestCount, type History, type RuntimeUnderTest } from './runtime.ts';

let spec: NativeModelSpec;
let model: NativeModel;
const WINDOW = 8; // the tiny model's sliding window (checked in beforeAll)

beforeAll(async () => {
  spec = loadCheckpoint(await ensureTinyCheckpoint(1));
  model = new (loadNativeAddon().NativeModel)(spec);
  expect(model.config.slidingWindow).toBe(WINDOW);
});

afterAll(() => model?.close());

// A small cache (about three prompts) so histories hit, miss, supersede and evict.
const SMALL: RuntimeOptions = { kvBytes: 8 * 2 ** 20, cacheBytes: 768 * 1024, maxStepTokens: 64 };
const baseline = memoBaseline(() => new Runtime(model, spec, { kvBytes: 8 * 2 ** 20, cacheBytes: 0 }));
const underTest = (options: RuntimeOptions, perHistory: (h: History) => RuntimeOptions = () => ({})): RuntimeUnderTest => ({
  create: (h) => new Runtime(model, spec, { ...SMALL, ...options, ...perHistory(h) }),
  baseline,
  window: WINDOW,
});

const fullKv = historyIndependence(underTest({}));
const ringKv = historyIndependence(underTest({ slidingKv: 'ring' }));

describe('runtime: identical requests get identical responses, whatever ran before or beside them', () => {
  // Liveness bounds, not speed targets: 25 histories take ~30 s on a busy two-core machine.
  test.prop([fullKv.arbitrary], { numRuns: 25 })('history independence (full KV)', (h) => fullKv.predicate(h), 240_000);
  test.prop([ringKv.arbitrary], { numRuns: 15 })('history independence (ring KV)', (h) => ringKv.predicate(h), 240_000);
});

/** Cache bytes that hold the history's longest conversation and no more (tiny model: 1 KiB of KV per token). */
function oneConversation(h: History): RuntimeOptions {
  const longest = Math.max(...h.pool.map((r) => r.prompt.length + r.maxTokens + 4));
  return { cacheBytes: (Math.ceil(longest / 16) + 1) * 16 * 1024 };
}

/**
 * Settings per failpoint: kv-trim-noop in ring mode re-creates exo exactly; evict-referenced with a
 * cache that holds one conversation, so a related second request evicts the first while sharing
 * its prefix blocks.
 */
const MODE: Partial<Record<FailpointName, (h: History) => RuntimeOptions>> = {
  'kv-trim-noop': () => ({ slidingKv: 'ring' }),
  'evict-referenced': oneConversation,
};

// The catalogue's failpoints (spec/failpoints.md) act in the server or need traffic this property
// does not generate; properties/failpoints-observable.test.ts shows each over HTTP.
describe('negative controls: every runtime failpoint is caught and shrunk to at most 4 requests', () => {
  for (const name of RUNTIME_FAILPOINTS) {
    test(name, { timeout: 180_000 }, async () => {
      const def = historyIndependence(underTest({ failpoints: [name] }, MODE[name]));
      const failure = await failureOf(def, { numRuns: 300, skipAllAfterTimeLimit: 60_000 });
      expect(failure, `${name} was not caught`).toBeDefined();
      const fails = (h: History) =>
        Promise.resolve(def.predicate(h)).then(
          () => false,
          () => true,
        );
      const minimal = await minimizeHistory(failure!.counterexample, fails);
      expect(requestCount(minimal), `${name} shrank to ${JSON.stringify(minimal.ops)}`).toBeLessThanOrEqual(4);
    });
  }
});
