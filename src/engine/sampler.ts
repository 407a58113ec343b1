// The token sampler: turns one row of logits into a TokenChoice, as a pure function of
// (logits, position, params, mask, seed).
//
// Randomness. Every draw comes from `counterUniform(seed, position)`, a counter-based generator:
// the uniform for the token at `position` depends on nothing but the request's seed and that
// position, never on how many draws came before, on other requests, or on retries. Re-running a
// request (or resuming it at any position) therefore reproduces the same tokens.
//
// Draw order. The kept set (the candidates left after top_k and top_p) is walked in ASCENDING TOKEN
// ID, accumulating float64 weights, and the first token whose cumulative weight exceeds u·Z is
// chosen. Ascending id was picked over "descending probability" because
//   - it needs no sort: the untruncated case (the common one) is a single linear walk;
//   - it is the same order with or without truncation, so truncation changes the result only
//     through the kept set (top_k = vocabulary size, or a top_p that keeps everything, give exactly
//     the untruncated draw — same set, same order, same float sums);
//   - the float64 sums are taken in one fixed order, so the choice is bit-for-bit reproducible.
// Truncation itself is defined on the order "descending logit, ties by lowest id" (descending
// logit is descending probability for T > 0); only the final walk is by id.
//
// Floating point. All arithmetic is float64 on the exactly-converted float32 logits, in fixed
// orders. Math.exp/Math.log in V8 are software ports of fdlibm (not the platform libm), so results
// are identical across machines running the same Node.

import { randomBytes } from 'node:crypto';
import { FIRST_SPECIAL_TOKEN, type SamplingParams, type TokenChoice, type TokenLogprob, type TokenMask } from './runtime-api.ts';

// ---------------------------------------------------------------------------------------------
// counter-based uniform generator

const MASK64 = (1n << 64n) - 1n;
const GOLDEN_GAMMA = 0x9e3779b97f4a7c15n;
const TWO_POW_53 = 2 ** 53;

