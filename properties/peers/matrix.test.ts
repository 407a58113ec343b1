// The matrix's cells and Markdown from check reports (matrix.ts): statuses, classes and causes as the
// harness decided them, verdicts of modes that were not run inherited from exact only where exact
// decides them, and the report link of the failure a row shows.
import { describe, expect, test } from 'vitest';
import type { CheckReport } from '../../src/harness/check-target.ts';
import type { PropertyResult } from '../../src/harness/search.ts';
import { cellsOf, runMarkdown, summaryMarkdown, type PeerRun } from './matrix.ts';

const base = { statement: '', scenarios: 1, asked: 10, requests: 1, ms: 1 };

function failed(property: string, cls: 'content-leak' | 'divergence', flaky = false): PropertyResult {
  return {
    ...base,
    property,
    status: 'failed',
    ...(flaky && { flaky: true }),
    failure: {
      scenario: { steps: [] },
      recording: { entries: [] },
      violation: { rule: 'r', kind: cls === 'content-leak' ? 'leak' : 'stream', class: cls, entries: [0, 1], message: `${property} differs` },
      seed: 1,
      path: '0',
    },
  } as unknown as PropertyResult;
}

const report = (results: PropertyResult[]) =>
  ({ target: 'http://127.0.0.1:1/v1', model: 'm', caps: {}, seed: 1, results, ok: false }) as unknown as CheckReport;

describe('cellsOf', () => {
  test('each status, with the class, the grouped cause and the report of a failure', () => {
    const cells = cellsOf(
      report([
        { ...base, property: 'a', status: 'passed' },
        { ...base, property: 'b', status: 'skipped', reason: 'the target lacks flush' },
        failed('c', 'content-leak'),
        failed('d', 'divergence', true),
      ]),
      (p) => `golden/peers/reports/x/exact/${p}`,
    );
    expect(cells).toEqual({
      a: { status: 'passed' },
      b: { status: 'skipped', detail: 'the target lacks flush' },
      c: {
        status: 'failed',
        class: 'content-leak',
        cause: 'answers carry what another request had (a content leak)',
        detail: 'c differs',
        report: 'golden/peers/reports/x/exact/c',
      },
      d: { status: 'flaky', class: 'divergence', cause: 'streamed and JSON answers differ', detail: 'd differs', report: 'golden/peers/reports/x/exact/d' },
    });
  });
});

describe('runMarkdown', () => {
  const run: PeerRun = {
    peer: 'p',
    title: 'Peer',
    version: '1.0',
    setting: 'default',
    what: 'as installed',
    model: 'tiny-chat',
    seed: 1,
    runs: 10,
    minutes: 2,
    cells: {
      kept: { exact: { status: 'passed' } },
      leak: { exact: { status: 'failed', class: 'content-leak', cause: 'a leak', report: 'golden/peers/reports/p-default/exact/leak' } },
      drift: {
        exact: { status: 'failed', class: 'divergence', cause: 'runs together', report: 'golden/peers/reports/p-default/exact/drift' },
        tokens: { status: 'failed', class: 'divergence', cause: 'runs together', report: 'golden/peers/reports/p-default/tokens/drift' },
        text: { status: 'passed' },
      },
    },
  };
  const rows = runMarkdown(run).split('\n');

  test('verdicts not run are inherited in parentheses; the row shows the failure of the strictest failing mode', () => {
    expect(rows[0]).toBe('### Peer 1.0 — default');
    expect(rows).toContain('| kept | pass | (pass) | (pass) |  |  |  |');
    expect(rows).toContain('| leak | FAIL | (FAIL) | (FAIL) | content-leak | a leak | [report](../golden/peers/reports/p-default/exact/leak/REPORT.md) |');
    expect(rows).toContain('| drift | FAIL | FAIL | pass | divergence | runs together | [report](../golden/peers/reports/p-default/exact/drift/REPORT.md) |');
  });

  test('the summary counts exact verdicts and lists the distinct causes', () => {
    expect(summaryMarkdown([run]).split('\n')[2]).toBe('| Peer | 1.0 | default | 1 | 2 | 0 | a leak; runs together |');
  });
});
