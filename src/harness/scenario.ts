// Scenarios: request histories as data (spec/scenarios/*.json). A bug report is a scenario — named
// requests, the steps that send them, and what must hold — and so is every history the random search
// generates, which is how a shrunk failure becomes a file anyone can replay (`amnesia replay`).
import { readFileSync } from 'node:fs';

export type Body = Record<string, unknown>;

/**
 * A request of a burst: its name (sent as the step's `stream` says), or the name with its own way of
 * being sent: streamed or not, cancelled after `cancelAfter` SSE events (a stream; the client goes
 * away and nothing continues it), started `delayMs` (0–1000) after the burst starts (so it arrives
 * while another is mid-prefill or mid-stream).
 */
export type BurstMember = string | { send: string; stream?: boolean; cancelAfter?: number; delayMs?: number };

/** Longest delay of a burst member, ms. */
export const MAX_BURST_DELAY_MS = 1000;

export type Step =
  /** Send a request (as a stream when `stream`). */
  | { send: string; stream?: boolean }
  /**
   * Send several at once, concurrently (`stream`: how members given by name alone are sent); or one
   * alone if it is a stream the client abandons (`cancelAfter`): a cancel step's first request, with
   * nothing continuing it, as shrinking lifts a cancel step into plain steps.
   */
  | { burst: BurstMember[]; stream?: boolean }
  /** Stream it and go away after `after` events; then send the conversation continued from the partial answer. */
  | { cancel: string; after: number }
  /** Send it, then send the conversation continued from its answer (tool results or a user turn). */
  | { continue: string; stream?: boolean }
  /** Send it with a stop string cut from its own earlier answer (`from`, `length` in characters). */
  | { stop: string; from: number; length: number; stream?: boolean }
  /** Send this text verbatim as the body (malformed on purpose): a 4xx with the error envelope is due. */
  | { raw: string }
  /** Empty the target's prefix cache (the flush endpoint). */
  | { flush: true };

/** Step numbers are 1-based, as in the report. */
export type Expectation = { equal: [number, number] };

export interface Scenario {
  name: string;
  description?: string;
  /** Where the bug was reported. */
  source?: string;
  /** A real server's defect (spec/peers.md): the peer, its version and the setting it was seen in. */
  seenOn?: { peer: string; version: string; setting: string };
  requests: Record<string, Body>;
  steps: Step[];
  /** Checked on top of the universal rules (identical requests, identical answers; the contract's shape). */
  expect?: Expectation[];
  /**
   * Also compare every answer with the same request sent alone on a flushed server (the target needs
   * the flush endpoint): how a failure that only a cold run shows is replayed.
   */
  coldBaseline?: boolean;
}

