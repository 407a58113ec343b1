// A check from start to end, on one target: open it (a URL, or a connector that starts one and hands
// back a Transport), probe and calibrate, search each selected property, close. `replayOnTarget` runs
// one stored scenario the same way. The library's `check()` / `replay()` (src/api.ts) wire the
// embedded reference server in as a connector when no URL is given.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChatClient, DeadlineError, type ChatCall, type Observation } from './client.ts';
import { problemKey, type Violation } from './violation.ts';
import { searchApart } from './contract-breaks.ts';
import { probe, type Capabilities } from './probe.ts';
import { largestBudget } from './arbitraries/options.ts';
import { properties as allProperties, type HarnessProperty } from './properties.ts';
import type { CompareMode } from './classify.ts';
import { withExtraBody, withFlushCommand, withNonce } from './cold-runs.ts';
import { probeResult, type ProbeExchange } from './probe-findings.ts';
import { DEFAULT_RUNS, evaluateScenario, skipReason, type PropertyResult, type SearchOptions, type Target } from './search.ts';
import type { Recording } from './record.ts';
import { loadScenario, stepNames, withModel, type Scenario } from './scenario.ts';
import { httpTransport, UnreachableError, type Transport } from './transport.ts';

/** A target the harness does not reach by URL: how to talk to it, and how to start it afresh. */
export interface TargetConnection {
  transport: Transport;
  /**
   * Replaces the target with a fresh one (a new server): the reset before each history, and after a
   * hang. The embedded target starts a new child process each time.
   */
  restart?(): Promise<void>;
  close(): Promise<void>;
}

/** Starts a target; `checkTarget` and `replayOnTarget` call it once and close what it returns. */
export type TargetConnector = () => Promise<TargetConnection>;

export interface TargetSpec {
  /** Base URL of an OpenAI-compatible API (ending in /v1), or a connector that starts a target. */
  target: string | TargetConnector;
  /** The model to ask for (default: the first the target lists). */
  model?: string;
  apiKey?: string;
  /** The probe's time limit per request, ms (default 120 s: nothing is known about the target yet). */
  timeoutMs?: number;
  /**
   * Every other request's deadline, ms (`--request-timeout`): a request with no complete answer by
   * then is a hang. Default: derived from the probe (`requestDeadline`).
   */
  requestTimeoutMs?: number;
  /** What a difference must be to fail (`--compare`, classify.ts): default `exact`, every difference. */
  compare?: CompareMode;
  /** Fields merged into every chat request (`--extra-body`, cold-runs.ts): a server's own cache switch, say. */
  extraBody?: Record<string, unknown>;
  /** A shell command that empties the target's caches (`--flush-command`), run wherever the harness would flush. */
  flushCommand?: string;
  /** A fresh nonce first in every history's prompts (`--cache-bust`, cold-runs.ts `withNonce`). */
  cacheBust?: boolean;
}

export interface CheckTargetOptions extends TargetSpec {
  /** Property names (default: all). */
  properties?: string[];
  /**
   * Scenarios per property (default 25); with a time budget, the most per property (default: no
   * limit), and a pass that ran fewer than this (or 25) is flagged.
   */
  runs?: number;
  seed?: number;
  /**
   * Seconds for the whole check, spent: each property that is not skipped gets the time left divided
   * by the properties left, and generates scenarios until its share is spent (shrinking a failure
   * finishes after it).
   */
  timeBudgetSeconds?: number;
  /** Stop at the first property that fails: the ones after it are reported skipped, not run. */
  stopAtFirstFailure?: boolean;
  /** Largest max_tokens of a generated request (default 8). */
  maxTokens?: number;
  /** Largest burst of concurrent requests (default 4). */
  concurrency?: number;
  /** Stored bug reports to check first (default: spec/scenarios/*.json). */
  scenarios?: Scenario[];
  onProgress?: SearchOptions['onProgress'];
}

export interface CheckReport {
  target: string;
  model: string;
  caps: Capabilities;
  seed: number;
  results: PropertyResult[];
  ok: boolean;
  /**
   * The longest request deadline, ms: `requestTimeoutMs`, or derived from the probe for the largest
   * request and burst the traffic sends (each request's own scales with its budget and burst).
   */
  requestTimeoutMs?: number;
  /** What the reader should know about how the check ran (a target that hung and could not be reset). */
  notes?: string[];
  /** The whole check, ms: the probe, the properties, the shrinking and replays. */
  ms?: number;
}

