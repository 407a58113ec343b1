// The mutation catalogue (spec/failpoints.md), its failpoints in the runtime and the native engine:
// each is caught by the default check's property for it (failpoint-catchers.ts) over HTTP, shrunk to
// at most 4 requests, and the shrunk scenario fails again on a fresh server. The server's are in
// catalogue-server.test.ts, so the two files run side by side.
import { describe, test } from 'vitest';
import fc from 'fast-check';
import { ENGINE_CATALOGUE } from './failpoint-catchers.ts';
import { expectCaughtAndShrunk, NEGATIVE_CONTROL_TIMEOUT_MS } from './negative-control.ts';

const seed = fc.readConfigureGlobal().seed ?? 20261124;

describe('the mutation catalogue, runtime and native engine: every failpoint is caught and shrunk to at most 4 requests', () => {
  for (const name of ENGINE_CATALOGUE) test(name, { timeout: NEGATIVE_CONTROL_TIMEOUT_MS }, () => expectCaughtAndShrunk(name, seed));
});
