// The search for one property on a target: fast-check generates scenarios (the stored scenarios go
// first, as examples), each is run and checked; a failure is shrunk by fast-check, then by delta
// debugging over the scenario's steps, and comes back with its recording as evidence.
import fc from 'fast-check';
import { answerOf, type Answer } from './answer.ts';
import { allViolations, findViolations, type RuleOptions } from './rules/index.ts';
import { evidenceOf, type Evidence } from './causes.ts';
import type { ChatClient } from './client.ts';
import { minimize } from './minimize.ts';
import { comparable, type Capabilities } from './probe.ts';
import type { GenerationContext, HarnessProperty } from './properties.ts';
import { memberOf, requestCount, stepNames, type Body, type BurstMember, type Member, type Scenario, type Step } from './scenario.ts';
import { burstOverlap, canonicalJson, recordScenario, type Entry, type Recording } from './record.ts';
import { UnreachableError } from './transport.ts';
import type { Violation } from './violation.ts';
import type { CompareMode } from './classify.ts';

/**
 * fast-check's shrinking candidates per failure: with the moves shrunk first, enough to bring a
 * failure down to its few steps; delta debugging finishes the job with coarser moves (halves of the
 * steps, every droppable message at once), each candidate a whole history with its cold runs. Measured
 * on the mutation catalogue (grammar-cache, sticky-sampling): 30 and 100 candidates shrink to the same
 * scenario, 100 in two to three times the time.
 */
export const DEFAULT_SHRINK_RUNS = 30;

/**
 * Shrinking candidates that may hang, per failure (fast-check's and delta debugging's together):
 * each costs a whole request deadline (10 s or more), so a hang is shrunk a little, not for minutes.
 * A count, not a time, like DEFAULT_SHRINK_RUNS.
 */
export const HANG_SHRINK_RUNS = 6;

/**
 * Replays of the shrunk scenario on a fresh target before a failure is called flaky: a race (two
 * requests that must overlap in time) need not show on every run, and still reproduces.
 */
export const REPLAYS = 3;

/** Scenarios per property without a time budget (`--runs`). */
export const DEFAULT_RUNS = 25;

/** A scenario ran: the property's scenarios and requests so far. */
export interface ScenarioProgress {
  property: string;
  phase: 'checking' | 'shrinking' | 'reproducing';
  done: number;
  requests?: number;
}

/**
 * What a check reports as it goes: a property started (with its share of the time budget), a
 * scenario ran (searching, shrinking a failure, or replaying the shrunk one), a property finished.
 */
export type ProgressEvent =
  ScenarioProgress | { property: string; phase: 'started'; budgetMs?: number } | { property: string; phase: 'finished'; result: PropertyResult };

export interface SearchOptions {
  /** Scenarios to run; with `timeBudgetMs`, the most to run (the budget usually ends it first). */
  runs: number;
  /** The scenarios asked for, that a pass is held against (default `runs`): a pass that ran fewer is flagged. */
  asked?: number;
  seed: number;
  /**
   * Generate scenarios for this long, then stop: the scenario running then finishes, and so does
   * shrinking a failure (its candidates are counted, not timed).
   */
  timeBudgetMs?: number;
  /**
   * How many candidates fast-check may try while shrinking a failure (default 300): past it, the
   * smallest failure so far is kept and delta debugging, which drops whole steps quickly, finishes
   * the job. A count, not a time, so the shrunk scenario does not depend on how busy the machine is.
   */
  shrinkRuns?: number;
  /** How many shrinking candidates may hang (default HANG_SHRINK_RUNS); past it, shrinking stops. */
  hangShrinkRuns?: number;
  /** Scenarios to check first (stored bug reports), when they fit the property. */
  examples?: Scenario[];
  /**
   * Asked about the search's first failure before it is shrunk: true ends the search there, unshrunk
   * (contract-breaks.ts: a break that one request shows alone needs no shrinking, and is reported apart).
   */
  apart?: (recording: Recording, violation: Violation) => Promise<boolean>;
  onProgress?: (event: ProgressEvent) => void;
}

