// A violation as data (after Elle's explainers): the rule that found it, its class, the entries of
// the recording it points at, and the answers that show it. Prose is rendered from this, by the
// rule's headline and by each reporter for its audience (report/), so nothing has to parse a message.
import type { Answer, firstDifference } from './answer.ts';
import type { Margin, ViolationClass } from './classify.ts';
import type { Recording } from './record.ts';

export type ViolationKind =
  | 'envelope'
  | 'shape'
  | 'usage'
  | 'history'
  | 'concurrency'
  | 'stream'
  | 'expectation'
  | 'truncation'
  | 'stop'
  | 'cache'
  | 'logprobs'
  | 'tool-calls'
  | 'budget'
  | 'choices'
  | 'model'
  | 'hang';

/** Where two answers first part: a path into the answer and, for strings, the character. */
export type Difference = NonNullable<ReturnType<typeof firstDifference>>;

export interface Violation {
  /** The rule that found it: src/harness/rules/<rule>.ts. */
  rule: string;
  kind: ViolationKind;
  /** Decided from the evidence (classify.ts): what `--compare` fails on and the report leads with. */
  class: ViolationClass;
  /** numeric-drift: the largest |Δ logprob| between the two answers. */
  drift?: number;
  /** divergence: the expected run's margin where the tokens first part (a small one is a near-tie). */
  margin?: Margin;
  /** Indices into the recording's entries: the reference answer (-1: the cold baseline), then the offending one. */
  entries: number[];
  /** What is wrong with the offending answer on its own (envelope, shape). */
  problems?: string[];
  expected?: Answer;
  actual?: Answer;
  difference?: Difference;
  /** An earlier entry (another request) whose answer shows up in the wrong answer. */
  leakedFrom?: number;
  /** Against the cold baseline (entry -1): how its server was made cold, restarted or flushed. */
  baselineBy?: 'restart' | 'flush';
  /**
   * The one-line headline, rendered from the data above when the violation is made: for logs and
   * error messages. Reporters render from the data instead (report/text.ts).
   */
  message: string;
}

/** A problem as a check knows it, numbers and quoted strings aside: `HTTP N for a well-formed request`. */
export const problemKey = (problem: string): string => problem.replace(/\d+(\.\d+)?/g, 'N').replace(/"[^"]*"/g, '"…"');

/**
 * One answer against the contract, with its problems — not a hang, not another request's answer:
 * what one request can show alone (contract-breaks.ts).
 */
export const oneAnswerBreak = (v: Violation): boolean =>
  v.class === 'contract' && v.kind !== 'hang' && v.entries.length === 1 && v.leakedFrom === undefined && (v.problems?.length ?? 0) > 0;

/** A violation before it is classified and its headline rendered. */
export type Finding = Omit<Violation, 'message' | 'class' | 'drift' | 'margin'>;

/** How the text names an entry: `p1 at step 3`. */
/** The cold baseline a violation compares with, in words. */
export const coldServer = (v: Pick<Violation, 'baselineBy'>): string =>
  v.baselineBy === 'restart' ? 'a fresh server (restarted)' : 'a cold server (prefix cache flushed)';

export const entryLabel = (rec: Recording, i: number): string => `${rec.entries[i]!.label} at step ${rec.entries[i]!.step + 1}`;
