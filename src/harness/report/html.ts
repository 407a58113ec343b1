// For a maintainer who opens a CI artifact: the whole check as one self-contained page, report.html
// beside the failure folders. The causes first, then the table, then each failure with its steps,
// expected against actual side by side (html-diff.ts) and a timeline of what ran when
// (html-timeline.ts). The page is opened offline and holds whatever a server sent, so it has no
// script and no external URL (inline CSS, <details> to fold), and every piece of text is escaped.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CheckReport } from '../check-target.ts';
import { CLASS_LABEL, type ViolationClass } from '../classify.ts';
import { groupByCause, pairsText } from '../causes.ts';
import { describeStep, type Scenario } from '../scenario.ts';
import type { PropertyResult } from '../search.ts';
import { coldServer, entryLabel, type Violation } from '../violation.ts';
import type { Recording } from '../record.ts';
import { safeFileName } from './bug-report.ts';
import { answersHtml, esc, numbersHtml } from './html-diff.ts';
import { timelineHtml } from './html-timeline.ts';
import { capabilityLine, countLine, note, resultCell, seconds } from './summary.ts';
import { classText, violationMessage } from './text.ts';

export interface HtmlReportOptions {
  /** The command that runs the same check again (commands/check.ts's rerunCommand). */
  rerun?: string;
  /** Link each failure to its folder beside the page (REPORT.md, scenario.json), as bug-report.ts writes them. */
  reportDirLinks?: boolean;
}

const anchor = (property: string) => `failure-${safeFileName(property)}`;

const badge = (c: ViolationClass) => `<span class="badge cls-${c}" data-class="${c}">${esc(CLASS_LABEL[c])}</span>`;

function header(report: CheckReport, options: HtmlReportOptions): string {
  const failed = report.results.filter((r) => r.status === 'failed').length;
  const verdict = failed === 0 ? 'every property holds' : `${failed} of ${report.results.length} properties failed`;
  const runs = Math.max(0, ...report.results.map((r) => r.asked));
  const sum = (f: (r: PropertyResult) => number) => report.results.reduce((n, r) => n + f(r), 0);
  const rows: Array<[string, string]> = [
    ['target', `<code>${esc(report.target)}</code>`],
    ['model', `<code>${esc(report.model)}</code>`],
    ['seed', String(report.seed)],
    ...(report.requestTimeoutMs !== undefined ? [['request deadline', `${seconds(report.requestTimeoutMs)} s`] as [string, string]] : []),
    ['runs', `${runs} scenarios per property`],
    ['scenarios', String(sum((r) => r.scenarios))],
    ['requests', String(sum((r) => r.requests))],
    ...(report.ms !== undefined ? [['time', `${seconds(report.ms)} s`] as [string, string]] : []),
    ['capabilities', capabilityLine(report).split('\n').map(esc).join('<br>')],
    ...(options.rerun ? [['rerun', `<code class="rerun">${esc(options.rerun)}</code>`] as [string, string]] : []),
  ];
  const notes = (report.notes ?? []).map((n) => `<li>${esc(n)}</li>`).join('');
  return (
    `<header class="${report.ok ? 'ok' : 'failed'}"><h1>amnesia check: ${esc(verdict)}</h1><p class="count">${esc(countLine(report))}</p>` +
    `<dl>${rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join('')}</dl>` +
    `${notes ? `<ul class="notes">${notes}</ul>` : ''}</header>`
  );
}

/** The failures grouped by cause (causes.ts), each with its classes and its properties. */
function causes(report: CheckReport): string {
  const groups = groupByCause(report.results);
  if (groups.length === 0) return `<section class="causes"><h2>No failures</h2><p>No property failed${report.ok ? ': every one holds.' : '.'}</p></section>`;
  const classOf = (p: string) => report.results.find((r) => r.property === p)?.failure?.violation.class;
  const items = groups.map((g) => {
    const classes = [...new Set(g.properties.map(classOf))].filter((c): c is ViolationClass => c !== undefined);
    const props = g.properties.map((p) => `<a href="#${anchor(p)}">${esc(p)}</a>`).join(', ');
    const count = `${g.properties.length} ${g.properties.length === 1 ? 'property' : 'properties'}`;
    return `<li class="cause" data-cause="${esc(g.key)}"><div class="cause-text">${esc(g.text)}</div><div class="cause-meta">${classes.map(badge).join(' ')} ${count}: ${props}; ${esc(pairsText(g))}</div></li>`;
  });
  return `<section class="causes"><h2>${groups.length === 1 ? 'One cause' : `${groups.length} causes`}</h2><ol>${items.join('')}</ol></section>`;
}

