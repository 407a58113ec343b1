// n choices (spec/properties.md "Contract"), on a deterministic target: a greedy request
// (temperature 0) with n = k > 1 answers k times the same — each choice (content, reasoning, tool
// calls, finish_reason, log-probs) equals choice 0, and equals the answer of the same request with
// one choice where the recording has it: choices of one request must not see each other, nor differ
// from the request alone. Where the probe found seeds offset per choice (options.nSeedOffset), choice
// i of a seeded request equals choice 0 of the same request with `seed + i` and one choice.
import type { Answer, ChoiceAnswer } from '../answer.ts';
import { requestKey } from '../record.ts';
import { entryLabel } from '../violation.ts';
import { choicesAsked, success, type Json } from './response.ts';
import { contrast, type Rule } from './rule.ts';

const same = (a: ChoiceAnswer, b: ChoiceAnswer) => JSON.stringify(a) === JSON.stringify(b);

/** The keys of `body` asked for with one choice: `n` absent or 1. */
const singleKeys = (body: Json) => [requestKey({ ...body, n: undefined }), requestKey({ ...body, n: 1 })];

/** The answer `a` would be with choice i replaced by `by`. */
const withChoice = (a: Answer, i: number, by: ChoiceAnswer): Answer => ({ ...a, choices: a.choices.map((c, j) => (j === i ? by : c)) });

export const choices: Rule = {
  name: 'choices',
  *check(rec, answers, options) {
    if (options.deterministic === false) return;
    const { entries } = rec;
    /** The first successful one-choice answer of a request key, by entry index. */
    const single = new Map<string, number>();
    entries.forEach((e, j) => {
      const a = success(e, answers, j);
      if (a && choicesAsked(e.call.body) === 1 && a.choices.length === 1 && !single.has(e.key)) single.set(e.key, j);
    });
    const singleOf = (body: Json) =>
      singleKeys(body)
        .map((k) => single.get(k))
        .find((j) => j !== undefined);
    for (const [i, e] of entries.entries()) {
      const a = success(e, answers, i);
      const body = e.call.body;
      if (!a || choicesAsked(body) < 2) continue;
      if (body.temperature === 0) {
        const ref = singleOf(body);
        for (const [k, c] of a.choices.entries()) {
          if (ref !== undefined && !same(c, answers[ref]!.choices[0]!))
            yield contrast(choices, rec, 'choices', ref, i, withChoice(a, k, answers[ref]!.choices[0]!), a);
          else if (ref === undefined && k > 0 && !same(c, a.choices[0]!)) yield contrast(choices, rec, 'choices', i, i, withChoice(a, k, a.choices[0]!), a);
        }
      } else if (options.nSeedOffset && typeof body.seed === 'number') {
        for (const [k, c] of a.choices.entries()) {
          const ref = singleOf({ ...body, seed: body.seed + k });
          if (ref !== undefined && !same(c, answers[ref]!.choices[0]!))
            yield contrast(choices, rec, 'choices', ref, i, withChoice(a, k, answers[ref]!.choices[0]!), a);
        }
      }
    }
  },
  headline(rec, v) {
    const [ref, bad] = v.entries as [number, number];
    const k = Number(/^choices\[(\d+)\]/.exec(v.difference?.path ?? '')?.[1] ?? 0);
    const body = rec.entries[bad]!.call.body;
    const asked = `${entryLabel(rec, bad)} (n = ${choicesAsked(body)}${body.temperature === 0 ? ', temperature 0' : `, seed ${String(body.seed)}`})`;
    if (ref === bad) return `${asked}: choice ${k} differs from choice 0`;
    const other = rec.entries[ref]!.call.body;
    const what = other.seed !== body.seed ? `the same request with seed ${String(other.seed)} and one choice` : 'the same request with one choice';
    return `${asked}: choice ${k} differs from ${what}, ${entryLabel(rec, ref)}`;
  },
};
