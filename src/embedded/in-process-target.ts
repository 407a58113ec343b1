// The reference server in the harness's own process (fastify inject, no sockets): a restart is a new
// server object, but module-level state and a hung event loop are shared with the harness. The
// default embedded target is the child process (embedded-target.ts); this one is for test suites that
// run hundreds of histories against failpoints whose state lives in the server object, where a
// child per history would cost a process start each.
import { failpointsFromEnv } from '../engine/failpoints.ts';
import type { RuntimeOptions } from '../engine/runtime.ts';
import type { TargetConnection } from '../harness/check-target.ts';
import { startLocalServer, type LocalServer } from '../server/local-server.ts';
import { EMBEDDED_RUNTIME } from './embedded-target.ts';
import { injectTransport } from './inject-transport.ts';

export async function startInProcessTarget(runtime: RuntimeOptions = {}): Promise<TargetConnection> {
  const start = () => startLocalServer({ model: 'tiny', runtime: { ...EMBEDDED_RUNTIME, failpoints: failpointsFromEnv(), ...runtime } });
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
