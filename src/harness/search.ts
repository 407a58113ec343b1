// The search for one property on a target: fast-check generates scenarios (the stored scenarios go
// first, as examples), each is run and checked; a failure is shrunk by fast-check, then by delta
// debugging over the scenario's steps, and comes back with its recording as evidence.
import fc from 'fast-check';
import { answerOf, type Answer } from './answer.ts';
import { findViolations } from './rules/index.ts';
import type { ChatClient } from './client.ts';
import { minimize } from './minimize.ts';
import type { Capabilities } from './probe.ts';
import type { GenerationContext, HarnessProperty } from './properties.ts';
import { requestCount, type Scenario, type Step } from './scenario.ts';
import { recordScenario, type Recording } from './record.ts';
import { UnreachableError } from './transport.ts';
import type { Violation } from './violation.ts';

/** fast-check's shrinking candidates per failure; about 20 s on the embedded server. */
export const DEFAULT_SHRINK_RUNS = 300;

export interface SearchOptions {
  runs: number;
  seed: number;
  /** Stop generating new scenarios after this long (shrinking still finishes). */
  timeBudgetMs?: number;
  /**
   * How many candidates fast-check may try while shrinking a failure (default 300): past it, the
   * smallest failure so far is kept and delta debugging, which drops whole steps quickly, finishes
   * the job. A count, not a time, so the shrunk scenario does not depend on how busy the machine is.
   */
  shrinkRuns?: number;
  /** Scenarios to check first (stored bug reports), when they fit the property. */
  examples?: Scenario[];
  onProgress?: (event: { property: string; phase: 'checking' | 'shrinking'; done: number; requests?: number }) => void;
}

export interface PropertyFailure {
  scenario: Scenario;
  recording: Recording;
  violation: Violation;
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
  scenarios: number;
  requests: number;
  ms: number;
  failure?: PropertyFailure;
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
}

/** Each distinct request of a recording, alone on a flushed server. */
async function coldBaseline(client: ChatClient, rec: Recording): Promise<Map<string, Answer>> {
  const out = new Map<string, Answer>();
  for (const e of rec.entries) {
    if (out.has(e.key) || e.obs.cancelled || e.call.raw !== undefined) continue;
    await client.flush();
    out.set(e.key, answerOf(await client.chat({ body: e.call.body, stream: false })));
  }
  return out;
}

/** Runs a scenario and checks it; for a property with a cold baseline, against that too. */
export async function evaluateScenario(
  target: Target,
  scenario: Scenario,
  property?: HarnessProperty,
): Promise<{ recording: Recording; violation: Violation | undefined }> {
  await target.reset?.();
  const recording = await recordScenario(target.client, scenario);
  const cold = property?.coldBaseline || scenario.coldBaseline;
  const baseline = cold && target.caps.flush ? await coldBaseline(target.client, recording) : undefined;
  const violation = findViolations(recording, { deterministic: target.caps.deterministic, ...(baseline ? { baseline } : {}) });
  return { recording, violation };
}

/** Scenarios one step simpler: a step dropped, a burst split or thinned, a compound step made a plain send. */
export function simplerScenarios(s: Scenario): Scenario[] {
  const out: Scenario[] = [];
  const withSteps = (steps: Step[]): Scenario => {
    const used = new Set(
      steps.flatMap((st) =>
        'send' in st ? [st.send] : 'burst' in st ? st.burst : 'cancel' in st ? [st.cancel] : 'continue' in st ? [st.continue] : 'stop' in st ? [st.stop] : [],
      ),
    );
    return { ...s, requests: Object.fromEntries(Object.entries(s.requests).filter(([k]) => used.has(k))), steps };
  };
  s.steps.forEach((step, i) => {
    const replace = (...by: Step[]) => out.push(withSteps([...s.steps.slice(0, i), ...by, ...s.steps.slice(i + 1)]));
    if (s.steps.length > 1) replace();
    if ('burst' in step) {
      step.burst.forEach((_, j) => {
        const rest = step.burst.filter((__, k) => k !== j);
        replace(rest.length === 1 ? { send: rest[0]!, ...(step.stream ? { stream: true } : {}) } : { ...step, burst: rest });
      });
      replace(...step.burst.map((name): Step => ({ send: name, ...(step.stream ? { stream: true } : {}) })));
    }
    if ('continue' in step) replace({ send: step.continue, ...(step.stream ? { stream: true } : {}) });
    if ('cancel' in step) replace({ send: step.cancel });
    if ('stream' in step && step.stream && 'send' in step) replace({ send: step.send });
  });
  return out.filter(
    (c) => c.steps.length > 0 && (requestCount(c) < requestCount(s) || c.steps.length < s.steps.length || JSON.stringify(c).length < JSON.stringify(s).length),
  );
}

