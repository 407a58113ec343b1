// Budget and usage bounds (spec/properties.md "Contract"; OpenAI: `max_completion_tokens` "an upper
// bound for the number of tokens that can be generated", `usage.*`). Per successful response with a
// usage object (a stream's usage chunk):
//
// - completion_tokens ≤ n × the budget (`max_completion_tokens`, else `max_tokens`), and ≥ 1 when
//   some choice says anything;
// - prompt_tokens ≥ 1: every chat template renders at least one token (an Ollama that reported 0 for
//   a cached prompt, ollama #2068, fails here);
// - prompt_tokens_details.cached_tokens ≤ prompt_tokens, completion_tokens_details.reasoning_tokens
//   ≤ completion_tokens, when present (a part of the total, not beside it).
// `total = prompt + completion` is the shape rule's; the prompt's count across requests is usage.ts's.
import { entryLabel } from '../violation.ts';
import { contractViolation, choicesAsked, isObject, success, usageObject, type Json } from './response.ts';
import type { Rule } from './rule.ts';

const count = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** The request's budget: `max_completion_tokens` wins over `max_tokens` (OpenAI deprecates the latter). */
export const budgetOf = (body: Json): number | undefined => count(body.max_completion_tokens) ?? count(body.max_tokens);

function usageProblems(usage: Json, body: Json, saysSomething: boolean): string[] {
  const out: string[] = [];
  const prompt = count(usage.prompt_tokens);
  const completion = count(usage.completion_tokens);
  if (prompt === undefined || prompt < 1) out.push(`prompt_tokens is ${JSON.stringify(usage.prompt_tokens)}, not a count ≥ 1`);
  const budget = budgetOf(body);
  const n = choicesAsked(body);
  if (completion !== undefined && budget !== undefined && completion > n * budget)
    out.push(`completion_tokens ${completion} > ${n > 1 ? `n ${n} × ` : ''}max tokens ${budget}`);
  if (completion !== undefined && completion < 1 && saysSomething) out.push(`completion_tokens is ${completion}, but the answer has text`);
  const cached = isObject(usage.prompt_tokens_details) ? count(usage.prompt_tokens_details.cached_tokens) : undefined;
  if (cached !== undefined && prompt !== undefined && cached > prompt) out.push(`cached_tokens ${cached} > prompt_tokens ${prompt}`);
  const reasoning = isObject(usage.completion_tokens_details) ? count(usage.completion_tokens_details.reasoning_tokens) : undefined;
  if (reasoning !== undefined && completion !== undefined && reasoning > completion)
    out.push(`reasoning_tokens ${reasoning} > completion_tokens ${completion}`);
  return out;
}

export const budget: Rule = {
  name: 'budget',
  *check(rec, answers) {
    for (const [i, e] of rec.entries.entries()) {
      const answer = success(e, answers, i);
      const usage = answer ? usageObject(e.obs) : undefined;
      if (!answer || !usage) continue;
      const saysSomething = answer.choices.some((c) => c.content !== '' || c.reasoning !== '' || c.toolCalls.length > 0);
      const problems = usageProblems(usage, e.call.body, saysSomething);
      if (problems.length > 0) yield contractViolation(budget, rec, 'budget', i, problems, answer);
    }
  },
  headline: (rec, v) => `${entryLabel(rec, v.entries[0]!)}: ${(v.problems ?? []).join('; ')}`,
};
