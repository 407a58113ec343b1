// Truncation (spec/properties.md): for the same request otherwise, an answer cut by max_tokens k is
// a prefix of the answer with k + m.
import type { Answer } from '../answer.ts';
import { requestKey, type Entry } from '../record.ts';
import { entryLabel } from '../violation.ts';
import { contrast, type Rule } from './rule.ts';

const budget = (e: Entry) => Number(e.call.body.max_completion_tokens ?? e.call.body.max_tokens);
const sansBudget = (e: Entry) => requestKey({ ...e.call.body, max_tokens: undefined, max_completion_tokens: undefined });

/** Tokens k of a greedy answer must be a prefix of k + m's: field by field, in the order harmony emits them. */
export function isTruncationOf(short: Answer, long: Answer): boolean {
  const [s, l] = [short.choices[0], long.choices[0]];
  if (!s || !l) return true;
  if (!l.reasoning.startsWith(s.reasoning)) return false;
  const more = s.content !== '' || s.toolCalls.length > 0;
  if (more && s.reasoning !== l.reasoning) return false;
  if (!l.content.startsWith(s.content)) return false;
  for (const [i, call] of s.toolCalls.entries()) {
    const other = l.toolCalls[i];
    if (!other || other.name !== call.name || !other.arguments.startsWith(call.arguments)) return false;
    if (i < s.toolCalls.length - 1 && other.arguments !== call.arguments) return false;
  }
  return true;
}

export const truncation: Rule = {
  name: 'truncation',
  *check(rec, answers, options) {
    if (options.deterministic === false) return;
    for (const [i, a] of rec.entries.entries()) {
      const short = answers[i];
      // With stop strings the cut answer may rightly end in the start of one that k + m then cuts away.
      if (!short || short.choices[0]?.finish !== 'length' || a.call.body.stop !== undefined) continue;
      for (const [j, b] of rec.entries.entries()) {
        const long = answers[j];
        if (!long || !(budget(a) < budget(b)) || sansBudget(a) !== sansBudget(b)) continue;
        if (!isTruncationOf(short, long)) yield contrast(truncation, rec, 'truncation', j, i, long, short);
      }
    }
  },
  headline(rec, v) {
    const [long, short] = v.entries as [number, number];
    return `${entryLabel(rec, short)} with max_tokens ${budget(rec.entries[short]!)} is not a prefix of ${entryLabel(rec, long)} with ${budget(rec.entries[long]!)}`;
  },
};
