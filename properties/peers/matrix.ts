// The statelessness matrix (spec/peers.md): what one check of a peer in one setting found, per
// property and --compare mode, as data (golden/peers/<peer>-<setting>.json) and as the Markdown block
// that `npm run peers` writes between the markers in spec/peers.md.
import { causeOf } from '../../src/harness/causes.ts';
import type { CheckReport } from '../../src/harness/check-target.ts';
import type { CompareMode, ViolationClass } from '../../src/harness/classify.ts';

export interface MatrixCell {
  status: 'passed' | 'failed' | 'flaky' | 'skipped';
  class?: ViolationClass;
  /** The grouped cause (causes.ts) in words. */
  cause?: string;
  /** A skip's reason, or the violation's headline. */
  detail?: string;
  /** The bug report folder, relative to the repository. */
  report?: string;
}

export interface PeerRun {
  peer: string;
  title: string;
  version: string;
  setting: string;
  what: string;
  model: string;
  seed: number;
  runs: number;
  /** Per property, per mode it was checked in (exact always; looser modes where exact failed on a mode-dependent class). */
  cells: Record<string, Partial<Record<CompareMode, MatrixCell>>>;
  /** Minutes the checks took, all modes together. */
  minutes: number;
  /** Why the peer could not be checked in this setting (it did not start, say): then there are no cells. */
  error?: string;
}

/** A check's results as cells of one mode; `reportOf` names a failed property's report folder. */
export function cellsOf(report: CheckReport, reportOf: (property: string) => string | undefined): Record<string, MatrixCell> {
  const out: Record<string, MatrixCell> = {};
  for (const r of report.results) {
    if (r.status === 'skipped') {
      out[r.property] = { status: 'skipped', ...(r.reason !== undefined && { detail: r.reason }) };
      continue;
    }
    if (r.status === 'passed' || !r.failure) {
      out[r.property] = r.status === 'passed' ? { status: 'passed' } : { status: 'failed', ...(r.reason !== undefined && { detail: r.reason }) };
      continue;
    }
    const v = r.failure.violation;
    const report = reportOf(r.property);
    out[r.property] = {
      status: r.flaky ? 'flaky' : 'failed',
      class: v.class,
      cause: causeOf(r.failure.recording, v).text,
      detail: v.message,
      ...(report !== undefined && { report }),
    };
  }
  return out;
}

/** Classes whose verdict depends on --compare: a looser mode may pass them. */
export const MODE_DEPENDENT: ReadonlySet<ViolationClass> = new Set(['numeric-drift', 'divergence']);

const MODES: readonly CompareMode[] = ['exact', 'tokens', 'text'];

function verdict(cell: MatrixCell | undefined, inherited: MatrixCell | undefined): string {
  // A mode that was not run: exact's pass or mode-independent failure holds for it too.
  const c = cell ?? inherited;
  if (c === undefined) return '–';
  const word = c.status === 'passed' ? 'pass' : c.status === 'skipped' ? 'skip' : c.status === 'flaky' ? 'flaky' : 'FAIL';
  return cell === undefined ? `(${word})` : word;
}

const escape = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** One peer run as Markdown: a heading, then a row per property. */
export function runMarkdown(run: PeerRun): string {
  const lines = [
    `### ${run.title} ${run.version} — ${run.setting}`,
    '',
    `${run.what}. Model \`${run.model}\`; seed ${run.seed}, ${run.runs} scenarios per property; ${run.minutes.toFixed(1)} min.`,
    '',
  ];
  if (run.error !== undefined) return [...lines, `Not checked: ${run.error}`].join('\n');
  lines.push('| property | exact | tokens | text | class | cause, or why skipped | report |', '|---|---|---|---|---|---|---|');
  for (const [property, byMode] of Object.entries(run.cells)) {
    let last: MatrixCell | undefined;
    const cols = MODES.map((m) => {
      const text = verdict(byMode[m], last);
      last = byMode[m] ?? last;
      return text;
    });
    // The row's class, cause and report: its failure under the strictest mode that failed.
    const shown = MODES.map((m) => byMode[m]).filter((c): c is MatrixCell => c !== undefined);
    const worst = shown.find((c) => c.status === 'failed' || c.status === 'flaky') ?? shown[0];
    const why = worst?.cause ?? (worst?.status === 'skipped' ? worst.detail : undefined) ?? '';
    const report = worst?.report !== undefined ? `[report](../${worst.report}/REPORT.md)` : '';
    lines.push(`| ${property} | ${cols.join(' | ')} | ${worst?.class ?? ''} | ${escape(why)} | ${report} |`);
  }
  return lines.join('\n');
}

/** The summary table of every run: one row per peer and setting. */
export function summaryMarkdown(runs: readonly PeerRun[]): string {
  const lines = ['| peer | version | setting | passed | failed | skipped | causes |', '|---|---|---|---:|---:|---:|---|'];
  for (const run of runs) {
    const exact = Object.values(run.cells).map((c) => c.exact);
    const count = (s: MatrixCell['status'][]) => exact.filter((c) => c !== undefined && s.includes(c.status)).length;
    const causes = run.error !== undefined ? [`not checked: ${run.error}`] : [...new Set(exact.flatMap((c) => (c?.cause !== undefined ? [c.cause] : [])))];
    lines.push(
      `| ${run.title} | ${run.version} | ${run.setting} | ${count(['passed'])} | ${count(['failed', 'flaky'])} | ${count(['skipped'])} | ${escape(causes.join('; '))} |`,
    );
  }
  return lines.join('\n');
}
