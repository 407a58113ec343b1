// Stop strings (spec/properties.md): the answer with a stop string is the answer of the same request
// without it, cut before the string's first occurrence; it never contains the string, and its
// finish_reason is `stop` when it was cut. (The stop-free answer must come earlier in the recording.)
import { requestKey } from '../record.ts';
import { entryLabel } from '../violation.ts';
import { completed, contrast, type Rule } from './rule.ts';

export const stop: Rule = {
  name: 'stop',
  *check(rec, answers, options) {
    if (options.deterministic === false) return;
    const { entries } = rec;
    for (const [i, e] of entries.entries()) {
      const stopString = e.call.body.stop;
      if (typeof stopString !== 'string' || !answers[i] || answers[i]!.status !== 200) continue;
      const base = entries.findIndex(
        (x, j) => j < i && x.key === requestKey({ ...e.call.body, stop: undefined }) && completed(x) && answers[j]?.status === 200,
      );
      if (base < 0) continue;
      const full = answers[base]!.choices[0];
      const got = answers[i]!.choices[0];
      if (!full || !got) continue;
      const cut = full.content.indexOf(stopString);
      const want = cut < 0 ? full.content : full.content.slice(0, cut);
      if (got.content !== want || got.content.includes(stopString) || (cut >= 0 && got.finish !== 'stop')) {
        const expected = { ...answers[base]!, choices: [{ ...full, content: want, finish: cut >= 0 ? 'stop' : full.finish }] };
        yield contrast(stop, rec, 'stop', base, i, expected, answers[i]!);
      }
    }
  },
  headline(rec, v) {
    const bad = v.entries[1]!;
    return `${entryLabel(rec, bad)}: the answer is not the stop-free answer cut before ${JSON.stringify(rec.entries[bad]!.call.body.stop)}`;
  },
};
