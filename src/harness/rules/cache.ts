// Cold baseline (spec/properties.md): each request answers as it does alone on a fresh server (or,
// where the target cannot restart, a flushed one), so no cache changes an answer. Checked when the runner measured the baseline (options.baseline).
import { sameAnswer } from '../answer.ts';
import { coldServer, entryLabel } from '../violation.ts';
import { completed, contrast, type Rule } from './rule.ts';

export const cache: Rule = {
  name: 'cache',
  *check(rec, answers, options) {
    const { baseline } = options;
    if (options.deterministic === false || !baseline) return;
    for (const [i, e] of rec.entries.entries()) {
      const cold = baseline.get(e.key);
      if (!completed(e) || cold === undefined || sameAnswer(cold, answers[i]!)) continue;
      yield contrast(cache, rec, 'cache', -1, i, cold, answers[i]!, options.baselineBy ? { baselineBy: options.baselineBy } : {});
    }
  },
  headline: (rec, v) => `${entryLabel(rec, v.entries[1]!)} answered differently from the same request alone on ${coldServer(v)}`,
};
