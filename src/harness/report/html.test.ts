// The HTML report from hand-built check reports: escaping of server text, the word diff, the
// timeline's bars and roles, the causes, and a passing check. The page in a real browser is
// properties/html-report.test.ts.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Answer } from '../answer.ts';
import type { Observation } from '../client.ts';
import { requestKey, type Entry, type Recording } from '../record.ts';
import { findViolations } from '../rules/index.ts';
import type { PropertyResult } from '../search.ts';
import type { Violation } from '../violation.ts';
import { answersHtml, numbersHtml } from './html-diff.ts';
import { marks, timelineHtml } from './html-timeline.ts';
import { reportHtml, writeHtmlReport } from './html.ts';
import { failed, flaky, p1, passed, recording, report, scenario, violation } from './testing.ts';

/** The inner HTML of every `<tag>` in `html`. */
const all = (html: string, tag: string) => [...html.matchAll(new RegExp(`<${tag}>(.*?)</${tag}>`, 'gs'))].map((m) => m[1]);
/** The two panes of the first side-by-side diff. */
function panes(html: string): { expected: string; actual: string } {
  const pane = (side: string) => html.match(new RegExp(`data-side="${side}">.*?<pre>(.*?)</pre>`, 's'))?.[1] ?? '';
  return { expected: pane('expected'), actual: pane('actual') };
}
const answer = (content: string, logprobs?: Array<[string, number]>): Answer => ({
  status: 200,
  choices: [
    { content, reasoning: '', toolCalls: [], finish: 'stop', ...(logprobs ? { logprobs: logprobs.map(([token, logprob]) => ({ token, logprob })) } : {}) },
  ],
});
const completion = (content: string, usage: Record<string, unknown> = {}) => ({
  id: 'x',
  object: 'chat.completion',
  created: 1,
  model: 'gpt-oss-20b',
  choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8, ...usage },
});
const entry = (step: number, obs: Partial<Observation>, more: Partial<Entry> = {}): Entry => ({
  step,
  label: 'p1',
  call: { body: p1, stream: false },
  key: requestKey(p1),
  obs: { status: 200, cancelled: false, started: step * 100, ended: step * 100 + 40, ...obs },
  ...more,
});

