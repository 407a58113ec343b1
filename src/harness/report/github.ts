// For GitHub Actions: workflow-command annotations on the run, and markdown for $GITHUB_STEP_SUMMARY.
import type { CheckReport } from '../check-target.ts';
import { code, fence } from './markdown.ts';
import { capabilityLine, countLine, note, resultCell, seconds } from './summary.ts';
import { describeViolation, failureText } from './text.ts';

/** Workflow-command data (the message after `::`). */
export function escapeData(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/** Workflow-command property values (`title=…`), where `:` and `,` delimit. */
export function escapeProperty(s: string): string {
  return escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

/** GitHub shows at most 10 annotations of each level per step; more would be dropped silently. */
const MAX_ANNOTATIONS = 10;

export function githubAnnotations(report: CheckReport): string[] {
  const failed = report.results.filter((r) => r.status === 'failed').slice(0, MAX_ANNOTATIONS);
  const skipped = report.results.filter((r) => r.status === 'skipped').slice(0, MAX_ANNOTATIONS);
  return [
    ...failed.map(
      (r) =>
        `::error title=${escapeProperty(`amnesia ${r.property}${r.flaky ? ' (flaky)' : ''}`)}::${escapeData(
          `${r.flaky ? 'flaky: did not reproduce; ' : ''}${r.failure ? describeViolation(r.failure.recording, r.failure.violation) : (r.reason ?? `${r.property} failed`)}`,
        )}`,
    ),
    ...skipped.map((r) => `::notice title=${escapeProperty(`amnesia ${r.property} skipped`)}::${escapeData(r.reason ?? 'skipped')}`),
  ];
}

/** A markdown table cell: pipes would end the cell, newlines the row. */
const cell = (s: string) => s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');

/** Markdown for $GITHUB_STEP_SUMMARY: the summary table, then each failure's violation. */
export function githubStepSummary(report: CheckReport): string {
  const failures = report.results.filter((r) => r.status === 'failed');
  const icon = (r: (typeof report.results)[number]) =>
    `${r.status === 'passed' ? (r.scenarios < r.asked ? '⚠️' : '✅') : r.status === 'skipped' ? '⏭️' : r.flaky ? '⚠️' : '❌'} ${resultCell(r)}`;
  const out = [
    `## amnesia check: ${failures.length === 0 ? 'no property failed' : `${failures.length} failed`}`,
    '',
    `Target ${code(report.target)}, model ${code(report.model)}, seed ${report.seed}${report.requestTimeoutMs !== undefined ? `, request deadline ${seconds(report.requestTimeoutMs)} s` : ''}. Capabilities: ${capabilityLine(report)}.`,
    '',
    ...(report.notes ?? []).flatMap((n) => [`Note: ${n}.`, '']),
    '| property | result | scenarios | requests | seconds | note |',
    '|---|---|---:|---:|---:|---|',
    ...report.results.map((r) => `| ${cell(r.property)} | ${icon(r)} | ${r.scenarios} | ${r.requests} | ${seconds(r.ms)} | ${cell(note(r))} |`),
    '',
    countLine(report),
    '',
  ];
  for (const r of failures)
    out.push(`### ${r.property}${r.flaky ? ' (flaky: did not reproduce)' : ''}`, '', `${r.statement}.`, '', fence(failureText(r), 'text'), '');
  return out.join('\n');
}
