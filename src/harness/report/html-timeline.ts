// For the HTML report (html.ts): every recorded exchange of a failure as a bar on one time axis (the
// client's clock: Observation.started/ended), so a reader sees what ran before and beside the wrong
// answer. Bars are coloured by their part in the violation — the reference answer, the wrong one, the
// request whose answer leaked into it — and marked stream or JSON, cold baseline, cancelled, timed
// out, cached tokens. Plain positioned divs: no script, no image.
import type { Entry, Recording } from '../record.ts';
import { cachedTokens } from '../rules/response.ts';
import { coldServer, type Violation } from '../violation.ts';
import { esc } from './html-diff.ts';

export type Role = 'reference' | 'wrong' | 'leak' | 'other';

const ROLE_TEXT: Record<Role, string> = {
  reference: 'reference (the expected answer)',
  wrong: 'wrong answer',
  leak: 'leak source (its answer shows up in the wrong one)',
  other: 'other request',
};

/** An entry's part in the violation: the offending one (last of `entries`), the leak source, the reference (first, when there are two). */
export function roleOf(v: Violation, i: number): Role {
  if (i === v.entries.at(-1)) return 'wrong';
  if (i === v.leakedFrom) return 'leak';
  if (v.entries.length > 1 && i === v.entries[0]) return 'reference';
  return 'other';
}

/** What the bar's label says besides the request: how it was sent and what happened to it. */
export function marks(e: Entry): string[] {
  const cached = cachedTokens(e.obs);
  return [
    e.call.raw !== undefined ? 'raw body' : e.call.stream ? 'stream' : 'JSON',
    ...(e.baseline ? ['cold baseline'] : []),
    ...(e.obs.cancelled ? [`cancelled${e.call.cancelAfter !== undefined ? ` after ${e.call.cancelAfter} events` : ''}`] : []),
    ...(e.obs.timedOut ? [`timed out${e.obs.deadlineMs !== undefined ? ` (${e.obs.deadlineMs} ms)` : ''}`] : []),
    ...(cached !== undefined ? [`cached ${cached}`] : []),
    ...(e.obs.status !== 200 ? [e.obs.status === 0 ? 'no response' : `HTTP ${e.obs.status}`] : []),
  ];
}

const pct = (x: number) => `${(x * 100).toFixed(3)}%`;

/** Milliseconds as the axis shows them: to the ms on a long axis, finer on a short one (a fast local server). */
const msText = (x: number, span: number) => `${x.toFixed(span >= 100 ? 0 : span >= 10 ? 1 : 2)} ms`;

function bar(e: Entry, i: number, role: Role, t0: number, span: number): string {
  const left = (e.obs.started - t0) / span;
  // At least a sliver: an answer faster than the axis resolves is still there.
  const width = Math.max((e.obs.ended - e.obs.started) / span, 0.004);
  const tags = marks(e)
    .map((m) => `<span class="mark">${esc(m)}</span>`)
    .join('');
  const at = (t: number) => msText(t - t0, span);
  const title = `${e.label}, step ${e.step + 1}: ${at(e.obs.started)} to ${at(e.obs.ended)} (${msText(e.obs.ended - e.obs.started, span)}); ${ROLE_TEXT[role]}`;
  return (
    `<div class="tl-row role-${role}" data-role="${role}" data-entry="${i}">` +
    `<div class="tl-label"><span class="tl-step">${e.step + 1}</span> <span class="tl-name">${esc(e.label)}</span> ${tags}</div>` +
    `<div class="tl-track"><div class="tl-bar" style="left:${pct(left)};width:${pct(Math.min(width, 1 - left))}" title="${esc(title)}"></div></div></div>`
  );
}

/** Ticks under the track: 0, quarters, the end, in ms since the first request started. */
function axis(span: number): string {
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => `<span class="tick" style="left:${pct(f)}">${msText(f * span, span)}</span>`).join('');
  return `<div class="tl-row tl-axis"><div class="tl-label">step · request</div><div class="tl-track">${ticks}</div></div>`;
}

function legend(rec: Recording, v: Violation): string {
  const roles: Role[] = ['reference', 'wrong', 'leak', 'other'];
  const items = roles.map((r) => `<span class="legend-item role-${r}"><span class="swatch"></span>${esc(ROLE_TEXT[r])}</span>`).join('');
  const cold =
    v.entries[0] === -1 ? `<p class="quiet">The expected answer is the same request alone on ${esc(coldServer(v))}, run after these and not drawn.</p>` : '';
  const count = `${rec.entries.length} recorded request${rec.entries.length === 1 ? '' : 's'}`;
  return `<div class="legend">${count}: ${items}</div>${cold}`;
}

/** The recording as a timeline with its legend; one bar per entry. */
export function timelineHtml(rec: Recording, v: Violation): string {
  if (rec.entries.length === 0) return '<p class="quiet">No request was recorded.</p>';
  const t0 = Math.min(...rec.entries.map((e) => e.obs.started));
  const t1 = Math.max(...rec.entries.map((e) => e.obs.ended));
  const span = Math.max(t1 - t0, 1);
  const rows = rec.entries.map((e, i) => bar(e, i, roleOf(v, i), t0, span)).join('');
  return `${legend(rec, v)}<div class="timeline">${rows}${axis(span)}</div>`;
}
