// `--compare exact|tokens|text` on fakes whose behaviour is known (properties/fake-server.ts): the
// whole default check, and the verdict and class each mode must give. A server whose prefix cache
// only moves log-prob numbers passes `tokens` and `text`; one that tips near-ties passes only `text`;
// one that leaks fails every mode, and text another conversation had is a content leak. A sampler RNG
// that every seeded request re-seeds makes overlapping requests diverge, at a margin `text` passes.
import { describe, expect, test } from 'vitest';
import { answerOf } from '../src/harness/answer.ts';
import { CONFIDENT_MARGIN, marginAtDivergence, type CompareMode, type ViolationClass } from '../src/harness/classify.ts';
import { check, replay } from '../src/api.ts';
import type { Scenario } from '../src/harness/scenario.ts';
import { FAKE_MODEL, useFakeServers, type FakeVariant } from './fake-server.ts';

const fresh = useFakeServers('compare.amnesia.test');

/** Per mode: undefined, every property passes; else the class the check fails with. */
const verdicts: Array<[FakeVariant, Record<CompareMode, ViolationClass | undefined>]> = [
  ['correct', { exact: undefined, tokens: undefined, text: undefined }],
  ['cache-drift', { exact: 'numeric-drift', tokens: undefined, text: undefined }],
  ['cache-diverge', { exact: 'divergence', tokens: 'divergence', text: undefined }],
  ['batch-numerics', { exact: 'numeric-drift', tokens: undefined, text: undefined }],
  // One sampler RNG that each seeded request re-seeds (transformers serve's torch.manual_seed): alone a
  // seeded request always answers the same, so only requests that overlap fail — a divergence, other
  // words and nothing of the other request's text. `text` passes it by its rule, and rightly for this
  // fake: its sampling distribution is flat (every word −ln 32), so where the runs part the expected
  // run's margin is 0 (its word exactly as likely as the other, listed or not: "at least" the gap to
  // its least likely alternative, also 0), below CONFIDENT_MARGIN; with no log-probs asked it is
  // unknown. A sampled token was never one the run was sure of (the replay below shows the margin).
  ['reseeded-rng', { exact: 'divergence', tokens: 'divergence', text: undefined }],
];

/** Where a variant's failure must show (the property the check fails first), where only one property can show it. */
const failsIn: Partial<Record<FakeVariant, string>> = { 'reseeded-rng': 'concurrency-independence' };

/**
 * Leaks fail every mode. What they show first depends on what the shrunk scenario holds: a buffer
 * that carries the previous answer into the next shows, between two identical requests, as a
 * divergence (or the log-prob entries it leaves unspelled); an answer cache keyed by the last user
 * message hands p1 what p2 would have said — an answer no request of the recording shows.
 */
const leaks: FakeVariant[] = ['stale-buffer', 'answer-memo'];

/** Contract breaks fail every mode, as contract. */
const contractBreaks: FakeVariant[] = ['stop-kept', 'bad-json-500'];

describe('a server that is not bit-exact in isolation (log-probs jitter, tokens never change)', () => {
  test('calibration says so; exact skips the properties that need identical answers, tokens and text check them and pass', { timeout: 120_000 }, async () => {
    const exact = await check({ target: fresh('jitter'), runs: 5, seed: 1 });
    expect(exact.caps.deterministic).toBe(false);
    expect(exact.caps.calibration).toMatchObject({ tokensDiffer: false });
    expect(exact.caps.calibration!.drift).toBeGreaterThan(0);
    expect(exact.results.find((r) => r.property === 'history-independence')).toMatchObject({ status: 'skipped' });
    for (const mode of ['tokens', 'text'] as const) {
      const report = await check({ target: fresh('jitter'), compare: mode, runs: 5, seed: 1 });
      for (const r of report.results) expect(r.status, `${mode} ${r.property}: ${r.reason ?? r.failure?.violation.message}`).toBe('passed');
    }
  });
});

