// What the contract rules read besides the answer (answer.ts folds these away or never keeps them):
// the raw log-prob entries and tool-call ids of each choice, the `model` of every object, and the
// usage object, from a JSON body or from every chunk of a stream. Responses are untrusted JSON.
import type { Answer } from '../answer.ts';
import type { Observation } from '../client.ts';
import type { Entry, Recording } from '../record.ts';
import type { Violation, ViolationKind } from '../violation.ts';
import { completed, leakSource, violation, type Answers, type Rule } from './rule.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = Record<string, any>;

export const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const objects = (v: unknown): Json[] => (Array.isArray(v) ? v.filter(isObject) : []);

/** The answer of an entry that counts and succeeded (200, no in-band error), else undefined. */
export function success(e: Entry, answers: Answers, i: number): Answer | undefined {
  const a = answers[i];
  return completed(e) && a !== undefined && a.status === 200 && a.error === undefined ? a : undefined;
}

export interface RawChoice {
  /** `logprobs.content` entries, in order (a stream's chunks concatenated). */
  logprobs: unknown[];
  /** Each tool call's `id` and `type` as sent (a stream's first delta of each call). */
  toolCalls: Array<{ id: unknown; type: unknown }>;
}

/** The JSON body, or the stream's objects (chunks) that carry no error. */
function objectsOf(obs: Observation): Json[] {
  if (obs.events !== undefined) return obs.events.filter((e): e is Json => isObject(e) && !('error' in e));
  return isObject(obs.json) ? [obs.json] : [];
}

/** Per choice index, the raw fields the fold does not keep. */
export function rawChoices(obs: Observation): RawChoice[] {
  const out: RawChoice[] = [];
  const stream = obs.events !== undefined;
  for (const object of objectsOf(obs)) {
    objects(object.choices).forEach((c, k) => {
      const index = stream && typeof c.index === 'number' ? c.index : k;
      const choice = (out[index] ??= { logprobs: [], toolCalls: [] });
      if (isObject(c.logprobs) && Array.isArray(c.logprobs.content)) choice.logprobs.push(...c.logprobs.content);
      if (!stream) {
        const message = isObject(c.message) ? c.message : {};
        for (const tc of objects(message.tool_calls)) choice.toolCalls.push({ id: tc.id, type: tc.type });
        return;
      }
      const delta = isObject(c.delta) ? c.delta : {};
      for (const tc of objects(delta.tool_calls)) {
        const at = typeof tc.index === 'number' ? tc.index : 0;
        choice.toolCalls[at] ??= { id: tc.id, type: tc.type };
      }
    });
  }
  return out;
}

/** The `model` of the JSON body, or of every chunk of a stream. */
export const modelsOf = (obs: Observation): unknown[] => objectsOf(obs).map((o) => o.model);

/** The usage object: the JSON body's, or the last one a stream sent. */
export function usageObject(obs: Observation): Json | undefined {
  const withUsage = objectsOf(obs).filter((o) => isObject(o.usage));
  return withUsage.at(-1)?.usage as Json | undefined;
}

/** The prefix-cache tokens a response reports (`usage.prompt_tokens_details.cached_tokens`), if any. */
export function cachedTokens(obs: Observation): number | undefined {
  const details = usageObject(obs)?.prompt_tokens_details;
  const n = typeof details === 'object' && details !== null ? (details as Record<string, unknown>).cached_tokens : undefined;
  return typeof n === 'number' ? n : undefined;
}

/** The request's stop strings (`stop` is a string or an array of strings). */
export function stopStrings(body: Json): string[] {
  const stop = body.stop;
  if (typeof stop === 'string') return stop === '' ? [] : [stop];
  return Array.isArray(stop) ? stop.filter((s): s is string => typeof s === 'string' && s !== '') : [];
}

/** `n` as asked (absent: 1). */
export const choicesAsked = (body: Json): number => (typeof body.n === 'number' ? body.n : 1);

/**
 * A violation of the contract by one answer, with its problems; where the answer is another
 * request's (a leaked answer breaks the contract of the request it did not answer), that one too.
 */
export function contractViolation(rule: Rule, rec: Recording, kind: ViolationKind, i: number, problems: string[], actual: Answer): Violation {
  const leakedFrom = leakSource(rec, i, actual);
  return violation(rule, rec, { kind, entries: [i], problems, actual, ...(leakedFrom !== undefined ? { leakedFrom } : {}) });
}
