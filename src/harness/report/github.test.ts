// GitHub Actions: annotations and the step summary.
import { describe, expect, it } from 'vitest';
import { escapeData, escapeProperty, githubAnnotations, githubStepSummary } from './github.ts';
import { failed, flaky, report, short, skipped } from './testing.ts';

describe('GitHub output', () => {
  it('escapes workflow-command data and properties', () => {
    expect(escapeData('50% a\r\nb: c, d')).toBe('50%25 a%0D%0Ab: c, d');
    expect(escapeProperty('50% a\r\nb: c, d')).toBe('50%25 a%0D%0Ab%3A c%2C d');
  });

  it('annotates each failure as an error and each skip as a notice, one line each', () => {
    const lines = githubAnnotations(report);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      /^::error title=amnesia history-independence::content leak — history: p1 at step 3 answered differently .*%0A {2}expected: content: "The answer is 4."/,
    );
    expect(lines[1]).toBe('::notice title=amnesia cache-transparency skipped::the target lacks flush');
    for (const l of lines) expect(l).not.toMatch(/[\r\n]/);
  });

  it('escapes a property name with delimiters, and stops at 10 errors', () => {
    const many = Array.from({ length: 12 }, (_, i) => ({ ...failed, property: `p${i}: a, b` }));
    const lines = githubAnnotations({ ...report, results: many });
    expect(lines).toHaveLength(10);
    expect(lines[3]).toMatch(/^::error title=amnesia p3%3A a%2C b::/);
  });

  it('says flaky and short passes in the annotations and the table', () => {
    const r = { ...report, results: [flaky, short] };
    expect(githubAnnotations(r)[0]).toMatch(/^::error title=amnesia concurrency-independence \(flaky\)::flaky: did not reproduce; content leak — history: /);
    const md = githubStepSummary(r);
    expect(md).toContain('| concurrency-independence | ⚠️ FLAKY | 12 | 40 |');
    expect(md).toContain('| cancel-no-trace | ⚠️ PASS (12 of 25 scenarios: time budget) | 12 | 88 | 1.5 | 5 of 5 bursts overlapped |');
    expect(md).toContain('### concurrency-independence (flaky: did not reproduce)');
  });

  it('writes a markdown step summary with the table and each violation', () => {
    const md = githubStepSummary({ ...report, results: [...report.results, { ...skipped, property: 'a|b', reason: 'x\ny' }] });
    expect(md).toContain('## amnesia check: 1 failed');
    expect(md).toContain('| history-independence | ❌ FAIL | 12 | 40 | 3.2 |');
    expect(md).toContain('| a\\|b | ⏭️ SKIP | 0 | 0 | 0.0 | x y |');
    expect(md).toMatch(/### history-independence\n\nan identical request .*\n\n```text\ncontent leak — history: p1 at step 3/);
  });
});