export interface PropertyFailure {
  /** The shrunk scenario; for a flaky failure, the scenario that failed (unshrunk). */
  scenario: Scenario;
  /** The run that shows the violation: the shrunk scenario's replay on a fresh target, or (flaky) the failing run. */
  recording: Recording;
  violation: Violation;
  /** A flaky failure: the shrunk scenario's last replay on a fresh target, which did not fail. */
  replay?: Recording;
  /**
   * The replay on a fresh target that failed, when it was not the first (of REPLAYS): the failure
   * depends on timing, a race, and a reader should replay it more than once.
   */
  reproducedOnReplay?: number;
  /** Shrinking the requests' fields and messages stopped at its budget (BODY_SHRINK_RUNS): smaller may still fail. */
  shrinkStopped?: boolean;
  /** What the search's failing run (before shrinking) held: its failing pairs by cause, its cold pairs (causes.ts). */
  evidence?: Evidence;
  /** fast-check's replay data for the unshrunk-by-us counterexample. */
  seed: number;
  path: string;
}

export interface PropertyResult {
  property: string;
  statement: string;
  status: 'passed' | 'failed' | 'skipped';
  /** Why it was skipped (a missing capability, a nondeterministic target), or the error that stopped it. */
  reason?: string;
  /** Scenarios run: searched, shrinking candidates and the replay of the shrunk one. */
  scenarios: number;
  /** The scenarios asked for (`--runs`, default 25): a pass that ran fewer is flagged. */
  asked: number;
  /** The time budget ended the search (with fewer than `asked` scenarios, a pass says so). */
  budgetSpent?: boolean;
  requests: number;
  ms: number;
  /** Bursts the search sent, and how many overlapped in time (every request beside at least one other). */
  bursts?: { sent: number; overlapped: number };
  /**
   * The failure did not reproduce: the shrunk scenario passed on a fresh target. Reported with the
   * failing recording and the passing one, never as a minimal scenario.
   */
  flaky?: boolean;
  failure?: PropertyFailure;
  /** A contract break of one request (contract-breaks.ts): the property whose traffic met it. */
  foundBy?: string;
}

export interface Target {
  client: ChatClient;
  model: string;
  caps: Capabilities;
  /**
   * Brings the target back to its starting state before each history, as far as it can be: the
   * embedded server restarts; a URL target with the flush endpoint is flushed. Without it, state a
   * server keeps (as exo kept its cache "until restart") carries over from one history to the next,
   * and shrinking and replay see a different server than the search did.
   */
  reset?(): Promise<void>;
  /**
   * How `reset` brings the target back: a new server (which the cold baseline uses too), a cache
   * flush, only a new nonce in front of the prompts (`--cache-bust`: caches stay, but nothing in
   * them matches the next history), or not at all.
   */
  resetBy?: 'restart' | 'flush' | 'nonce' | undefined;
  /** What a difference must be to fail (classify.ts); default `exact`. */
  compare?: CompareMode;
  /** Problems already reported as contract breaks of one request (RuleOptions.known): the check adds to it between searches. */
  known?: ReadonlySet<string>;
}

const hung = (rec: Recording) => rec.entries.some((e) => e.obs.timedOut);

/**
 * Each distinct request of a recording alone on a cold server: a fresh one where the target restarts
 * (a cache a flush does not reach — a render or grammar cache, a parser set up once — is gone too),
 * else the same server with its prefix cache flushed. A cold run that hangs is added to the recording
 * (`baseline`), where the deadline rule finds it, and ends the baseline.
 */
