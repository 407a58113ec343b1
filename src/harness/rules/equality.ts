// Identical requests, identical answers (spec/properties.md): in any mode, beside anything, after
// anything. A difference is classed by how the two runs differ: one streamed and one not (stream),
// one beside other requests (concurrency), or neither, so what ran before decided it (history).
import { sameAnswer } from '../answer.ts';
import { overlap, type Entry } from '../record.ts';
import { cachedTokens } from './response.ts';
import { entryLabel } from '../violation.ts';
import { completed, contrast, type Rule } from './rule.ts';

const overlaps = (a: Entry, b: Entry) => overlap(a.obs, b.obs);

export const equality: Rule = {
  name: 'equality',
  *check(rec, answers, options) {
    if (options.deterministic === false) return;
    const { entries } = rec;
    const firstOf = new Map<string, number>();
    for (const [i, e] of entries.entries()) {
      if (!completed(e)) continue;
      const ref = firstOf.get(e.key);
      if (ref === undefined) {
        firstOf.set(e.key, i);
        continue;
      }
      if (sameAnswer(answers[ref]!, answers[i]!)) continue;
      const [a, b] = [entries[ref]!, e];
      const beside = (x: Entry) => entries.some((y) => y !== x && overlaps(y, x));
      const kind = a.call.stream !== b.call.stream ? 'stream' : beside(a) || beside(b) ? 'concurrency' : 'history';
      // The expected side is the one that reproduces: alone rather than beside others, cold rather
      // than on a prefix-cache hit; else the earlier.
      const hit = (x: Entry) => (cachedTokens(x.obs) ?? 0) > 0;
      const swap = (beside(a) && !beside(b)) || (beside(a) === beside(b) && hit(a) && !hit(b));
      const [expected, offending] = swap ? [i, ref] : [ref, i];
      yield contrast(equality, rec, kind, expected, offending, answers[expected]!, answers[offending]!);
    }
  },
  headline(rec, v) {
    const [ref, bad] = v.entries as [number, number];
    const [first, again] = [entryLabel(rec, ref), entryLabel(rec, bad)];
    const mode = (i: number) => (rec.entries[i]!.call.stream ? 'stream' : 'JSON');
    if (v.kind === 'stream') return `${again} (${mode(bad)}) answered differently from the identical ${mode(ref)} request ${first}`;
    if (v.kind === 'concurrency') return `${again} answered differently from the identical request ${first}; one of them ran beside other requests`;
    return `${again} answered differently from the identical request ${first}: the answer depends on what ran before`;
  },
};
