// Runs a scenario against a target and records every exchange (Elle-style: the recording is the
// evidence, checked afterwards by the rules in rules/, and can be checked again offline).
import { answerOf, type Answer } from './answer.ts';
import type { ChatClient, ChatCall, Observation } from './client.ts';
import { memberOf, type Body, type Scenario } from './scenario.ts';

export interface Entry {
  /** 0-based index of the scenario step that sent it. */
  step: number;
  /** The request's name, or a description of a derived request (`p1 continued`). */
  label: string;
  call: ChatCall;
  /** Identity of the request for comparisons: the body without the stream fields, keys sorted. */
  key: string;
  obs: Observation;
  /** Not sent by a step: the request alone on a flushed server (a cold baseline's run). */
  baseline?: boolean;
}

export interface Recording {
  scenario: Scenario;
  entries: Entry[];
}

/** JSON with sorted keys: two bodies with the same fields are the same request. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

export const requestKey = (body: Body): string => {
  const { stream: _stream, stream_options: _options, ...rest } = body;
  return canonicalJson(rest);
};

/**
 * The conversation continued from an answer, as a client would: the assistant's message (reasoning,
 * content, tool calls with ids of our own), then a result for each tool call, or a user turn.
 */
export function continuation(body: Body, answer: Answer): Body {
  const choice = answer.choices[0] ?? { content: '', reasoning: '', toolCalls: [] };
  const calls = choice.toolCalls.map((t, i) => ({ id: `call_c${i}`, type: 'function', function: { name: t.name, arguments: t.arguments } }));
  const assistant: Record<string, unknown> = { role: 'assistant', content: choice.content === '' && calls.length > 0 ? null : choice.content };
  if (choice.reasoning !== '') assistant.reasoning = choice.reasoning;
  if (calls.length > 0) assistant.tool_calls = calls;
  const next = calls.length > 0 ? calls.map((c) => ({ role: 'tool', tool_call_id: c.id, content: '{"ok":true}' })) : [{ role: 'user', content: 'Go on.' }];
  return { ...body, messages: [...(body.messages as unknown[]), assistant, ...next] };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs the scenario's steps in order (a burst's members concurrently), recording every exchange.
 * A request that timed out ends the scenario after its step: the target hung, which is the verdict
 * (rules/deadline.ts), and every further request would only wait out its own deadline.
 */
export async function recordScenario(client: ChatClient, scenario: Scenario): Promise<Recording> {
  const entries: Entry[] = [];
  const send = async (step: number, label: string, body: Body, stream: boolean, cancelAfter?: number, burst?: number): Promise<Entry> => {
    const call: ChatCall = { body, stream, ...(cancelAfter !== undefined ? { cancelAfter } : {}), ...(burst !== undefined ? { burst } : {}) };
    const entry: Entry = { step, label, call, key: requestKey(body), obs: await client.chat(call) };
    entries.push(entry);
    return entry;
  };
  const body = (name: string) => scenario.requests[name]!;
  for (const [i, step] of scenario.steps.entries()) {
    if ('send' in step) await send(i, step.send, body(step.send), step.stream ?? false);
    else if ('burst' in step) {
      await Promise.all(
        step.burst.map(async (m) => {
          const { name, stream, cancelAfter, delayMs } = memberOf(m, step);
          if (delayMs) await sleep(delayMs);
          return send(i, name, body(name), stream, cancelAfter, step.burst.length);
        }),
      );
    } else if ('cancel' in step) {
      const partial = await send(i, `${step.cancel} (cancelled)`, body(step.cancel), true, step.after);
      if (!partial.obs.timedOut) {
        await send(i, `${step.cancel} continued from the partial answer`, continuation(body(step.cancel), answerOf(partial.obs)), false);
      }
    } else if ('continue' in step) {
      const first = await send(i, step.continue, body(step.continue), step.stream ?? false);
      if (first.obs.status === 200 && !first.obs.timedOut) {
        await send(i, `${step.continue} continued`, continuation(body(step.continue), answerOf(first.obs)), step.stream ?? false);
      }
    } else if ('stop' in step) {
      const first = await send(i, step.stop, body(step.stop), false);
      const content = answerOf(first.obs).choices[0]?.content ?? '';
      const stop = [...content].slice(step.from, step.from + step.length).join('');
      if (stop !== '' && !first.obs.timedOut)
        await send(i, `${step.stop} with stop ${JSON.stringify(stop)}`, { ...body(step.stop), stop }, step.stream ?? false);
    } else if ('raw' in step) {
      entries.push({
        step: i,
        label: 'malformed body',
        call: { body: {}, stream: false, raw: step.raw },
        key: `raw:${step.raw}`,
        obs: await client.raw(step.raw),
      });
    } else if (!(await client.flush())) throw new Error('the scenario flushes the cache, but the target has no cache flush endpoint');
    if (entries.some((e) => e.obs.timedOut)) break;
  }
  return { scenario, entries };
}

/** Two exchanges were in flight at the same time (by the client's clock). */
export const overlap = (a: Observation, b: Observation) => a.started < b.ended && b.started < a.ended;

/**
 * The bursts of a recording, and how many of them achieved concurrency: every member was in flight
 * while at least one other member was. A burst whose requests ran one after another (a fast target,
 * a slow client) is no evidence that concurrency leaves answers alone.
 */
export function burstOverlap(rec: Recording): { sent: number; overlapped: number } {
  let sent = 0;
  let overlapped = 0;
  rec.scenario.steps.forEach((step, i) => {
    if (!('burst' in step)) return;
    const members = rec.entries.filter((e) => e.step === i && !e.baseline);
    if (members.length < 2) return;
    sent++;
    if (members.every((a) => members.some((b) => b !== a && overlap(a.obs, b.obs)))) overlapped++;
  });
  return { sent, overlapped };
}