/** One row per property: verdict, class, counts and the summary's note. */
function table(report: CheckReport): string {
  const row = (r: PropertyResult) => {
    const v = r.failure?.violation;
    const name = r.failure ? `<a href="#${anchor(r.property)}">${esc(r.property)}</a>` : esc(r.property);
    const cells = [name, esc(resultCell(r)), v ? badge(v.class) : '', String(r.scenarios), String(r.requests), seconds(r.ms), esc(note(r))];
    return `<tr class="verdict-${r.status}${r.flaky ? ' flaky' : ''}">${cells.map((c, i) => `<td class="c${i}">${c}</td>`).join('')}</tr>`;
  };
  const head = ['property', 'verdict', 'class', 'scenarios', 'requests', 'seconds', 'note'];
  return `<section><h2>Properties</h2><table class="results"><thead><tr>${head.map((h, i) => `<th class="c${i}">${h}</th>`).join('')}</tr></thead><tbody>${report.results.map(row).join('')}</tbody></table></section>`;
}

/** Where the expected and the actual answer come from, in words. */
function sources(rec: Recording, v: Violation): { expected: string; actual: string } {
  const ref = v.entries[0];
  const bad = v.entries.at(-1);
  return {
    expected: ref === undefined || ref < 0 ? `the same request alone on ${coldServer(v)}` : entryLabel(rec, ref),
    actual: bad === undefined || bad < 0 ? 'the answer' : entryLabel(rec, bad),
  };
}

function links(r: PropertyResult): string {
  const folder = safeFileName(r.property);
  const files = ['REPORT.md', 'scenario.json', ...(r.flaky ? ['recording.json', ...(r.failure?.replay ? ['replay-recording.json'] : [])] : [])];
  return `<p class="links">${files.map((f) => `<a href="${esc(`${folder}/${f}`)}">${esc(`${folder}/${f}`)}</a>`).join(' · ')}</p>`;
}

const steps = (s: Scenario) => `<ol class="steps">${s.steps.map((x) => `<li>${esc(describeStep(x))}</li>`).join('')}</ol>`;

/** Flaky, timing-dependent, shrinking cut short: what the reader must know before trusting the steps. */
function caveats(r: PropertyResult): string {
  const f = r.failure!;
  const lines = [
    ...(r.flaky ? ['Flaky: did not reproduce. This scenario failed once; shrunk, it passed when replayed on a fresh target.'] : []),
    ...(f.reproducedOnReplay ? [`Timing-dependent: the shrunk scenario failed again only on replay ${f.reproducedOnReplay}. Replay it several times.`] : []),
    ...(f.shrinkStopped ? ['Shrinking stopped at its budget: a smaller scenario may still fail.'] : []),
  ];
  return lines.map((l) => `<p class="caveat">${esc(l)}</p>`).join('');
}

function failure(r: PropertyResult, options: HtmlReportOptions): string {
  const f = r.failure!;
  const { recording: rec, violation: v } = f;
  const from = sources(rec, v);
  const leak =
    v.leakedFrom !== undefined
      ? `<p class="leak">The wrong answer carries what ${esc(entryLabel(rec, v.leakedFrom))} answered (another conversation).</p>`
      : '';
  return [
    `<section class="failure" id="${anchor(r.property)}">`,
    `<h3>${badge(v.class)} ${esc(r.property)} <span class="statement">${esc(r.statement)}</span></h3>`,
    `<p class="headline">${esc(`${classText(v)} — ${v.kind}: ${violationMessage(rec, v)}`)}</p>`,
    caveats(r),
    options.reportDirLinks ? links(r) : '',
    `<h4>${r.flaky ? 'Steps (the scenario that failed, not shrunk)' : 'Steps (shrunk)'}</h4>`,
    steps(f.scenario),
    `<h4>Expected against actual</h4>`,
    answersHtml(v, from.expected, from.actual),
    numbersHtml(v),
    leak,
    `<h4>Timeline</h4>`,
    timelineHtml(rec, v),
    `<details><summary>the requests (scenario.json)</summary><pre>${esc(JSON.stringify(f.scenario.requests, null, 2))}</pre></details>`,
    r.flaky && f.replay ? `<details><summary>the replay that passed</summary>${steps(f.replay.scenario)}</details>` : '',
    `<p class="quiet">fast-check seed ${f.seed}, path ${esc(JSON.stringify(f.path))}</p>`,
    '</section>',
  ].join('\n');
}

