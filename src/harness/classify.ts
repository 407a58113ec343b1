// The class of a violation, decided from its evidence (spec/properties.md "Classes and --compare"),
// and whether it fails under a `--compare` mode. A server that is not bit-exact (nearly every
// production server) drifts in log-probs and, at near-ties, in tokens; what no server may do is
// answer with what only another request had, or break the contract.
import type { Answer } from './answer.ts';

/**
 * - `content-leak`: the wrong answer repeats what only another request had (its answer, or text of
 *   its answer) — exo #1362's class;
 * - `divergence`: different tokens (or a different outcome) for what must be the same answer;
 * - `numeric-drift`: the same tokens, different log-probs;
 * - `contract`: shape, status, envelope, stop, usage, a hang — wrong whatever ran before.
 */
export type ViolationClass = 'content-leak' | 'divergence' | 'numeric-drift' | 'contract';

/** Most severe first: a summary's headline is the most severe class it holds. */
export const CLASS_ORDER: readonly ViolationClass[] = ['content-leak', 'contract', 'divergence', 'numeric-drift'];

export const CLASS_LABEL: Record<ViolationClass, string> = {
  'content-leak': 'content leak',
  divergence: 'divergence',
  'numeric-drift': 'numeric drift',
  contract: 'contract',
};

/**
 * What `--compare` fails on: `exact` every difference; `tokens` all but numeric drift (the same
 * tokens, log-probs within any distance); `text` content leaks, contract breaks and divergences where
 * the expected run was sure of its token (CONFIDENT_MARGIN): a server that is not bit-exact may part
 * at a near-tie, never answer with another request's content or from the wrong context.
 */
export type CompareMode = 'exact' | 'tokens' | 'text';

export const COMPARE_MODES: readonly CompareMode[] = ['exact', 'tokens', 'text'];

/**
 * Under `text`, a divergence fails when the expected run was sure of its token where the runs part:
 * it put it this many nats (or more) above the token the other run chose. Below that it may be a
 * near-tie that numeric drift tipped; with no margin known (no log-probs asked) it is given the
 * benefit of the doubt. Drift-tipped ties sit at margins of the drift's size (1e-3 to 1e-1); a
 * request answered from the wrong context parts from the right answer where the model was sure.
 */
export const CONFIDENT_MARGIN = 0.5;

/** Whether a violation fails under `mode`: contract breaks and content leaks always; the rest by mode. */
export function fails(v: Pick<Classification, 'class' | 'margin'>, mode: CompareMode = 'exact'): boolean {
  if (v.class === 'numeric-drift') return mode === 'exact';
  if (v.class === 'divergence') return mode !== 'text' || (v.margin !== undefined && v.margin.gap >= CONFIDENT_MARGIN);
  return true;
}

/** Whether two answers say the same: status, error, every choice's text, calls, finish and tokens (log-prob values aside). */
export const sameTokens = (a: Answer, b: Answer): boolean => tokensOf(a) === tokensOf(b);

/** The answer without log-prob values: status, error, every choice's text, calls, finish and tokens. */
const tokensOf = (a: Answer) =>
  JSON.stringify({
    status: a.status,
    error: a.error,
    choices: a.choices.map((c) => ({ ...c, logprobs: c.logprobs?.map((e) => ({ token: e.token, bytes: e.bytes })) })),
  });

/** The largest |Δ logprob| between two answers with the same tokens: chosen tokens and the alternatives both list. */
export function largestDrift(expected: Answer, actual: Answer): number {
  let largest = 0;
  expected.choices.forEach((c, i) => {
    const other = actual.choices[i]?.logprobs ?? [];
    (c.logprobs ?? []).forEach((e, k) => {
      const o = other[k];
      if (!o) return;
      const delta = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) ? Math.abs(a - b) : 0);
      largest = Math.max(largest, delta(e.logprob, o.logprob));
      const alternatives = new Map((o.top_logprobs ?? []).map((t) => [t.token, t.logprob]));
      for (const t of e.top_logprobs ?? []) {
        const x = alternatives.get(t.token);
        if (x !== undefined) largest = Math.max(largest, delta(t.logprob, x));
      }
    });
  });
  return largest;
}

/**
 * Where the tokens first part, with the expected run's margin there: its chosen token's log-prob
 * minus that of the token the other run chose, when the expected run lists it among its top
 * alternatives (else at least the gap to its least likely listed one). A small margin is a near-tie.
 */
export interface Margin {
  choice: number;
  /** Token position in the choice's log-prob entries. */
  position: number;
  expected: string;
  actual: string;
  gap: number;
  /** The actual token is not among the expected run's alternatives: the gap is a lower bound. */
  atLeast?: true;
}

export function marginAtDivergence(expected: Answer, actual: Answer): Margin | undefined {
  for (const [i, c] of expected.choices.entries()) {
    const mine = c.logprobs;
    const theirs = actual.choices[i]?.logprobs;
    if (!mine || !theirs) continue;
    const k = mine.findIndex((e, j) => theirs[j] !== undefined && theirs[j].token !== e.token);
    if (k < 0) continue;
    const e = mine[k]!;
    const chosen = theirs[k]!.token;
    const listed = e.top_logprobs?.find((t) => t.token === chosen);
    if (listed) return { choice: i, position: k, expected: e.token, actual: chosen, gap: e.logprob - listed.logprob };
    const least = e.top_logprobs?.length ? Math.min(...e.top_logprobs.map((t) => t.logprob)) : undefined;
    if (least !== undefined) return { choice: i, position: k, expected: e.token, actual: chosen, gap: e.logprob - least, atLeast: true };
    return undefined;
  }
  return undefined;
}

export interface Classification {
  class: ViolationClass;
  /** numeric-drift: the largest |Δ logprob|. */
  drift?: number;
  /** divergence with log-probs: the expected run's margin where the tokens first part. */
  margin?: Margin;
}

/** A finding's evidence: the answer expected, the one that came, and another request's answer found in it. */
export function classify(f: { expected?: Answer | undefined; actual?: Answer | undefined; leakedFrom?: number | undefined }): Classification {
  // Another request's answer where this one's should be: whatever rule saw it, a leak.
  if (f.leakedFrom !== undefined) return { class: 'content-leak' };
  // One answer against the contract (shape, envelope, a stop string in the content, a hang …).
  if (f.expected === undefined || f.actual === undefined) return { class: 'contract' };
  if (!sameTokens(f.expected, f.actual)) {
    const margin = marginAtDivergence(f.expected, f.actual);
    return margin ? { class: 'divergence', margin } : { class: 'divergence' };
  }
  const logprobs = (a: Answer) => JSON.stringify(a.choices.map((c) => c.logprobs));
  // The same tokens and log-probs: what differs is the accounting (usage), a contract matter.
  if (logprobs(f.expected) === logprobs(f.actual)) return { class: 'contract' };
  return { class: 'numeric-drift', drift: largestDrift(f.expected, f.actual) };
}
