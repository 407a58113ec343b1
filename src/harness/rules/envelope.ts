// Errors (spec/properties.md): a malformed body (a `raw` step) gets a 4xx with the OpenAI error
// envelope {"error":{"message","type","param","code"}}.
import { envelopeProblems } from '../answer.ts';
import { entryLabel } from '../violation.ts';
import { violation, type Rule } from './rule.ts';

export const envelope: Rule = {
  name: 'envelope',
  *check(rec) {
    for (const [i, e] of rec.entries.entries()) {
      if (e.call.raw === undefined) continue;
      const { status, json } = e.obs;
      const problems = status >= 400 && status < 500 ? envelopeProblems(json) : [`HTTP ${status}, not a 4xx`, ...(status >= 400 ? envelopeProblems(json) : [])];
      if (problems.length > 0) yield violation(envelope, rec, { kind: 'envelope', entries: [i], problems });
    }
  },
  headline(rec, v) {
    const i = v.entries[0]!;
    const raw = rec.entries[i]!.call.raw ?? '';
    return `${entryLabel(rec, i)} ${JSON.stringify(raw.length > 300 ? `${raw.slice(0, 300)}…` : raw)}: ${(v.problems ?? []).join('; ')}`;
  },
};