class ViolationError extends Error {
  constructor(
    readonly recording: Recording,
    readonly violation: Violation,
  ) {
    super(violation.message);
  }
}

export async function searchProperty(
  target: Target,
  property: HarnessProperty,
  options: SearchOptions,
  ctx: Omit<GenerationContext, 'caps' | 'model'>,
): Promise<PropertyResult> {
  const started = Date.now();
  const base = { property: property.name, statement: property.statement, scenarios: 0, requests: 0 };
  const missing = property.needs.filter((c) => !target.caps[c]);
  if (missing.length > 0) return { ...base, status: 'skipped', reason: `the target lacks ${missing.join(', ')}`, ms: 0 };
  if (property.deterministic && !target.caps.deterministic) {
    return { ...base, status: 'skipped', reason: 'nondeterministic in isolation: identical requests sent alone got different answers', ms: 0 };
  }
  const arbitrary = property.scenarios({ ...ctx, model: target.model, caps: target.caps });
  let scenarios = 0;
  let requests = 0;
  let shrinking = false;
  let shrinkTries = 0;
  const shrinkRuns = options.shrinkRuns ?? DEFAULT_SHRINK_RUNS;
  const details = await fc.check(
    fc.asyncProperty(arbitrary, async (scenario) => {
      // Out of shrinking tries: report every further candidate as passing, so fast-check stops here.
      if (shrinking && ++shrinkTries > shrinkRuns) return;
      scenarios++;
      requests += requestCount(scenario);
      options.onProgress?.({ property: property.name, phase: shrinking ? 'shrinking' : 'checking', done: scenarios, requests });
      const { recording, violation } = await evaluateScenario(target, scenario, property);
      if (violation) {
        shrinking = true;
        throw new ViolationError(recording, violation);
      }
    }),
    {
      numRuns: options.runs,
      seed: options.seed,
      examples: (options.examples ?? []).map((e) => [e] as [Scenario]),
      ...(options.timeBudgetMs !== undefined ? { interruptAfterTimeLimit: options.timeBudgetMs } : {}),
    },
  );
  if (!details.failed || details.counterexample === null) {
    return { ...base, status: 'passed', scenarios, requests, ms: Date.now() - started };
  }
  if (!(details.errorInstance instanceof ViolationError)) {
    // Not a broken rule but a broken run (a timeout, a missing endpoint): reported as an error.
    if (details.errorInstance instanceof UnreachableError) throw details.errorInstance;
    return { ...base, status: 'failed', reason: `error: ${String(details.errorInstance)}`, scenarios, requests, ms: Date.now() - started };
  }
  let last: { recording: Recording; violation: Violation } | undefined;
  const fails = async (candidate: Scenario) => {
    scenarios++;
    requests += requestCount(candidate);
    options.onProgress?.({ property: property.name, phase: 'shrinking', done: scenarios, requests });
    const r = await evaluateScenario(target, candidate, property).catch(() => undefined);
    if (r?.violation) last = { recording: r.recording, violation: r.violation };
    return r?.violation !== undefined;
  };
  const shrunk = await minimize(details.counterexample[0], simplerScenarios, fails);
  // The evidence is a fresh run of the final scenario; a bug that does not reproduce keeps the first evidence.
  const first = details.errorInstance as ViolationError;
  const final = (await fails(shrunk)) ? last! : { recording: first.recording, violation: first.violation };
  const violation = final.violation;
  const scenario: Scenario = { ...final.recording.scenario, description: `${property.statement}. Found by amnesia check (seed ${details.seed}).` };
  const pair = violation.entries.filter((i) => i >= 0).map((i) => final.recording.entries[i]!.step + 1);
  if (pair.length === 2 && pair[0] !== pair[1] && (violation.kind === 'history' || violation.kind === 'concurrency' || violation.kind === 'stream')) {
    scenario.expect = [{ equal: [pair[0]!, pair[1]!] }];
  }
  // Only a cold run shows this one: the bug report asks for it.
  if (violation.kind === 'cache') scenario.coldBaseline = true;
  return {
    ...base,
    status: 'failed',
    scenarios,
    requests,
    ms: Date.now() - started,
    failure: { scenario, recording: final.recording, violation, seed: details.seed, path: details.counterexamplePath ?? '' },
  };
}
