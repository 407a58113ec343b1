// `--compare exact|tokens|text` on fakes whose behaviour is known (properties/fake-server.ts): the
// whole default check, and the verdict and class each mode must give. A server whose prefix cache
// only moves log-prob numbers passes `tokens` and `text`; one that tips near-ties passes only `text`;
// one that leaks fails every mode, and text another conversation had is a content leak.
import { describe, expect, test } from 'vitest';
import type { CompareMode, ViolationClass } from '../src/harness/classify.ts';
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
];

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