describe('reportHtml: self-contained and safe', () => {
  const SCRIPT = '<script>alert("x")</script>';
  const rec: Recording = {
    scenario: { name: 'evil', requests: { p1 }, steps: [{ send: 'p1' }, { send: 'p1' }] },
    entries: [entry(0, { json: completion('fine') }), entry(1, { json: completion(`fine ${SCRIPT} <img src=x onerror=alert(1)>`) })],
  };
  const v = findViolations(rec)!;
  const evil: PropertyResult = {
    ...failed,
    statement: 'no <b>markup</b> & no "quotes"',
    failure: { ...failed.failure!, scenario: rec.scenario, recording: rec, violation: v },
  };
  const html = reportHtml(
    { ...report, target: 'http://h/v1?<x>', results: [evil], notes: [`note ${SCRIPT}`] },
    { rerun: `npx amnesia check --target '<a>'`, reportDirLinks: true },
  );

  it('escapes every piece of server text: an answer holding <script> shows as text, never as markup', () => {
    expect(v.actual && v.actual.choices[0]!.content).toContain(SCRIPT);
    expect(html).not.toMatch(/<script|<img|<b>markup|<x>|<a>/i);
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain('no &lt;b&gt;markup&lt;/b&gt; &amp; no &quot;quotes&quot;');
  });

  it('loads nothing: no script, no stylesheet or image link, no URL in an attribute or in CSS; links only to the folder beside it', () => {
    expect(html).not.toMatch(/<(script|link|img|iframe|object|embed)\b/i);
    expect(html).not.toMatch(/url\(|@import/i);
    const refs = [...html.matchAll(/\b(?:href|src)="([^"]*)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) expect(ref).toMatch(/^(#failure-[\w.-]+|[\w.-]+\/(REPORT\.md|scenario\.json|recording\.json|replay-recording\.json))$/);
  });
});

describe('reportHtml: the check', () => {
  const html = reportHtml({ ...report, ms: 12_345, notes: ['the target hung'] }, { rerun: 'npx amnesia check --seed 42', reportDirLinks: true });

  it('has the header: target, model, seed, counts, time, capabilities, notes, the rerun command', () => {
    expect(html).toContain('<h1>amnesia check: 1 of 3 properties failed</h1>');
    for (const text of [
      '<code>http://127.0.0.1:8000/v1</code>',
      '<code>gpt-oss-20b</code>',
      '<dt>seed</dt><dd>42</dd>',
      '<dt>runs</dt><dd>25 scenarios per property</dd>',
      '<dt>scenarios</dt><dd>37</dd>',
      '<dt>requests</dt><dd>128</dd>',
      '<dt>time</dt><dd>12.3 s</dd>',
      'tool-choice ✓ n ✗',
      '<li>the target hung</li>',
      '<code class="rerun">npx amnesia check --seed 42</code>',
    ])
      expect(html).toContain(text);
  });

  it('leads with the causes, then one table row per property with verdict, class and note', () => {
    expect(html.indexOf('One cause')).toBeLessThan(html.indexOf('<table class="results"'));
    expect(html).toMatch(
      /answers carry what another request had \(a content leak\)<\/div><div class="cause-meta"><span class="badge cls-content-leak"[^>]*>content leak<\/span> 1 property/,
    );
    const rows = all(html, 'tbody')[0]!.split('</tr>').slice(0, -1);
    expect(rows).toHaveLength(3);
    expect(rows[0]).toMatch(/history-independence.*FAIL.*content leak.*>12<.*>40<.*>3\.2<.*p1 at step 3 answered differently/);
    expect(rows[1]).toMatch(/stream-equivalence<\/td><td class="c1">PASS<\/td><td class="c2"><\/td>/);
    expect(rows[2]).toMatch(/SKIP.*the target lacks flush/);
  });

  it('per failure: the headline, the shrunk steps and links to its folder', () => {
    expect(html).toContain('<p class="headline">content leak — history: p1 at step 3 answered differently');
    expect(html).toMatch(/<ol class="steps"><li>send p1<\/li><li>send p2 \(stream\)<\/li><li>send p1<\/li><li>send p1 \(stream\)<\/li><\/ol>/);
    expect(html).toContain('<a href="history-independence/REPORT.md">');
    expect(html).toContain('<a href="history-independence/scenario.json">');
    expect(reportHtml(report)).not.toContain('REPORT.md');
  });

  it('groups failures with one cause: one entry naming both properties', () => {
    const two = reportHtml({ ...report, results: [failed, flaky, passed] });
    expect(two).toContain('One cause');
    expect(two).toMatch(/2 properties: <a href="#failure-history-independence">history-independence<\/a>, <a href="#failure-concurrency-independence">/);
    expect(two).toContain('Flaky: did not reproduce');
    expect(two.match(/<section class="failure"/g)).toHaveLength(2);
  });
});

describe('the side-by-side diff', () => {
  it('highlights only the changed words, each on its own side', () => {
    const v: Violation = { ...violation, expected: answer('the cat sat on the mat'), actual: answer('the dog sat on the mat') };
    const { expected, actual } = panes(answersHtml(v, 'p1 at step 1', 'p1 at step 3'));
    expect(all(expected, 'del')).toEqual(['cat']);
    expect(all(expected, 'ins')).toEqual([]);
    expect(all(actual, 'ins')).toEqual(['dog']);
    expect(all(actual, 'del')).toEqual([]);
    expect(expected).toContain('the <del>cat</del> sat on the mat');
  });

  it('in the report: the leaked words are marked in the actual answer, nothing in the expected one', () => {
    const { expected, actual } = panes(reportHtml(report));
    expect(all(actual, 'ins')).toEqual([', as the tool said']);
    expect(all(expected, 'del')).toEqual([]);
    expect(expected).toContain('content: &quot;The answer is 4.&quot;');
  });

  it('a numeric drift: the same text, and its largest Δ with the tokens that drifted most', () => {
    const v: Violation = {
      ...violation,
      class: 'numeric-drift',
      drift: 0.0123,
      leakedFrom: undefined,
      expected: answer('ab', [
        ['a', -0.5],
        ['b', -1],
      ]),
      actual: answer('ab', [
        ['a', -0.5],
        ['b', -1.0123],
      ]),
    };
    expect(answersHtml(v, 'x', 'y')).toContain('The two texts are the same');
    const numbers = numbersHtml(v);
    expect(numbers).toContain('log-probs differ by up to <b>Δ 0.0123</b> nats');
    expect(numbers).toMatch(/<td>2<\/td><td><code>&quot;b&quot;<\/code><\/td><td>-1\.00000<\/td><td>-1\.01230<\/td><td>-0\.0123<\/td>/);
    expect(numbers).not.toContain('&quot;a&quot;');
  });

  it('a divergence: the margin where the tokens part', () => {
    const v: Violation = { ...violation, class: 'divergence', margin: { choice: 0, position: 2, expected: 'b', actual: 'c', gap: 0.01 } };
    expect(numbersHtml(v)).toContain('margin <b>0.0100</b> nats');
  });

  it('a contract break with one answer: that answer alone, with its problems', () => {
    const v: Violation = { ...violation, class: 'contract', expected: undefined, problems: ['choices[0].content contains the stop string "<"'] };
    const html = answersHtml(v, 'x', 'p1 at step 3');
    expect(html).toContain('<li>choices[0].content contains the stop string &quot;&lt;&quot;</li>');
    expect(html).not.toContain('data-side="expected"');
  });
});

describe('the timeline', () => {
  const bars = (html: string) => [...html.matchAll(/data-role="(\w+)"[^]*?class="tl-bar" style="left:([\d.]+)%;width:([\d.]+)%"/g)];

  it('one bar per recorded entry, placed by time, coloured by its part: reference, leak source, wrong answer', () => {
    const found = bars(timelineHtml(recording, violation));
    expect(found.map((m) => m[1])).toEqual(['reference', 'leak', 'wrong', 'other']);
    const left = found.map((m) => Number(m[2]));
    expect(left[0]).toBe(0);
    expect(left).toEqual([...left].sort((a, b) => a - b));
    for (const m of found) expect(Number(m[3])).toBeGreaterThan(0);
    // 0–40, 100–140, 200–240, 300–340 ms: each bar is 40/340 of the axis.
    expect(Number(found[1]![2])).toBeCloseTo((100 / 340) * 100, 2);
    expect(Number(found[1]![3])).toBeCloseTo((40 / 340) * 100, 2);
  });

  it('marks stream or JSON, a cold baseline, a cancel, a timeout, cached tokens and a status', () => {
    expect(marks(recording.entries[1]!)).toEqual(['stream']);
    expect(marks(entry(0, { json: completion('x', { prompt_tokens_details: { cached_tokens: 12 } }) }))).toEqual(['JSON', 'cached 12']);
    const odd = entry(
      1,
      { status: 0, cancelled: true, timedOut: true, deadlineMs: 10_000 },
      { baseline: true, call: { body: p1, stream: true, cancelAfter: 3 } },
    );
    expect(marks(odd)).toEqual(['stream', 'cold baseline', 'cancelled after 3 events', 'timed out (10000 ms)', 'no response']);
  });

  it('a cold baseline as the reference: no bar is the reference, the legend says why', () => {
    const v: Violation = { ...violation, kind: 'cache', entries: [-1, 2], leakedFrom: undefined, baselineBy: 'flush' };
    const html = timelineHtml(recording, v);
    expect(bars(html).map((m) => m[1])).toEqual(['other', 'other', 'wrong', 'other']);
    expect(html).toContain('alone on a cold server (prefix cache flushed), run after these and not drawn');
  });

  it('a zero-length exchange still gets a visible bar', () => {
    const rec: Recording = { scenario, entries: [entry(0, { started: 5, ended: 5 }), entry(1, { started: 5, ended: 1005 })] };
    const found = bars(timelineHtml(rec, { ...violation, entries: [0, 1], leakedFrom: undefined }));
    expect(Number(found[0]![3])).toBeGreaterThan(0);
  });
});

describe('a passing check', () => {
  const ok = { ...report, results: [passed], ok: true };
  const html = reportHtml(ok);

  it('shows the passing summary and no failure', () => {
    expect(html).toContain('<h1>amnesia check: every property holds</h1>');
    expect(html).toContain('No property failed: every one holds.');
    expect(html).toContain('1 property: 1 passed, 0 failed, 0 skipped');
    expect(html).not.toContain('class="failure"');
    expect(html).not.toContain('class="tl-bar"');
  });

  it('writeHtmlReport creates the folder and writes report.html', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'amnesia-html-')), 'not', 'yet');
    const path = writeHtmlReport(dir, ok);
    expect(path).toBe(join(dir, 'report.html'));
    expect(existsSync(path)).toBe(true);
    expect(readFileSync(path, 'utf8')).toBe(html);
  });
});