interface OpenTarget extends Target {
  name: string;
  /** The probe's slowest request, ms. */
  slowestProbeMs: number;
  /** Every request the probe sent, and what came back (probe-findings.ts checks them). */
  probeExchanges: ProbeExchange[];
  requestTimeoutMs: number;
  close(): Promise<void>;
}

/** The probe's time limit per request (TargetSpec.timeoutMs). */
export const PROBE_TIMEOUT_MS = 120_000;

/** The least deadline a request gets. */
export const MIN_REQUEST_TIMEOUT_MS = 10_000;

/** The probe request's max_tokens (probe.ts), which the deadline scales from. */
const PROBE_MAX_TOKENS = 8;

/**
 * A request's deadline, from the slowest answer the probe got: generous enough that only a hang
 * misses it.
 * - × max_tokens / 8: the probe asks for 8 tokens; decoding time grows with the tokens asked for.
 * - × the burst size: in a burst of K, a server that runs requests one at a time answers the last
 *   after all K (one that batches, sooner).
 * - × 20: the probe's prompts are short and its answers may have been cached or warm; a generated
 *   request can carry a long prompt (a turn crossing the sliding window), a cold cache, tool schemas,
 *   or land on a GC pause or a busy machine. A real answer comes well within 20 times the slowest probe.
 * - at least 10 s: a fast target (the tiny reference model answers in milliseconds) still gets
 *   seconds, so a loaded CI machine is not taken for a hang.
 * A hang costs one deadline (and a few more while it is shrunk), so generosity costs little.
 */
export function requestDeadline(slowestProbeMs: number, maxTokens: number, burst: number): number {
  const scaled = 20 * slowestProbeMs * Math.max(1, maxTokens / PROBE_MAX_TOKENS) * Math.max(1, burst);
  return Math.ceil(Math.max(MIN_REQUEST_TIMEOUT_MS, scaled));
}

/** A request with no max_tokens: the deadline assumes this many. */
const UNBOUNDED_TOKENS = 256;

/** A body's budget (max_completion_tokens, else max_tokens, else UNBOUNDED_TOKENS). */
const budgetOf = (b: Record<string, unknown>): number =>
  typeof b.max_completion_tokens === 'number' ? b.max_completion_tokens : typeof b.max_tokens === 'number' ? b.max_tokens : UNBOUNDED_TOKENS;

/** The tokens a call may wait for: its budget, or for a stream the client abandons, its events. */
function callTokens(call: ChatCall): number {
  const budget = budgetOf(call.body);
  return call.cancelAfter !== undefined ? Math.min(budget, call.cancelAfter) : budget;
}

/** One call's deadline (`requestDeadline` for its own budget and burst). */
export const callDeadline = (slowestProbeMs: number, call: ChatCall): number => requestDeadline(slowestProbeMs, callTokens(call), call.burst ?? 1);

/** A client that remembers the slowest answer it got (the probe's, for the deadline). */
/** The probe's client: it times every request and keeps it, with its answer, for the probe's result. */
class TimedClient extends ChatClient {
  slowestMs = 0;
  readonly exchanges: ProbeExchange[] = [];
  override async chat(call: ChatCall): Promise<Observation> {
    const obs = await super.chat(call);
    this.slowestMs = Math.max(this.slowestMs, obs.ended - obs.started);
    this.exchanges.push({ call, obs });
    return obs;
  }
}

/** The scenarios shipped in spec/scenarios/. */
export function builtinScenarios(): Scenario[] {
  const dir = fileURLToPath(new URL('../../spec/scenarios/', import.meta.url));
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => loadScenario(join(dir, f)));
}

/** The largest request and burst the traffic will send, which the deadline scales with. */
export interface Load {
  maxTokens: number;
  concurrency: number;
}

