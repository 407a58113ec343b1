// A check from start to end, on one target: open it (a URL, or a connector that starts one and hands
// back a Transport), probe and calibrate, search each selected property, close. `replayOnTarget` runs
// one stored scenario the same way. The library's `check()` / `replay()` (src/api.ts) wire the
// embedded reference server in as a connector when no URL is given.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChatClient } from './client.ts';
import type { Violation } from './violation.ts';
import { probe, type Capabilities } from './probe.ts';
import { properties as allProperties, type HarnessProperty } from './properties.ts';
import { searchProperty, evaluateScenario, type PropertyResult, type SearchOptions, type Target } from './search.ts';
import type { Recording } from './record.ts';
import { loadScenario, withModel, type Scenario } from './scenario.ts';
import { httpTransport, type Transport } from './transport.ts';

/** A target the harness does not reach by URL: how to talk to it, and how to start it afresh. */
export interface TargetConnection {
  transport: Transport;
  /** Replaces the target with a fresh one (a new server): the reset before each history. */
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
  timeoutMs?: number;
}

export interface CheckTargetOptions extends TargetSpec {
  /** Property names (default: all). */
  properties?: string[];
  /** Scenarios per property (default 25). */
  runs?: number;
  seed?: number;
  /** Seconds for the whole check; split evenly between the properties. */
  timeBudgetSeconds?: number;
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
}

interface OpenTarget extends Target {
  name: string;
  close(): Promise<void>;
}

/** The scenarios shipped in spec/scenarios/. */
export function builtinScenarios(): Scenario[] {
  const dir = fileURLToPath(new URL('../../spec/scenarios/', import.meta.url));
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => loadScenario(join(dir, f)));
}

/** Connects (or starts the target), probes and calibrates. Throws UnreachableError. */
export async function openTarget(options: TargetSpec): Promise<OpenTarget> {
  const connection: TargetConnection =
    typeof options.target === 'string' ? { transport: httpTransport(options.target, options.apiKey), close: async () => {} } : await options.target();
  const { transport } = connection;
  const restart = connection.restart?.bind(connection);
  try {
    const timeoutMs = options.timeoutMs ?? 120_000;
    const probeClient = new ChatClient(transport, { includeUsage: false, timeoutMs });
    const model = options.model ?? (await probeClient.models())?.[0];
    if (model === undefined) throw new Error(`${transport.name} lists no models: pass --model`);
    const caps = await probe(probeClient, model);
    const client = new ChatClient(transport, { includeUsage: caps.streamOptions, timeoutMs });
    const reset = restart ?? (caps.flush ? async () => void (await client.flush()) : undefined);
    return { name: transport.name, client, model, caps, ...(reset ? { reset } : {}), close: () => connection.close() };
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

export async function checkTarget(options: CheckTargetOptions): Promise<CheckReport> {
  const selected = selectProperties(options.properties);
  const target = await openTarget(options);
  const seed = options.seed ?? Date.now() % 2 ** 31;
  try {
    const examples = (options.scenarios ?? builtinScenarios()).map((s) => withModel(s, target.model));
    const results: PropertyResult[] = [];
    const budgetMs = options.timeBudgetSeconds !== undefined ? (options.timeBudgetSeconds * 1000) / selected.length : undefined;
    for (const property of selected) {
      const run: SearchOptions = {
        runs: options.runs ?? 25,
        seed,
        // Stored scenarios seed the property they were written for (history independence by default).
        examples: property.name === 'history-independence' ? examples : [],
        ...(budgetMs !== undefined ? { timeBudgetMs: budgetMs } : {}),
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      };
      results.push(await searchProperty(target, property, run, { maxTokens: options.maxTokens ?? 8, concurrency: options.concurrency ?? 4 }));
    }
    return { target: target.name, model: target.model, caps: target.caps, seed, results, ok: results.every((r) => r.status !== 'failed') };
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

/** Runs one scenario and checks it (its expectations and the universal rules). */
export async function replayOnTarget(scenario: Scenario, options: TargetSpec): Promise<ReplayReport> {
  const target = await openTarget(options);
  try {
    const s = withModel(scenario, target.model);
    // From the target's starting state, as the search ran it (the probe's requests are gone).
    const { recording, violation } = await evaluateScenario(target, s);
    return { target: target.name, model: target.model, scenario: s, recording, violation, ok: violation === undefined };
  } finally {
    await target.close();
  }
}
