// Stop strings (spec/properties.md): whatever the target, no choice's content contains one of the
// request's stop strings (a string or an array; OpenAI: "the returned text will not contain the stop
// sequence"). On a deterministic target, the answer with a stop string is also the answer of the same
// request without it, cut before the string's first occurrence, and its finish_reason is `stop` when
// it was cut. (The stop-free answer must come earlier in the recording.)
import { requestKey } from '../record.ts';
import { entryLabel } from '../violation.ts';
import { contractViolation, stopStrings, success } from './response.ts';
import { completed, contrast, type Rule } from './rule.ts';

export const stop: Rule = {
  name: 'stop',
  *check(rec, answers, options) {
    const { entries } = rec;
    for (const [i, e] of entries.entries()) {
      const answer = success(e, answers, i);
      const stops = stopStrings(e.call.body);
      if (!answer || stops.length === 0) continue;
      const problems = answer.choices.flatMap((c, k) =>
        stops.filter((s) => c.content.includes(s)).map((s) => `choices[${k}].content contains the stop string ${JSON.stringify(s)}`),
      );
      if (problems.length > 0) {
        yield contractViolation(stop, rec, 'stop', i, problems, answer);
        continue;
      }
      const stopString = e.call.body.stop;
      if (options.deterministic === false || typeof stopString !== 'string') continue;
      const base = entries.findIndex(
        (x, j) => j < i && x.key === requestKey({ ...e.call.body, stop: undefined }) && completed(x) && answers[j]?.status === 200,
      );
      if (base < 0) continue;
      const full = answers[base]!.choices[0];
      const got = answer.choices[0];
      if (!full || !got) continue;
      const cut = full.content.indexOf(stopString);
      const want = cut < 0 ? full.content : full.content.slice(0, cut);
      if (got.content !== want || (cut >= 0 && got.finish !== 'stop')) {
        const expected = { ...answers[base]!, choices: [{ ...full, content: want, finish: cut >= 0 ? 'stop' : full.finish }] };
        yield contrast(stop, rec, 'stop', base, i, expected, answer);
      }
    }
  },
  headline(rec, v) {
    const bad = v.entries.at(-1)!;
    if (v.problems) return `${entryLabel(rec, bad)}: ${v.problems.join('; ')}`;
    return `${entryLabel(rec, bad)}: the answer is not the stop-free answer cut before ${JSON.stringify(rec.entries[bad]!.call.body.stop)}`;
  },
};
