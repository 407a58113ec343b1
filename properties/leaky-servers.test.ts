// The harness tested on servers whose bugs are known: a correct fake OpenAI-compatible server
// (properties/fake-server.ts: msw handlers answering global fetch, no sockets) must pass every
// property of `check()`, and each leaky fake must fail the property written for its class of bug,
// shrunk to at most 4 requests, as a scenario that fails again on a fresh instance of the same fake
// (a bug report anyone can replay) and passes on a fresh correct one.
import { describe, expect, test } from 'vitest';
import type { ViolationKind } from '../src/harness/violation.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeStep, loadScenario, requestCount } from '../src/harness/scenario.ts';
import { writeFailureReport } from '../src/harness/report/bug-report.ts';
import { check, replay } from '../src/api.ts';
import { useFakeServers, type FakeVariant } from './fake-server.ts';

/** A fresh fake (its own state) at its own host; returns its base URL. */
const fresh = useFakeServers('fake.amnesia.test');

/** AMNESIA_LEAKY_LOG=1 prints each property's result. */
const log = (line: string) => {
  if (process.env.AMNESIA_LEAKY_LOG) console.log(line);
};

describe('a correct fake server', () => {
  test('passes every property, none skipped (stored scenarios included)', { timeout: 60_000 }, async () => {
    const report = await check({ target: fresh('correct'), runs: 15, seed: 1 });
    for (const r of report.results) {
      log(
        `correct ${r.property}: ${r.status} (${r.scenarios} scenarios, ${r.requests} requests, ${r.ms} ms)${r.failure ? ` ${r.failure.violation.kind}: ${r.failure.violation.message}` : ''}`,
      );
    }
    // The fake supports everything the probe looks for, so no property is skipped.
    expect(
      Object.entries(report.caps)
        .filter(([, v]) => !v)
        .map(([k]) => k),
    ).toEqual([]);
    expect(report.results).toHaveLength(11);
    for (const r of report.results) {
      const why = r.failure ? `${r.failure.violation.kind}: ${r.failure.violation.message}\n${JSON.stringify(r.failure.scenario)}` : r.reason;
      expect(r.status, `${r.property}: ${why}`).toBe('passed');
    }
    expect(report.ok).toBe(true);
  });
});

interface Leak {
  variant: FakeVariant;
  property: string;
  /** The violation it shows first (a leaked answer may show first as another request's budget or log-probs). */
  kind: ViolationKind | ViolationKind[];
  /** Stored scenarios (spec/scenarios, history independence only): with them, or the random search alone. */
  stored: boolean;
}

const leaks: Leak[] = [
  // exo-1362 (p1, p2, p1 over one last user message) is itself a counterexample for both history leaks.
  { variant: 'answer-memo', property: 'history-independence', kind: 'history', stored: true },
  { variant: 'answer-memo', property: 'history-independence', kind: ['history', 'budget', 'logprobs', 'tool-calls'], stored: false },
  { variant: 'session-history', property: 'history-independence', kind: 'history', stored: true },
  { variant: 'session-history', property: 'history-independence', kind: 'history', stored: false },
  { variant: 'stream-drift', property: 'stream-equivalence', kind: 'stream', stored: false },
  { variant: 'broken-envelope', property: 'error-envelope', kind: 'envelope', stored: false },
];

describe('leaky fake servers: caught, shrunk to at most 4 requests, and replayable', () => {
  for (const { variant, property, kind, stored } of leaks) {
    const how = stored ? 'stored scenarios first' : 'random search alone';
    test(`${variant} fails ${property} (${how})`, { timeout: 60_000 }, async () => {
      const report = await check({ target: fresh(variant), properties: [property], runs: 50, seed: 1, ...(stored ? {} : { scenarios: [] }) });
      // The probe's own finding, where it has one, comes first.
      const result = report.results.find((r) => r.property === property)!;
      const failure = result.failure;
      log(
        `${variant} ${result.property} (${how}): ${result.status} (${result.scenarios} scenarios, ${result.requests} requests, ${result.ms} ms)` +
          (failure
            ? `\n  ${failure.violation.kind}: ${failure.violation.message}\n  ${failure.scenario.steps.map(describeStep).join('; ')} (${requestCount(failure.scenario)} requests)`
            : ''),
      );
      expect(result.status, result.reason).toBe('failed');
      // A deterministic leak reproduces: reported with its shrunk scenario, not as flaky.
      expect(result.flaky).toBeUndefined();
      const kinds = [kind].flat();
      expect(kinds, failure!.violation.message).toContain(failure!.violation.kind);
      expect(requestCount(failure!.scenario), JSON.stringify(failure!.scenario.steps)).toBeLessThanOrEqual(4);

      // The shrunk scenario is a bug report: as written to disk and loaded back, it fails again on a
      // fresh instance of the same server…
      const folder = writeFailureReport(mkdtempSync(join(tmpdir(), 'amnesia-leaky-')), result, report.target, report.model);
      const again = await replay(loadScenario(join(folder, 'scenario.json')), { target: fresh(variant) });
      expect(again.violation?.kind, 'the shrunk scenario did not fail again on a fresh instance').toBe(failure!.violation.kind);
      // …and passes on a correct one.
      const control = await replay(failure!.scenario, { target: fresh('correct') });
      expect(control.violation, control.violation?.message).toBeUndefined();
    });
  }
});

describe('regressions the fakes found', () => {
  // A cache-transparency failure is written out with its cold run (flush, the request alone) and an
  // expectation, so the bug report fails again on a fresh instance of the leaky server.
  test('a cache-transparency failure replays', { timeout: 60_000 }, async () => {
    const report = await check({ target: fresh('answer-memo'), properties: ['cache-transparency'], runs: 50, seed: 1, scenarios: [] });
    const failure = report.results.find((r) => r.property === 'cache-transparency')!.failure!;
    expect(failure.violation.kind).toBe('cache');
    const again = await replay(failure.scenario, { target: fresh('answer-memo') });
    expect(again.violation, 'the bug report did not fail again').toBeDefined();
  });
});

describe('a failure that does not happen again', () => {
  // 'first-time-wrong' answers a request wrongly only the first time it ever sees it: the search sees
  // a history violation, but its shrunk scenario, replayed on the same (reset) target, passes.
  test('is reported flaky, with the failing run and the passing replay, not as a minimal scenario', { timeout: 60_000 }, async () => {
    const report = await check({ target: fresh('first-time-wrong'), properties: ['history-independence'], runs: 50, seed: 1, scenarios: [] });
    const result = report.results.find((r) => r.property === 'history-independence')!;
    log(`first-time-wrong: ${result.status}${result.flaky ? ' (flaky)' : ''} ${result.failure?.violation.message ?? ''}`);
    expect(result).toMatchObject({ status: 'failed', flaky: true });
    const failure = result.failure!;
    // The scenario reported is the one that failed, with its recording; the replay that passed is kept.
    expect(failure.scenario.steps).toEqual(failure.recording.scenario.steps);
    expect(failure.replay).toBeDefined();
    const replayed = failure.replay!;
    expect(replayed.entries.length).toBeGreaterThan(0);
    expect(report.ok).toBe(false);
  });
});
