// The offline checker (spec/properties.md): every recording is checked by the same rules, whichever
// property generated it, so a violation is reported whichever property's traffic exposed it. One
// rule per file; a new rule is its file and a line in RULES.
import type { Recording } from '../record.ts';
import type { Violation } from '../violation.ts';
import { cache } from './cache.ts';
import { envelope } from './envelope.ts';
import { equality } from './equality.ts';
import { expectation } from './expectation.ts';
import { answersOf, type Rule, type RuleOptions } from './rule.ts';
import { shape } from './shape.ts';
import { stop } from './stop.ts';
import { truncation } from './truncation.ts';
import { usage } from './usage.ts';

export type { Rule, RuleOptions } from './rule.ts';

/** In order of precedence: a recording's violation is the first rule's first. */
export const RULES: readonly Rule[] = [
  envelope, // a malformed body gets a 4xx error envelope
  shape, // every answer has the Chat Completions shape
  usage, // nondeterministic targets: identical requests, identical prompt_tokens
  equality, // identical requests, identical answers (stream / concurrency / history)
  expectation, // a stored scenario's `expect: [{ equal }]`
  cache, // each answer equals the request's alone on a cold server
  truncation, // max_tokens k is a prefix of k + m
  stop, // a stop string cuts the stop-free answer
];

/**
 * The first violation of the recording, in rule order, or undefined. Only the first: a property
 * fails on it, and shrinking keeps a scenario while it fails.
 */
export function findViolations(rec: Recording, options: RuleOptions = {}): Violation | undefined {
  const answers = answersOf(rec);
  for (const rule of RULES) for (const v of rule.check(rec, answers, options)) return v;
  return undefined;
}
