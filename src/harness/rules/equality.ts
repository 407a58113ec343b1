// Identical requests, identical answers (spec/properties.md): in any mode, beside anything, after
// anything. A difference is classed by how the two runs differ: one streamed and one not (stream),
// one beside other requests (concurrency), or neither, so what ran before decided it (history).
import { sameAnswer } from '../answer.ts';
import type { Entry } from '../record.ts';
import { entryLabel } from '../violation.ts';
import { completed, contrast, type Rule } from './rule.ts';

const overlaps = (a: Entry, b: Entry) => a.obs.started < b.obs.ended && b.obs.started < a.obs.ended;

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
      yield contrast(equality, rec, kind, ref, i, answers[ref]!, answers[i]!);
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
