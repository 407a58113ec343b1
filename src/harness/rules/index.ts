// The offline checker (spec/properties.md): every recording is checked by the same rules, whichever
// property generated it, so a violation is reported whichever property's traffic exposed it. One
// rule per file; a new rule is its file and a line in RULES.
import type { Recording } from '../record.ts';
import { oneAnswerBreak, problemKey, type Violation } from '../violation.ts';
import { fails } from '../classify.ts';
import { budget } from './budget.ts';
import { cache } from './cache.ts';
import { choices } from './choices.ts';
import { deadline } from './deadline.ts';
import { envelope } from './envelope.ts';
import { equality } from './equality.ts';
import { expectation } from './expectation.ts';
import { logprobs } from './logprobs.ts';
import { model } from './model.ts';
import { answersOf, violation, type Rule, type RuleOptions } from './rule.ts';
import { shape } from './shape.ts';
import { stop } from './stop.ts';
import { toolCalls } from './tool-calls.ts';
import { truncation } from './truncation.ts';
import { usage } from './usage.ts';

export type { Rule, RuleOptions } from './rule.ts';

/** In order of precedence: a recording's violation is the first rule's first. */
export const RULES: readonly Rule[] = [
  deadline, // a request got a complete answer within its deadline (a hang is a verdict)
  envelope, // a malformed body gets a 4xx error envelope
  shape, // every answer has the Chat Completions shape
  usage, // the same prompt (identical requests, or other sampling), the same prompt_tokens
  equality, // identical requests, identical answers (stream / concurrency / history)
  expectation, // a stored scenario's `expect: [{ equal }]`
  cache, // each answer equals the request's alone on a cold server
  truncation, // max_tokens k is a prefix of k + m
  stop, // no stop string in the content; a stop string cuts the stop-free answer
  logprobs, // log-probs only when asked, numbers ≤ 0, the most likely alternatives, spelling the content
  toolCalls, // tool calls only to functions the request declares and tool_choice allows
  budget, // completion_tokens within n × the budget; cached and reasoning tokens parts of their totals
  choices, // greedy n > 1: every choice the answer of the request alone
  model, // every answer (and chunk) names the same model
];

/**
 * The first violation of the recording that fails under `options.compare`, in rule order, or
 * undefined. Only the first: a property fails on it, and shrinking keeps a scenario while it fails.
 */
export function findViolations(rec: Recording, options: RuleOptions = {}): Violation | undefined {
  return failing(rec, options).next().value ?? undefined;
}

/** Every violation of the recording that fails under `options.compare`, in rule order: a failure's whole evidence. */
export function allViolations(rec: Recording, options: RuleOptions = {}): Violation[] {
  return [...failing(rec, options)];
}

function* failing(rec: Recording, options: RuleOptions): Generator<Violation, undefined> {
  const answers = answersOf(rec);
  for (const rule of RULES) {
    for (const found of rule.check(rec, answers, options)) {
      const v = options.known ? withoutKnown(rule, rec, found, options.known) : found;
      if (v !== undefined && fails(v, options.compare)) yield v;
    }
  }
  return undefined;
}

/** A one-answer contract break less the problems already reported (`known`); undefined when none is left. */
function withoutKnown(rule: Rule, rec: Recording, v: Violation, known: ReadonlySet<string>): Violation | undefined {
  if (!oneAnswerBreak(v)) return v;
  const left = v.problems!.filter((p) => !known.has(problemKey(p)));
  if (left.length === v.problems!.length) return v;
  if (left.length === 0) return undefined;
  const { message: _message, class: _class, drift: _drift, margin: _margin, rule: _rule, ...finding } = v;
  return violation(rule, rec, { ...finding, problems: left });
}
