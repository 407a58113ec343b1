// For a person at a terminal: the summary table after a check, and the progress line during it.
// The row helpers are shared with the GitHub step summary.
import type { Capability } from '../probe.ts';
import { leftOutFields } from '../probe-fields.ts';
import type { ProgressEvent, PropertyResult, ScenarioProgress } from '../search.ts';
import type { CheckReport } from '../check-target.ts';
import { violationMessage } from './text.ts';
import { CLASS_LABEL } from '../classify.ts';
import { groupByCause, groupCount } from '../causes.ts';

const RESULT = { passed: 'PASS', failed: 'FAIL', skipped: 'SKIP' } as const;

/** Capability labels, in report order; `satisfies` makes a new Capability a compile error here. */
const CAPABILITY_LABELS = {
  stream: 'stream',
  streamOptions: 'stream-usage',
  tools: 'tools',
  toolChoice: 'tool-choice',
  n: 'n',
  seed: 'seed',
  seedAccepted: 'seed-accepted',
  logprobs: 'logprobs',
  flush: 'flush',
} satisfies Record<Capability, string>;

export const seconds = (ms: number) => (ms / 1000).toFixed(1);

/** The result column: PASS, FAIL, FLAKY or SKIP; a pass that ran fewer scenarios than asked says so. */
export function resultCell(r: PropertyResult): string {
  if (r.status === 'failed' && r.flaky) return 'FLAKY';
  if (r.status === 'passed' && r.scenarios < r.asked) return `PASS (${r.scenarios} of ${r.asked} scenarios${r.budgetSpent ? ': time budget' : ''})`;
  return RESULT[r.status];
}

/** How many bursts overlapped in time, for a property that sent any. */
export const burstNote = (r: PropertyResult): string | undefined =>
  r.bursts && r.bursts.sent > 0 ? `${r.bursts.overlapped} of ${r.bursts.sent} bursts overlapped` : undefined;

/** The note column, on one line: why a property was skipped, or what broke; how many bursts overlapped. */
export function note(r: PropertyResult): string {
  const f = r.failure;
  const text =
    r.status === 'skipped'
      ? (r.reason ?? '')
      : r.status === 'failed'
        ? f
          ? `${r.flaky ? 'flaky: did not reproduce; ' : ''}${CLASS_LABEL[f.violation.class]} (${f.violation.kind}): ${violationMessage(f.recording, f.violation)}`
          : (r.reason ?? 'failed')
        : '';
  const foundBy = r.foundBy !== undefined ? `found in ${r.foundBy}'s traffic, and the request alone breaks it again` : undefined;
  return [text, foundBy, burstNote(r)]
    .filter((t): t is string => t !== undefined && t !== '')
    .join('; ')
    .replace(/\s*[\r\n]+\s*/g, ' ');
}

export function capabilityLine(report: CheckReport): string {
  const caps = (Object.keys(CAPABILITY_LABELS) as Capability[]).map((c) => `${CAPABILITY_LABELS[c]} ${report.caps[c] ? '✓' : '✗'}`);
  const leftOut = report.caps.fields ? leftOutFields(report.caps.fields) : [];
  const fields = leftOut.length > 0 ? `\nrequest fields left out of generated traffic: ${leftOut.join(', ')}` : '';
  const c = report.caps.calibration;
  const how = !c
    ? ''
    : report.caps.deterministic
      ? ` (${c.requests} calibration requests)`
      : c.tokensDiffer
        ? ` (${c.requests} calibration requests: tokens differed)`
        : ` (${c.requests} calibration requests: the same tokens, log-probs drift up to ${c.drift.toPrecision(2)}; --compare tokens checks it)`;
  return `${caps.join(' ')}; deterministic in isolation ${report.caps.deterministic ? '✓' : '✗'}${how}${fields}`;
}

export function countLine(report: CheckReport): string {
  const n = (s: PropertyResult['status']) => report.results.filter((r) => r.status === s).length;
  const total = report.results.length;
  const flaky = report.results.filter((r) => r.status === 'failed' && r.flaky).length;
  const scenarios = report.results.reduce((sum, r) => sum + r.scenarios, 0);
  const took = report.ms !== undefined ? `; ${scenarios} scenarios in ${seconds(report.ms)} s` : '';
  return `${total} ${total === 1 ? 'property' : 'properties'}: ${n('passed')} passed, ${n('failed')} failed${flaky > 0 ? ` (${flaky} flaky)` : ''}, ${n('skipped')} skipped${took}`;
}

