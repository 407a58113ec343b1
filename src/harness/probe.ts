// What a target can do, learnt at start, each by its effect: a property needing a missing
// capability is skipped and reported, not failed; what the probe's requests break is reported by
// probe-findings.ts. Calibration repeats one request in isolation, so a target that is
// nondeterministic on its own is reported as such, apart from one whose answers depend on history.
import { answerOf, sameAnswer } from './answer.ts';
import { largestDrift, sameTokens, type CompareMode } from './classify.ts';
import type { ChatClient, Observation } from './client.ts';
import { UnreachableError } from './transport.ts';
import { probeFields, usableSupport, type FieldSupportMap } from './probe-fields.ts';

/**
 * `seed`: seeded requests at temperature 1 were reproducible in isolation, so generated requests may
 * use seeds; `seedAccepted`: the target takes the parameter at all (seeded reproducibility checks it).
 */
export type Capability = 'stream' | 'streamOptions' | 'tools' | 'toolChoice' | 'n' | 'seed' | 'seedAccepted' | 'logprobs' | 'flush';

export interface Capabilities extends Record<Capability, boolean> {
  /** Identical requests sent one after another, alone, got identical answers. */
  deterministic: boolean;
  /** What each optional request field does on this target (probe-fields.ts); absent: not probed, all taken as usable. */
  fields?: FieldSupportMap;
  /** Choice i of a seeded request with n choices answers as the request with seed + i (the reference server's seeding). */
  nSeedOffset?: boolean;
  /**
   * Calibration: the kinds of requests the properties send, each repeated alone (cold where the
   * target flushes): how many were compared, whether any kind's tokens differed between repeats, and
   * the largest log-prob drift between repeats with the same tokens.
   */
  calibration?: { requests: number; tokensDiffer: boolean; drift: number };
  /**
   * The plain probe request got no proper answer (a 5xx, a refusal, a malformed body): what came
   * back. Nothing else is probed and no property runs; the probe's result reports it.
   */
  refused?: string;
}

/** No capability: what a target that refused the plain request is taken to have. */
const NOTHING: Capabilities = {
  stream: false,
  streamOptions: false,
  tools: false,
  toolChoice: false,
  n: false,
  seed: false,
  seedAccepted: false,
  logprobs: false,
  flush: false,
  deterministic: false,
};

/** Statuses that say the route or the key is wrong (exit 3), not that a server broke the contract. */
const NOT_THERE = [401, 403, 404, 405];

const PROBE_TOOL = {
  type: 'function',
  function: { name: 'get_time', description: 'Current UTC time.', parameters: { type: 'object', properties: {} } },
};

/** About 300 words of context, for calibration's long prompt (prefill in several blocks, a sliding window crossed). */
const LONG_CONTEXT = 'Here is some background that the question does not need. '.repeat(30);

/**
 * Whether identical requests must get identical answers under `compare`: `exact`, if calibration
 * found the target exact in isolation; `tokens`, if its repeats had the same tokens (log-probs may
 * drift); `text`, always (a divergence is judged by its margin, classify.ts).
 */
export function comparable(caps: Capabilities, compare: CompareMode = 'exact'): boolean {
  if (compare === 'text') return true;
  if (compare === 'tokens') return caps.deterministic || caps.calibration?.tokensDiffer === false;
  return caps.deterministic;
}

/** A request the probe and calibration send. */
export const probeRequest = (model: string): Record<string, unknown> => ({
  model,
  messages: [{ role: 'user', content: 'What is 2+2?' }],
  max_tokens: 8,
  temperature: 0,
});

const ok = (o: Observation) => o.status === 200 && !o.problem;
const hasUsage = (o: Observation) => (o.events ?? []).some((e) => typeof e === 'object' && e !== null && (e as { usage?: unknown }).usage);

