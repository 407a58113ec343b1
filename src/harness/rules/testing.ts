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