async function coldBaseline(target: Target, rec: Recording, known?: Map<string, Answer>): Promise<{ answers: Map<string, Answer>; hung?: Entry }> {
  const answers = new Map<string, Answer>();
  const fresh = target.resetBy === 'restart';
  for (const e of rec.entries) {
    if (answers.has(e.key) || e.obs.cancelled || e.call.raw !== undefined) continue;
    const seen = fresh ? known?.get(e.key) : undefined;
    if (seen !== undefined) {
      answers.set(e.key, seen);
      continue;
    }
    if (fresh) await target.reset!();
    else await target.client.flush();
    const call = { body: e.call.body, stream: false };
    const obs = await target.client.chat(call);
    const label = `${e.label} alone on a ${fresh ? 'fresh' : 'flushed'} server`;
    if (obs.timedOut) return { answers, hung: { step: e.step, label, call, key: e.key, obs, baseline: true } };
    answers.set(e.key, answerOf(obs));
    if (fresh) known?.set(e.key, answers.get(e.key)!);
  }
  return { answers };
}

/**
 * Runs a scenario and checks it; for a property with a cold baseline, against that too. `freshAnswers`
 * keeps the answers of requests alone on a fresh server across the scenarios of one search: such an
 * answer depends on the request alone, so each request costs one restart, not one per scenario and
 * shrinking candidate.
 */
export async function evaluateScenario(
  target: Target,
  scenario: Scenario,
  property?: HarnessProperty,
  freshAnswers?: Map<string, Answer>,
  /** Also gather the failure's whole evidence (causes.ts): for the search's failing run only, not per shrinking candidate. */
  withEvidence = false,
): Promise<{ recording: Recording; violation: Violation | undefined; evidence?: Evidence }> {
  await target.reset?.();
  let recording = await recordScenario(target.client, scenario);
  const cold = (property?.coldBaseline || scenario.coldBaseline) && target.caps.flush && !hung(recording);
  const baseline = cold ? await coldBaseline(target, recording, freshAnswers) : undefined;
  if (baseline?.hung) recording = { ...recording, entries: [...recording.entries, baseline.hung] };
  const options: RuleOptions = {
    deterministic: comparable(target.caps, target.compare),
    ...(target.caps.nSeedOffset ? { nSeedOffset: true } : {}),
    ...(target.compare ? { compare: target.compare } : {}),
    ...(target.known?.size ? { known: target.known } : {}),
    ...(baseline ? { baseline: baseline.answers, baselineBy: target.resetBy === 'restart' ? ('restart' as const) : ('flush' as const) } : {}),
  };
  const violation = findViolations(recording, options);
  if (violation === undefined || !withEvidence) return { recording, violation };
  return { recording, violation, evidence: evidenceOf(recording, allViolations(recording, options), baseline?.answers) };
}

/** A burst member as a step of its own (its cancel and delay dropped: the burst is gone). */
const alone = (m: Member): Step => ({ send: m.name, ...(m.stream ? { stream: true } : {}) });

/**
 * Simpler scenarios: runs of steps dropped (halves, then quarters …); a step dropped; a burst thinned
 * by a member, a member sent the step's plain way or without its delay, or the burst split into
 * sends; a compound step made a plain send.
 */
