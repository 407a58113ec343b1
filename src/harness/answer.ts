// What an observation means: its canonical answer (what must be identical for identical requests),
// and the ways its shape breaks the Chat Completions contract. A stream is folded exactly as a client
// folds it; the normalisation (spec/properties.md "Normalisation") drops what may legitimately vary:
// ids, created, system_fingerprint, cached tokens, tool-call ids, and null vs "" content. Log-probs
// are kept whole: token, logprob, bytes and the top alternatives (token and logprob).
import type { Observation } from './client.ts';

export interface ChoiceAnswer {
  content: string;
  reasoning: string;
  toolCalls: Array<{ name: string; arguments: string }>;
  finish: string | null;
  logprobs?: LogprobAnswer[];
}

/**
 * One log-prob entry as compared: `bytes` and `top_logprobs` (token and logprob) only where the
 * response has them, so an answer without them folds as it always did.
 */
export interface LogprobAnswer {
  token: string;
  logprob: number;
  bytes?: number[];
  top_logprobs?: Array<{ token: string; logprob: number }>;
}

export interface Answer {
  status: number;
  error?: { type: unknown; code: unknown; param: unknown };
  choices: ChoiceAnswer[];
  usage?: { prompt: number; completion: number; total: number };
}

// Response bodies are untrusted JSON, read field by field with explicit checks (isObject, typeof).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const text = (v: unknown) => (typeof v === 'string' ? v : '');
/** The objects of what should be an array of objects (servers under test send anything). */
const objects = (v: unknown): Json[] => (Array.isArray(v) ? v.map((x) => (isObject(x) ? x : {})) : []);
function logprobEntry(e: Json): LogprobAnswer {
  const entry: LogprobAnswer = { token: String(e.token), logprob: Number(e.logprob) };
  if (Array.isArray(e.bytes)) entry.bytes = e.bytes.map(Number);
  if (Array.isArray(e.top_logprobs)) entry.top_logprobs = objects(e.top_logprobs).map((t) => ({ token: String(t.token), logprob: Number(t.logprob) }));
  return entry;
}
const logprobsOf = (lp: unknown) => (isObject(lp) && Array.isArray(lp.content) ? objects(lp.content).map(logprobEntry) : undefined);

function usageOf(u: unknown): Answer['usage'] {
  if (!isObject(u)) return undefined;
  return { prompt: Number(u.prompt_tokens), completion: Number(u.completion_tokens), total: Number(u.total_tokens) };
}

function errorOf(e: unknown): Answer['error'] {
  const err = isObject(e) && isObject(e.error) ? e.error : e;
  return isObject(err) ? { type: err.type, code: err.code, param: err.param } : { type: undefined, code: undefined, param: undefined };
}

/** A stream folded the way a client folds it: text concatenated, tool calls assembled by index. */
function foldStream(events: unknown[]): { choices: ChoiceAnswer[]; usage?: Answer['usage']; error?: Answer['error'] } {
  const choices: ChoiceAnswer[] = [];
  let usage: Answer['usage'];
  for (const chunk of events) {
    if (!isObject(chunk)) continue;
    if ('error' in chunk) return { choices, error: errorOf(chunk) };
    if (chunk.usage) usage = usageOf(chunk.usage);
    for (const c of objects(chunk.choices)) {
      const choice = (choices[Number(c.index) || 0] ??= { content: '', reasoning: '', toolCalls: [], finish: null });
      const d = isObject(c.delta) ? c.delta : {};
      choice.content += text(d.content);
      choice.reasoning += text(d.reasoning) + text(d.reasoning_content);
      for (const tc of objects(d.tool_calls)) {
        const call = (choice.toolCalls[Number(tc.index) || 0] ??= { name: '', arguments: '' });
        call.name += text(tc.function?.name);
        call.arguments += text(tc.function?.arguments);
      }
      if (c.finish_reason != null) choice.finish = String(c.finish_reason);
      const lp = logprobsOf(c.logprobs);
      if (lp) choice.logprobs = [...(choice.logprobs ?? []), ...lp];
    }
  }
  return usage ? { choices, usage } : { choices };
}

