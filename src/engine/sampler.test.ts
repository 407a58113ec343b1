import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { FIRST_SPECIAL_TOKEN, type SamplingParams, type TokenMask } from './runtime-api.ts';
import { counterUniform, freshSeed, Sampler } from './sampler.ts';

// ---------------------------------------------------------------------------------------------
// references, written from the documented definitions as plainly as possible

/** Candidate ids in ascending order. */
function refCandidates(vocab: number, mask?: TokenMask): number[] {
  if (mask === undefined) return Array.from({ length: vocab }, (_, i) => i);
  const set = new Set<number>();
  if (mask.kind === 'text') {
    for (let i = 0; i < Math.min(vocab, FIRST_SPECIAL_TOKEN); i++) set.add(i);
    for (const id of mask.also) set.add(id);
  } else {
    for (const id of mask.tokens) set.add(id);
  }
  return [...set].sort((a, b) => a - b);
}

/** (logit descending, id ascending). */
function byOrder(logits: Float32Array): (a: number, b: number) => number {
  return (a, b) => {
    const x = logits[a]!;
    const y = logits[b]!;
    if (x > y) return -1;
    if (x < y) return 1;
    return a - b;
  };
}

/** The kept set (ascending) and each kept token's weight, per the class comment of Sampler. */
function refKept(logits: Float32Array, params: SamplingParams, mask?: TokenMask): { ids: number[]; w: (i: number) => number } {
  const T = params.temperature ?? 1;
  const topK = params.topK ?? 0;
  const topP = params.topP ?? 1;
  const cands = refCandidates(logits.length, mask);
  let max = -Infinity;
  for (const i of cands) if (logits[i]! > max) max = logits[i]!;
  const w = (i: number): number => Math.exp((logits[i]! - max) / T);
  let kept = cands;
  if (topK > 0 && topK < kept.length)
    kept = [...kept]
      .sort(byOrder(logits))
      .slice(0, topK)
      .sort((a, b) => a - b);
  if (topP < 1) {
    let z1 = 0;
    for (const i of kept) z1 += w(i);
    const sorted = [...kept].sort(byOrder(logits));
    let acc = 0;
    let n = sorted.length;
    for (let j = 0; j < sorted.length; j++) {
      acc += w(sorted[j]!);
      if (acc >= topP * z1) {
        n = j + 1;
        break;
      }
    }
    kept = sorted.slice(0, n).sort((a, b) => a - b);
  }
  return { ids: kept, w };
}

/** The token the spec chooses for uniform u. */
function refSample(logits: Float32Array, u: number, params: SamplingParams, mask?: TokenMask): number {
  if ((params.temperature ?? 1) === 0) return refArgmax(logits, refCandidates(logits.length, mask));
  const { ids, w } = refKept(logits, params, mask);
  let z = 0;
  for (const i of ids) z += w(i);
  const target = u * z;
  let acc = 0;
  let last = -1;
  for (const i of ids) {
    const wi = w(i);
    if (wi > 0) {
      acc += wi;
      last = i;
      if (acc > target) return i;
    }
  }
  return last;
}

/** Exact probabilities of each kept token (renormalised). */
function refDistribution(logits: Float32Array, params: SamplingParams, mask?: TokenMask): Map<number, number> {
  const { ids, w } = refKept(logits, params, mask);
  let z = 0;
  for (const i of ids) z += w(i);
  return new Map(ids.map((i) => [i, w(i) / z]));
}

function refArgmax(logits: Float32Array, ids: readonly number[]): number {
  let best = -1;
  for (const i of ids) if (best < 0 || logits[i]! > logits[best]!) best = i;
  return best;
}

/** Direct float64 log-softmax over the whole vocabulary. */
function refLogSoftmax(logits: Float32Array): Float64Array {
  let m = -Infinity;
  for (const v of logits) m = Math.max(m, v);
  let s = 0;
  for (const v of logits) s += Math.exp(v - m);
  const lse = m + Math.log(s);
  return Float64Array.from(logits, (v) => v - lse);
}

function closeTo(a: number, b: number, tol = 1e-12): boolean {
  return a === b || Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));
}