export function simplerScenarios(s: Scenario): Scenario[] {
  const out: Scenario[] = [];
  const withSteps = (steps: Step[]) => withOnlySteps(s, steps);
  // Delta debugging's coarse moves first: halves, quarters … of the steps dropped at once, so a long
  // history loses most of its steps in a few replays instead of one replay per step (each replay
  // costs the whole remaining history).
  const n = s.steps.length;
  for (let size = Math.floor(n / 2); size >= 2; size = Math.floor(size / 2)) {
    for (let start = 0; start < n; start += size) out.push(withSteps([...s.steps.slice(0, start), ...s.steps.slice(start + size)]));
  }
  s.steps.forEach((step, i) => {
    const replace = (...by: Step[]) => out.push(withSteps([...s.steps.slice(0, i), ...by, ...s.steps.slice(i + 1)]));
    if (s.steps.length > 1) replace();
    if ('burst' in step) {
      // A cancelled member stays cancelled: the cancel is what bounds a stream the client abandons
      // (it may carry no budget), so shrinking never turns it into a request that runs to its end.
      const cancelled = (m: BurstMember) => memberOf(m, step).cancelAfter !== undefined;
      step.burst.forEach((_, j) => {
        const rest = step.burst.filter((__, k) => k !== j);
        if (rest.length > 1) replace({ ...step, burst: rest });
        else if (rest.length === 1 && !cancelled(rest[0]!)) replace(alone(memberOf(rest[0]!, step)));
      });
      step.burst.forEach((m, j) => {
        if (typeof m === 'string') return;
        const swap = (by: BurstMember) => replace({ ...step, burst: step.burst.map((x, k) => (k === j ? by : x)) });
        if (!cancelled(m)) swap(m.send);
        if (m.delayMs !== undefined) {
          const { delayMs: _delay, ...rest } = m;
          swap(Object.keys(rest).length === 1 ? rest.send : rest);
        }
      });
      if (!step.burst.some(cancelled)) replace(...step.burst.map((m) => alone(memberOf(m, step))));
    }
    if ('continue' in step) replace({ send: step.continue, ...(step.stream ? { stream: true } : {}) });
    if ('cancel' in step) replace({ send: step.cancel });
    if ('stream' in step && step.stream && 'send' in step) replace({ send: step.send });
  });
  return out.filter(
    (c) => c.steps.length > 0 && (requestCount(c) < requestCount(s) || c.steps.length < s.steps.length || JSON.stringify(c).length < JSON.stringify(s).length),
  );
}

type Compound = Extract<Step, { continue: string } | { cancel: string } | { stop: string }>;

/**
 * The name a lifted request gets: the continuation of p1 (a `continue` step's, or a `cancel` step's
 * from the partial answer) is `p1c`, p1 with the stop string cut from its answer `p1s`; a name taken
 * by another body gets a number (`p1c2`, `p1c3` …), and a body the scenario already names keeps its name.
 */
function liftedName(requests: Record<string, Body>, step: Compound, body: Body): string {
  const same = Object.keys(requests).find((k) => canonicalJson(requests[k]) === canonicalJson(body));
  if (same !== undefined) return same;
  const base = 'continue' in step ? `${step.continue}c` : 'cancel' in step ? `${step.cancel}c` : `${step.stop}s`;
  let name = base;
  for (let n = 2; name in requests; n++) name = `${base}${n}`;
  return name;
}

/**
 * A compound step as plain steps, each request sent as the step sent it: the first (a cancel's as
 * the stream abandoned after its events, a one-member burst), then the derived request by `name`.
 */
function plainSteps(step: Compound, name: string): Step[] {
  if ('continue' in step) {
    const how = step.stream ? { stream: true } : {};
    return [
      { send: step.continue, ...how },
      { send: name, ...how },
    ];
  }
  if ('cancel' in step) return [{ burst: [{ send: step.cancel, stream: true, cancelAfter: step.after }] }, { send: name }];
  return [{ send: step.stop }, { send: name, ...(step.stream ? { stream: true } : {}) }];
}

/**
 * The scenario with its compound steps (continue, cancel, stop) lifted into plain sends: a compound
 * step's second request is built at run time from the first one's answer, which a reader of the bug
 * report cannot see; lifted, it is a named request (`liftedName`), its body as the failing run `rec`
 * of this scenario built it, open to the body shrinking after. All the steps at once, then one at a
 * time; a step whose run sent no derived request (its first failed or hung) stays as it is.
 */
export function liftedScenarios(s: Scenario, rec: Recording): Scenario[] {
  const lifts = s.steps.flatMap((step, i) => {
    if (!('continue' in step || 'cancel' in step || 'stop' in step)) return [];
    const sent = rec.entries.filter((e) => e.step === i && !e.baseline);
    const derived = sent[1];
    return sent.length === 2 && derived!.call.raw === undefined ? [{ i, step, body: derived!.call.body }] : [];
  });
  const lift = (chosen: typeof lifts): Scenario => {
    const requests = { ...s.requests };
    const by = new Map<number, Step[]>();
    for (const { i, step, body } of chosen) {
      const name = liftedName(requests, step, body);
      requests[name] = body;
      by.set(i, plainSteps(step, name));
    }
    return { ...s, requests, steps: s.steps.flatMap((step, i) => by.get(i) ?? [step]) };
  };
  return [...(lifts.length > 1 ? [lift(lifts)] : []), ...lifts.map((l) => lift([l]))];
}

