// Shape (spec/properties.md): every answer to a well-formed request has the Chat Completions shape,
// JSON or stream, whatever ran before it (answer.ts:shapeProblems), and no 5xx.
import { shapeProblems } from '../answer.ts';
import { entryLabel } from '../violation.ts';
import { violation, type Rule } from './rule.ts';

export const shape: Rule = {
  name: 'shape',
  *check(rec, answers) {
    for (const [i, e] of rec.entries.entries()) {
      if (e.call.raw !== undefined) continue;
      const n = typeof e.call.body.n === 'number' ? e.call.body.n : 1;
      const problems = shapeProblems(e.obs, n);
      if (problems.length > 0) yield violation(shape, rec, { kind: 'shape', entries: [i], problems, ...(answers[i] ? { actual: answers[i] } : {}) });
    }
  },
  headline: (rec, v) => `${entryLabel(rec, v.entries[0]!)}: ${(v.problems ?? []).join('; ')}`,
};