/** Gaussian logits from the counter generator (Box–Muller), reproducible. */
function gaussianLogits(vocab: number, seed: number, scale: number): Float32Array {
  const out = new Float32Array(vocab);
  for (let i = 0; i < vocab; i++) {
    const a = counterUniform(seed, 2 * i) || Number.MIN_VALUE;
    const b = counterUniform(seed, 2 * i + 1);
    out[i] = scale * Math.sqrt(-2 * Math.log(a)) * Math.cos(2 * Math.PI * b);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// arbitraries

/** Logit values with plenty of ties, signed zeros and −Infinity. */
const logitValue = fc.oneof(
  { weight: 3, arbitrary: fc.float({ min: Math.fround(-30), max: Math.fround(30), noNaN: true, noDefaultInfinity: true }) },
  { weight: 2, arbitrary: fc.constantFrom(-Infinity, 0, -0, 1, -1, 2.5, 8) },
  { weight: 1, arbitrary: fc.integer({ min: -8, max: 8 }).map((k) => k / 4) },
);

const logitsArb = fc.array(logitValue, { minLength: 1, maxLength: 48 }).map((a) => Float32Array.from(a));

const paramsArb: fc.Arbitrary<SamplingParams> = fc.record({
  temperature: fc.oneof(fc.constant(0), fc.constant(1), fc.double({ min: 0.05, max: 4, noNaN: true })),
  topP: fc.oneof(
    fc.constant(1),
    fc.constant(1e-9),
    fc.constant(1 - 2 ** -52),
    fc.double({ min: 0.01, max: 1, noNaN: true, minExcluded: false }).filter((p) => p > 0),
  ),
  topK: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 60 })),
});

/** A mask over a small vocabulary (there 'text' allows everything), or none. */
function maskArb(vocab: number): fc.Arbitrary<TokenMask | undefined> {
  const id = fc.integer({ min: 0, max: vocab - 1 });
  return fc.oneof(
    fc.constant(undefined),
    fc.array(id, { minLength: 1, maxLength: 12 }).map((tokens): TokenMask => ({ kind: 'only', tokens })),
    fc.array(id, { maxLength: 3 }).map((also): TokenMask => ({ kind: 'text', also })),
  );
}

/** Logits, a mask with at least one finite-logit candidate, and params. */
const caseArb = logitsArb
  .chain((logits) => fc.tuple(fc.constant(logits), maskArb(logits.length), paramsArb))
  .filter(([logits, mask]) => refCandidates(logits.length, mask).some((i) => logits[i]! > -Infinity));

const seedArb = fc.oneof(fc.nat(), fc.constant(0), fc.constant(Number.MAX_SAFE_INTEGER), fc.maxSafeNat());
const positionArb = fc.oneof(fc.nat(100_000), fc.maxSafeNat());

// ---------------------------------------------------------------------------------------------

