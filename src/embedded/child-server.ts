// The child process of the embedded target (child-target.ts): the reference server on a free port of
// 127.0.0.1, with the runtime options the parent passed (AMNESIA_CHILD_RUNTIME, JSON) and the model
// (AMNESIA_CHILD_MODEL; absent: the server's default). It tells the
// parent where it listens over the IPC channel, and exits when that channel closes: when the parent
// retires it, and when the parent goes away, however it went.
import type { RuntimeOptions } from '../engine/runtime.ts';

/** What the child tells its parent: where it listens, or why it could not start. */
export type ChildMessage = { ready: { baseUrl: string; modelId: string } } | { error: string; code?: string };

const tell = (m: ChildMessage, then: () => void = () => {}) => (process.send ? process.send(m, undefined, {}, then) : then());

if (!process.send) {
  console.error('amnesia: child-server runs as a child of the embedded target (it needs an IPC channel)');
  process.exit(2);
}
// First, before the server's modules load (half a second): a parent gone by then is noticed at once.
process.on('disconnect', () => process.exit(0));
if (!process.connected) process.exit(0);

try {
  const { startLocalServer } = await import('../server/local-server.ts');
  const runtime = JSON.parse(process.env.AMNESIA_CHILD_RUNTIME ?? '{}') as RuntimeOptions;
  const model = process.env.AMNESIA_CHILD_MODEL;
  const local = await startLocalServer({ runtime, host: '127.0.0.1', port: 0, ...(model ? { model } : {}) });
  if (!process.connected) process.exit(0);
  tell({ ready: { baseUrl: local.baseUrl, modelId: local.modelId } });
} catch (e) {
  // The code travels too: a native engine that is not built is reported as the CLI reports it in-process.
  const code = (e as NodeJS.ErrnoException).code;
  tell({ error: (e as Error).message ?? String(e), ...(typeof code === 'string' ? { code } : {}) }, () => process.exit(1));
}
