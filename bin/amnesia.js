#!/usr/bin/env node
// The `amnesia` command (package.json "bin"): dist/cli.js, plus two things only a launcher can do.
//
// 1. Signals. npm starts a bin through a shell (`npx amnesia serve` is npm → sh -c → node) and passes
//    SIGINT/SIGTERM on to that shell only. SIGTERM kills the shell, and node would go on serving; so
//    under npm (npm_lifecycle_event is set), when our parent goes away we stop as if signalled, and a
//    command that handles the signal (serve: in-flight streams end, then exit) does so cleanly.
//    (A SIGINT sent to npm alone never gets here: `sh -c` holds it until its child exits. Ctrl-C in
//    a terminal signals the whole process group, node included.)
// 2. A missing native engine is one line saying what is missing and the command that builds it
//    (src/engine/native-build-status.ts), not a stack trace.
import { existsSync } from 'node:fs';

if (process.env.npm_lifecycle_event !== undefined) {
  const parent = process.ppid;
  const watch = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(watch);
    // serve listens for both once; after a SIGINT only its SIGTERM listener is left.
    process.kill(process.pid, process.listenerCount('SIGTERM') === 0 && process.listenerCount('SIGINT') > 0 ? 'SIGINT' : 'SIGTERM');
  }, 200);
  watch.unref();
}

try {
  await import('../dist/cli.js');
} catch (e) {
  const message = String(e?.message ?? '');
  const status = await import('../dist/engine/native-build-status.js').catch(() => undefined);
  if (status === undefined || !(e?.code === status.NATIVE_NOT_BUILT || /^(the native engine is not built|cannot load the native engine)/.test(message))) {
    throw e;
  }
  const addonMissing = !existsSync(new URL('../native/build/Release/amnesia_native.node', import.meta.url));
  console.error(`amnesia: ${addonMissing ? status.nativeMissingMessage() : message.split('\n')[0]}`);
  process.exitCode = 1;
}
