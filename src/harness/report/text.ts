// Plain text from violation data, shared by the reporters and `amnesia replay`.
import { answerText } from '../answer.ts';
import { RULES } from '../rules/index.ts';
import { messageOf } from '../rules/rule.ts';
import type { Recording } from '../record.ts';
import type { PropertyResult } from '../search.ts';
import { describeStep } from '../scenario.ts';
import { entryLabel, type Violation } from '../violation.ts';
import { CLASS_LABEL } from '../classify.ts';

/** The violation in one line: its rule's headline, then where the answers first differ. */
export function violationMessage(rec: Recording, v: Violation): string {
  const rule = RULES.find((r) => r.name === v.rule);
  return rule ? messageOf(rule, rec, v) : v.message; // not made by a rule: only its message says
}

/**
 * The violation's class with its evidence: `content leak`, `numeric drift (largest Δ logprob 0.012)`,
 * `divergence (a near-tie: where the tokens part, the expected run put "b" 0.010 above "c")`.
 */
export function classText(v: Violation): string {
  const label = CLASS_LABEL[v.class];
  if (v.class === 'numeric-drift' && v.drift !== undefined) return `${label} (largest Δ logprob ${v.drift.toPrecision(2)}: the same tokens)`;
  const m = v.margin;
  if (v.class === 'divergence' && m) {
    const where = `at token ${m.position + 1}${m.choice > 0 ? ` of choice ${m.choice}` : ''}`;
    const gap = `${m.atLeast ? 'at least ' : ''}${m.gap.toFixed(3)}`;
    return `${label} (${where} the expected run put ${JSON.stringify(m.expected)} ${gap} nats above ${JSON.stringify(m.actual)}${m.gap < NEAR_TIE && !m.atLeast ? ': a near-tie' : ''})`;
  }
  return label;
}

/** A margin below this (nats) at the first differing token reads as a near-tie. */
const NEAR_TIE = 0.05;

/** A violation in a few lines: its class, what was expected, what came back. */
export function describeViolation(rec: Recording, v: Violation): string {
  const lines = [`${classText(v)} — ${v.kind}: ${violationMessage(rec, v)}`];
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