/** SplitMix64's finaliser (Stafford's "Mix13" variant of MurmurHash3's fmix64): a 64-bit bijection. */
function mix64(z: bigint): bigint {
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

/**
 * A uniform double in [0, 1) that is a pure function of (seed, position).
 *
 * Construction: SplitMix64 used as a counter-based generator. The stream key is
 * `k = mix64(seed)`; the value at `position` is the (position+1)-th SplitMix64 output from state
 * k, computed directly rather than by iterating:
 *
 *     x = (k + (position + 1) · 0x9E3779B97F4A7C15) mod 2^64
 *     u = (mix64(x) >> 11) / 2^53
 *
 * mix64 is a bijection on 64-bit words, so distinct positions of one seed give distinct 64-bit
 * outputs (period 2^64), and the top 53 bits give every multiple of 2^-53 in [0, 1). Hashing the
 * seed first makes distinct seeds' streams start at unrelated points of the Weyl sequence; two
 * seeds' streams overlap within N positions only with probability ≈ 2N/2^64.
 *
 * @param seed integer in [0, 2^53)
 * @param position integer ≥ 0 (at most 2^53 − 1)
 */
export function counterUniform(seed: number, position: number): number {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be an integer in [0, 2^53), got ${seed}`);
  if (!Number.isSafeInteger(position) || position < 0) {
    throw new RangeError(`position must be a non-negative safe integer, got ${position}`);
  }
  const key = mix64(BigInt(seed));
  const x = (key + (BigInt(position) + 1n) * GOLDEN_GAMMA) & MASK64;
  return Number(mix64(x) >> 11n) / TWO_POW_53;
}

/** A fresh random seed in [0, 2^53) from the OS CSPRNG, for requests that did not give one. */
export function freshSeed(): number {
  const b = randomBytes(8);
  return (b.readUInt32BE(0) >>> 11) * 2 ** 32 + b.readUInt32BE(4);
}

// ---------------------------------------------------------------------------------------------
// scratch buffers: sample() is synchronous and not re-entrant, so one set per process is safe.
// Each is valid only until the next call that hands it out.

let weightScratch = new Float64Array(0);
let idScratch = new Uint32Array(0);
let sortScratch = new Uint32Array(0); // the radix sort's 4 × n words

function weightsFor(n: number): Float64Array {
  if (weightScratch.length < n) weightScratch = new Float64Array(n);
  return weightScratch;
}
function idsFor(n: number): Uint32Array {
  if (idScratch.length < n) idScratch = new Uint32Array(n);
  return idScratch.subarray(0, n);
}
// ---------------------------------------------------------------------------------------------
// candidates

/** The allowed ids: every id in [0, range) plus `extras` (sorted, unique, all ≥ range). */
interface Candidates {
  range: number;
  extras: Uint32Array;
  count: number;
}

const NO_EXTRAS = new Uint32Array(0);

function candidatesOf(mask: TokenMask | undefined, vocab: number): Candidates {
  if (mask === undefined) return { range: vocab, extras: NO_EXTRAS, count: vocab };
  let range: number;
  let list: readonly number[];
  if (mask.kind === 'text') {
    range = Math.min(FIRST_SPECIAL_TOKEN, vocab);
    list = mask.also;
  } else if (mask.kind === 'only') {
    range = 0;
    list = mask.tokens;
  } else {
    throw new RangeError(`unknown mask kind ${String((mask as { kind: unknown }).kind)}`);
  }
  let n = 0;
  const tmp = new Uint32Array(list.length);
  for (const id of list) {
    if (!Number.isInteger(id) || id < 0 || id >= vocab) {
      throw new RangeError(`mask token ${id} is not an id of this ${vocab}-token vocabulary`);
    }
    if (id >= range) tmp[n++] = id;
  }
  let extras = NO_EXTRAS;
  if (n > 0) {
    const sorted = tmp.subarray(0, n).sort();
    let m = 1;
    for (let i = 1; i < n; i++) if (sorted[i] !== sorted[m - 1]) sorted[m++] = sorted[i]!;
    extras = sorted.subarray(0, m);
  }
  const count = range + extras.length;
  if (count === 0) throw new RangeError('the mask allows no token');
  return { range, extras, count };
}

// ---------------------------------------------------------------------------------------------
// the order "descending logit, ties by lowest id"

/**
 * Order-preserving map of a float32's bit pattern to a uint32 that sorts ascending as the value
 * sorts DESCENDING (−0 and +0 map alike). NaN never reaches here.
 */
function descKey(bits: number): number {
  if (bits === 0x80000000) bits = 0; // −0 → +0
  const asc = bits & 0x80000000 ? ~bits >>> 0 : (bits | 0x80000000) >>> 0;
  return ~asc >>> 0;
}

/**
 * `idsAsc` (ascending ids) reordered by (logit descending, id ascending): a stable LSD radix sort
 * (3 passes of 11 bits, a pass skipped when all keys share its digit) on descKey, so equal logits
 * keep their ascending-id order. O(n), no comparisons. Returns a view of scratch memory, valid until
 * the next call; `idsAsc` is not modified.
 */
function orderByLogitDesc(logits: Float32Array, idsAsc: Uint32Array): Uint32Array {
  const n = idsAsc.length;
  const bits = new Uint32Array(logits.buffer, logits.byteOffset, logits.length);
  if (sortScratch.length < 4 * n) sortScratch = new Uint32Array(4 * n);
  let keys = sortScratch.subarray(0, n);
  let ids = sortScratch.subarray(n, 2 * n);
  let keysOut = sortScratch.subarray(2 * n, 3 * n);
  let idsOut = sortScratch.subarray(3 * n, 4 * n);
  for (let i = 0; i < n; i++) {
    const id = idsAsc[i]!;
    ids[i] = id;
    keys[i] = descKey(bits[id]!);
  }
  if (n < 2) return ids;
  const count = new Uint32Array(2048);
  for (let shift = 0; shift < 33; shift += 11) {
    count.fill(0);
    for (let i = 0; i < n; i++) count[(keys[i]! >>> shift) & 2047]!++;
    if (count[(keys[0]! >>> shift) & 2047] === n) continue; // nothing would move
    let sum = 0;
    for (let d = 0; d < 2048; d++) {
      const c = count[d]!;
      count[d] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const key = keys[i]!;
      const p = count[(key >>> shift) & 2047]!++;
      keysOut[p] = key;
      idsOut[p] = ids[i]!;
    }
    [keys, keysOut] = [keysOut, keys];
    [ids, idsOut] = [idsOut, ids];
  }
  return ids;
}

/** (lv, li) comes after (rv, ri) in the order (value descending, id ascending). */
function worse(lv: number, li: number, rv: number, ri: number): boolean {
  return lv < rv || (lv === rv && li > ri);
}

/**
 * The k best candidates by (logit desc, id asc), k < candidate count: one pass in ascending id with
 * a bounded heap whose root is the worst kept element. Most elements cost one comparison with the
 * root; O(n + r·log k) for r replacements. Returns the kept ids in ascending order.
 */
function topKSelect(logits: Float32Array, cand: Candidates, k: number): Uint32Array {
  const hv = new Float64Array(k);
  const hi = new Uint32Array(k);
  let size = 0;
  const siftDown = (start: number): void => {
    let i = start;
    const v = hv[i]!;
    const id = hi[i]!;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= size) break;
      if (c + 1 < size && worse(hv[c + 1]!, hi[c + 1]!, hv[c]!, hi[c]!)) c++;
      if (!worse(hv[c]!, hi[c]!, v, id)) break;
      hv[i] = hv[c]!;
      hi[i] = hi[c]!;
      i = c;
    }
    hv[i] = v;
    hi[i] = id;
  };
  const offer = (id: number, v: number): void => {
    if (size < k) {
      hv[size] = v;
      hi[size] = id;
      size++;
      if (size === k) for (let i = (k >> 1) - 1; i >= 0; i--) siftDown(i);
      return;
    }
    // Walking in ascending id, an equal logit never beats what is already kept.
    if (v > hv[0]!) {
      hv[0] = v;
      hi[0] = id;
      siftDown(0);
    }
  };
  const { range, extras } = cand;
  let i = 0;
  for (; i < range && size < k; i++) offer(i, logits[i]!);
  if (i < range) {
    // The heap is full: the hot loop only compares with the root.
    let root = hv[0]!;
    for (; i < range; i++) {
      const v = logits[i]!;
      if (v > root) {
        offer(i, v);
        root = hv[0]!;
      }
    }
  }
  for (let j = 0; j < extras.length; j++) {
    const id = extras[j]!;
    offer(id, logits[id]!);
  }
  return hi.sort();
}

// ---------------------------------------------------------------------------------------------
// top_p

/** A kept set of the form {logit > value} ∪ {logit = value, id ≤ id}: a prefix of the order. */
interface Cut {
  value: number;
  id: number;
}
const NO_CUT: Cut = { value: -Infinity, id: Number.MAX_SAFE_INTEGER };

/**
 * Walk `order` (a prefix of the kept set in (logit desc, id asc)) accumulating weights; the cut at
 * the first element where the running sum reaches `target`, or undefined if the prefix never does.
 */
function nucleusCut(logits: Float32Array, w: Float64Array, order: Uint32Array, target: number): Cut | undefined {
  let acc = 0;
  for (let j = 0; j < order.length; j++) {
    const id = order[j]!;
    acc += w[id]!;
    if (acc >= target) return { value: logits[id]!, id };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// the sampler

export interface SamplerOptions {
  /**
   * Substitute the uniform source (a failpoint uses this to inject a shared stream). Must return a
   * number in [0, 1). Default: `(p) => counterUniform(seed, p)`.
   */
  uniform?: (position: number) => number;
  /**
   * Failpoint topk-scratch: an array to write each choice's top log-probabilities into and hand
   * out, instead of a new one per call (one shared by every request, as a scratch buffer valid only
   * until the next call would be). Default: a new array per call.
   */
  topLogprobsInto?: TokenLogprob[];
}

/**
 * Samples one token per call, as a pure function of (logits, position, params, mask, seed).
 *
 * Temperature T = 0: argmax over the candidates C (the mask's ids; every id without a mask), lowest
 * id on ties; no draw. Otherwise:
 *   1. m = max logit over C; weight w_i = exp((logit_i − m)/T), float64.
 *   2. top_k (0 < k < |C|): keep the k best candidates by (logit desc, id asc).
 *   3. top_p (p < 1): Z₁ = Σ w over the kept set in ascending id; walk the kept set by (logit desc,
 *      id asc) accumulating w and keep the shortest prefix whose running sum is ≥ p·Z₁ (all of
 *      it, if rounding leaves the sum short).
 *   4. Z = Σ w over the kept set in ascending id; u = uniform(position); walk the kept set in
 *      ASCENDING ID and choose the first token whose running sum exceeds u·Z (if rounding leaves
 *      none, the last kept token of positive weight).
 * With logit_bias, every step above reads the biased logits (logit + bias, rounded to float32, in a
 * row of the sampler's own); log-probabilities are always those of the unbiased logits.
 *
 * Cost per call (V = vocabulary size), all single-threaded JS:
 *   - untruncated: a max pass, an exp pass, and a walk that stops at the chosen token;
 *   - top_k: a max pass, a comparison pass with a bounded heap, exps for the k kept only;
 *   - top_p: a max pass and an exp pass that also lists the candidates weighing ≥ (1 − p)/|C|
 *     (relative to the max): a prefix of the order that provably holds more than p of the mass,
 *     so only it is radix-sorted (stable LSD, O(n)) and walked. For peaked distributions that is
 *     a few hundred or thousand tokens (everything within ln(|C|/(1 − p)) nats of the max, ~14.5
 *     at p = 0.9); for flat ones (or p within rounding of 1, where the margin fails and the whole
 *     candidate set is sorted) it approaches |C|: ~15 ms at 201 088 on a slow, shared core.
 *   - log-probabilities: one more exp pass over V, except at T = 1 when the vocabulary's max is
 *     an allowed token, where the sampling weights are those very exps and are reused.
 *
 * Throws RangeError for: an empty logits row; a NaN or +Infinity logit among the candidates (or
 * anywhere in the row when log-probabilities are requested); every candidate at −Infinity; mask ids
 * outside the vocabulary or an empty 'only' mask; an invalid position; a uniform outside [0, 1).
 */
export class Sampler {
  readonly seed: number;
  readonly temperature: number;
  readonly topP: number;
  readonly topK: number;
  readonly logprobs: boolean;
  readonly topLogprobs: number;
  private readonly uniform: (position: number) => number;
  private readonly topLogprobsInto: TokenLogprob[] | undefined;
  /** logit_bias as parallel arrays (ascending id), and this sampler's own row of biased logits. */
  private readonly biasIds: Uint32Array;
  private readonly biasValues: Float32Array;
  private biased = new Float32Array(0);

  constructor(params: SamplingParams, options?: SamplerOptions) {
    const temperature = params.temperature ?? 1;
    if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature < 0) {
      throw new RangeError(`temperature must be a finite number ≥ 0, got ${temperature}`);
    }
    const topP = params.topP ?? 1;
    if (typeof topP !== 'number' || !(topP > 0 && topP <= 1)) {
      throw new RangeError(`topP must be in (0, 1], got ${topP}`);
    }
    const topK = params.topK ?? 0;
    if (!Number.isSafeInteger(topK) || topK < 0) throw new RangeError(`topK must be an integer ≥ 0, got ${topK}`);
    const topLogprobs = params.topLogprobs ?? 0;
    if (!Number.isInteger(topLogprobs) || topLogprobs < 0 || topLogprobs > 20) {
      throw new RangeError(`topLogprobs must be an integer in [0, 20], got ${topLogprobs}`);
    }
    if (params.seed !== undefined && (!Number.isSafeInteger(params.seed) || params.seed < 0)) {
      throw new RangeError(`seed must be an integer in [0, 2^53), got ${params.seed}`);
    }
    const bias = Object.entries(params.logitBias ?? {})
      .map(([id, v]) => [Number(id), v] as const)
      .sort((a, b) => a[0] - b[0]);
    for (const [id, v] of bias) {
      if (!Number.isSafeInteger(id) || id < 0) throw new RangeError(`logitBias keys must be token ids, got ${id}`);
      if (typeof v !== 'number' || !(v >= -100 && v <= 100)) throw new RangeError(`logitBias of token ${id} must be in [-100, 100], got ${v}`);
    }
    this.biasIds = Uint32Array.from(bias, ([id]) => id);
    this.biasValues = Float32Array.from(bias, ([, v]) => v);
    this.temperature = temperature;
    this.topP = topP;
    this.topK = topK;
    this.logprobs = params.logprobs === true;
    this.topLogprobs = topLogprobs;
    this.seed = params.seed ?? freshSeed();
    const seed = this.seed;
    this.uniform = options?.uniform ?? ((p: number) => counterUniform(seed, p));
    this.topLogprobsInto = options?.topLogprobsInto;
  }

  /**
   * Choose the token at `position` (the generator's counter: normally the token's index in the
   * sequence). `logprob` is present iff params.logprobs, `topLogprobs` iff params.topLogprobs > 0;
   * both are log-softmax of the raw logits over the whole vocabulary (no temperature, no mask):
   * logit_i − M − ln Σ_j exp(logit_j − M), M the row's max, the sum in ascending id, float64.
   */
  sample(logits: Float32Array, position: number, mask?: TokenMask): TokenChoice {
    if (!Number.isSafeInteger(position) || position < 0) {
      throw new RangeError(`position must be a non-negative safe integer, got ${position}`);
    }
    const vocab = logits.length;
    if (vocab === 0) throw new RangeError('empty logits');
    const cand = candidatesOf(mask, vocab);
    const { range, extras } = cand;
    const wantLogprobs = this.logprobs || this.topLogprobs > 0;
    // What is sampled from: the logits, or with logit_bias a biased copy (log-probabilities keep the logits).
    const scores = this.biasIds.length === 0 ? logits : this.biasedRow(logits);

    // Pass 1: the candidates' max (lowest id on ties), the row's max when needed, validation.
    let best = -1;
    let max = -Infinity;
    for (let i = 0; i < range; i++) {
      const v = scores[i]!;
      if (v > max) {
        max = v;
        best = i;
      } else if (v !== v) badLogit(scores, i);
    }
    let rowMax = scores === logits ? max : -Infinity;
    if (wantLogprobs) {
      for (let i = scores === logits ? range : 0; i < vocab; i++) {
        const v = logits[i]!;
        if (v > rowMax) rowMax = v;
        else if (v !== v) badLogit(logits, i);
      }
    }
    for (let j = 0; j < extras.length; j++) {
      const id = extras[j]!;
      const v = scores[id]!;
      if (v > max) {
        max = v;
        best = id;
      } else if (v !== v) badLogit(scores, id);
    }
    if (max === Infinity) badLogit(scores, scores.indexOf(Infinity));
    if (rowMax === Infinity) badLogit(logits, logits.indexOf(Infinity));
    if (best < 0) throw new RangeError('every allowed token has logit -Infinity');

    // Whole-vocabulary log-sum-exp. At T = 1 with the row's max allowed, its exps are exactly the
    // sampling weights exp((logit − max)/1): keep them.
    let lse = 0;
    let weightsOfAll = false;
    if (wantLogprobs) {
      let s = 0;
      if (this.temperature === 1 && rowMax === max && scores === logits) {
        const w = weightsFor(vocab);
        for (let i = 0; i < vocab; i++) {
          const x = Math.exp(logits[i]! - max);
          w[i] = x;
          s += x;
        }
        weightsOfAll = true;
      } else {
        for (let i = 0; i < vocab; i++) s += Math.exp(logits[i]! - rowMax);
      }
      lse = rowMax + Math.log(s);
    }

    const token = this.temperature === 0 ? best : this.draw(scores, position, cand, max, weightsOfAll);

    const choice: TokenChoice = { token };
    if (this.logprobs) choice.logprob = logits[token]! - lse;
    if (this.topLogprobs > 0) choice.topLogprobs = topN(logits, this.topLogprobs, lse, this.topLogprobsInto);
    return choice;
  }

  /** The logits with logit_bias added (float32, as the model's logits), in this sampler's own row. */
  private biasedRow(logits: Float32Array): Float32Array {
    if (this.biased.length !== logits.length) this.biased = new Float32Array(logits.length);
    this.biased.set(logits);
    for (let j = 0; j < this.biasIds.length; j++) {
      const id = this.biasIds[j]!;
      if (id >= logits.length) throw new RangeError(`logitBias token ${id} is not an id of this ${logits.length}-token vocabulary`);
      this.biased[id] = logits[id]! + this.biasValues[j]!;
    }
    return this.biased;
  }

  /** Steps 1–4 of the class comment. `ready`: weightScratch already holds every id's weight. */
  private draw(logits: Float32Array, position: number, cand: Candidates, max: number, ready: boolean): number {
    const T = this.temperature;
    const { range, extras } = cand;
    const vocab = logits.length;
    const w = weightsFor(vocab);
    const useTopK = this.topK > 0 && this.topK < cand.count;
    const useTopP = this.topP < 1;

    // The kept set: `list` (ascending ids; null = every candidate) filtered by `cut`.
    let list: Uint32Array | null = null;
    let cut = NO_CUT;

    if (useTopK) {
      list = topKSelect(logits, cand, this.topK);
      if (!ready) {
        for (let j = 0; j < list.length; j++) {
          const id = list[j]!;
          w[id] = Math.exp((logits[id]! - max) / T);
        }
        ready = true;
      }
      if (useTopP) {
        let z1 = 0;
        for (let j = 0; j < list.length; j++) z1 += w[list[j]!]!;
        cut = nucleusCut(logits, w, orderByLogitDesc(logits, list), this.topP * z1) ?? NO_CUT;
      }
    } else if (useTopP) {
      // Weights, Z₁ (ascending id), and the list L of candidates weighing ≥ τ₀. Each one
      // left out weighs < τ₀, so together < |C|·τ₀ < (1 − p) ≤ (1 − p)·Z₁ (Z₁ ≥ 1, the max weighing
      // 1): L holds more than p of the mass. {weight ≥ τ₀} is a prefix of the order (the weight is
      // monotone in the logit), so the nucleus, a shorter prefix, lies inside L.
      const tau0 = (1 - this.topP) / (cand.count * (1 + 1e-6));
      const L = idsFor(cand.count);
      let m = 0;
      let z1 = 0;
      if (!ready) {
        for (let i = 0; i < range; i++) w[i] = Math.exp((logits[i]! - max) / T);
        for (let j = 0; j < extras.length; j++) {
          const id = extras[j]!;
          w[id] = Math.exp((logits[id]! - max) / T);
        }
        ready = true;
      }
      for (let i = 0; i < range; i++) {
        const wi = w[i]!;
        z1 += wi;
        if (wi >= tau0) L[m++] = i;
      }
      for (let j = 0; j < extras.length; j++) {
        const id = extras[j]!;
        const wi = w[id]!;
        z1 += wi;
        if (wi >= tau0) L[m++] = id;
      }
      const target = this.topP * z1;
      list = L.subarray(0, m);
      const c = nucleusCut(logits, w, orderByLogitDesc(logits, list), target);
      if (c !== undefined) {
        cut = c;
      } else {
        // Rounding defeated the margins: search the whole candidate set (in ascending id).
        const all = idsFor(cand.count);
        for (let i = 0; i < range; i++) all[i] = i;
        all.set(extras, range);
        list = all;
        cut = nucleusCut(logits, w, orderByLogitDesc(logits, all), target) ?? NO_CUT;
      }
    }

    const cv = cut.value;
    const cid = cut.id;
    let z = 0;
    if (list === null) {
      // Untruncated: every candidate, ascending id.
      if (ready) {
        for (let i = 0; i < range; i++) z += w[i]!;
        for (let j = 0; j < extras.length; j++) z += w[extras[j]!]!;
      } else {
        for (let i = 0; i < range; i++) {
          const x = Math.exp((logits[i]! - max) / T);
          w[i] = x;
          z += x;
        }
        for (let j = 0; j < extras.length; j++) {
          const id = extras[j]!;
          const x = Math.exp((logits[id]! - max) / T);
          w[id] = x;
          z += x;
        }
      }
    } else {
      for (let j = 0; j < list.length; j++) {
        const id = list[j]!;
        const v = logits[id]!;
        if (v > cv || (v === cv && id <= cid)) z += w[id]!;
      }
    }

    const u = this.uniform(position);
    if (typeof u !== 'number' || !(u >= 0 && u < 1)) {
      throw new RangeError(`uniform(${position}) returned ${u}, not a number in [0, 1)`);
    }
    const target = u * z;
    let acc = 0;
    let last = -1;
    if (list === null) {
      for (let i = 0; i < range; i++) {
        const wi = w[i]!;
        if (wi > 0) {
          acc += wi;
          last = i;
          if (acc > target) return i;
        }
      }
      for (let j = 0; j < extras.length; j++) {
        const id = extras[j]!;
        const wi = w[id]!;
        if (wi > 0) {
          acc += wi;
          last = id;
          if (acc > target) return id;
        }
      }
    } else {
      for (let j = 0; j < list.length; j++) {
        const id = list[j]!;
        const v = logits[id]!;
        if (v > cv || (v === cv && id <= cid)) {
          const wi = w[id]!;
          if (wi > 0) {
            acc += wi;
            last = id;
            if (acc > target) return id;
          }
        }
      }
    }
    // Reached only when u·Z rounds up to Z. The max candidate is always kept with weight 1, so last ≥ 0.
    return last;
  }
}

function badLogit(logits: Float32Array, id: number): never {
  throw new RangeError(`logit of token ${id} is ${logits[id]}; logits must be finite or -Infinity`);
}

/**
 * The n most likely tokens of the whole-vocabulary log-softmax, ranked by the returned float64
 * logprob (logit − lse) descending, ties (equal logprobs) by lowest id.
 */
function topN(logits: Float32Array, n: number, lse: number, into: TokenLogprob[] = []): TokenLogprob[] {
  const vocab = logits.length;
  const k = Math.min(n, vocab);
  // A small array sorted by (logprob desc, id asc). Walking in ascending id, a later equal value
  // never displaces an earlier one, so admission needs a strict comparison with the current worst.
  const vals = new Float64Array(k);
  const ids = new Uint32Array(k);
  let size = 0;
  for (let i = 0; i < vocab; i++) {
    const v = logits[i]! - lse;
    if (size === k && !(v > vals[k - 1]!)) continue;
    let j = size < k ? size++ : k - 1;
    while (j > 0 && v > vals[j - 1]!) {
      vals[j] = vals[j - 1]!;
      ids[j] = ids[j - 1]!;
      j--;
    }
    vals[j] = v;
    ids[j] = i;
  }
  // Failpoint topk-scratch: `into` may be the one array every request shares.
  into.length = 0;
  for (let j = 0; j < size; j++) into.push({ token: ids[j]!, logprob: vals[j]! });
  return into;
}