export class ScenarioError extends Error {
  override name = 'ScenarioError';
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const MEMBER_FIELDS = new Set(['send', 'stream', 'cancelAfter', 'delayMs']);

/** A burst member: a known request's name, or `{send, stream?, cancelAfter?, delayMs?}`. */
function checkMember(m: unknown, stepStream: boolean, at: string, known: (name: unknown, at: string) => void, fail: (msg: string) => never): void {
  if (typeof m === 'string') return known(m, at);
  if (!isObject(m)) return fail(`${at} must be a request name or {"send": name, "stream"?, "cancelAfter"?, "delayMs"?}`);
  const unknown = Object.keys(m).find((k) => !MEMBER_FIELDS.has(k));
  if (unknown !== undefined) fail(`${at} has the unknown field '${unknown}' (known: send, stream, cancelAfter, delayMs)`);
  known(m.send, `${at}.send`);
  if (m.stream !== undefined && typeof m.stream !== 'boolean') fail(`${at}.stream must be true or false`);
  if (m.cancelAfter !== undefined) {
    if (!Number.isInteger(m.cancelAfter) || (m.cancelAfter as number) < 1) fail(`${at}.cancelAfter must be an integer ≥ 1`);
    if (!((m.stream as boolean | undefined) ?? stepStream)) fail(`${at}.cancelAfter needs a stream (the events are counted): add "stream": true`);
  }
  if (m.delayMs !== undefined && (!Number.isInteger(m.delayMs) || (m.delayMs as number) < 0 || (m.delayMs as number) > MAX_BURST_DELAY_MS)) {
    fail(`${at}.delayMs must be an integer from 0 to ${MAX_BURST_DELAY_MS}`);
  }
}

/** Checks a parsed scenario, naming the first thing wrong with it. */
export function parseScenario(value: unknown, where = 'scenario'): Scenario {
  const fail = (msg: string): never => {
    throw new ScenarioError(`${where}: ${msg}`);
  };
  if (!isObject(value)) fail('must be a JSON object');
  const s = value as Record<string, unknown>;
  if (typeof s.name !== 'string' || s.name === '') fail('name must be a non-empty string');
  if (!isObject(s.requests)) fail('requests must map names to request bodies');
  const requests = s.requests as Record<string, unknown>;
  for (const [name, body] of Object.entries(requests)) if (!isObject(body)) fail(`requests.${name} must be a request body object`);
  if (!Array.isArray(s.steps) || s.steps.length === 0) fail('steps must be a non-empty array');
  const known = (name: unknown, at: string) => {
    if (typeof name !== 'string' || !(name in requests)) fail(`${at} names '${String(name)}', which is not in requests`);
  };
  (s.steps as unknown[]).forEach((step, i) => {
    const at = `steps[${i}]`;
    if (!isObject(step)) return fail(`${at} must be an object`);
    if ('send' in step) known(step.send, `${at}.send`);
    else if ('burst' in step) {
      // One member alone only as an abandoned stream: how shrinking writes a cancel step's first request.
      const abandoned = Array.isArray(step.burst) && step.burst.length === 1 && isObject(step.burst[0]) && step.burst[0].cancelAfter !== undefined;
      if (!Array.isArray(step.burst) || (step.burst.length < 2 && !abandoned)) fail(`${at}.burst must list at least two requests`);
      if (step.stream !== undefined && typeof step.stream !== 'boolean') fail(`${at}.stream must be true or false`);
      (step.burst as unknown[]).forEach((m, j) => checkMember(m, step.stream === true, `${at}.burst[${j}]`, known, fail));
    } else if ('cancel' in step) {
      known(step.cancel, `${at}.cancel`);
      if (!Number.isInteger(step.after) || (step.after as number) < 1) fail(`${at}.after must be an integer ≥ 1`);
    } else if ('continue' in step) known(step.continue, `${at}.continue`);
    else if ('stop' in step) {
      known(step.stop, `${at}.stop`);
      if (!Number.isInteger(step.from) || !Number.isInteger(step.length) || (step.length as number) < 1) fail(`${at} needs integer from ≥ 0 and length ≥ 1`);
    } else if ('raw' in step) {
      if (typeof step.raw !== 'string') fail(`${at}.raw must be a string`);
    } else if (!('flush' in step)) fail(`${at} must be one of send, burst, cancel, continue, stop, raw, flush`);
  });
  if (s.coldBaseline !== undefined && typeof s.coldBaseline !== 'boolean') fail('coldBaseline must be true or false');
  const stepCount = (s.steps as unknown[]).length;
  if (s.expect !== undefined) {
    if (!Array.isArray(s.expect)) fail('expect must be an array');
    (s.expect as unknown[]).forEach((e, i) => {
      const pair = isObject(e) ? e.equal : undefined;
      if (!Array.isArray(pair) || pair.length !== 2 || !pair.every((n) => Number.isInteger(n) && n >= 1 && n <= stepCount)) {
        fail(`expect[${i}] must be {"equal":[a,b]} with step numbers from 1 to ${stepCount}`);
      }
    });
  }
  return value as unknown as Scenario;
}

export function loadScenario(path: string): Scenario {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ScenarioError(`${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ScenarioError(`${path}: not JSON (${(e as Error).message})`);
  }
  return parseScenario(value, path);
}

/** The scenario with every request's `model` set (a scenario is written for one server, replayed on another). */
export function withModel(s: Scenario, model: string): Scenario {
  return { ...s, requests: Object.fromEntries(Object.entries(s.requests).map(([k, b]) => [k, { ...b, model }])) };
}

/** A burst member spelt out: how it is sent (a name alone takes the step's `stream`). */
export interface Member {
  name: string;
  stream: boolean;
  cancelAfter?: number;
  delayMs?: number;
}

export function memberOf(m: BurstMember, step: { stream?: boolean }): Member {
  if (typeof m === 'string') return { name: m, stream: step.stream ?? false };
  return {
    name: m.send,
    stream: m.stream ?? step.stream ?? false,
    ...(m.cancelAfter !== undefined ? { cancelAfter: m.cancelAfter } : {}),
    ...(m.delayMs !== undefined ? { delayMs: m.delayMs } : {}),
  };
}

export const memberName = (m: BurstMember): string => (typeof m === 'string' ? m : m.send);

/** The request names a step sends by name (a compound step's derived request aside). */
export function stepNames(step: Step): string[] {
  if ('send' in step) return [step.send];
  if ('burst' in step) return step.burst.map(memberName);
  if ('cancel' in step) return [step.cancel];
  if ('continue' in step) return [step.continue];
  if ('stop' in step) return [step.stop];
  return [];
}

/** How many requests a scenario sends (a continue, cancel or stop step sends two). */
export function requestCount(s: Scenario): number {
  return s.steps.reduce((n, step) => n + ('burst' in step ? step.burst.length : 'flush' in step ? 0 : 'send' in step || 'raw' in step ? 1 : 2), 0);
}

/** A burst member in words: its name, and how it differs from the step's way of sending. */
function describeMember(m: BurstMember, step: { stream?: boolean }): string {
  if (typeof m === 'string') return m;
  const { name, stream, cancelAfter, delayMs } = memberOf(m, step);
  const how = [
    ...(stream !== (step.stream ?? false) ? [stream ? 'stream' : 'JSON'] : []),
    ...(cancelAfter !== undefined ? [`cancelled after ${cancelAfter} events`] : []),
    ...(delayMs ? [`${delayMs} ms later`] : []),
  ];
  return how.length > 0 ? `${name} (${how.join(', ')})` : name;
}

/** A one-line description of a step, for reports. */
export function describeStep(step: Step): string {
  if ('send' in step) return `send ${step.send}${step.stream ? ' (stream)' : ''}`;
  if ('burst' in step && step.burst.length === 1) return `send ${describeMember(step.burst[0]!, step)}`;
  if ('burst' in step) return `send ${step.burst.map((m) => describeMember(m, step)).join(', ')} at once${step.stream ? ' (streams)' : ''}`;
  if ('cancel' in step) return `stream ${step.cancel}, go away after ${step.after} events, continue from the partial answer`;
  if ('continue' in step) return `send ${step.continue}${step.stream ? ' (stream)' : ''}, then continue the conversation from its answer`;
  if ('stop' in step) return `send ${step.stop} with a stop string from its answer${step.stream ? ' (stream)' : ''}`;
  if ('raw' in step) return `send the malformed body ${JSON.stringify(step.raw.length > 60 ? `${step.raw.slice(0, 60)}…` : step.raw)}`;
  return 'flush the prefix cache';
}