/** Connects (or starts the target), probes and calibrates. Throws UnreachableError. */
export async function openTarget(options: TargetSpec, load: Load = { maxTokens: 8, concurrency: 4 }): Promise<OpenTarget> {
  const connection: TargetConnection =
    typeof options.target === 'string' ? { transport: httpTransport(options.target, options.apiKey), close: async () => {} } : await options.target();
  let { transport } = connection;
  if (options.extraBody) transport = withExtraBody(transport, options.extraBody);
  if (options.flushCommand !== undefined) transport = withFlushCommand(transport, options.flushCommand);
  const bust = options.cacheBust ? withNonce(transport) : undefined;
  if (bust) transport = bust.transport;
  const restart = connection.restart?.bind(connection);
  try {
    const probeMs = options.timeoutMs ?? PROBE_TIMEOUT_MS;
    const probeClient = new TimedClient(transport, { includeUsage: false, timeoutMs: probeMs, onTimeout: 'throw' });
    let model: string | undefined;
    let caps: Capabilities;
    try {
      model = options.model ?? (await probeClient.models())?.[0];
      if (model === undefined) throw new Error(`${transport.name} lists no models: pass --model`);
      caps = await probe(probeClient, model);
    } catch (e) {
      if (e instanceof DeadlineError) throw new UnreachableError(`the target did not answer the probe: ${e.message}`);
      throw e;
    }
    const slowestProbeMs = probeClient.slowestMs;
    const requestTimeoutMs = options.requestTimeoutMs ?? requestDeadline(slowestProbeMs, load.maxTokens, load.concurrency);
    // Each request's own deadline (its budget, its burst), unless one was given for all.
    const deadlineOf = options.requestTimeoutMs === undefined ? (call: ChatCall) => callDeadline(slowestProbeMs, call) : undefined;
    const client = new ChatClient(transport, { includeUsage: caps.streamOptions, timeoutMs: requestTimeoutMs, ...(deadlineOf ? { deadlineOf } : {}) });
    const emptied = restart ?? (caps.flush ? async () => void (await client.flush()) : undefined);
    const reset = bust
      ? async () => {
          bust.renew();
          await emptied?.();
        }
      : emptied;
    return {
      name: transport.name,
      client,
      model,
      caps,
      ...(reset ? { reset } : {}),
      resetBy: restart ? 'restart' : caps.flush ? 'flush' : bust ? 'nonce' : undefined,
      ...(options.compare ? { compare: options.compare } : {}),
      slowestProbeMs,
      probeExchanges: probeClient.exchanges,
      requestTimeoutMs,
      close: () => connection.close(),
    };
  } catch (e) {
    await connection.close();
    throw e;
  }
}

export function selectProperties(names: string[] | undefined): HarnessProperty[] {
  if (names === undefined || names.length === 0) return allProperties;
  return names.map((n) => {
    const p = allProperties.find((q) => q.name === n);
    if (!p) throw new RangeError(`unknown property '${n}' (known: ${allProperties.map((q) => q.name).join(', ')})`);
    return p;
  });
}

/** fast-check's run count when a time budget, not a count, ends the search. */
const UNLIMITED_RUNS = 1_000_000_000;

