// The offline checker: given a recording, the first broken rule (spec/properties.md). The rules are
// universal — identical requests get identical answers in any mode, beside anything, after anything;
// every answer has the contract's shape; max_tokens k is a prefix of k + m; a stop string cuts the
// answer — so whichever property generated a history, any violation in it is reported.
import { answerOf, answerText, envelopeProblems, firstDifference, sameAnswer, shapeProblems, type Answer } from './answer.ts';
import type { Entry, Recording } from './run.ts';
import { requestKey } from './run.ts';

export type ViolationKind = 'envelope' | 'shape' | 'usage' | 'history' | 'concurrency' | 'stream' | 'expectation' | 'truncation' | 'stop' | 'cache';

export interface Violation {
  kind: ViolationKind;
  message: string;
  /** Indices into the recording's entries: the reference answer, then the offending one. */
  entries: number[];
  expected?: Answer;
  actual?: Answer;
  difference?: ReturnType<typeof firstDifference>;
  /** An earlier entry whose answer shows up in the wrong answer. */
  leakedFrom?: number;
}

export interface CheckOptions {
  /** Answers of each request alone on a cold server (by request key), for cache transparency. */
  baseline?: Map<string, Answer>;
  /** The target is deterministic in isolation; if not, equality rules are not checked. */
  deterministic?: boolean;
}

/**
 * Answers that count: not cancelled, not a malformed body, and not "busy" (429/503), which a server
 * may rightly say under load and which says nothing about the request's answer.
 */
const completed = (e: Entry) => !e.obs.cancelled && e.call.raw === undefined && e.obs.status !== 429 && e.obs.status !== 503;
const overlaps = (a: Entry, b: Entry) => a.obs.started < b.obs.ended && b.obs.started < a.obs.ended;
const textOf = (a: Answer) => a.choices.map((c) => `${c.reasoning}\u0000${c.content}\u0000${c.toolCalls.map((t) => t.name + t.arguments).join('\u0000')}`).join('\u0001');

/** The earlier entry (another request) whose answer the wrong answer repeats. */
function leakSource(rec: Recording, offending: number, actual: Answer): number | undefined {
  const actualText = textOf(actual);
  for (let i = offending - 1; i >= 0; i--) {
    const e = rec.entries[i]!;
    if (e.key === rec.entries[offending]!.key || !completed(e)) continue;
    if (sameAnswer(answerOf(e.obs), actual) && actualText.replace(/\u0000|\u0001/g, '') !== '') return i;
  }
  return undefined;
}

function differs(rec: Recording, kind: ViolationKind, ref: number, bad: number, expected: Answer, actual: Answer, why: string): Violation {
  const leakedFrom = leakSource(rec, bad, actual);
  const d = firstDifference(expected, actual);
  const at = d ? ` (first difference at ${d.path || 'the answer'}${d.position !== undefined ? `, character ${d.position}` : ''})` : '';
  const v: Violation = { kind, message: `${why}${at}`, entries: [ref, bad], expected, actual };
  if (d) v.difference = d;
  if (leakedFrom !== undefined) v.leakedFrom = leakedFrom;
  return v;
}

const label = (rec: Recording, i: number) => `${rec.entries[i]!.label} at step ${rec.entries[i]!.step + 1}`;

/** Tokens k of a greedy answer must be a prefix of k + m's: field by field, in the order harmony emits them. */
function isTruncationOf(short: Answer, long: Answer): boolean {
  const [s, l] = [short.choices[0], long.choices[0]];
  if (!s || !l) return true;
  if (!l.reasoning.startsWith(s.reasoning)) return false;
  const more = s.content !== '' || s.toolCalls.length > 0;
  if (more && s.reasoning !== l.reasoning) return false;
  if (!l.content.startsWith(s.content)) return false;
  for (const [i, call] of s.toolCalls.entries()) {
    const other = l.toolCalls[i];
    if (!other || other.name !== call.name || !other.arguments.startsWith(call.arguments)) return false;
    if (i < s.toolCalls.length - 1 && other.arguments !== call.arguments) return false;
  }
  return true;
}

