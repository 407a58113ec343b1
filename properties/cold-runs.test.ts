// Cold runs through the user's own flush command (--flush-command), on a fake server: the command
// runs wherever the harness flushes, so cache transparency gets its cold baselines from it.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { check } from '../src/api.ts';
import { useFakeServers } from './fake-server.ts';

const fresh = useFakeServers('cold.amnesia.test');

test('a flush command stands in for the flush endpoint: cold baselines run, and the summary says how', { timeout: 60_000 }, async () => {
  const log = join(mkdtempSync(join(tmpdir(), 'amnesia-cold-')), 'flushes');
  const report = await check({ target: fresh('correct'), properties: ['cache-transparency'], runs: 5, seed: 1, flushCommand: `echo . >> '${log}'` });
  expect(report.results[0]!.status).toBe('passed');
  expect(report.caps.flush).toBe(true);
  expect(report.notes).toContain(`\`echo . >> '${log}'\` emptied the target's caches wherever the harness flushes (--flush-command)`);
  // The probe's flush, then one before every cold run of every history.
  expect(readFileSync(log, 'utf8').split('\n').length - 1).toBeGreaterThan(5);
});

test('a flush command that fails: no cold runs, and the summary says so', { timeout: 60_000 }, async () => {
  const report = await check({ target: fresh('correct'), properties: ['cache-transparency'], runs: 2, seed: 1, flushCommand: 'exit 1' });
  expect(report.caps.flush).toBe(false);
  expect(report.notes).toContain('the flush command `exit 1` failed when the probe ran it: no cold runs');
});