describe('counterUniform', () => {
  test('is the documented SplitMix64 construction (known answers)', () => {
    // SplitMix64 from state 0 (mix64(0) = 0) first outputs 0xE220A8397B1DCDAF.
    expect(counterUniform(0, 0)).toBe(Number(0xe220a8397b1dcdafn >> 11n) / 2 ** 53);
    expect(counterUniform(1, 0)).toBe(0.7497482413580301);
    expect(counterUniform(42, 7)).toBe(0.15289334222649975);
    expect(counterUniform(2 ** 53 - 1, 2 ** 53 - 1)).toBe(0.6860916996811623);
  });

  test('equals the position-th output of an iterated SplitMix64 keyed by mix64(seed)', () => {
    const M = (1n << 64n) - 1n;
    const mix = (z: bigint): bigint => {
      z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
      z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
      return z ^ (z >> 31n);
    };
    fc.assert(
      fc.property(seedArb, (seed) => {
        let state = mix(BigInt(seed));
        for (let p = 0; p < 20; p++) {
          state = (state + 0x9e3779b97f4a7c15n) & M;
          if (counterUniform(seed, p) !== Number(mix(state) >> 11n) / 2 ** 53) return false;
        }
        return true;
      }),
    );
  });

  test('is a pure function with values in [0, 1)', () => {
    fc.assert(
      fc.property(seedArb, positionArb, (seed, position) => {
        const u = counterUniform(seed, position);
        expect(u).toBeGreaterThanOrEqual(0);
        expect(u).toBeLessThan(1);
        expect(counterUniform(seed, position)).toBe(u);
      }),
    );
  });

  test('different positions give different values', () => {
    fc.assert(
      fc.property(seedArb, positionArb, positionArb, (seed, p, q) => {
        fc.pre(p !== q);
        return counterUniform(seed, p) !== counterUniform(seed, q);
      }),
    );
    // and no repeat within one stream of 20 000
    const seen = new Set<number>();
    for (let p = 0; p < 20_000; p++) seen.add(counterUniform(99, p));
    expect(seen.size).toBe(20_000);
  });

  test('different seeds give different streams', () => {
    fc.assert(
      fc.property(seedArb, seedArb, (s, t) => {
        fc.pre(s !== t);
        const a = Array.from({ length: 8 }, (_, p) => counterUniform(s, p));
        const b = Array.from({ length: 8 }, (_, p) => counterUniform(t, p));
        // Not equal anywhere, and not a shifted copy of each other.
        return a.every((x) => !b.includes(x));
      }),
    );
  });

  test('is uniform enough: 16-bin chi-square over 64 000 draws', () => {
    for (const seed of [0, 1, 123_456_789]) {
      const bins = new Array<number>(16).fill(0);
      const n = 64_000;
      for (let p = 0; p < n; p++) bins[Math.floor(counterUniform(seed, p) * 16)]!++;
      const e = n / 16;
      const chi2 = bins.reduce((s, o) => s + (o - e) ** 2 / e, 0);
      expect(chi2).toBeLessThan(45); // df = 15; P(χ² > 45) ≈ 7e-5
    }
  });

  test('rejects bad seeds and positions', () => {
    for (const bad of [-1, 1.5, 2 ** 53, NaN, Infinity]) {
      expect(() => counterUniform(bad, 0)).toThrow(RangeError);
      expect(() => counterUniform(0, bad)).toThrow(RangeError);
    }
  });
});

describe('freshSeed', () => {
  test('draws a safe non-negative integer, different each time', () => {
    const seeds = Array.from({ length: 64 }, () => freshSeed());
    for (const s of seeds) {
      expect(Number.isSafeInteger(s)).toBe(true);
      expect(s).toBeGreaterThanOrEqual(0);
    }
    expect(new Set(seeds).size).toBe(64);
    // Unseeded samplers each draw their own.
    expect(new Sampler({}).seed).not.toBe(new Sampler({}).seed);
    expect(new Sampler({ seed: 5 }).seed).toBe(5);
  });
});

describe('Sampler: determinism', () => {
  /** "same (seed, position) → same token", for samplers made by `make`. */
  const sameSeedSamePosition = (make: (p: SamplingParams) => Sampler) =>
    fc.property(caseArb, seedArb, positionArb, ([logits, mask, params], seed, position) => {
      const a = make({ ...params, seed });
      const first = a.sample(logits, position, mask).token;
      const again = a.sample(logits, position, mask).token;
      const fresh = make({ ...params, seed }).sample(logits, position, mask).token;
      return first === again && first === fresh;
    });

  test('(seed, position) → the same choice on repeated calls and on a fresh Sampler', () => {
    fc.assert(
      sameSeedSamePosition((p) => new Sampler(p)),
      { numRuns: 300 },
    );
  });

  test('negative control: a shared stream breaks it, and the property catches that', () => {
    // Like Math.random: one sequence consumed by every sampler in call order, position ignored.
    let counter = 0;
    const shared = (): number => counterUniform(424242, counter++);
    const result = fc.check(
      sameSeedSamePosition((p) => new Sampler(p, { uniform: shared })),
      { numRuns: 300 },
    );
    expect(result.failed).toBe(true);
  });

  test('the chosen token is a pure function of (logits, position, params, mask, seed): pinned sequences', () => {
    const l = new Float32Array([1, 0.5, 0, -0.5, 2, -1, 0.25, 1.5]);
    const a = new Sampler({ seed: 2024, temperature: 0.8 });
    expect(Array.from({ length: 24 }, (_, i) => a.sample(l, i).token)).toEqual([2, 0, 1, 0, 4, 0, 4, 4, 4, 4, 2, 4, 4, 0, 7, 6, 3, 4, 4, 4, 4, 0, 4, 7]);
    const b = new Sampler({ seed: 7, topP: 0.9, topK: 5 });
    expect(Array.from({ length: 24 }, (_, i) => b.sample(l, i).token)).toEqual([4, 4, 7, 7, 4, 4, 4, 4, 7, 0, 7, 1, 7, 4, 1, 7, 7, 7, 1, 0, 4, 7, 7, 7]);
  });

  test('different seeds give different token streams', () => {
    const flat = new Float32Array(64); // uniform over 64 tokens
    fc.assert(
      fc.property(seedArb, seedArb, (s, t) => {
        fc.pre(s !== t);
        const a = new Sampler({ seed: s });
        const b = new Sampler({ seed: t });
        const xs = Array.from({ length: 32 }, (_, i) => a.sample(flat, i).token);
        const ys = Array.from({ length: 32 }, (_, i) => b.sample(flat, i).token);
        return xs.join() !== ys.join();
      }),
    );
  });

  test('requesting log-probabilities never changes the token', () => {
    fc.assert(
      fc.property(caseArb, seedArb, positionArb, ([logits, mask, params], seed, position) => {
        const plain = new Sampler({ ...params, seed }).sample(logits, position, mask).token;
        const withLp = new Sampler({ ...params, seed, logprobs: true, topLogprobs: 3 }).sample(logits, position, mask).token;
        return plain === withLp;
      }),
      { numRuns: 300 },
    );
  });
});

