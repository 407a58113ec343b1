// The probe tells the truth: a contract break it meets is a violation with its own bug report (not a
// capability quietly taken as missing, not "unreachable"), on fakes with each behaviour.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { check, replay } from '../src/api.ts';
import { writeFailureReport } from '../src/harness/report/bug-report.ts';
import { loadScenario } from '../src/harness/scenario.ts';
import { useFakeServers, type FakeVariant } from './fake-server.ts';

const fresh = useFakeServers('probe.amnesia.test');

const cases: Array<[FakeVariant, RegExp]> = [
  ['no-done', /the stream did not end with data: \[DONE\]/],
  ['n-ignored', /1 choices for n = 2/],
  ['always-500', /HTTP 500 for a well-formed request/],
  ['usage-ignored', /stream_options.include_usage was accepted and ignored: no usage chunk/],
  ['usage-unasked', /a usage chunk that stream_options did not ask for/],
];

describe('contract breaks the probe meets', () => {
  test.each(cases)('%s: the probe fails with a contract violation whose bug report replays', { timeout: 60_000 }, async (variant, problem) => {
    const report = await check({ target: fresh(variant), properties: ['stream-equivalence'], runs: 3, seed: 1 });
    const probe = report.results[0]!;
    expect(probe.property).toBe('probe');
    expect(probe.status).toBe('failed');
    expect(probe.flaky).toBeUndefined();
    const v = probe.failure!.violation;
    expect(v.class).toBe('contract');
    expect(v.problems?.join('\n')).toMatch(problem);
    expect(report.ok).toBe(false);
    const folder = writeFailureReport(mkdtempSync(join(tmpdir(), 'amnesia-probe-')), probe, report.target, report.model);
    const again = await replay(loadScenario(join(folder, 'scenario.json')), { target: fresh(variant) });
    expect(again.violation?.problems?.join('\n')).toMatch(problem);
  });

  test('a stream without [DONE] is still a stream: the stream properties run (and fail on it), none is skipped for it', { timeout: 60_000 }, async () => {
    const report = await check({ target: fresh('no-done'), properties: ['stream-equivalence'], runs: 3, seed: 1 });
    expect(report.caps.stream).toBe(true);
    expect(report.results[1]).toMatchObject({ property: 'stream-equivalence', status: 'failed' });
  });

  test('a server that answers the plain request with 500: exit 1 with the probe report, not "unreachable"; no property runs', { timeout: 60_000 }, async () => {
    const report = await check({ target: fresh('always-500'), runs: 3, seed: 1 });
    expect(
      report.results.slice(1).every((r) => r.status === 'skipped' && /^not run: the target refused the probe's plain request \(HTTP 500/.test(r.reason!)),
    ).toBe(true);
  });

  test('a correct server: no probe result at all', { timeout: 60_000 }, async () => {
    const report = await check({ target: fresh('correct'), properties: ['stream-equivalence'], runs: 3, seed: 1 });
    expect(report.results.map((r) => r.property)).toEqual(['stream-equivalence']);
  });
});