/** Candidates that simplify the requests rather than the steps, per shrunk failure. */
export const BODY_SHRINK_RUNS = 24;

/** Lifts tried per shrunk failure (their own budget: a lift must not leave the bodies unshrunk). */
export const LIFT_RUNS = 8;

/**
 * The messages a request can lose together and stay valid, each group as its indices: a message on
 * its own (not the last, not a tool result), or an assistant's tool calls with the results that
 * answer them (a long tool-using history shrinks by whole tool turns). None includes the last message.
 */
function droppableGroups(body: Body): number[][] {
  const messages = Array.isArray(body.messages) ? (body.messages as unknown[]) : [];
  const last = messages.length - 1;
  const groups: number[][] = [];
  messages.forEach((m, i) => {
    if (i === last || typeof m !== 'object' || m === null) return;
    const { role, tool_calls: calls } = m as { role?: unknown; tool_calls?: unknown };
    if (role === 'tool') return;
    if (!(role === 'assistant' && Array.isArray(calls) && calls.length > 0)) return void groups.push([i]);
    const ids = new Set(calls.map((c) => (c as { id?: unknown })?.id));
    const results = messages.flatMap((r, j) => {
      const { role: rr, tool_call_id: id } = (r ?? {}) as { role?: unknown; tool_call_id?: unknown };
      return rr === 'tool' && ids.has(id) ? [j] : [];
    });
    if (!results.includes(last)) groups.push([i, ...results]);
  });
  return groups;
}

/**
 * Fields shrinking never drops: the model and messages; the budget (without it a request could run
 * to the end of the context); temperature and seed (without them a greedy or seeded request samples
 * at random, and fails any target's equality rule, the bug or not).
 */
const KEPT = new Set(['model', 'messages', 'max_tokens', 'max_completion_tokens', 'temperature', 'seed']);
const optionalKeys = (body: Body) => Object.keys(body).filter((k) => !KEPT.has(k));
const without = (body: Body, keys: readonly string[]): Body => Object.fromEntries(Object.entries(body).filter(([k]) => !keys.includes(k)));
const withoutMessages = (body: Body, groups: readonly number[][]): Body => {
  const drop = new Set(groups.flat());
  return { ...body, messages: (body.messages as unknown[]).filter((_, j) => !drop.has(j)) };
};

/**
 * Scenarios with the requests simpler, coarse moves first: every request without all its optional
 * fields (KEPT aside), then without all the messages it can lose; then one request at a time, all at once; then
 * one field or one group of messages (droppableGroups: a message, or a tool turn with its results).
 */
export function simplerBodies(s: Scenario): Scenario[] {
  const names = Object.keys(s.requests);
  const map = (f: (name: string, body: Body) => Body): Scenario => ({ ...s, requests: Object.fromEntries(names.map((n) => [n, f(n, s.requests[n]!)])) });
  const one = (name: string, body: Body): Scenario => ({ ...s, requests: { ...s.requests, [name]: body } });
  const out: Scenario[] = [];
  if (names.length > 1) {
    out.push(map((_, b) => without(b, optionalKeys(b))));
    out.push(map((_, b) => withoutMessages(b, droppableGroups(b))));
  }
  for (const [name, body] of Object.entries(s.requests)) {
    if (optionalKeys(body).length > 1) out.push(one(name, without(body, optionalKeys(body))));
    if (droppableGroups(body).length > 1) out.push(one(name, withoutMessages(body, droppableGroups(body))));
  }
  for (const [name, body] of Object.entries(s.requests)) {
    for (const key of optionalKeys(body)) out.push(one(name, without(body, [key])));
    for (const group of droppableGroups(body)) out.push(one(name, withoutMessages(body, [group])));
  }
  // A move that changes nothing (a request with nothing to drop) is no candidate.
  return out.filter((c) => JSON.stringify(c.requests) !== JSON.stringify(s.requests));
}

