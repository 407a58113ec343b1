// Model (spec/properties.md "Contract"; OpenAI: `model` "the model used for the chat completion"):
// every successful response to requests naming the same model — and every chunk of a stream — names
// the same model. Servers name the model their own way (vLLM its served name, Ollama the name asked
// for, OpenAI a dated snapshot), so nothing is asked of the string but that it stays the same: an
// answer naming another model came from something else (another replica, a cache of another
// deployment). Objects without a string `model` are the shape rule's concern.
import { entryLabel } from '../violation.ts';
import { modelsOf, success } from './response.ts';
import { violation, type Rule } from './rule.ts';

export const model: Rule = {
  name: 'model',
  *check(rec, answers) {
    /** Per model asked for (or none), the first answer's model and its entry. */
    const first = new Map<unknown, { name: string; at: number }>();
    for (const [i, e] of rec.entries.entries()) {
      const answer = success(e, answers, i);
      if (!answer) continue;
      const names = modelsOf(e.obs).filter((m): m is string => typeof m === 'string');
      const other = names.find((m) => m !== names[0]);
      if (other !== undefined) {
        const problems = [`its chunks name the models ${JSON.stringify(names[0])} and ${JSON.stringify(other)}`];
        yield violation(model, rec, { kind: 'model', entries: [i], problems, actual: answer });
        continue;
      }
      if (names[0] === undefined) continue;
      const asked = e.call.body.model;
      const ref = first.get(asked);
      if (ref === undefined) first.set(asked, { name: names[0], at: i });
      else if (ref.name !== names[0]) {
        const problems = [`answered by model ${JSON.stringify(names[0])}; ${entryLabel(rec, ref.at)} was answered by ${JSON.stringify(ref.name)}`];
        yield violation(model, rec, { kind: 'model', entries: [ref.at, i], problems, actual: answer });
      }
    }
  },
  headline: (rec, v) => `${entryLabel(rec, v.entries.at(-1)!)}: ${(v.problems ?? []).join('; ')}`,
};
