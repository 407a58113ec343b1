// Prompt tokens (spec/properties.md): identical requests report identical prompt_tokens. The prompt
// is the request's whatever the sampling, so this holds even on a target whose answers vary; it is
// checked only there, since on a deterministic target `equality` compares whole answers, usage included.
import { entryLabel } from '../violation.ts';
import { completed, contrast, type Rule } from './rule.ts';

export const usage: Rule = {
  name: 'usage',
  *check(rec, answers, options) {
    if (options.deterministic !== false) return;
    const firstOf = new Map<string, number>();
    for (const [i, e] of rec.entries.entries()) {
      const prompt = answers[i]?.status === 200 ? answers[i]!.usage?.prompt : undefined;
      if (!completed(e) || prompt === undefined) continue;
      const ref = firstOf.get(e.key);
      if (ref === undefined) firstOf.set(e.key, i);
      else if (answers[ref]!.usage!.prompt !== prompt) yield contrast(usage, rec, 'usage', ref, i, answers[ref]!, answers[i]!);
    }
  },
  headline(rec, v) {
    const [ref, bad] = v.entries as [number, number];
    return `${entryLabel(rec, bad)} reports ${v.actual?.usage?.prompt} prompt_tokens; the identical request ${entryLabel(rec, ref)} reported ${v.expected?.usage?.prompt}`;
  },
};
