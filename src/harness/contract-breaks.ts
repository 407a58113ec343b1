// A contract break of one request, reported once (spec/properties.md): a property that fails on one
// answer against the contract, which the request alone breaks again, has found a fact about that
// request, not about state. The break becomes a result of its own, its problems are known from then
// on (rules/index.ts passes over them), and the property is searched again, so that its verdict is
// about what it looks for — not eleven properties failing on one request that a server cannot answer.
import type { Recording } from './record.ts';
import type { GenerationContext, HarnessProperty } from './properties.ts';
import type { Scenario, Step } from './scenario.ts';
import { evaluateScenario, searchProperty, type PropertyResult, type SearchOptions, type Target } from './search.ts';
import { oneAnswerBreak, problemKey, type Violation } from './violation.ts';

/** Breaks reported apart per check; past it, a property fails on a further one as it always did. */
export const MAX_CONTRACT_BREAKS = 8;

const STATEMENT = 'a request sent alone gets an answer that meets the Chat Completions contract';

/** A break's result name, from its problem: `contract-http-n-for-a-well-formed-request`. */
export const contractName = (problem: string): string =>
  `contract-${problemKey(problem)
    .toLowerCase()
    .replace(/[^a-z0-9.]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 60)}`;

/** The request a one-answer violation names, sent alone as the failing run sent it (a stream or not, a malformed body verbatim). */
export function aloneScenario(rec: Recording, v: Violation, name: string): Scenario {
  const e = rec.entries[v.entries[0]!]!;
  const raw = e.call.raw;
  const step: Step = raw !== undefined ? { raw } : { send: 'p1', ...(e.call.stream ? { stream: true } : {}) };
  return { name, requests: raw !== undefined ? {} : { p1: e.call.body }, steps: [step] };
}

/**
 * A one-answer break sent alone on a fresh server (the target restarted): its run, when it breaks a
 * rule again with one of the problems the failing run showed; undefined when it does not (the break
 * depends on what ran before).
 */
async function confirmAlone(target: Target, rec: Recording, failing: Violation, name: string) {
  const scenario = aloneScenario(rec, failing, name);
  const again = await evaluateScenario(target, scenario).catch(() => undefined);
  const named = new Set(failing.problems!.map(problemKey));
  const v = again?.violation;
  if (v === undefined || !oneAnswerBreak(v) || !v.problems!.some((p) => named.has(problemKey(p)))) return undefined;
  return { scenario, recording: again!.recording, violation: v };
}

export interface ApartOptions {
  /**
   * The target restarts (a fresh server for each history): only then is a request's break "alone"
   * a fact about the request. A server that is only flushed keeps state no flush reaches (a stop
   * list extended in place, a parser set up once), and a break it carries would pass for one request's.
   */
  apart: boolean;
  /** Problems reported so far; the breaks found here are added. */
  known: Set<string>;
  /** Result names taken (the breaks found before, the probe's). */
  taken: ReadonlySet<string>;
  /** Breaks reported before this property, all properties together. */
  reported: number;
  /** Do not search again after a break (`--stop-at-first-failure`): the check stops there. */
  stopAtFirstBreak?: boolean;
}

/**
 * A property's search, with each contract break of one request it fails on (confirmed alone) taken
 * out as a result of its own and the property searched again (the same seed, the time left of its
 * share) with the break's problems known. The breaks come first, then the property's own result.
 */
export async function searchApart(
  target: Target,
  property: HarnessProperty,
  run: SearchOptions,
  ctx: Omit<GenerationContext, 'caps' | 'model'>,
  options: ApartOptions,
): Promise<PropertyResult[]> {
  const started = Date.now();
  const breaks: PropertyResult[] = [];
  const taken = new Set(options.taken);
  for (;;) {
    const left = run.timeBudgetMs !== undefined ? { timeBudgetMs: Math.max(0, run.timeBudgetMs - (Date.now() - started)) } : {};
    let alone: { name: string; scenario: Scenario; recording: Recording; violation: Violation; ms: number } | undefined;
    // Asked about the search's first failure, before any shrinking: a break one request shows alone
    // is its own minimal report.
    const apart = async (rec: Recording, v: Violation): Promise<boolean> => {
      if (!oneAnswerBreak(v) || options.reported + breaks.length >= MAX_CONTRACT_BREAKS) return false;
      const first = v.problems![0]!;
      let name = contractName(first);
      for (let n = 2; taken.has(name); n++) name = `${contractName(first)}-${n}`;
      const t0 = Date.now();
      const confirmed = await confirmAlone(target, rec, v, name);
      if (confirmed) alone = { name, ...confirmed, ms: Date.now() - t0 };
      return confirmed !== undefined;
    };
    const result = await searchProperty(target, property, { ...run, ...left, ...(options.apart ? { apart } : {}) }, ctx);
    if (alone === undefined) return [...breaks, result];
    const found: typeof alone = alone;
    taken.add(found.name);
    for (const p of found.violation.problems!) options.known.add(problemKey(p));
    breaks.push({
      property: found.name,
      statement: STATEMENT,
      foundBy: property.name,
      status: 'failed',
      scenarios: 1,
      asked: 1,
      requests: 1,
      ms: found.ms,
      failure: {
        scenario: { ...found.scenario, description: `${STATEMENT}. Found by amnesia check in ${property.name}'s traffic (seed ${run.seed}).` },
        recording: found.recording,
        violation: found.violation,
        seed: result.failure?.seed ?? run.seed,
        path: result.failure?.path ?? '',
      },
    });
    if (options.stopAtFirstBreak) {
      const { failure: _failure, flaky: _flaky, ...rest } = result;
      return [...breaks, { ...rest, status: 'skipped', reason: 'not run again: it met a contract break of one request first (stop at the first failure)' }];
    }
  }
}