describe('Sampler: choice', () => {
  test('matches the reference definition exactly for any u', () => {
    fc.assert(
      fc.property(caseArb, fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), ([logits, mask, params], u) => {
        const s = new Sampler({ ...params, seed: 1 }, { uniform: () => u });
        expect(s.sample(logits, 0, mask).token).toBe(refSample(logits, u, params, mask));
      }),
      { numRuns: 1000 },
    );
  });

  test('greedy (temperature 0) is the argmax over the allowed ids, lowest id on ties, with no draw', () => {
    fc.assert(
      fc.property(caseArb, ([logits, mask, params]) => {
        const s = new Sampler(
          { ...params, temperature: 0 },
          {
            uniform: () => {
              throw new Error('greedy must not draw');
            },
          },
        );
        expect(s.sample(logits, 3, mask).token).toBe(refArgmax(logits, refCandidates(logits.length, mask)));
      }),
    );
  });

  test('the chosen token is always allowed by the mask', () => {
    fc.assert(
      fc.property(caseArb, seedArb, positionArb, ([logits, mask, params], seed, position) => {
        const t = new Sampler({ ...params, seed }).sample(logits, position, mask).token;
        return refCandidates(logits.length, mask).includes(t);
      }),
      { numRuns: 500 },
    );
  });

  test("'text' masks exclude special tokens except `also`, on a full-size vocabulary", () => {
    const vocab = FIRST_SPECIAL_TOKEN + 64;
    const logits = gaussianLogits(vocab, 3, 1);
    for (let i = FIRST_SPECIAL_TOKEN; i < vocab; i++) logits[i] = 20; // specials dominate
    fc.assert(
      fc.property(fc.array(fc.integer({ min: FIRST_SPECIAL_TOKEN, max: vocab - 1 }), { maxLength: 3 }), paramsArb, fc.nat(1000), (also, params, position) => {
        const mask: TokenMask = { kind: 'text', also };
        const t = new Sampler({ ...params, seed: 11 }).sample(logits, position, mask).token;
        if (t >= FIRST_SPECIAL_TOKEN) expect(also).toContain(t);
        if (also.length > 0 && (params.temperature === 0 || params.topK === 1)) expect(t).toBeGreaterThanOrEqual(FIRST_SPECIAL_TOKEN);
        if (also.length === 0) expect(t).toBeLessThan(FIRST_SPECIAL_TOKEN);
      }),
      { numRuns: 40 },
    );
  });

  test('edge semantics: the walk needs the running sum to exceed u·Z; −0 and +0 tie (lowest id first)', () => {
    const two = new Float32Array([0, 0]);
    const at = (u: number, params: SamplingParams = {}, logits = two): number => new Sampler(params, { uniform: () => u }).sample(logits, 0).token;
    expect(at(0)).toBe(0);
    expect(at(0.5 - 2 ** -53)).toBe(0);
    expect(at(0.5)).toBe(1); // running sum 1 does not exceed 0.5·2
    expect(at(1 - 2 ** -53)).toBe(1);
    const zeros = new Float32Array([-1, -0, 0, -0]);
    expect(at(0.9, { topP: 0.25 }, zeros)).toBe(1);
    expect(at(0.9, { topK: 1 }, zeros)).toBe(1);
    expect(at(0.9, { topK: 2 }, zeros)).toBe(2);
    expect(at(0.9, { topP: 0.5 }, zeros)).toBe(2);
    expect(at(0.9, { temperature: 0 }, zeros)).toBe(1);
  });

  test('top_k = 1 is the argmax', () => {
    fc.assert(
      fc.property(caseArb, seedArb, positionArb, ([logits, mask, params], seed, position) => {
        const t = new Sampler({ ...params, topK: 1, seed, temperature: params.temperature || 1 }).sample(logits, position, mask).token;
        return t === refArgmax(logits, refCandidates(logits.length, mask));
      }),
    );
  });

  test('a tiny top_p is the argmax', () => {
    fc.assert(
      fc.property(caseArb, seedArb, positionArb, ([logits, mask, params], seed, position) => {
        const t = new Sampler({ ...params, topP: 1e-12, seed, temperature: params.temperature || 1 }).sample(logits, position, mask).token;
        return t === refArgmax(logits, refCandidates(logits.length, mask));
      }),
    );
  });

  test('top_k ≥ the number of candidates, or a top_p that keeps everything, is the untruncated draw', () => {
    fc.assert(
      fc.property(caseArb, fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), ([logits, mask, params], u) => {
        const T = params.temperature || 1;
        const plain = new Sampler({ temperature: T }, { uniform: () => u }).sample(logits, 0, mask).token;
        const bigK = new Sampler({ temperature: T, topK: logits.length }, { uniform: () => u }).sample(logits, 0, mask).token;
        expect(bigK).toBe(plain);
        // top_p keeps everything when every candidate is needed to reach it
        const kept = refKept(logits, { temperature: T, topP: 1 - 2 ** -52 }, mask).ids;
        if (kept.length === refCandidates(logits.length, mask).length) {
          expect(new Sampler({ temperature: T, topP: 1 - 2 ** -52 }, { uniform: () => u }).sample(logits, 0, mask).token).toBe(plain);
        }
      }),
    );
  });

  test('top_p within rounding of 1, over many tiny weights, still matches the reference', () => {
    // Rows where a few tokens carry the mass and many weigh ~e^-30: the pre-filter's margins fail
    // for p this close to 1 and the sampler falls back to ordering every candidate.
    const rowArb = fc
      .array(fc.oneof({ weight: 1, arbitrary: fc.constant(0) }, { weight: 20, arbitrary: fc.float({ min: -31, max: -29, noNaN: true }) }), {
        minLength: 2,
        maxLength: 400,
      })
      .map((a) => Float32Array.from(a));
    fc.assert(
      fc.property(
        rowArb,
        fc.constantFrom(1 - 2 ** -52, 1 - 2 ** -50, 1 - 1e-12, 0.999_999),
        fc.constantFrom(0.3, 1, 3),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (logits, topP, temperature, u) => {
          const params = { topP, temperature };
          expect(new Sampler(params, { uniform: () => u }).sample(logits, 0).token).toBe(refSample(logits, u, params));
        },
      ),
      { numRuns: 300 },
    );
  });

  test('empirical frequencies over many positions match the (truncated, renormalised) softmax', () => {
    const logits = new Float32Array([1, 0.5, 0, -0.5, 2, -Infinity, 0.25, 1.5]);
    const cases: [SamplingParams, TokenMask | undefined][] = [
      [{ temperature: 1 }, undefined],
      [{ temperature: 0.5 }, undefined],
      [{ temperature: 2.5 }, undefined],
      [{ topK: 3 }, undefined],
      [{ topP: 0.7 }, undefined],
      [{ topK: 5, topP: 0.8, temperature: 1.3 }, undefined],
      [{ temperature: 1 }, { kind: 'only', tokens: [0, 2, 3, 5, 6] }],
    ];
    const n = 40_000;
    for (const [i, [params, mask]] of cases.entries()) {
      const expected = refDistribution(logits, params, mask);
      const s = new Sampler({ ...params, seed: 1000 + i });
      const counts = new Map<number, number>();
      for (let p = 0; p < n; p++) {
        const t = s.sample(logits, p, mask).token;
        counts.set(t, (counts.get(t) ?? 0) + 1);
      }
      for (const t of counts.keys()) expect(expected.has(t), `token ${t} outside the kept set`).toBe(true);
      let chi2 = 0;
      for (const [t, prob] of expected) {
        if (prob === 0) expect(counts.get(t) ?? 0, `token ${t} has probability 0`).toBe(0);
        else chi2 += ((counts.get(t) ?? 0) - n * prob) ** 2 / (n * prob);
      }
      // df ≤ 6; P(χ²₆ > 30) ≈ 4e-5. The draws are deterministic, so this is not flaky.
      expect(chi2, JSON.stringify({ params, mask, chi2 })).toBeLessThan(30);
    }
  });

  test('full-size vocabulary (201 088): matches the reference for flat and peaked rows', () => {
    const vocab = 201_088;
    const flat = gaussianLogits(vocab, 5, 1);
    const peaked = gaussianLogits(vocab, 6, 4);
    for (let i = 0; i < 30; i++) peaked[(i * 7919) % vocab] = 25 - i / 2;
    peaked[1000] = 25; // a tie with the max at id 0
    const paramsList: SamplingParams[] = [
      { temperature: 1 },
      { temperature: 0.7, topK: 50 },
      { temperature: 1, topP: 0.9 },
      { temperature: 1.5, topP: 0.5 },
      { topK: 200, topP: 0.95 },
      { topP: 1 - 2 ** -52 },
    ];
    const mask: TokenMask = { kind: 'text', also: [200_002, 200_012] };
    for (const logits of [flat, peaked]) {
      for (const params of paramsList) {
        for (const u of [0, 0.37, 0.999_999]) {
          const got = new Sampler(params, { uniform: () => u }).sample(logits, 0, mask).token;
          expect(got, JSON.stringify({ params, u })).toBe(refSample(logits, u, params, mask));
        }
      }
    }
  });
});

