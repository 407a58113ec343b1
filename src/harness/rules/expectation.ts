// Expectations (spec/properties.md) of a stored scenario: `{"equal":[1,3]}` says step 3 answers as
// step 1 did (the first answer that counts of each step).
import { sameAnswer } from '../answer.ts';
import { completed, contrast, type Rule } from './rule.ts';

export const expectation: Rule = {
  name: 'expectation',
  *check(rec, answers, options) {
    if (options.deterministic === false) return;
    for (const { equal } of rec.scenario.expect ?? []) {
      const [a, b] = equal.map((step) => rec.entries.findIndex((e) => e.step === step - 1 && completed(e)));
      if (a === undefined || b === undefined || a < 0 || b < 0) continue;
      if (!sameAnswer(answers[a]!, answers[b]!)) yield contrast(expectation, rec, 'expectation', a, b, answers[a]!, answers[b]!);
    }
  },
  headline(rec, v) {
    const step = (i: number) => rec.entries[i]!.step + 1;
    return `expected step ${step(v.entries[1]!)} to answer as step ${step(v.entries[0]!)} did`;
  },
};
