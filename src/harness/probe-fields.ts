// Which optional request fields a target takes, and whether they do what the contract says
// (spec/properties.md "Request fields"). Generated traffic sends only fields found used or accepted;
// the others are left out, and the summary says which and why.
import { answerOf, type Answer } from './answer.ts';
import type { ChatClient, Observation } from './client.ts';
import { REQUEST_FIELDS, type FieldSupport, type RequestField } from './arbitraries/options.ts';

/** Values of a field probed on their own: `tool_choice:none`, `response_format:json_object`. */
export const PROBED_VALUES = [
  'tool_choice:auto',
  'tool_choice:none',
  'tool_choice:required',
  'tool_choice:named',
  'response_format:text',
  'response_format:json_object',
] as const;

export type ProbedValue = (typeof PROBED_VALUES)[number];

export type FieldSupportMap = Record<RequestField | ProbedValue, FieldSupport>;

const PROBE_TOOL = {
  type: 'function',
  function: { name: 'get_time', description: 'Current UTC time.', parameters: { type: 'object', properties: {} } },
};

const ok = (o: Observation) => o.status === 200 && !o.problem;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The first choice's raw log-prob entries of a JSON response. */
function logprobEntries(o: Observation): unknown[] | undefined {
  const choice = isObject(o.json) && Array.isArray(o.json.choices) ? o.json.choices[0] : undefined;
  const lp = isObject(choice) ? choice.logprobs : undefined;
  return isObject(lp) && Array.isArray(lp.content) ? lp.content : undefined;
}

/**
 * Sends the probe request once per field (and per probed value), each time with that field alone on
 * top. `first` is the plain request's answer (for a stop string from its own content); `seed` what
 * the probe learnt about seeds.
 */
export async function probeFields(
  client: ChatClient,
  base: Record<string, unknown>,
  first: Answer,
  seed: { accepted: boolean; reproducible: boolean },
): Promise<FieldSupportMap> {
  const send = (extra: Record<string, unknown>, drop: string[] = []) => {
    const body: Record<string, unknown> = { ...base, ...extra };
    for (const k of drop) delete body[k];
    return client.chat({ body, stream: false });
  };
  /** 4xx (or a broken answer): refused; otherwise what `effect` says (used / ignored), or accepted. */
  const verdict = async (extra: Record<string, unknown>, effect?: (o: Observation) => boolean | undefined, drop: string[] = []): Promise<FieldSupport> => {
    const o = await send(extra, drop);
    if (!ok(o)) return 'refused';
    const seen = effect?.(o);
    return seen === undefined ? 'accepted' : seen ? 'used' : 'ignored';
  };
  const completion = (o: Observation) => answerOf(o).usage?.completion;
  const content = first.choices[0]?.content ?? '';
  const chars = [...content];
  // A stop string from the plain answer's own text, past its start: the answer with it must end before it.
  const stopString = chars.length >= 2 ? chars[1]! : undefined;
  const tools = { tools: [PROBE_TOOL] };

  const out: Partial<FieldSupportMap> = {
    temperature: 'used',
    max_tokens: 'used',
    seed: !seed.accepted ? 'refused' : seed.reproducible ? 'used' : 'accepted',
  };
  out.top_p = await verdict({ top_p: 0.5 });
  out.max_completion_tokens = await verdict(
    { max_completion_tokens: 1 },
    (o) => {
      const c = completion(o);
      return c === undefined ? undefined : c <= 1;
    },
    ['max_tokens'],
  );
  out.n = await verdict({ n: 2 }, (o) => answerOf(o).choices.length === 2);
  out.stop = await verdict(
    { stop: stopString ?? '\n' },
    stopString === undefined ? undefined : (o) => !(answerOf(o).choices[0]?.content ?? '').includes(stopString),
  );
  out.logprobs = await verdict({ logprobs: true }, (o) => logprobEntries(o) !== undefined);
  out.top_logprobs = await verdict({ logprobs: true, top_logprobs: 2 }, (o) => {
    const entries = logprobEntries(o);
    if (entries === undefined || entries.length === 0) return undefined;
    return entries.every((e) => isObject(e) && Array.isArray(e.top_logprobs) && e.top_logprobs.length >= 1);
  });
  out.presence_penalty = await verdict({ presence_penalty: 0.5 });
  out.frequency_penalty = await verdict({ frequency_penalty: 0.5 });
  out.logit_bias = await verdict({ logit_bias: { '0': -1 } });
  out['response_format:text'] = await verdict({ response_format: { type: 'text' } });
  out['response_format:json_object'] = await verdict({
    response_format: { type: 'json_object' },
    messages: [{ role: 'user', content: 'Answer in JSON: what is 2+2?' }],
  });
  out.response_format = out['response_format:text'] === 'refused' && out['response_format:json_object'] === 'refused' ? 'refused' : 'accepted';
  out['tool_choice:auto'] = await verdict({ ...tools, tool_choice: 'auto' });
  out['tool_choice:none'] = await verdict({ ...tools, tool_choice: 'none' }, (o) => answerOf(o).choices[0]?.toolCalls.length === 0);
  // Forced calls: an answer that ended on its own (not by the budget) without a call ignored the choice.
  const forced = (o: Observation) => {
    const c = answerOf(o).choices[0];
    return c === undefined || c.finish === 'length' ? undefined : c.toolCalls.length > 0 || c.finish !== 'stop';
  };
  out['tool_choice:required'] = await verdict({ ...tools, tool_choice: 'required' }, forced);
  out['tool_choice:named'] = await verdict({ ...tools, tool_choice: { type: 'function', function: { name: 'get_time' } } }, forced);
  const choices = PROBED_VALUES.filter((v) => v.startsWith('tool_choice:')).map((v) => out[v]);
  out.tool_choice = choices.some((s) => s === 'used' || s === 'accepted') ? 'accepted' : 'refused';
  out.parallel_tool_calls = await verdict({ ...tools, parallel_tool_calls: false });
  out.reasoning_effort = await verdict({ reasoning_effort: 'low' });
  out.user = await verdict({ user: 'amnesia-probe' });
  for (const f of [...REQUEST_FIELDS, ...PROBED_VALUES]) out[f] ??= 'accepted';
  return out as FieldSupportMap;
}

export const usableSupport = (s: FieldSupport | undefined): boolean => s === 'used' || s === 'accepted';

/** The fields and values left out of generated traffic, with the reason: `n (ignored)`. */
export function leftOutFields(fields: FieldSupportMap): string[] {
  return (Object.entries(fields) as Array<[string, FieldSupport]>).filter(([, s]) => !usableSupport(s)).map(([f, s]) => `${f.replace(':', ' ')} (${s})`);
}