describe('--compare: the verdict and class of each mode', () => {
  for (const [variant, byMode] of verdicts) {
    for (const [mode, expected] of Object.entries(byMode) as Array<[CompareMode, ViolationClass | undefined]>) {
      test(`${variant}, --compare ${mode}: ${expected ?? 'passes'}`, { timeout: 120_000 }, async () => {
        const report = await check({ target: fresh(variant), compare: mode, runs: 10, seed: 1, stopAtFirstFailure: true });
        const failed = report.results.find((r) => r.status === 'failed');
        const why = failed?.failure ? `${failed.property}: ${failed.failure.violation.class} ${failed.failure.violation.message}` : failed?.reason;
        if (expected === undefined) {
          expect(failed, why).toBeUndefined();
          expect(report.results.every((r) => r.status === 'passed')).toBe(true);
          return;
        }
        expect(failed?.failure?.violation.class, why).toBe(expected);
        if (failsIn[variant] !== undefined) expect(failed!.property, why).toBe(failsIn[variant]);
        expect(failed!.flaky).toBeUndefined();
        // The bug report fails again, with its class, on a fresh instance under the same mode.
        const again = await replay(failed!.failure!.scenario, { target: fresh(variant), compare: mode });
        expect(again.violation?.class).toBe(expected);
      });
    }
  }

  for (const variant of leaks) {
    for (const mode of ['exact', 'tokens', 'text'] as const) {
      test(`${variant}, --compare ${mode}: fails`, { timeout: 120_000 }, async () => {
        const report = await check({ target: fresh(variant), compare: mode, runs: 10, seed: 1, stopAtFirstFailure: true });
        const failed = report.results.find((r) => r.status === 'failed');
        expect(failed?.failure?.violation.class).toMatch(/^(content-leak|divergence|contract)$/);
      });
    }
  }

  for (const variant of contractBreaks) {
    test(`${variant}: a contract violation in every mode`, { timeout: 120_000 }, async () => {
      for (const mode of ['exact', 'tokens', 'text'] as const) {
        const report = await check({ target: fresh(variant), compare: mode, runs: 10, seed: 1, stopAtFirstFailure: true });
        const failed = report.results.find((r) => r.status === 'failed');
        expect(failed?.failure?.violation.class, mode).toBe('contract');
      }
    });
  }

  test('a sampler RNG re-seeded by each seeded request: identical alone, overlapping requests diverge at margin 0, which only text passes', async () => {
    // Two conversations under one seed, with log-probs (so the margin is known), sent alone, then together.
    const ask = (content: string) => ({
      model: FAKE_MODEL,
      messages: [{ role: 'user', content }],
      max_tokens: 12,
      temperature: 1,
      seed: 7,
      logprobs: true,
      top_logprobs: 20,
    });
    const scenario: Scenario = {
      name: 'reseeded-rng',
      requests: { p1: ask('What is 2 + 2?'), p2: ask('List three colours.') },
      // The burst's members start in the same tick: each re-seeds before either draws its first word.
      steps: [{ send: 'p1' }, { send: 'p2' }, { send: 'p1', stream: true }, { burst: ['p1', 'p2'] }],
    };
    for (const mode of ['exact', 'tokens', 'text'] as const) {
      const r = await replay(scenario, { target: fresh('reseeded-rng'), compare: mode });
      const [alone, again, together] = [0, 2, 3].map((step) => answerOf(r.recording.entries.find((e) => e.step === step && e.label === 'p1')!.obs));
      // Alone, the same seeded request answers the same (streamed or not); beside p2, other words.
      expect(again, mode).toEqual(alone);
      expect(together!.choices[0]!.content, mode).not.toBe(alone!.choices[0]!.content);
      // Where they part, p1 alone was no surer of its word than of the one it said beside p2.
      const { gap } = marginAtDivergence(alone!, together!)!;
      expect(gap, mode).toBe(0);
      expect(gap, mode).toBeLessThan(CONFIDENT_MARGIN);
      if (mode === 'text') expect(r.violation, mode).toBeUndefined();
      else {
        expect(r.violation, mode).toMatchObject({ class: 'divergence', kind: 'concurrency', margin: { gap: 0 } });
        expect(r.violation!.leakedFrom, mode).toBeUndefined();
      }
    }
  });

  test('text another conversation had, inside the answer: a content leak in every mode, naming its source', async () => {
    const ask = (content: string) => ({ model: FAKE_MODEL, messages: [{ role: 'user', content }], max_tokens: 12, temperature: 0 });
    const scenario: Scenario = {
      name: 'stale-buffer',
      requests: { p1: ask('What is 2 + 2?'), p2: ask('List three colours.') },
      // The flush clears the buffer p1 left, so p2 answers clean and only p1's second answer carries a leak.
      steps: [{ send: 'p1' }, { flush: true }, { send: 'p2' }, { send: 'p1' }],
    };
    for (const mode of ['exact', 'tokens', 'text'] as const) {
      const r = await replay(scenario, { target: fresh('stale-buffer'), compare: mode });
      expect(r.violation, mode).toMatchObject({ class: 'content-leak', entries: [0, 2], leakedFrom: 1 });
      // p1's second answer starts with p2's: what p2 said, in p1's answer.
      expect(r.violation!.actual!.choices[0]!.content).toBe(`yes blue brown plus yes and we${r.violation!.expected!.choices[0]!.content}`);
    }
  });
});
