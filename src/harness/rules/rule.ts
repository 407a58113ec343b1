// What a rule is, and what every rule shares: which answers count, and how a violation is made from
// its data (the first difference, the request whose answer leaked in, the headline).
import { answerOf, firstDifference, sameAnswer, type Answer } from '../answer.ts';
import type { Entry, Recording } from '../record.ts';
import { classify, sameTokens, type CompareMode } from '../classify.ts';
import type { Finding, Violation, ViolationKind } from '../violation.ts';

export interface RuleOptions {
  /** Answers of each request alone on a cold server (by request key), for cache transparency. */
  baseline?: Map<string, Answer>;
  /** How the baseline's server was made cold: restarted (a fresh server), or its cache flushed. */
  baselineBy?: 'restart' | 'flush';
  /** The target is deterministic in isolation; if not (false), the equality rules are not checked. */
  deterministic?: boolean;
  /**
   * Choice i of a seeded request with n choices answers as the same request with `seed + i` and one
   * choice (the probe's finding, probe.ts `nSeedOffset`); checked by rules/choices.ts when true.
   */
  nSeedOffset?: boolean;
  /** What a difference must be to count (classify.ts): a violation of a tolerated class is passed over. */
  compare?: CompareMode;
  /**
   * Problems the check has already reported as contract breaks of one request (violation.ts
   * `problemKey`, contract-breaks.ts): an answer's known problems break no rule.
   */
  known?: ReadonlySet<string>;
}

/** Each entry's answer if it counts (`completed`), by entry index; computed once per recording. */
export type Answers = ReadonlyArray<Answer | undefined>;

export interface Rule {
  /** The file's name, and what its violations carry in `rule`. */
  name: string;
  /**
   * The rule's violations, in the order it finds them. A generator: only the first violation of a
   * recording is reported, and a recording is checked for every scenario and shrinking step.
   */
  check(rec: Recording, answers: Answers, options: RuleOptions): Iterable<Violation>;
  /** A violation in one line, from its data; `messageOf` adds the first difference. */
  headline(rec: Recording, v: Finding): string;
}

/**
 * Answers that count: not cancelled, not a malformed body, and not "busy" (429/503), which a server
 * may rightly say under load and which says nothing about the request's answer.
 */
export const completed = (e: Entry): boolean => !e.obs.cancelled && e.call.raw === undefined && e.obs.status !== 429 && e.obs.status !== 503;

export const answersOf = (rec: Recording): Answers => rec.entries.map((e) => (completed(e) ? answerOf(e.obs) : undefined));

/** The headline, then where the answers first differ. */
export function messageOf(rule: Rule, rec: Recording, v: Finding): string {
  const d = v.difference;
  return `${rule.headline(rec, v)}${d ? ` (first difference at ${d.path || 'the answer'}${d.position !== undefined ? `, character ${d.position}` : ''})` : ''}`;
}

export function violation(rule: Rule, rec: Recording, found: Omit<Finding, 'rule'>): Violation {
  const v: Finding = { rule: rule.name, ...found };
  return { ...v, ...classify(v), message: messageOf(rule, rec, v) };
}

const textOf = (a: Answer) =>
  a.choices.map((c) => `${c.reasoning}\u0000${c.content}\u0000${c.toolCalls.map((t) => t.name + t.arguments).join('\u0000')}`).join('\u0001');

/** Pieces of an answer a leak would carry whole: its content and each call's arguments, of LEAK_PIECE characters or more. */
const LEAK_PIECE = 8;
const pieces = (a: Answer) => a.choices.flatMap((c) => [c.content, ...c.toolCalls.map((t) => t.arguments)]).filter((p) => p.length >= LEAK_PIECE);

/** Every string in a value (a request's messages), joined: what the request itself said. */
const stringsOf = (v: unknown): string =>
  typeof v === 'string'
    ? v
    : Array.isArray(v)
      ? v.map(stringsOf).join('\u0000')
      : v && typeof v === 'object'
        ? Object.values(v).map(stringsOf).join('\u0000')
        : '';

/**
 * Another request whose answer shows up in the wrong answer, nearest first (earlier entries, then
 * later ones: a request beside it). Only a request in another conversation (other messages) counts:
 * one with the same messages and other options may rightly say the same, and a cache that tips both
 * alike looks, from outside, like one that hands one's answer to the other. It counts when its
 * whole answer is repeated, or its content or a call's arguments (LEAK_PIECE characters or more)
 * show up inside the wrong answer but in neither the expected answer nor the request's own messages.
 * An answer with the expected tokens (other log-probs at most) carries nothing of another request.
 */
export function leakSource(rec: Recording, offending: number, actual: Answer, expected?: Answer): number | undefined {
  if (expected && sameTokens(expected, actual)) return undefined;
  const actualText = textOf(actual);
  const bad = rec.entries[offending]!;
  const conversation = (i: number) => JSON.stringify(rec.entries[i]!.call.body.messages);
  const indices = [...rec.entries.keys()];
  const order = [...indices.slice(0, offending).reverse(), ...indices.slice(offending + 1)];
  const others = order.filter((i) => conversation(i) !== conversation(offending) && completed(rec.entries[i]!));
  const own = stringsOf(bad.call.body.messages);
  const expectedText = expected ? textOf(expected) : '';
  const nonEmpty = actualText.replace(/\u0000|\u0001/g, '') !== '';
  return (
    others.find((i) => nonEmpty && sameAnswer(answerOf(rec.entries[i]!.obs), actual)) ??
    others.find((i) => pieces(answerOf(rec.entries[i]!.obs)).some((p) => actualText.includes(p) && !expectedText.includes(p) && !own.includes(p)))
  );
}

/** A violation that sets the offending entry's answer against an expected one (ref -1: the cold baseline). */
export function contrast(
  rule: Rule,
  rec: Recording,
  kind: ViolationKind,
  ref: number,
  bad: number,
  expected: Answer,
  actual: Answer,
  more: Partial<Finding> = {},
): Violation {
  const difference = firstDifference(expected, actual);
  const leakedFrom = leakSource(rec, bad, actual, expected);
  return violation(rule, rec, {
    ...more,
    kind,
    entries: [ref, bad],
    expected,
    actual,
    ...(difference ? { difference } : {}),
    ...(leakedFrom !== undefined ? { leakedFrom } : {}),
  });
}