export function checkRecording(rec: Recording, options: CheckOptions = {}): Violation | undefined {
  const entries = rec.entries;
  const answers = entries.map((e) => (completed(e) ? answerOf(e.obs) : undefined));

  for (const [i, e] of entries.entries()) {
    if (e.call.raw === undefined) continue;
    const problems = e.obs.status >= 400 && e.obs.status < 500 ? envelopeProblems(e.obs.json) : [`HTTP ${e.obs.status}, not a 4xx`, ...(e.obs.status >= 400 ? envelopeProblems(e.obs.json) : [])];
    if (problems.length > 0) return { kind: 'envelope', message: `${label(rec, i)} ${JSON.stringify(e.call.raw.length > 300 ? `${e.call.raw.slice(0, 300)}…` : e.call.raw)}: ${problems.join('; ')}`, entries: [i] };
  }

  for (const [i, e] of entries.entries()) {
    if (e.call.raw !== undefined) continue;
    const n = typeof e.call.body.n === 'number' ? e.call.body.n : 1;
    const problems = shapeProblems(e.obs, n);
    if (problems.length > 0) return { kind: 'shape', message: `${label(rec, i)}: ${problems.join('; ')}`, entries: [i], ...(answers[i] ? { actual: answers[i] } : {}) };
  }

  const deterministic = options.deterministic ?? true;
  // The prompt is the request's, whatever the sampling: identical requests count the same prompt
  // tokens even on a target whose answers vary. (A deterministic target's answers, usage included,
  // are compared whole below.)
  const promptOf = new Map<string, number>();
  for (const [i, e] of deterministic ? [] : entries.entries()) {
    const prompt = answers[i]?.status === 200 ? answers[i]!.usage?.prompt : undefined;
    if (!completed(e) || prompt === undefined) continue;
    const ref = promptOf.get(e.key);
    if (ref === undefined) promptOf.set(e.key, i);
    else if (answers[ref]!.usage!.prompt !== prompt) {
      return differs(rec, 'usage', ref, i, answers[ref]!, answers[i]!, `${label(rec, i)} reports ${prompt} prompt_tokens; the identical request ${label(rec, ref)} reported ${answers[ref]!.usage!.prompt}`);
    }
  }

  if (deterministic) {
    const firstOf = new Map<string, number>();
    for (const [i, e] of entries.entries()) {
      if (!completed(e)) continue;
      const ref = firstOf.get(e.key);
      if (ref === undefined) {
        firstOf.set(e.key, i);
        continue;
      }
      if (sameAnswer(answers[ref]!, answers[i]!)) continue;
      const [a, b] = [entries[ref]!, e];
      const kind: ViolationKind =
        a.call.stream !== b.call.stream ? 'stream' : entries.some((x) => x !== a && overlaps(x, a)) || entries.some((x) => x !== b && overlaps(x, b)) ? 'concurrency' : 'history';
      const why = {
        stream: `${label(rec, i)} (${b.call.stream ? 'stream' : 'JSON'}) answered differently from the identical ${a.call.stream ? 'stream' : 'JSON'} request ${label(rec, ref)}`,
        concurrency: `${label(rec, i)} answered differently from the identical request ${label(rec, ref)}; one of them ran beside other requests`,
        history: `${label(rec, i)} answered differently from the identical request ${label(rec, ref)}: the answer depends on what ran before`,
      }[kind as 'stream' | 'concurrency' | 'history'];
      return differs(rec, kind, ref, i, answers[ref]!, answers[i]!, why);
    }

    for (const { equal } of rec.scenario.expect ?? []) {
      const [a, b] = equal.map((step) => entries.findIndex((e) => e.step === step - 1 && completed(e)));
      if (a === undefined || b === undefined || a < 0 || b < 0) continue;
      if (!sameAnswer(answers[a]!, answers[b]!)) return differs(rec, 'expectation', a, b, answers[a]!, answers[b]!, `expected step ${equal[1]} to answer as step ${equal[0]} did`);
    }

    if (options.baseline) {
      for (const [i, e] of entries.entries()) {
        const cold = options.baseline.get(e.key);
        if (!completed(e) || cold === undefined || sameAnswer(cold, answers[i]!)) continue;
        return differs(rec, 'cache', -1, i, cold, answers[i]!, `${label(rec, i)} answered differently from the same request alone on a cold server (cache flushed)`);
      }
    }

    // max_tokens = k is a prefix of k + m, for the same request otherwise.
    const budget = (e: Entry) => Number(e.call.body.max_completion_tokens ?? e.call.body.max_tokens);
    const sansBudget = (e: Entry) => requestKey({ ...e.call.body, max_tokens: undefined, max_completion_tokens: undefined });
    for (const [i, a] of entries.entries()) {
      const short = answers[i];
      if (!short || short.choices[0]?.finish !== 'length') continue;
      for (const [j, b] of entries.entries()) {
        const long = answers[j];
        if (!long || !(budget(a) < budget(b)) || sansBudget(a) !== sansBudget(b)) continue;
        if (!isTruncationOf(short, long)) {
          return differs(rec, 'truncation', j, i, long, short, `${label(rec, i)} with max_tokens ${budget(a)} is not a prefix of ${label(rec, j)} with ${budget(b)}`);
        }
      }
    }
  }

  // A stop string ends the answer just before its first occurrence.
  for (const [i, e] of entries.entries()) {
    const stop = e.call.body.stop;
    if (typeof stop !== 'string' || !answers[i] || answers[i]!.status !== 200) continue;
    const base = entries.findIndex((x, j) => j < i && x.key === requestKey({ ...e.call.body, stop: undefined }) && completed(x) && answers[j]?.status === 200);
    if (base < 0 || !deterministic) continue;
    const full = answers[base]!.choices[0];
    const got = answers[i]!.choices[0];
    if (!full || !got) continue;
    const cut = full.content.indexOf(stop);
    const want = cut < 0 ? full.content : full.content.slice(0, cut);
    if (got.content !== want || got.content.includes(stop) || (cut >= 0 && got.finish !== 'stop')) {
      return differs(rec, 'stop', base, i, { ...answers[base]!, choices: [{ ...full, content: want, finish: cut >= 0 ? 'stop' : full.finish }] }, answers[i]!, `${label(rec, i)}: the answer is not the stop-free answer cut before ${JSON.stringify(stop)}`);
    }
  }
  return undefined;
}

/** A violation in a few lines: what was expected, what came back. */
export function describeViolation(rec: Recording, v: Violation): string {
  const lines = [`${v.kind}: ${v.message}`];
  if (v.expected) lines.push(`  expected: ${answerText(v.expected).replace(/\n/g, '\n            ')}`);
  if (v.actual) lines.push(`  actual:   ${answerText(v.actual).replace(/\n/g, '\n            ')}`);
  if (v.leakedFrom !== undefined) lines.push(`  the wrong answer is the answer of ${label(rec, v.leakedFrom)}`);
  return lines.join('\n');
}
