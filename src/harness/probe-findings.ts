// What the probe's own requests show (spec/properties.md "The probe"): every request it sent is
// checked by the same rules as generated traffic, so a contract break it meets — a stream without
// `data: [DONE]`, a 5xx, an `n` or `logprobs` accepted and ignored, a forced tool call not made — is
// a violation with its own bug report, not a capability quietly taken as missing. The first such
// request is replayed alone on the target to confirm it, as any failure is.
import type { ChatCall, Observation } from './client.ts';
import { requestKey, type Recording } from './record.ts';
import { findViolations } from './rules/index.ts';
import type { Scenario } from './scenario.ts';
import { evaluateScenario, type PropertyResult, type Target } from './search.ts';
import type { Violation } from './violation.ts';
import { answerOf } from './answer.ts';
import { contractViolation } from './rules/response.ts';
import { shape } from './rules/shape.ts';

export const PROBE_PROPERTY = 'probe';
const STATEMENT = "the probe's requests (one of each kind, alone) get answers that meet the contract";

/** One request the probe sent, and what came back. */
export interface ProbeExchange {
  call: ChatCall;
  obs: Observation;
}

/** A request of the probe as a one-step scenario, and its run as a recording. */
function asRecording(x: ProbeExchange, model: string): Recording {
  const scenario: Scenario = {
    name: PROBE_PROPERTY,
    description: `A request the probe of amnesia check sent alone (model ${model}).`,
    requests: { p1: x.call.body },
    steps: [{ send: 'p1', ...(x.call.stream ? { stream: true } : {}) }],
  };
  return { scenario, entries: [{ step: 0, label: 'p1', call: x.call, key: requestKey(x.call.body), obs: x.obs }] };
}

/** The first request that broke a rule; where the plain request was refused (a 4xx), that refusal. */
function firstBreak(
  exchanges: readonly ProbeExchange[],
  model: string,
  refused: string | undefined,
): { recording: Recording; violation: Violation } | undefined {
  for (const x of exchanges) {
    const recording = asRecording(x, model);
    const violation = findViolations(recording, { deterministic: false });
    if (violation) return { recording, violation };
  }
  if (refused === undefined || exchanges.length === 0) return undefined;
  // No rule says a well-formed request may not get a 4xx; the probe's plain one may not.
  const recording = asRecording(exchanges[0]!, model);
  const problem = `the plain request (one user message, max_tokens 8, temperature 0) got ${refused}`;
  return { recording, violation: contractViolation(shape, recording, 'shape', 0, [problem], answerOf(exchanges[0]!.obs)) };
}

/**
 * The probe as a result when one of its requests broke a rule (the first) and breaks it again when
 * replayed alone; undefined when they all met the contract. A break that does not happen again alone
 * depended on the probe's earlier requests — history, which the properties look for — and comes back
 * as a note instead.
 */
export async function probeResult(target: Target, exchanges: readonly ProbeExchange[]): Promise<{ result?: PropertyResult; note?: string }> {
  const started = Date.now();
  const found = firstBreak(exchanges, target.model, target.caps.refused);
  if (!found) return {};
  await target.reset?.();
  const replayed = await evaluateScenario(target, found.recording.scenario).catch(() => undefined);
  // A refusal is no rule's: it happens again if the replay is refused too.
  const again =
    replayed && !replayed.violation && target.caps.refused !== undefined && replayed.recording.entries[0]!.obs.status === found.recording.entries[0]!.obs.status
      ? { ...replayed, violation: found.violation }
      : replayed;
  if (!again?.violation) {
    return { note: `a probe request broke the contract (${found.violation.message}) but not when replayed alone: it depended on the probe's earlier requests` };
  }
  const result: PropertyResult = {
    property: PROBE_PROPERTY,
    statement: STATEMENT,
    status: 'failed',
    asked: exchanges.length,
    scenarios: exchanges.length + 1,
    requests: exchanges.length + 1,
    ms: Date.now() - started,
    failure: { scenario: found.recording.scenario, recording: again.recording, violation: again.violation, seed: 0, path: '' },
  };
  return { result };
}
