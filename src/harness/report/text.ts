// Plain text from violation data, shared by the reporters and `amnesia replay`.
import { answerText } from '../answer.ts';
import { RULES } from '../rules/index.ts';
import { messageOf } from '../rules/rule.ts';
import type { Recording } from '../record.ts';
import type { PropertyResult } from '../search.ts';
import { describeStep } from '../scenario.ts';
import { entryLabel, type Violation } from '../violation.ts';

/** The violation in one line: its rule's headline, then where the answers first differ. */
export function violationMessage(rec: Recording, v: Violation): string {
  const rule = RULES.find((r) => r.name === v.rule);
  return rule ? messageOf(rule, rec, v) : v.message; // not made by a rule: only its message says
}

/** A violation in a few lines: what was expected, what came back. */
export function describeViolation(rec: Recording, v: Violation): string {
  const lines = [`${v.kind}: ${violationMessage(rec, v)}`];
  if (v.expected) lines.push(`  expected: ${answerText(v.expected).replace(/\n/g, '\n            ')}`);
  if (v.actual) lines.push(`  actual:   ${answerText(v.actual).replace(/\n/g, '\n            ')}`);
  if (v.leakedFrom !== undefined) lines.push(`  the wrong answer is the answer of ${entryLabel(rec, v.leakedFrom)}`);
  return lines.join('\n');
}

/** What a failure says in full: the violation, the steps, the replay data; for a flaky one, that it did not reproduce. */
export function failureText(r: PropertyResult): string {
  const f = r.failure;
  if (!f) return `${r.property} failed`;
  const flaky = r.flaky
    ? [
        `flaky: did not reproduce. This scenario failed once; shrunk, it passed when replayed on a fresh target${f.replay ? ` (${f.replay.entries.length} requests, no violation)` : ''}.`,
        '',
      ]
    : [];
  return [
    ...flaky,
    describeViolation(f.recording, f.violation),
    '',
    'steps:',
    ...f.scenario.steps.map((s, i) => `  ${i + 1}. ${describeStep(s)}`),
    ...(r.flaky && f.replay ? ['', 'replayed (passed):', ...f.replay.scenario.steps.map((s, i) => `  ${i + 1}. ${describeStep(s)}`)] : []),
    '',
    `fast-check seed ${f.seed}, path ${JSON.stringify(f.path)}`,
  ].join('\n');
}