/**
 * The scenario without the steps after the last one the violation names (their answers came after
 * it, so they cannot have caused it), or undefined when there are none.
 */
export function cutAfterViolation(s: Scenario, recording: Recording, violation: Violation): Scenario | undefined {
  const named = violation.entries.filter((i) => i >= 0).map((i) => recording.entries[i]!.step);
  if (named.length === 0) return undefined;
  const last = Math.max(...named);
  if (last >= s.steps.length - 1) return undefined;
  return withOnlySteps(s, s.steps.slice(0, last + 1));
}

/** The scenario with these steps, and only the requests they send. */
function withOnlySteps(s: Scenario, steps: Step[]): Scenario {
  const used = new Set(steps.flatMap(stepNames));
  return { ...s, requests: Object.fromEntries(Object.entries(s.requests).filter(([k]) => used.has(k))), steps };
}

class ViolationError extends Error {
  constructor(
    readonly recording: Recording,
    readonly violation: Violation,
    readonly evidence?: Evidence,
  ) {
    super(violation.message);
  }
}

/** Why a property cannot be checked on this target, or undefined. */
export function skipReason(property: HarnessProperty, caps: Capabilities, compare?: CompareMode): string | undefined {
  const missing = property.needs.filter((c) => !caps[c]);
  if (missing.length > 0) return `the target lacks ${missing.join(', ')}`;
  if (property.deterministic && !comparable(caps, compare)) {
    return compare === 'tokens'
      ? 'nondeterministic in isolation: identical requests sent alone got different tokens'
      : 'nondeterministic in isolation: identical requests sent alone got different answers';
  }
  return undefined;
}