/** The target line: what was checked, with which seed, and each request's deadline. */
export function targetLine(report: CheckReport): string {
  const deadline = report.requestTimeoutMs !== undefined ? `, request deadline ${seconds(report.requestTimeoutMs)} s` : '';
  return `target ${report.target}, model ${report.model}, seed ${report.seed}${deadline}`;
}

/** A plain-text table for a terminal, then the target line and the counts. */
export function summaryTable(report: CheckReport): string {
  const header = ['property', 'result', 'scenarios', 'requests', 'seconds', 'note'];
  const rows = report.results.map((r) => [r.property, resultCell(r), String(r.scenarios), String(r.requests), seconds(r.ms), note(r)]);
  const numeric = new Set([2, 3, 4]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const causes = groupByCause(report.results);
  return [
    ...(causes.length > 0
      ? [`${causes.length === 1 ? 'One cause' : `${causes.length} causes`}:`, ...causes.map((c) => `  ${c.text}: ${groupCount(c)}`), '']
      : []),
    line(header),
    ...rows.map(line),
    '',
    targetLine(report),
    capabilityLine(report),
    ...(report.notes ?? []).map((n) => `note: ${n}`),
    countLine(report),
  ].join('\n');
}

// ── Progress ─────────────────────────────────────────────────────────────────────────────────────

export type { ProgressEvent };

export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

/** A finished property in one line: `history-independence: PASS, 63 scenarios, 290 requests, 21.3 s`. */
const finishedLine = (r: PropertyResult) =>
  `${r.property}: ${resultCell(r)}${r.status === 'skipped' ? ` (${r.reason ?? ''})` : `, ${r.scenarios} scenarios, ${r.requests} requests, ${seconds(r.ms)} s`}`;

const scenarioText = (e: ScenarioProgress) =>
  `${e.phase} ${e.property}: ${e.done} scenario${e.done === 1 ? '' : 's'}${e.requests !== undefined ? `, ${e.requests} requests` : ''}`;

/**
 * Progress on any output. Every property's start and end get a line of their own. Between them, a
 * terminal shows one status line rewritten in place at most ~10 times a second (the latest event
 * shown when the interval ends); anything else (a log file, CI) gets the status as a line every
 * ~10 s, so a long property is never silent.
 */
export class ProgressLine {
  private last = 0;
  private shown = false;
  private pending: ScenarioProgress | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private latest: { text: string; since: number } | undefined;

  constructor(
    private readonly stream: ProgressStream,
    private readonly intervalMs = 100,
    private readonly heartbeatMs = 10_000,
  ) {}

  update(event: ProgressEvent): void {
    if (event.phase === 'started') {
      const budget = event.budgetMs !== undefined ? ` (time budget ${seconds(event.budgetMs)} s)` : '';
      this.line(`${event.property}: started${budget}`);
      this.latest = { text: `checking ${event.property}: 0 scenarios`, since: Date.now() };
      return;
    }
    if (event.phase === 'finished') {
      this.latest = undefined;
      this.line(finishedLine(event.result));
      return;
    }
    if (!this.stream.isTTY) {
      this.latest = { text: scenarioText(event), since: this.latest?.since ?? Date.now() };
      return;
    }
    const wait = this.last + this.intervalMs - Date.now();
    if (wait <= 0) return this.render(event);
    this.pending = event;
    // unref: a pending redraw must not keep the process alive.
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      if (this.pending) this.render(this.pending);
    }, wait).unref();
  }

  done(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.timer = undefined;
    this.heartbeat = undefined;
    this.pending = undefined;
    this.clear();
  }

  /** A line that stays (on a terminal, the status line is cleared first and redrawn by the next event). */
  private line(text: string): void {
    this.clear();
    this.stream.write(`${text}\n`);
    if (!this.stream.isTTY && this.heartbeat === undefined) {
      this.heartbeat = setInterval(() => {
        if (this.latest) this.stream.write(`${this.latest.text} (${seconds(Date.now() - this.latest.since)} s)\n`);
      }, this.heartbeatMs).unref();
    }
  }

  private clear(): void {
    if (this.shown) this.stream.write('\r\x1b[K');
    this.shown = false;
  }

  private render(e: ScenarioProgress): void {
    this.pending = undefined;
    this.last = Date.now();
    this.shown = true;
    const text = scenarioText(e);
    // A line longer than the terminal wraps, and \r would then rewrite only its last row.
    const width = (this.stream.columns ?? 80) - 1;
    this.stream.write(`\r${text.length > width ? `${text.slice(0, width - 1)}…` : text}\x1b[K`);
  }
}
