// The embedded target: amnesia's own reference server on the talking tiny model, for `amnesia check` without
// --target (`npm start`). It runs in a child process, a fresh one per history (child-target.ts), and
// stands outside the harness, which only sees the Transport and the restart it is handed. This module
// loads neither the server nor the engine: they load in the child.
import type { RuntimeOptions } from '../engine/runtime.ts';
import type { TargetConnection } from '../harness/check-target.ts';
import { startChildTarget, type ChildTargetOptions } from './child-target.ts';

/**
 * The embedded server is configured to be hard on itself: a prefix cache that holds about one
 * conversation, 256 tokens of KV whatever the model (so histories hit, miss, evict and supersede
 * entries), and small prefill chunks (so requests share steps). A correct engine answers the same
 * whatever the configuration.
 */
export const EMBEDDED_RUNTIME: RuntimeOptions = { kvBytes: 32 * 2 ** 20, cacheTokens: 256, maxStepTokens: 64 };

/** The embedded server's runtime options and model (`tiny-chat` by default; `tiny`: the random model). */
export interface EmbeddedOptions extends RuntimeOptions {
  model?: string;
}

/** The failpoints AMNESIA_FAILPOINTS names (checked by the child, which reports an unknown one). */
const envFailpoints = (env: NodeJS.ProcessEnv = process.env): string[] =>
  (env.AMNESIA_FAILPOINTS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/**
 * Starts the embedded server in a child process; failpoints default to AMNESIA_FAILPOINTS. A restart
 * is a new process (a spare started beforehand), so nothing, module state included, survives it.
 */
export async function startEmbeddedTarget(embedded: EmbeddedOptions = {}, options: ChildTargetOptions = {}): Promise<TargetConnection> {
  const { failpoints, model, ...rest } = embedded;
  return startChildTarget(
    { ...EMBEDDED_RUNTIME, ...rest, failpoints: failpoints !== undefined ? [...failpoints] : envFailpoints() },
    { ...options, ...(model !== undefined ? { model } : {}) },
  );
}