/** The canonical answer of a completed (not cancelled) observation. */
export function answerOf(obs: Observation): Answer {
  if (obs.events !== undefined) {
    const folded = foldStream(obs.events);
    return { status: obs.status, ...folded };
  }
  const body = obs.json;
  if (obs.status >= 400 || !isObject(body) || !Array.isArray(body.choices)) return { status: obs.status, error: errorOf(body), choices: [] };
  const choices = objects(body.choices).map((c): ChoiceAnswer => {
    const m = isObject(c.message) ? c.message : {};
    const answer: ChoiceAnswer = {
      content: text(m.content),
      reasoning: text(m.reasoning) + text(m.reasoning_content),
      toolCalls: objects(m.tool_calls).map((tc) => ({ name: text(tc.function?.name), arguments: text(tc.function?.arguments) })),
      finish: c.finish_reason == null ? null : String(c.finish_reason),
    };
    const lp = logprobsOf(c.logprobs);
    if (lp) answer.logprobs = lp;
    return answer;
  });
  const usage = usageOf(body.usage);
  return usage ? { status: obs.status, choices, usage } : { status: obs.status, choices };
}

/**
 * Two answers to identical requests, compared. A stream without a usage chunk (the target cannot
 * send one) is compared without usage.
 */
export function sameAnswer(a: Answer, b: Answer): boolean {
  const strip = (x: Answer) => (a.usage && b.usage ? x : { ...x, usage: undefined });
  return JSON.stringify(strip(a)) === JSON.stringify(strip(b));
}

/** The answer as text a person reads in a report. */
export function answerText(a: Answer): string {
  if (a.error) return `HTTP ${a.status} ${JSON.stringify(a.error)}`;
  return a.choices
    .map((c) => {
      const parts: string[] = [];
      if (c.reasoning) parts.push(`reasoning: ${JSON.stringify(c.reasoning)}`);
      for (const t of c.toolCalls) parts.push(`tool call ${t.name}(${t.arguments})`);
      if (c.content || c.toolCalls.length === 0) parts.push(`content: ${JSON.stringify(c.content)}`);
      parts.push(`finish_reason: ${c.finish}`);
      return parts.join('; ');
    })
    .concat(a.usage ? [`usage: ${a.usage.prompt} prompt + ${a.usage.completion} completion = ${a.usage.total} tokens`] : [])
    .join('\n');
}

/** Where two answers first differ: a JSON path and, in a string, the character position. */
export function firstDifference(
  expected: unknown,
  actual: unknown,
  path = '',
): { path: string; position?: number; expected: unknown; actual: unknown } | undefined {
  if (JSON.stringify(expected) === JSON.stringify(actual)) return undefined;
  if (typeof expected === 'string' && typeof actual === 'string') {
    let i = 0;
    while (i < expected.length && i < actual.length && expected[i] === actual[i]) i++;
    return { path, position: i, expected, actual };
  }
  if (isObject(expected) && isObject(actual)) {
    for (const k of new Set([...Object.keys(expected), ...Object.keys(actual)])) {
      const d = firstDifference(expected[k], actual[k], path ? `${path}.${k}` : k);
      if (d) return d;
    }
  }
  if (Array.isArray(expected) && Array.isArray(actual)) {
    for (let i = 0; i < Math.max(expected.length, actual.length); i++) {
      const d = firstDifference(expected[i], actual[i], `${path}[${i}]`);
      if (d) return d;
    }
  }
  return { path, expected, actual };
}

/**
 * The contract a single observation must meet whatever ran before it (spec/properties.md "Shape"):
 * the JSON or stream shape, tool-call deltas, usage arithmetic, and the error envelope.
 */