export async function checkTarget(options: CheckTargetOptions): Promise<CheckReport> {
  const checkStarted = Date.now();
  const selected = selectProperties(options.properties);
  const load = { maxTokens: options.maxTokens ?? 8, concurrency: options.concurrency ?? 4 };
  // The deadline scales with the largest budget the traffic asks for (room for an answer).
  const target = await openTarget(options, { ...load, maxTokens: largestBudget(load.maxTokens) });
  const seed = options.seed ?? Date.now() % 2 ** 31;
  try {
    const examples = (options.scenarios ?? builtinScenarios()).map((s) => withModel(s, target.model));
    const results: PropertyResult[] = [];
    const notes: string[] = [];
    const probed = await probeResult(target, target.probeExchanges);
    if (probed.note) notes.push(probed.note);
    // Problems reported once, as the probe's or a contract break of one request (contract-breaks.ts):
    // only where "alone" means a fresh server, which state no reset reaches cannot survive.
    const apart = target.resetBy === 'restart';
    const known = new Set(apart ? (probed.result?.failure?.violation.problems ?? []).map(problemKey) : []);
    target.known = known;
    if (probed.result) {
      results.push(probed.result);
      options.onProgress?.({ property: probed.result.property, phase: 'finished', result: probed.result });
    }
    if (options.cacheBust) {
      notes.push(
        'each history began with a fresh nonce in front of its first message (--cache-bust): no history reused a prompt prefix of ' +
          "another past the chat template's fixed head; the bug reports' scripts send the requests without it",
      );
    }
    if (options.extraBody) notes.push(`every chat request carried ${JSON.stringify(options.extraBody)} (--extra-body)`);
    if (options.flushCommand !== undefined) {
      notes.push(
        target.caps.flush
          ? `\`${options.flushCommand}\` emptied the target's caches wherever the harness flushes (--flush-command)`
          : `the flush command \`${options.flushCommand}\` failed when the probe ran it: no cold runs`,
      );
    }
    const stopAt = options.timeBudgetSeconds !== undefined ? checkStarted + options.timeBudgetSeconds * 1000 : undefined;
    // The budget goes to the properties that run: each gets the time left over the properties left.
    let left = selected.filter((p) => skipReason(p, target.caps, target.compare) === undefined).length;
    let hungUnreset = false;
    for (const property of selected) {
      if (options.stopAtFirstFailure && results.some((r) => r.status === 'failed')) {
        const asked = options.runs ?? DEFAULT_RUNS;
        const result: PropertyResult = {
          property: property.name,
          statement: property.statement,
          status: 'skipped',
          reason: 'not run: an earlier property failed',
          scenarios: 0,
          asked,
          requests: 0,
          ms: 0,
        };
        results.push(result);
        options.onProgress?.({ property: property.name, phase: 'finished', result });
        continue;
      }
      if (target.caps.refused !== undefined) {
        const result: PropertyResult = {
          property: property.name,
          statement: property.statement,
          status: 'skipped',
          reason: `not run: the target refused the probe's plain request (${target.caps.refused.slice(0, 120)})`,
          scenarios: 0,
          asked: options.runs ?? DEFAULT_RUNS,
          requests: 0,
          ms: 0,
        };
        results.push(result);
        options.onProgress?.({ property: property.name, phase: 'finished', result });
        continue;
      }
      const runsNow = skipReason(property, target.caps, target.compare) === undefined;
      const share = stopAt !== undefined && runsNow ? Math.max(0, (stopAt - Date.now()) / left--) : undefined;
      const run: SearchOptions = {
        runs: options.runs ?? (share !== undefined ? UNLIMITED_RUNS : DEFAULT_RUNS),
        asked: options.runs ?? DEFAULT_RUNS,
        seed,
        // Stored scenarios seed the property they were written for (history independence by default).
        examples: property.name === 'history-independence' ? examples : [],
        ...(share !== undefined ? { timeBudgetMs: share } : {}),
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      };
      const timeouts = target.client.timeouts;
      options.onProgress?.({ property: property.name, phase: 'started', ...(share !== undefined ? { budgetMs: share } : {}) });
      const found = await searchApart(target, property, run, load, {
        apart,
        known,
        taken: new Set(results.map((r) => r.property)),
        reported: results.filter((r) => r.foundBy !== undefined).length,
        ...(options.stopAtFirstFailure ? { stopAtFirstBreak: true } : {}),
      });
      for (const result of found) {
        results.push(result);
        options.onProgress?.({ property: result.property, phase: 'finished', result });
      }
      if (target.client.timeouts > timeouts && (target.resetBy === undefined || target.resetBy === 'nonce') && !hungUnreset) {
        hungUnreset = true;
        notes.push(
          `the target hung during ${property.name} and cannot be reset (no restart, no cache flush endpoint): ` +
            'the histories after it ran on a target that had hung',
        );
      }
    }
    return {
      target: target.name,
      model: target.model,
      caps: target.caps,
      seed,
      results,
      ok: results.every((r) => r.status !== 'failed'),
      requestTimeoutMs: target.requestTimeoutMs,
      notes,
      ms: Date.now() - checkStarted,
    };
  } finally {
    await target.close();
  }
}

export interface ReplayReport {
  target: string;
  model: string;
  scenario: Scenario;
  recording: Recording;
  violation: Violation | undefined;
  /** No violation: the scenario's expectations and the rules held. */
  ok: boolean;
}

/**
 * The largest request and burst of a stored scenario. A request only ever sent as a stream the
 * client abandons does not count: its cancel, not its budget, bounds its time.
 */
export function scenarioLoad(scenario: Scenario): Load {
  const answered = new Set(
    scenario.steps.flatMap((s) =>
      'burst' in s ? s.burst.flatMap((m) => (typeof m === 'string' ? [m] : m.cancelAfter === undefined ? [m.send] : [])) : stepNames(s),
    ),
  );
  return {
    maxTokens: Math.max(1, ...Object.entries(scenario.requests).map(([name, b]) => (answered.has(name) ? budgetOf(b) : 1))),
    concurrency: Math.max(1, ...scenario.steps.map((s) => ('burst' in s ? s.burst.length : 1))),
  };
}

/** Runs one scenario and checks it (its expectations and the universal rules). */
export async function replayOnTarget(scenario: Scenario, options: TargetSpec): Promise<ReplayReport> {
  const target = await openTarget(options, scenarioLoad(scenario));
  try {
    const s = withModel(scenario, target.model);
    // From the target's starting state, as the search ran it (the probe's requests are gone).
    const { recording, violation } = await evaluateScenario(target, s);
    return { target: target.name, model: target.model, scenario: s, recording, violation, ok: violation === undefined };
  } finally {
    await target.close();
  }
}