export async function probe(client: ChatClient, model: string, calibrationRuns = 3): Promise<Capabilities> {
  const base = probeRequest(model);
  const first = await client.chat({ body: base, stream: false });
  if (!ok(first)) {
    const why = first.problem ?? JSON.stringify(first.json)?.slice(0, 300);
    if (NOT_THERE.includes(first.status)) throw new UnreachableError(`the target answered the probe request with HTTP ${first.status}: ${why}`);
    return { ...NOTHING, refused: `HTTP ${first.status}: ${why}` };
  }
  const json = async (extra: Record<string, unknown>) => client.chat({ body: { ...base, ...extra }, stream: false });
  const streamed = await client.chat({ body: base, stream: true });
  // The probe client adds no stream fields, so this asks for the usage chunk itself.
  const withUsage = await client.chat({ body: { ...base, stream_options: { include_usage: true } }, stream: true });
  const tools = await json({ tools: [PROBE_TOOL] });
  const required = await json({ tools: [PROBE_TOOL], tool_choice: 'required' });
  const n = await json({ n: 2 });
  const logprobs = await json({ logprobs: true, top_logprobs: 1 });
  const flush = await client.flush().catch(() => false);
  // In isolation: on a flushed cache where the target has the endpoint, so that a cache that leaks
  // into an exact repeat (exo #1362) is not mistaken for nondeterminism. Each kind of request the
  // properties send — log-probs, tools, a long answer, a long prompt — is repeated, since a target
  // may be exact on the plain request and drift on the others (a kind the target refuses is left out).
  // Each kind runs once before its compared repeats.
  const kinds: Array<Record<string, unknown>> = [
    base,
    { ...base, logprobs: true, top_logprobs: 5 },
    { ...base, tools: [PROBE_TOOL] },
    { ...base, max_tokens: 64 },
    { ...base, messages: [{ role: 'user', content: `${LONG_CONTEXT} What is 2+2?` }] },
  ];
  const calibration = { requests: 0, tokensDiffer: false, drift: 0, exact: true };
  for (const body of kinds) {
    // A first run of its own (the plain request had one above): what happens only the first time a
    // request is seen is history, for the properties, not noise.
    if (body !== base) await client.chat({ body, stream: false });
    const runs: Observation[] = [];
    for (let i = 0; i < calibrationRuns; i++) {
      if (flush) await client.flush();
      runs.push(await client.chat({ body, stream: false }));
    }
    if (body !== base && !runs.every(ok)) continue;
    const [first, ...rest] = runs.map(answerOf);
    calibration.requests += runs.length;
    for (const [i, a] of rest.entries()) {
      if (!ok(runs[i + 1]!) || !ok(runs[0]!)) calibration.exact = false;
      if (sameAnswer(first!, a)) continue;
      calibration.exact = false;
      if (!sameTokens(first!, a)) calibration.tokensDiffer = true;
      else calibration.drift = Math.max(calibration.drift, largestDrift(first!, a));
    }
  }
  const seeded: Observation[] = [];
  for (let i = 0; i < 2; i++) {
    if (flush) await client.flush();
    seeded.push(await json({ temperature: 1, seed: 1 }));
  }
  const seedAccepted = seeded.every(ok);
  const seedReproducible = seedAccepted && sameAnswer(answerOf(seeded[0]!), answerOf(seeded[1]!));
  const nWorks = ok(n) && answerOf(n).choices.length === 2;
  let nSeedOffset = false;
  if (nWorks && seedReproducible) {
    if (flush) await client.flush();
    const pair = answerOf(await json({ temperature: 1, seed: 1, n: 2 }));
    if (flush) await client.flush();
    const next = answerOf(await json({ temperature: 1, seed: 2 }));
    nSeedOffset = pair.choices.length === 2 && JSON.stringify(pair.choices[1]) === JSON.stringify(next.choices[0]);
  }
  const fields = await probeFields(client, base, answerOf(first), { accepted: seedAccepted, reproducible: seedReproducible });
  return {
    fields,
    nSeedOffset,
    // A stream that breaks the contract (no [DONE], say) is still a stream: the probe's result and
    // the rules report what is wrong with it, and the stream properties run.
    stream: ok(streamed) && streamed.events !== undefined,
    // By its effect: the usage chunk comes when asked for, and not otherwise (a server that always
    // sends one breaks the contract on every stream, and is not asked: the rules report it).
    streamOptions: hasUsage(withUsage) && !hasUsage(streamed),
    tools: ok(tools),
    toolChoice: ok(required),
    n: nWorks && usableSupport(fields.n),
    seed: seedReproducible,
    seedAccepted,
    logprobs: ok(logprobs) && answerOf(logprobs).choices[0]?.logprobs !== undefined,
    flush,
    deterministic: calibration.exact,
    calibration: { requests: calibration.requests, tokensDiffer: calibration.tokensDiffer, drift: calibration.drift },
  };
}