export function shapeProblems(obs: Observation, choicesAsked = 1): string[] {
  const problems: string[] = [];
  if (obs.problem) problems.push(obs.problem);
  if (obs.status >= 500) problems.push(`HTTP ${obs.status} for a well-formed request`);
  if (obs.status >= 400) {
    const body = obs.events ? obs.events[0] : obs.json;
    problems.push(...envelopeProblems(body));
    return problems;
  }
  const usageProblem = (u: unknown, where: string) => {
    if (!isObject(u)) return;
    if (u.total_tokens !== u.prompt_tokens + u.completion_tokens)
      problems.push(`${where}: total_tokens ${u.total_tokens} ≠ prompt_tokens ${u.prompt_tokens} + completion_tokens ${u.completion_tokens}`);
  };
  if (obs.events === undefined) {
    const body = obs.json as Json;
    if (!isObject(body) || body.object !== 'chat.completion') problems.push(`object is ${JSON.stringify(body?.object)}, not "chat.completion"`);
    const choices = Array.isArray(body?.choices) ? (body.choices as Json[]) : [];
    if (choices.length !== choicesAsked) problems.push(`${choices.length} choices for n = ${choicesAsked}`);
    choices.forEach((c, i) => {
      if (c.index !== i) problems.push(`choices[${i}].index is ${c.index}`);
      const calls = c.message?.tool_calls;
      if (
        calls !== undefined &&
        calls !== null &&
        (!Array.isArray(calls) || calls.some((t: unknown) => !isObject(t) || typeof (t as Json).id !== 'string' || !isObject((t as Json).function)))
      ) {
        problems.push(`choices[${i}].message.tool_calls is not a list of {id, type, function}: ${JSON.stringify(calls).slice(0, 200)}`);
      }
      if (c.message?.role !== 'assistant') problems.push(`choices[${i}].message.role is ${JSON.stringify(c.message?.role)}`);
      if (!['stop', 'length', 'tool_calls', 'content_filter'].includes(c.finish_reason))
        problems.push(`choices[${i}].finish_reason is ${JSON.stringify(c.finish_reason)}`);
    });
    usageProblem(body?.usage, 'usage');
    return problems;
  }
  if (obs.cancelled) return problems;
  const events = obs.events.filter(isObject);
  const inBand = events.find((e) => 'error' in e);
  if (inBand) return [...problems, ...envelopeProblems(inBand).map((p) => `in-band error: ${p}`)];
  if (!obs.done) problems.push('the stream did not end with data: [DONE]');
  if (new Set(events.map((e) => e.id)).size > 1) problems.push('chunks carry different ids');
  if (events.some((e) => e.object !== 'chat.completion.chunk')) problems.push('a chunk is not a "chat.completion.chunk"');
  const seen = new Map<number, { role: boolean; finish: number; calls: Set<number> }>();
  for (const [k, e] of events.entries()) {
    if (Array.isArray(e.choices) && e.choices.length === 0 && e.usage) {
      usageProblem(e.usage, 'the usage chunk');
      if (k !== events.length - 1) problems.push('the usage chunk is not the last chunk');
      continue;
    }
    for (const c of (Array.isArray(e.choices) ? e.choices : []) as Json[]) {
      const s = seen.get(c.index) ?? { role: false, finish: 0, calls: new Set<number>() };
      seen.set(c.index, s);
      if (s.finish > 0) problems.push(`choice ${c.index} has a chunk after its finish_reason`);
      if (c.delta?.role !== undefined) s.role = true;
      if (c.finish_reason != null) s.finish++;
      for (const tc of (Array.isArray(c.delta?.tool_calls) ? c.delta.tool_calls : []) as Json[]) {
        if (typeof tc.index !== 'number') {
          problems.push('a tool-call delta has no index');
          continue;
        }
        if (!s.calls.has(tc.index)) {
          if (tc.index !== s.calls.size) problems.push(`tool-call index ${tc.index} after ${s.calls.size} calls (indices must count up from 0)`);
          if (typeof tc.id !== 'string' || tc.type !== 'function' || typeof tc.function?.name !== 'string') {
            problems.push(`the first delta of tool call ${tc.index} lacks id, type "function" or function.name`);
          }
          s.calls.add(tc.index);
        } else if (tc.function?.name) problems.push(`tool call ${tc.index} repeats function.name in a later delta`);
      }
    }
  }
  for (const [index, s] of seen) {
    if (!s.role) problems.push(`choice ${index} never sends delta.role`);
    if (s.finish !== 1) problems.push(`choice ${index} has ${s.finish} finish_reason chunks`);
  }
  // Usage comes in a stream exactly when stream_options.include_usage asks for it (OpenAI's chunk
  // object: "only present when you set stream_options"); unknown for a recording that does not say.
  const hasUsage = events.some((e) => isObject(e.usage));
  if (obs.usageAsked === true && obs.done && !hasUsage) problems.push('stream_options.include_usage was accepted and ignored: no usage chunk');
  if (obs.usageAsked === false && hasUsage) problems.push('a usage chunk that stream_options did not ask for');
  return problems;
}

/** The OpenAI error envelope: `{error:{message: string, type, param, code}}`. */
export function envelopeProblems(body: unknown): string[] {
  if (!isObject(body) || !isObject(body.error)) return [`the error body is not {"error":{...}}: ${JSON.stringify(body)?.slice(0, 200)}`];
  const e = body.error;
  const problems: string[] = [];
  if (typeof e.message !== 'string' || e.message === '') problems.push('error.message is not a non-empty string');
  for (const k of ['type', 'param', 'code']) if (!(k in e)) problems.push(`error.${k} is missing`);
  return problems;
}
