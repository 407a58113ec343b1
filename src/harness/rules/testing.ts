// Test support for the rule tests: hand-made recordings, one entry per step unless told otherwise.
import type { Observation } from '../client.ts';
import { requestKey, type Entry, type Recording } from '../record.ts';
import type { Body, Expectation } from '../scenario.ts';
import type { Violation } from '../violation.ts';
import { answersOf, type Rule, type RuleOptions } from './rule.ts';

export const body: Body = { model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 };

/** A JSON completion: one choice, usage adding up. */
export function completion(content: string, { prompt = 10, finish = 'stop' }: { prompt?: number; finish?: string | null } = {}): Observation {
  return {
    status: 200,
    cancelled: false,
    started: 0,
    ended: 1,
    json: {
      object: 'chat.completion',
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: finish }],
      usage: { prompt_tokens: prompt, completion_tokens: 2, total_tokens: prompt + 2 },
    },
  };
}

/** The same completion as a stream, with the usage chunk. */
export function streamed(content: string, { prompt = 10, finish = 'stop' }: { prompt?: number; finish?: string } = {}): Observation {
  const chunk = (delta: object, finish_reason: string | null = null) => ({
    id: 'c',
    object: 'chat.completion.chunk',
    choices: [{ index: 0, delta, finish_reason }],
  });
  const usage = { id: 'c', object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: prompt, completion_tokens: 2, total_tokens: prompt + 2 } };
  return {
    status: 200,
    cancelled: false,
    started: 0,
    ended: 1,
    events: [chunk({ role: 'assistant', content: '' }), chunk({ content }), chunk({}, finish), usage],
    done: true,
  };
}

export interface Sent {
  obs: Observation;
  body?: Body;
  label?: string;
  stream?: boolean;
  raw?: string;
  /** 0-based step; default: the entry's index. */
  step?: number;
  /** [started, ended]; default: one after another, so nothing overlaps. */
  at?: [number, number];
}

export function recording(sent: Sent[], expect?: Expectation[]): Recording {
  const entries = sent.map(({ obs, body: b = body, label = 'p1', stream = false, raw, step, at }, i): Entry => {
    const [started, ended] = at ?? [2 * i, 2 * i + 1];
    return { step: step ?? i, label, call: { body: b, stream, ...(raw !== undefined ? { raw } : {}) }, key: requestKey(b), obs: { ...obs, started, ended } };
  });
  const steps = Math.max(0, ...entries.map((e) => e.step + 1));
  return {
    scenario: { name: 't', requests: { p1: body }, steps: Array.from({ length: steps }, () => ({ send: 'p1' })), ...(expect ? { expect } : {}) },
    entries,
  };
}

/** Every violation the rule finds, not just the first. */
export const violationsOf = (rule: Rule, rec: Recording, options: RuleOptions = {}): Violation[] => [...rule.check(rec, answersOf(rec), options)];

/** One choice of a hand-made response; absent fields are left out of the message. */
export interface ChoiceSpec {
  content?: string | null;
  reasoning?: string;
  toolCalls?: Array<{ name: string; arguments?: string; id?: string; type?: string }>;
  finish?: string | null;
  /** `logprobs.content`; absent: `logprobs: null`. */
  logprobs?: unknown[];
}

export interface ResponseSpec {
  /** The usage object; default: 10 prompt + 2 completion tokens. */
  usage?: Record<string, unknown>;
  model?: string;
}

const defaultUsage = { prompt_tokens: 10, completion_tokens: 2, total_tokens: 12 };
const toolCallsOf = (c: ChoiceSpec) =>
  (c.toolCalls ?? []).map((t, j) => ({ id: t.id ?? `call_${j}`, type: t.type ?? 'function', function: { name: t.name, arguments: t.arguments ?? '{}' } }));

/** A JSON completion with these choices. */
export function chatJson(choices: ChoiceSpec[], { usage = defaultUsage, model }: ResponseSpec = {}): Observation {
  return {
    status: 200,
    cancelled: false,
    started: 0,
    ended: 1,
    json: {
      object: 'chat.completion',
      ...(model !== undefined ? { model } : {}),
      choices: choices.map((c, index) => ({
        index,
        message: {
          role: 'assistant',
          content: c.content === undefined ? '' : c.content,
          ...(c.reasoning !== undefined ? { reasoning: c.reasoning } : {}),
          ...(c.toolCalls ? { tool_calls: toolCallsOf(c) } : {}),
        },
        logprobs: c.logprobs ? { content: c.logprobs } : null,
        finish_reason: c.finish === undefined ? (c.toolCalls?.length ? 'tool_calls' : 'stop') : c.finish,
      })),
      usage,
    },
  };
}

/** The same response as a stream: per choice a role chunk, its deltas, its finish; then the usage chunk. */
export function chatStream(choices: ChoiceSpec[], { usage = defaultUsage, model }: ResponseSpec = {}): Observation {
  const chunk = (choice: object[], extra: object = {}) => ({
    id: 'c',
    object: 'chat.completion.chunk',
    ...(model !== undefined ? { model } : {}),
    choices: choice,
    ...extra,
  });
  const events: object[] = [];
  choices.forEach((c, index) => {
    const at = (delta: object, more: object = {}) => events.push(chunk([{ index, delta, logprobs: null, finish_reason: null, ...more }]));
    at({ role: 'assistant' });
    if (c.reasoning) at({ reasoning: c.reasoning });
    if (c.content) at({ content: c.content }, c.logprobs ? { logprobs: { content: c.logprobs } } : {});
    toolCallsOf(c).forEach((t, j) => {
      at({ tool_calls: [{ index: j, id: t.id, type: t.type, function: { name: t.function.name, arguments: '' } }] });
      at({ tool_calls: [{ index: j, function: { arguments: t.function.arguments } }] });
    });
    events.push(
      chunk([{ index, delta: {}, logprobs: null, finish_reason: c.finish === undefined ? (c.toolCalls?.length ? 'tool_calls' : 'stop') : c.finish }]),
    );
  });
  events.push(chunk([], { usage }));
  return { status: 200, cancelled: false, started: 0, ended: 1, events, done: true };
}

const utf8Bytes = (text: string) => [...new TextEncoder().encode(text)];

/** A log-prob entry with its bytes; `top` lists alternatives as [token, logprob]. */
export function lp(token: string, logprob = -0.5, top: Array<[string, number]> = []): Record<string, unknown> {
  return { token, logprob, bytes: utf8Bytes(token), top_logprobs: top.map(([t, l]) => ({ token: t, logprob: l, bytes: utf8Bytes(t) })) };
}