describe('Sampler: log-probabilities', () => {
  test('equal a direct float64 log-softmax over the whole vocabulary, whatever T, mask and truncation', () => {
    fc.assert(
      fc.property(caseArb, seedArb, positionArb, fc.integer({ min: 1, max: 20 }), ([logits, mask, params], seed, position, n) => {
        const ref = refLogSoftmax(logits);
        const c = new Sampler({ ...params, seed, logprobs: true, topLogprobs: n }).sample(logits, position, mask);
        expect(c.logprob).toBeDefined();
        expect(closeTo(c.logprob!, ref[c.token]!)).toBe(true);
        const top = c.topLogprobs!;
        expect(top.length).toBe(Math.min(n, logits.length));
        // sorted by (logprob desc, id asc) and consistent with the reference
        for (let j = 0; j < top.length; j++) {
          expect(closeTo(top[j]!.logprob, ref[top[j]!.token]!)).toBe(true);
          if (j > 0) {
            const [a, b] = [top[j - 1]!, top[j]!];
            expect(a.logprob > b.logprob || (a.logprob === b.logprob && a.token < b.token)).toBe(true);
          }
        }
        // they are the n most likely tokens, ties (equal logprobs) by lowest id
        const order = Array.from({ length: logits.length }, (_, i) => i).sort((a, b) => ref[b]! - ref[a]! || a - b);
        expect(top.map((t) => t.token)).toEqual(order.slice(0, n));
        // independent of temperature, mask and truncation: bit-identical across them
        const other = new Sampler({ temperature: 0, logprobs: true, topLogprobs: n }).sample(logits, position);
        expect(other.topLogprobs).toEqual(top);
      }),
      { numRuns: 300 },
    );
  });

  test('the chosen token’s logprob is its entry in the full distribution', () => {
    fc.assert(
      fc.property(caseArb, seedArb, fc.nat(1000), ([logits, mask, params], seed, position) => {
        const c = new Sampler({ ...params, seed, logprobs: true, topLogprobs: 20 }).sample(logits, position, mask);
        const entry = c.topLogprobs!.find((t) => t.token === c.token);
        if (entry) expect(c.logprob).toBe(entry.logprob);
        const all = new Sampler({ temperature: 0, logprobs: true, topLogprobs: 20 }).sample(logits, position);
        if (mask === undefined && params.temperature === 0) expect(c.token).toBe(all.topLogprobs![0]!.token);
      }),
    );
  });

  test('on a full-size vocabulary, with and without the T = 1 shortcut', () => {
    const logits = gaussianLogits(201_088, 8, 3);
    const ref = refLogSoftmax(logits);
    for (const params of [{ temperature: 1 }, { temperature: 0.6 }, { temperature: 1, topP: 0.9 }, { temperature: 1, topK: 40 }]) {
      for (const mask of [undefined, { kind: 'text', also: [] } as TokenMask]) {
        const c = new Sampler({ ...params, seed: 3, logprobs: true, topLogprobs: 5 }).sample(logits, 17, mask);
        expect(closeTo(c.logprob!, ref[c.token]!)).toBe(true);
        expect(c.topLogprobs!.map((t) => t.token)).toEqual(
          Array.from(ref.keys())
            .sort((a, b) => ref[b]! - ref[a]! || a - b)
            .slice(0, 5),
        );
      }
    }
  });

  test('fields are present only when asked for', () => {
    const l = new Float32Array([0, 1, 2]);
    expect(new Sampler({ seed: 1 }).sample(l, 0)).toEqual({ token: expect.any(Number) });
    expect(Object.keys(new Sampler({ seed: 1, logprobs: true }).sample(l, 0)).sort()).toEqual(['logprob', 'token']);
    expect(Object.keys(new Sampler({ seed: 1, topLogprobs: 2 }).sample(l, 0)).sort()).toEqual(['token', 'topLogprobs']);
  });
});