export async function searchProperty(
  target: Target,
  property: HarnessProperty,
  options: SearchOptions,
  ctx: Omit<GenerationContext, 'caps' | 'model'>,
): Promise<PropertyResult> {
  const started = Date.now();
  const asked = options.asked ?? options.runs;
  const base = { property: property.name, statement: property.statement, scenarios: 0, requests: 0, asked };
  const skip = skipReason(property, target.caps, target.compare);
  if (skip !== undefined) return { ...base, status: 'skipped', reason: skip, ms: 0 };
  const arbitrary = property.scenarios({ ...ctx, model: target.model, caps: target.caps });
  let scenarios = 0;
  let requests = 0;
  let shrinking = false;
  let shrinkTries = 0;
  let hangs = 0;
  let original: ViolationError | undefined;
  let budgetSpent = false;
  /** The first failure was taken apart (options.apart): no shrinking. */
  let taken = false;
  const bursts = { sent: 0, overlapped: 0 };
  const shrinkRuns = options.shrinkRuns ?? DEFAULT_SHRINK_RUNS;
  const hangRuns = options.hangShrinkRuns ?? HANG_SHRINK_RUNS;
  const stopAt = options.timeBudgetMs !== undefined ? started + options.timeBudgetMs : undefined;
  // Not for the replay of the shrunk scenario, which runs its own cold baseline as evidence.
  const freshAnswers = new Map<string, Answer>();
  const count = (scenario: Scenario, phase: 'checking' | 'shrinking' | 'reproducing') => {
    scenarios++;
    requests += requestCount(scenario);
    options.onProgress?.({ property: property.name, phase, done: scenarios, requests });
  };
  const details = await fc.check(
    fc.asyncProperty(arbitrary, async (scenario) => {
      if (shrinking) {
        // Out of shrinking tries: report every further candidate as passing, so fast-check stops here.
        // A hang skips fast-check's shrinking, whose many small steps would each cost a deadline:
        // cutting it after the hung request, then delta debugging, spend far fewer.
        if (taken || ++shrinkTries > shrinkRuns || hangs >= hangRuns || hung(original!.recording)) return;
      } else if (stopAt !== undefined && Date.now() >= stopAt) {
        // The budget is spent: fast-check's interrupt (not a failure, markInterruptAsFailure being
        // false). Checked here, before a scenario starts, rather than with interruptAfterTimeLimit,
        // which races the running scenario (leaving it sending in the background) and cuts shrinking short.
        budgetSpent = true;
        throw new fc.PreconditionFailure(true);
      }
      count(scenario, shrinking ? 'shrinking' : 'checking');
      const evaluated = evaluateScenario(target, scenario, property, freshAnswers, !shrinking);
      // A shrinking candidate that breaks the run (rather than a rule) is not the failure being shrunk.
      const { recording, violation, evidence } = shrinking
        ? await evaluated.catch(() => ({ recording: undefined, violation: undefined, evidence: undefined }))
        : await evaluated;
      if (recording === undefined) return;
      if (shrinking) {
        if (hung(recording)) hangs++;
      } else {
        const o = burstOverlap(recording);
        bursts.sent += o.sent;
        bursts.overlapped += o.overlapped;
      }
      if (violation) {
        const error = new ViolationError(recording, violation, evidence);
        if (!shrinking && options.apart) taken = await options.apart(recording, violation);
        original ??= error;
        shrinking = true;
        throw error;
      }
    }),
    {
      numRuns: options.runs,
      seed: options.seed,
      examples: (options.examples ?? []).map((e) => [e] as [Scenario]),
      markInterruptAsFailure: false,
    },
  );
  const ran = () => ({
    scenarios,
    requests,
    ms: Date.now() - started,
    ...(bursts.sent > 0 ? { bursts: { ...bursts } } : {}),
    ...(budgetSpent && details.interrupted ? { budgetSpent: true } : {}),
  });
  // Interrupted before any scenario ran, fast-check says "failed" without a counterexample: nothing failed.
  if (!details.failed || details.counterexample === null) return { ...base, status: 'passed', ...ran() };
  if (!(details.errorInstance instanceof ViolationError) || original === undefined) {
    // Not a broken rule but a broken run (a missing endpoint, a target that went away): reported as an error.
    if (details.errorInstance instanceof UnreachableError) throw details.errorInstance;
    return { ...base, status: 'failed', reason: `error: ${String(details.errorInstance)}`, ...ran() };
  }
  if (taken) {
    const { recording, violation } = original;
    return {
      ...base,
      status: 'failed',
      ...ran(),
      failure: { scenario: recording.scenario, recording, violation, seed: details.seed, path: details.counterexamplePath ?? '' },
    };
  }
  // The run of the scenario shrinking has got to (the last candidate kept): lifting takes its derived
  // requests from there.
  let failing = details.errorInstance.recording;
  const fails = async (candidate: Scenario) => {
    if (hangs >= hangRuns) return false;
    count(candidate, 'shrinking');
    const r = await evaluateScenario(target, candidate, property, freshAnswers).catch(() => undefined);
    if (r && hung(r.recording)) hangs++;
    if (r?.violation !== undefined) failing = r.recording;
    return r?.violation !== undefined;
  };
  // Lifts, and then the requests themselves (fields and messages dropped), are kept only while the same
  // rule still fails (an invalid request must not turn one failure into another), within BODY_SHRINK_RUNS candidates.
  let bodyRuns = 0;
  let liftRuns = 0;
  const rule = details.errorInstance.violation.rule;
  const failsAlike = async (candidate: Scenario, lift = false) => {
    if ((lift ? ++liftRuns > LIFT_RUNS : ++bodyRuns > BODY_SHRINK_RUNS) || hangs >= hangRuns) return false;
    count(candidate, 'shrinking');
    const r = await evaluateScenario(target, candidate, property, freshAnswers).catch(() => undefined);
    if (r && hung(r.recording)) hangs++;
    if (r?.violation?.rule === rule) failing = r.recording;
    return r?.violation?.rule === rule;
  };
  let smallest = details.counterexample[0];
  const cut = cutAfterViolation(smallest, details.errorInstance.recording, details.errorInstance.violation);
  if (cut !== undefined && (await fails(cut))) smallest = cut;
  // The steps, and once none can go, the compound steps lifted into plain sends (liftedScenarios, last
  // of the candidates, from the failing run of the scenario as it stands): a lift kept, the steps are
  // tried again (the first request's send may go now), and then the bodies, the lifted ones included.
  const lifts = new WeakSet<Scenario>();
  const simplerSteps = (s: Scenario): Scenario[] => {
    const lifted = JSON.stringify(failing.scenario) === JSON.stringify(s) ? liftedScenarios(s, failing) : [];
    for (const c of lifted) lifts.add(c);
    return [...simplerScenarios(s), ...lifted];
  };
  const fewest = await minimize(smallest, simplerSteps, (c) => (lifts.has(c) ? failsAlike(c, true) : fails(c)));
  const shrunk = await minimize(fewest, simplerBodies, failsAlike);
  const shrinkStopped = bodyRuns > BODY_SHRINK_RUNS;
  // Only a failure that happens again is reported as one: the shrunk scenario, replayed on a fresh
  // target (a new server, or the URL target after its reset), must fail again; its run is the evidence.
  let again: Awaited<ReturnType<typeof evaluateScenario>> | Error | undefined;
  let replays = 0;
  while (replays < REPLAYS && !(again instanceof Error) && again?.violation === undefined) {
    replays++;
    count(shrunk, 'reproducing');
    again = await evaluateScenario(target, shrunk, property).catch((e: unknown) => e as Error);
  }
  again = again!;
  const path = details.counterexamplePath ?? '';
  /** The scenario as a bug report: described, with the expectation and the cold runs its violation needs. */
  const reported = (recording: Recording, violation: Violation): Scenario => {
    const scenario: Scenario = { ...recording.scenario, description: `${property.statement}. Found by amnesia check (seed ${details.seed}).` };
    const pair = violation.entries.filter((i) => i >= 0).map((i) => recording.entries[i]!.step + 1);
    if (pair.length === 2 && pair[0] !== pair[1] && (violation.kind === 'history' || violation.kind === 'concurrency' || violation.kind === 'stream')) {
      scenario.expect = [{ equal: [pair[0]!, pair[1]!] }];
    }
    // Only a cold run shows this one (a wrong answer, or a cold run that hung): the bug report asks for it.
    if (violation.kind === 'cache' || violation.entries.some((i) => i >= 0 && recording.entries[i]!.baseline)) scenario.coldBaseline = true;
    return scenario;
  };
  if (again instanceof Error || again.violation === undefined) {
    const failure: PropertyFailure = {
      scenario: reported(original.recording, original.violation),
      recording: original.recording,
      violation: original.violation,
      ...(again instanceof Error ? {} : { replay: again.recording }),
      ...(original.evidence ? { evidence: original.evidence } : {}),
      seed: details.seed,
      path,
    };
    return {
      ...base,
      status: 'failed',
      flaky: true,
      ...(again instanceof Error ? { reason: `the replay of the shrunk scenario broke: ${again.message}` } : {}),
      ...ran(),
      failure,
    };
  }
  const { recording, violation } = again;
  const scenario = reported(recording, violation);
  const failure: PropertyFailure = {
    scenario,
    recording,
    violation,
    seed: details.seed,
    path,
    ...(replays > 1 ? { reproducedOnReplay: replays } : {}),
    ...(shrinkStopped ? { shrinkStopped: true } : {}),
    ...(original.evidence ? { evidence: original.evidence } : {}),
  };
  return { ...base, status: 'failed', ...ran(), failure };
}
