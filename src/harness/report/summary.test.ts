// The terminal: the summary table, and the progress line.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ProgressLine, summaryTable } from './summary.ts';
import { flaky, report, short, TARGET } from './testing.ts';

/** The summary's lines from the table's header on (the causes come before it). */
const tableOf = (text: string) => {
  const lines = text.split('\n');
  return lines.slice(lines.findIndex((l) => l.startsWith('property ')));
};

describe('summaryTable', () => {
  const text = summaryTable(report);
  const lines = tableOf(text);

  it('leads with the causes of the failures, each with the properties that showed it', () => {
    expect(text.split('\n').slice(0, 3)).toEqual(['One cause:', '  answers carry what another request had (a content leak): history-independence, 1 pair', '']);
  });

  it('has one row per property with result, counts, seconds and the note', () => {
    expect(lines[0]).toMatch(/^property\s+result\s+scenarios\s+requests\s+seconds\s+note$/);
    expect(lines[1]).toMatch(/^history-independence\s+FAIL\s+12\s+40\s+3\.2\s+content leak \(history\): p1 at step 3 answered differently/);
    expect(lines[2]).toMatch(/^stream-equivalence\s+PASS\s+25\s+88\s+1\.5$/);
    expect(lines[3]).toMatch(/^cache-transparency\s+SKIP\s+0\s+0\s+0\.0\s+the target lacks flush$/);
    // Columns line up: every row's result starts where the header's does.
    const col = lines[0]!.indexOf('result');
    for (const l of lines.slice(1, 4)) expect(l.slice(col, col + 4)).toMatch(/PASS|FAIL|SKIP/);
  });

  it('ends with the target, the capabilities and the counts', () => {
    expect(text).toContain(`target ${TARGET}, model gpt-oss-20b, seed 42`);
    expect(text).toContain('stream ✓ stream-usage ✓ tools ✓ tool-choice ✓ n ✗ seed ✓ seed-accepted ✓ logprobs ✓ flush ✗; deterministic in isolation ✓');
    expect(lines.at(-1)).toBe('3 properties: 1 passed, 1 failed, 1 skipped');
  });
});

describe('summaryTable: what a result does not show by itself', () => {
  const text = summaryTable({ ...report, results: [flaky, short], requestTimeoutMs: 12_500, notes: ['the target hung during x and cannot be reset'] });
  const lines = tableOf(text);

  it('flags a pass that ran fewer scenarios than asked, and says how many bursts overlapped', () => {
    expect(lines[2]).toMatch(/^cancel-no-trace\s+PASS \(12 of 25 scenarios: time budget\)\s+12\s+88\s+1\.5\s+5 of 5 bursts overlapped$/);
  });

  it('says a failure that did not reproduce is flaky', () => {
    expect(lines[1]).toMatch(
      /^concurrency-independence\s+FLAKY\s+.*flaky: did not reproduce; content leak \(history\): p1 at step 3 .*; 18 of 20 bursts overlapped$/,
    );
    expect(lines.at(-1)).toBe('2 properties: 1 passed, 1 failed (1 flaky), 0 skipped');
  });

  it('gives the request deadline and the notes', () => {
    expect(text).toContain(`target ${TARGET}, model gpt-oss-20b, seed 42, request deadline 12.5 s`);
    expect(text).toContain('note: the target hung during x and cannot be reset');
  });
});

describe('ProgressLine', () => {
  afterEach(() => vi.useRealTimers());
  const stream = (isTTY: boolean) => {
    const writes: string[] = [];
    return { writes, isTTY, columns: 40, write: (s: string) => writes.push(s) };
  };

  it('rewrites one line at most every 100 ms, shows the latest event, and clears it', () => {
    vi.useFakeTimers();
    const tty = stream(true);
    const line = new ProgressLine(tty);
    line.update({ property: 'history-independence', phase: 'checking', done: 1, requests: 3 });
    for (let i = 2; i <= 50; i++) line.update({ property: 'history-independence', phase: 'checking', done: i, requests: 3 * i });
    expect(tty.writes).toEqual(['\rchecking history-independence: 1 scena…\x1b[K']);
    vi.advanceTimersByTime(100);
    expect(tty.writes).toHaveLength(2);
    expect(tty.writes[1]).toMatch(/^\rchecking history-independence: 50 scen…\x1b\[K$/);
    line.update({ property: 'stop', phase: 'shrinking', done: 7 });
    line.done();
    vi.advanceTimersByTime(1000);
    expect(tty.writes.slice(2)).toEqual(['\r\x1b[K']);
  });

  const result = (status: 'passed' | 'failed') => ({ property: 'x', statement: '', status, scenarios: 12, asked: 25, requests: 40, ms: 2500 });

  it('on a stream that is not a terminal: a line at each start and end, and the status every 10 s between them', () => {
    vi.useFakeTimers();
    const log = stream(false);
    const line = new ProgressLine(log);
    line.update({ property: 'x', phase: 'started', budgetMs: 30_000 });
    line.update({ property: 'x', phase: 'checking', done: 1, requests: 3 });
    expect(log.writes).toEqual(['x: started (time budget 30.0 s)\n']);
    vi.advanceTimersByTime(10_000);
    line.update({ property: 'x', phase: 'shrinking', done: 9, requests: 30 });
    vi.advanceTimersByTime(10_000);
    expect(log.writes.slice(1)).toEqual(['checking x: 1 scenario, 3 requests (10.0 s)\n', 'shrinking x: 9 scenarios, 30 requests (20.0 s)\n']);
    line.update({ property: 'x', phase: 'finished', result: result('passed') });
    vi.advanceTimersByTime(30_000);
    line.done();
    expect(log.writes.slice(3)).toEqual(['x: PASS (12 of 25 scenarios), 12 scenarios, 40 requests, 2.5 s\n']);
  });

  it('on a terminal: the end of a property stays as a line of its own', () => {
    const tty = stream(true);
    const line = new ProgressLine(tty);
    line.update({ property: 'x', phase: 'checking', done: 1 });
    line.update({ property: 'x', phase: 'finished', result: result('failed') });
    expect(tty.writes).toEqual(['\rchecking x: 1 scenario\x1b[K', '\r\x1b[K', 'x: FAIL, 12 scenarios, 40 requests, 2.5 s\n']);
  });
});
