// A contract break of one request is reported once, under its own name, and does not hide what the
// properties look for (spec/properties.md "A contract break of one request, reported once"): on fakes
// that answer some requests with a 500 every time (as llama.cpp's server does when the model's
// output does not parse), beside a history leak, and only after a history.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { check, replay } from '../src/api.ts';
import { writeFailureReport } from '../src/harness/report/bug-report.ts';
import { loadScenario, requestCount } from '../src/harness/scenario.ts';
import type { TargetConnector } from '../src/harness/check-target.ts';
import { httpTransport, type Exchange } from '../src/harness/transport.ts';
import { useFakeServers, type FakeVariant } from './fake-server.ts';

const fresh = useFakeServers('contract.amnesia.test');

/** A fake that restarts as the embedded server and the peers do: a new instance before each history. */
const restarting =
  (variant: FakeVariant): TargetConnector =>
  async () => {
    let base = fresh(variant);
    const via = (x: Exchange, origin: boolean) => (origin ? httpTransport(base).sendOrigin(x) : httpTransport(base).send(x));
    return {
      transport: { name: `fake ${variant}, restarted`, send: (x) => via(x, false), sendOrigin: (x) => via(x, true) },
      restart: async () => void (base = fresh(variant)),
      close: async () => {},
    };
  };

const BREAK = 'contract-http-n-for-a-well-formed-request';

describe('a request that breaks the contract alone, every time', () => {
  test('is one result with a one-request bug report; every property is checked past it and passes', { timeout: 120_000 }, async () => {
    const report = await check({ target: restarting('parse-500'), runs: 10, seed: 1 });
    const breaks = report.results.filter((r) => r.foundBy !== undefined);
    expect(breaks.map((r) => r.property)).toEqual([BREAK]);
    const [found] = breaks;
    expect(found!.failure!.violation.problems).toEqual(['HTTP 500 for a well-formed request', 'error.param is missing']);
    expect(requestCount(found!.failure!.scenario)).toBe(1);
    // The statelessness properties ran past it: a 500 is an answer like any other, the same every time.
    for (const r of report.results.filter((x) => x.foundBy === undefined)) {
      expect(r.status, `${r.property}: ${r.failure?.violation.message ?? r.reason}`).toBe('passed');
    }
    expect(report.ok).toBe(false);
    // The bug report replays on a fresh instance, and passes on a correct server.
    const folder = writeFailureReport(mkdtempSync(join(tmpdir(), 'amnesia-contract-')), found!, report.target, report.model);
    const again = await replay(loadScenario(join(folder, 'scenario.json')), { target: fresh('parse-500') });
    expect(again.violation?.problems).toEqual(found!.failure!.violation.problems);
    const control = await replay(found!.failure!.scenario, { target: fresh('correct') });
    expect(control.violation, control.violation?.message).toBeUndefined();
  });

  test('does not hide a history leak: the leak is still history-independence’s failure', { timeout: 120_000 }, async () => {
    // Seed 2's first failing history holds a 500 (at seed 1 the leak shows before any).
    const report = await check({ target: restarting('parse-500-memo'), properties: ['history-independence'], runs: 25, seed: 2, scenarios: [] });
    expect(report.results.map((r) => r.property)).toEqual([BREAK, 'history-independence']);
    const leak = report.results[1]!;
    expect(leak.status).toBe('failed');
    // The memo hands a request another's answer, which shows first as what that answer breaks (a call
    // to a tool this request did not declare, say): it needs the history, so it stays the property's.
    const v = leak.failure!.violation;
    expect(['history', 'tool-calls', 'budget', 'logprobs']).toContain(v.kind);
    expect(v.problems ?? []).not.toContain('HTTP 500 for a well-formed request');
    expect(requestCount(leak.failure!.scenario)).toBeGreaterThan(1);
  });
});

describe('where the target only flushes', () => {
  test('a break is not taken apart: the flush may not reach the state that causes it', { timeout: 120_000 }, async () => {
    const report = await check({ target: fresh('parse-500'), properties: ['history-independence'], runs: 10, seed: 1, scenarios: [] });
    expect(report.results.map((r) => [r.property, r.status])).toEqual([['history-independence', 'failed']]);
    expect(report.results[0]!.failure!.violation.problems).toContain('HTTP 500 for a well-formed request');
  });
});

describe('a request that breaks the contract only after a history', () => {
  test('stays the property’s failure: alone it meets the contract', { timeout: 120_000 }, async () => {
    const report = await check({ target: restarting('repeat-500'), properties: ['history-independence'], runs: 10, seed: 1, scenarios: [] });
    expect(report.results.map((r) => r.property)).toEqual(['history-independence']);
    const r = report.results[0]!;
    expect(r.status).toBe('failed');
    expect(r.failure!.violation.problems).toContain('HTTP 500 for a well-formed request');
    expect(requestCount(r.failure!.scenario)).toBeGreaterThan(1);
  });
});