/** The whole check as one HTML document: no script, no external resource, every text escaped. */
export function reportHtml(report: CheckReport, options: HtmlReportOptions = {}): string {
  const failures = report.results.filter((r) => r.status === 'failed' && r.failure);
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(`amnesia check: ${report.target}`)}</title>`,
    `<style>${CSS}</style></head><body>`,
    header(report, options),
    causes(report),
    table(report),
    ...(failures.length > 0 ? ['<h2>Failures</h2>', ...failures.map((r) => failure(r, options))] : []),
    '</body></html>',
    '',
  ].join('\n');
}

/** Writes `dir/report.html` (creating `dir`), and returns its path. */
export function writeHtmlReport(dir: string, report: CheckReport, options: HtmlReportOptions = {}): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'report.html');
  writeFileSync(path, reportHtml(report, options));
  return path;
}

const CSS = `
:root { color-scheme: light; --ref: #7cc47f; --wrong: #ef7b7b; --leak: #f5b041; --other: #b8c4cc; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2329; background: #fbfcfd; margin: 0 auto; padding: 16px 24px 48px; max-width: 1280px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; } h3 { font-size: 16px; margin: 0 0 6px; } h4 { font-size: 14px; margin: 16px 0 6px; color: #3b4650; }
code, pre { font: 12.5px/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; }
a { color: #1f5fa8; }
header { border-left: 6px solid #3c9d5d; background: #f1f8f3; padding: 12px 16px; border-radius: 6px; }
header.failed { border-left-color: #d0453a; background: #fdf3f2; }
header dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 8px 0 0; }
header dt { color: #5a6670; } header dd { margin: 0; overflow-wrap: anywhere; }
.count { margin: 0; color: #3b4650; } .notes { margin: 8px 0 0; color: #7a4b00; }
.causes ol { padding-left: 20px; } .cause { margin-bottom: 6px; } .cause-text { font-weight: 600; } .cause-meta { color: #3b4650; }
.badge { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px; font-weight: 600; border: 1px solid; white-space: nowrap; }
.cls-content-leak { background: #fde2e1; border-color: #e7a09b; color: #8c1d15; }
.cls-contract { background: #f3e5f5; border-color: #ce93d8; color: #6a1b7a; }
.cls-divergence { background: #fff1d6; border-color: #f0c36d; color: #7a4b00; }
.cls-numeric-drift { background: #e3f0fb; border-color: #9cc3e8; color: #174a7c; }
table { border-collapse: collapse; } th, td { text-align: left; padding: 4px 10px; border-bottom: 1px solid #e3e8ec; vertical-align: top; }
.results { width: 100%; } .results .c0 { white-space: nowrap; } .results .c3, .results .c4, .results .c5 { text-align: right; }
.verdict-passed .c1 { color: #2e7d32; font-weight: 600; } .verdict-failed .c1 { color: #c62828; font-weight: 600; } .verdict-skipped .c1 { color: #6b7780; }
.failure { background: #fff; border: 1px solid #dde3e8; border-radius: 8px; padding: 14px 16px; margin: 14px 0; }
.statement { font-weight: 400; color: #5a6670; font-size: 13px; }
.headline { font-weight: 600; } .caveat { background: #fff6e0; border-left: 4px solid #f0b429; padding: 4px 8px; } .quiet { color: #6b7780; }
.diff { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; } .diff.single { grid-template-columns: 1fr; }
.pane { border: 1px solid #dde3e8; border-radius: 6px; padding: 8px 10px; min-width: 0; background: #fcfdfe; }
.pane-title { font-size: 12px; color: #5a6670; margin-bottom: 4px; }
del { background: #ffd4d1; color: #8c1d15; text-decoration: none; border-radius: 2px; } ins { background: #d3f2d8; color: #17521f; text-decoration: none; border-radius: 2px; }
.numbers td, .numbers th { font-size: 12.5px; padding: 2px 10px; } .problems { color: #8c1d15; }
.legend { margin: 4px 0 8px; color: #3b4650; } .legend-item { margin-right: 14px; white-space: nowrap; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 3px; margin-right: 5px; vertical-align: -1px; }
.timeline { border: 1px solid #dde3e8; border-radius: 6px; padding: 6px 10px; background: #fcfdfe; }
.tl-row { display: grid; grid-template-columns: minmax(220px, 38%) 1fr; align-items: center; gap: 10px; min-height: 24px; }
.tl-label { font-size: 12.5px; overflow-wrap: anywhere; } .tl-step { color: #6b7780; } .tl-name { font-family: ui-monospace, Menlo, Consolas, monospace; }
.mark { display: inline-block; font-size: 11px; padding: 0 5px; margin-left: 3px; border-radius: 4px; background: #eef2f5; color: #3b4650; }
.tl-track { position: relative; height: 14px; background: #f1f4f6; border-radius: 3px; }
.tl-bar { position: absolute; top: 0; bottom: 0; min-width: 3px; border-radius: 3px; background: var(--other); }
.role-reference .tl-bar, .role-reference .swatch { background: var(--ref); }
.role-wrong .tl-bar, .role-wrong .swatch { background: var(--wrong); }
.role-leak .tl-bar, .role-leak .swatch { background: var(--leak); }
.role-other .swatch { background: var(--other); }
.tl-axis .tl-track { background: none; height: 18px; border-top: 1px solid #c9d2d9; border-radius: 0; }
.tick { position: absolute; top: 2px; font-size: 11px; color: #6b7780; transform: translateX(-50%); white-space: nowrap; }
.tick:first-child { transform: none; } .tick:last-child { transform: translateX(-100%); }
details { margin: 8px 0; } summary { cursor: pointer; color: #1f5fa8; }
`;