describe('Sampler: logit bias', () => {
  /** A bias over a small vocabulary: a few ids with values over the whole range. */
  const biasArb = (vocab: number) =>
    fc.dictionary(
      fc.integer({ min: 0, max: vocab - 1 }).map(String),
      fc.oneof(fc.constantFrom(-100, 100, 0), fc.double({ min: -100, max: 100, noNaN: true })),
      {
        maxKeys: 4,
      },
    );
  const biasCaseArb = caseArb.chain(([logits, mask, params]) => fc.tuple(fc.constant(logits), fc.constant(mask), fc.constant(params), biasArb(logits.length)));
  const biasedCopy = (logits: Float32Array, bias: Record<string, number>) => {
    const out = Float32Array.from(logits);
    for (const [id, v] of Object.entries(bias)) out[Number(id)] = logits[Number(id)]! + v;
    return out;
  };

  test('samples exactly as the unbiased sampler would from logits + bias (float32), for any u', () => {
    fc.assert(
      fc.property(biasCaseArb, fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), ([logits, mask, params, bias], u) => {
        const shifted = biasedCopy(logits, bias);
        fc.pre(refCandidates(shifted.length, mask).some((i) => shifted[i]! > -Infinity));
        const s = new Sampler({ ...params, seed: 1, logitBias: bias }, { uniform: () => u });
        expect(s.sample(logits, 0, mask).token).toBe(refSample(shifted, u, params, mask));
      }),
      { numRuns: 1000 },
    );
  });

  test('log-probabilities stay those of the model’s logits', () => {
    fc.assert(
      fc.property(biasCaseArb, positionArb, ([logits, mask, params, bias], position) => {
        const plain = new Sampler({ ...params, seed: 5, logprobs: true, topLogprobs: 5 }).sample(logits, position, mask);
        const biased = new Sampler({ ...params, seed: 5, logprobs: true, topLogprobs: 5, logitBias: bias }).sample(logits, position, mask);
        expect(biased.topLogprobs).toEqual(plain.topLogprobs);
        expect(closeTo(biased.logprob!, refLogSoftmax(logits)[biased.token]!)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  test('+100 makes a token all but certain, −100 bans it, on a full-size vocabulary; the mask still rules', () => {
    const logits = gaussianLogits(201_088, 3, 2);
    const pushed = 0xe6; // a byte token
    for (let position = 0; position < 50; position++) {
      expect(new Sampler({ seed: 9, logitBias: { [pushed]: 100 } }).sample(logits, position).token).toBe(pushed);
    }
    const top = new Sampler({ temperature: 0 }).sample(logits, 0).token;
    expect(new Sampler({ temperature: 0, logitBias: { [top]: -100 } }).sample(logits, 0).token).not.toBe(top);
    const mask: TokenMask = { kind: 'only', tokens: [7, 8] };
    expect([7, 8]).toContain(new Sampler({ temperature: 0, logitBias: { [pushed]: 100 } }).sample(logits, 0, mask).token);
  });

  test('bad biases throw RangeError', () => {
    expect(() => new Sampler({ logitBias: { 3: 101 } })).toThrow(RangeError);
    expect(() => new Sampler({ logitBias: { 3: Number.NaN } })).toThrow(RangeError);
    expect(() => new Sampler({ logitBias: { [-1]: 1 } })).toThrow(RangeError);
    expect(() => new Sampler({ logitBias: { 1.5: 1 } })).toThrow(RangeError);
    expect(() => new Sampler({ logitBias: { 99: 1 } }).sample(new Float32Array(10), 0)).toThrow(RangeError);
  });
});

describe('Sampler: validation', () => {
  test('bad params throw RangeError', () => {
    const bad: SamplingParams[] = [
      { temperature: -1 },
      { temperature: NaN },
      { temperature: Infinity },
      { topP: 0 },
      { topP: -0.5 },
      { topP: 1.5 },
      { topP: NaN },
      { topK: -1 },
      { topK: 1.5 },
      { topK: Infinity },
      { topLogprobs: -1 },
      { topLogprobs: 21 },
      { topLogprobs: 2.5 },
      { seed: -1 },
      { seed: 1.5 },
      { seed: 2 ** 53 },
      { seed: NaN },
    ];
    for (const p of bad) expect(() => new Sampler(p), JSON.stringify(p)).toThrow(RangeError);
    expect(() => new Sampler({ temperature: 0, topP: 1, topK: 0, topLogprobs: 20, seed: 0 })).not.toThrow();
  });

  test('bad inputs to sample throw RangeError', () => {
    const s = new Sampler({ seed: 1, logprobs: true });
    const l = new Float32Array([0, 1, 2]);
    expect(() => s.sample(new Float32Array(0), 0)).toThrow(RangeError);
    expect(() => s.sample(l, -1)).toThrow(RangeError);
    expect(() => s.sample(l, 0.5)).toThrow(RangeError);
    expect(() => s.sample(l, 0, { kind: 'only', tokens: [] })).toThrow(RangeError);
    expect(() => s.sample(l, 0, { kind: 'only', tokens: [3] })).toThrow(RangeError);
    expect(() => s.sample(l, 0, { kind: 'text', also: [-1] })).toThrow(RangeError);
    expect(() => s.sample(new Float32Array([0, NaN, 1]), 0)).toThrow(RangeError);
    expect(() => s.sample(new Float32Array([0, Infinity]), 0)).toThrow(RangeError);
    expect(() => s.sample(new Float32Array([-Infinity, -Infinity]), 0)).toThrow(RangeError);
    // a NaN outside the mask matters only to the log-probabilities
    expect(new Sampler({ seed: 1 }).sample(new Float32Array([0, NaN, 1]), 0, { kind: 'only', tokens: [0, 2] }).token).not.toBe(1);
    expect(() => s.sample(new Float32Array([0, NaN, 1]), 0, { kind: 'only', tokens: [0, 2] })).toThrow(RangeError);
    expect(() => new Sampler({ seed: 1 }, { uniform: () => 1 }).sample(l, 0)).toThrow(RangeError);
    expect(() => new Sampler({ seed: 1 }, { uniform: () => NaN }).sample(l, 0)).toThrow(RangeError);
  });
});
