// For the HTML report (html.ts): the expected and the actual answer side by side, diffed word by word
// with jsdiff so that each column highlights only what its side changed; the numbers behind a numeric
// drift or a divergence; and the one escape every part of the page goes through (server text may
// hold `<script>`, and nothing it sends may become markup).
import { diffWordsWithSpace, type Change } from 'diff';
import { answerText, type Answer } from '../answer.ts';
import type { Violation } from '../violation.ts';

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text as HTML text or attribute value: nothing in it can open a tag, an entity or close a quote. */
export const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ENTITIES[c]!);

/** jsdiff gives up after this long (two long texts unalike throughout): both are then shown whole, as changed. */
const DIFF_TIMEOUT_MS = 2000;

/** The word-level changes from `expected` to `actual` (whitespace and newlines kept as tokens). */
export function wordChanges(expected: string, actual: string): Change[] {
  return (
    diffWordsWithSpace(expected, actual, { timeout: DIFF_TIMEOUT_MS }) ?? [
      { value: expected, added: false, removed: true, count: 1 },
      { value: actual, added: true, removed: false, count: 1 },
    ]
  );
}

/** One side of the diff: the common text plain, this side's own changes marked. */
function column(changes: Change[], side: 'expected' | 'actual'): string {
  return changes
    .map((c) => {
      if (c.added && side === 'expected') return '';
      if (c.removed && side === 'actual') return '';
      if (c.removed) return `<del>${esc(c.value)}</del>`;
      if (c.added) return `<ins>${esc(c.value)}</ins>`;
      return esc(c.value);
    })
    .join('');
}

const pane = (side: 'expected' | 'actual', title: string, body: string) =>
  `<div class="pane ${side}" data-side="${side}"><div class="pane-title">${esc(title)}</div><pre>${body}</pre></div>`;

/**
 * The answers side by side: `expected` (where it comes from) left, `actual` right. A violation with
 * one answer only (a contract break, a hang) shows that answer and its problems.
 */
export function answersHtml(v: Violation, expectedFrom: string, actualFrom: string): string {
  const problems = v.problems?.length ? `<ul class="problems">${v.problems.map((p) => `<li>${esc(p)}</li>`).join('')}</ul>` : '';
  if (!v.expected || !v.actual) {
    const actual = v.actual ? esc(answerText(v.actual)) : '(no answer)';
    return `${problems}<div class="diff single">${pane('actual', `actual — ${actualFrom}`, actual)}</div>`;
  }
  const expected = answerText(v.expected);
  const actual = answerText(v.actual);
  const changes = wordChanges(expected, actual);
  const same = expected === actual ? '<p class="quiet">The two texts are the same: what differs is not in the text (log-probs, usage or status).</p>' : '';
  return `${problems}${same}<div class="diff">${pane('expected', `expected — ${expectedFrom}`, column(changes, 'expected'))}${pane(
    'actual',
    `actual — ${actualFrom}`,
    column(changes, 'actual'),
  )}</div>`;
}

interface Drift {
  choice: number;
  position: number;
  token: string;
  expected: number;
  actual: number;
}

/** The chosen tokens' log-probs that differ, largest |Δ| first. */
export function drifts(expected: Answer, actual: Answer): Drift[] {
  const out: Drift[] = [];
  expected.choices.forEach((c, choice) =>
    (c.logprobs ?? []).forEach((e, position) => {
      const o = actual.choices[choice]?.logprobs?.[position];
      if (o && o.token === e.token && o.logprob !== e.logprob) out.push({ choice, position, token: e.token, expected: e.logprob, actual: o.logprob });
    }),
  );
  return out.sort((a, b) => Math.abs(b.actual - b.expected) - Math.abs(a.actual - a.expected));
}

const tokenCell = (t: string) => `<code>${esc(JSON.stringify(t))}</code>`;
const table = (head: string[], rows: string[][]) =>
  `<table class="numbers"><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</table>`;

/** The numbers the class rests on: a drift's largest Δ (and where), or a divergence's margin and the alternatives there. */
export function numbersHtml(v: Violation): string {
  if (v.class === 'numeric-drift' && v.drift !== undefined) {
    const rows = v.expected && v.actual ? drifts(v.expected, v.actual).slice(0, 8) : [];
    const where = (d: Drift) => `${d.position + 1}${d.choice > 0 ? ` (choice ${d.choice})` : ''}`;
    return (
      `<p class="numbers-line" data-drift="${v.drift}">The same tokens; log-probs differ by up to <b>Δ ${esc(v.drift.toPrecision(3))}</b> nats.</p>` +
      (rows.length > 0
        ? `<details><summary>the largest drifts (${rows.length})</summary>${table(
            ['token #', 'token', 'expected log-prob', 'actual log-prob', 'Δ'],
            rows.map((d) => [where(d), tokenCell(d.token), d.expected.toFixed(5), d.actual.toFixed(5), (d.actual - d.expected).toPrecision(3)]),
          )}</details>`
        : '')
    );
  }
  const m = v.margin;
  if (v.class !== 'divergence' || !m) return '';
  const here = v.expected?.choices[m.choice]?.logprobs?.[m.position];
  const chosenBy = (t: string) => [t === m.expected ? 'expected run' : '', t === m.actual ? 'other run' : ''].filter(Boolean).join(', ');
  return (
    `<p class="numbers-line" data-margin="${m.gap}">Where the tokens part (token ${m.position + 1}${m.choice > 0 ? ` of choice ${m.choice}` : ''}) ` +
    `the expected run chose ${tokenCell(m.expected)}, the other ${tokenCell(m.actual)}: margin <b>${m.atLeast ? 'at least ' : ''}${esc(m.gap.toFixed(4))}</b> nats.</p>` +
    (here?.top_logprobs?.length
      ? `<details><summary>the expected run's alternatives there</summary>${table(
          ['token', 'log-prob', 'chosen by'],
          here.top_logprobs.map((t) => [tokenCell(t.token), t.logprob.toFixed(4), esc(chosenBy(t.token))]),
        )}</details>`
      : '')
  );
}
