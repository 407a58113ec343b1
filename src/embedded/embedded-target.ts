// The embedded target: amnesia's own reference server on the tiny model, started in this process
// for `amnesia check` without --target (`npm start`). It stands outside the harness, which only
// sees the Transport and the restart it is handed.
import { failpointsFromEnv } from '../engine/failpoints.ts';
import type { RuntimeOptions } from '../engine/runtime.ts';
import type { TargetConnection } from '../harness/check-target.ts';
import { startLocalServer, type LocalServer } from '../server/local-server.ts';
import { injectTransport } from './inject-transport.ts';

/**
 * The embedded server is configured to be hard on itself: a prefix cache that holds about one
 * conversation (so histories hit, miss, evict and supersede entries) and small prefill chunks (so
 * requests share steps). A correct engine answers the same whatever the configuration.
 */
export const EMBEDDED_RUNTIME: RuntimeOptions = { kvBytes: 32 * 2 ** 20, cacheBytes: 256 * 1024, maxStepTokens: 64 };

/** Starts the embedded server; failpoints default to AMNESIA_FAILPOINTS. A restart is a new server. */
export async function startEmbeddedTarget(runtime: RuntimeOptions = {}): Promise<TargetConnection> {
  const start = () => startLocalServer({ runtime: { ...EMBEDDED_RUNTIME, failpoints: failpointsFromEnv(), ...runtime } });
  let local: LocalServer = await start();
  return {
    transport: injectTransport(() => local.server.app, `embedded ${local.modelId} (in-process)`),
    async restart() {
      await local.close();
      local = await start();
    },
    close: () => local.close(),
  };
}
