// Prompt tokens (spec/properties.md): prompt_tokens counts the rendered prompt, so requests that
// render the same prompt report the same prompt_tokens — identical requests, and requests that differ
// only in how the answer is sampled or delivered (SAMPLING_FIELDS). The prompt is the request's
// whatever the sampling, so this holds even on a target whose answers vary. On a deterministic target
// two identical requests are left to `equality`, which compares whole answers, usage included.
import { canonicalJson, type Entry } from '../record.ts';
import { entryLabel } from '../violation.ts';
import { completed, contrast, type Rule } from './rule.ts';

/**
 * Fields that change the sampling or the delivery of an answer, never the prompt a chat template
 * renders (OpenAI's request fields; `n` is counted once: vLLM `len(prompt_token_ids)`, SGLang one
 * prompt per n). Not here: tools, tool_choice, response_format, reasoning_effort — servers render
 * those into the prompt.
 */
export const SAMPLING_FIELDS = [
  'temperature',
  'top_p',
  'seed',
  'max_tokens',
  'max_completion_tokens',
  'n',
  'stop',
  'logprobs',
  'top_logprobs',
  'presence_penalty',
  'frequency_penalty',
  'logit_bias',
  'user',
  'metadata',
  'stream',
  'stream_options',
  'store',
  'service_tier',
] as const;

/** The request without its sampling fields: equal for requests that render the same prompt. */
export const promptKey = (e: Entry): string =>
  canonicalJson(Object.fromEntries(Object.entries(e.call.body).filter(([k]) => !(SAMPLING_FIELDS as readonly string[]).includes(k))));

export const usage: Rule = {
  name: 'usage',
  *check(rec, answers, options) {
    const firstOf = new Map<string, number>();
    for (const [i, e] of rec.entries.entries()) {
      const prompt = answers[i]?.status === 200 ? answers[i]!.usage?.prompt : undefined;
      if (!completed(e) || prompt === undefined) continue;
      const key = promptKey(e);
      const ref = firstOf.get(key);
      if (ref === undefined) firstOf.set(key, i);
      else if (options.deterministic !== false && rec.entries[ref]!.key === e.key) continue;
      else if (answers[ref]!.usage!.prompt !== prompt) yield contrast(usage, rec, 'usage', ref, i, answers[ref]!, answers[i]!);
    }
  },
  headline(rec, v) {
    const [ref, bad] = v.entries as [number, number];
    const same = rec.entries[ref]!.key === rec.entries[bad]!.key ? 'the identical request' : 'the request with the same prompt (other sampling)';
    return `${entryLabel(rec, bad)} reports ${v.actual?.usage?.prompt} prompt_tokens; ${same} ${entryLabel(rec, ref)} reported ${v.expected?.usage?.prompt}`;
  },
};
