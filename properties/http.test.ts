// The harness against the reference server: the properties hold through the whole HTTP stack, the
// exo #1362 scenario replays clean, and every failpoint is caught by the default check and shrunk
// to at most 4 requests (spec/properties.md "Harness", spec/failpoints.md).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { RUNTIME_FAILPOINTS } from '../src/engine/failpoints.ts';
import { EMBEDDED_RUNTIME } from '../src/embedded/embedded-target.ts';
import { builtinScenarios } from '../src/harness/check-target.ts';
import { check, replay } from '../src/api.ts';
import { expectCaughtAndShrunk, NEGATIVE_CONTROL_TIMEOUT_MS } from './negative-control.ts';
import { startLocalServer, type LocalServer } from '../src/server/local-server.ts';

const seed = fc.readConfigureGlobal().seed ?? 20261124;
const exo = builtinScenarios().find((s) => s.name === 'exo-1362')!;

describe('over HTTP, the reference server holds', () => {
  let local: LocalServer;
  beforeAll(async () => {
    local = await startLocalServer({ model: 'tiny', runtime: EMBEDDED_RUNTIME });
  });
  afterAll(async () => local?.close());

  test('stream ≡ non-stream, fuzzed bad input, history independence, cancels', { timeout: 300_000 }, async () => {
    const report = await check({
      target: local.baseUrl,
      properties: ['stream-equivalence', 'error-envelope', 'history-independence', 'cancel-no-trace', 'tool-call-assembly'],
      runs: 15,
      seed,
    });
    expect(report.caps).toMatchObject({ stream: true, streamOptions: true, tools: true, flush: true, deterministic: true });
    for (const r of report.results) expect(r.status, `${r.property}: ${r.failure?.violation.message}`).toBe('passed');
  });

  test('exo #1362 (p1, p2, p1): the third answer is the first', async () => {
    const r = await replay(exo, { target: local.baseUrl });
    expect(r.violation).toBeUndefined();
    expect(r.ok).toBe(true);
    expect(r.recording.entries).toHaveLength(3);
  });
});

describe('negative controls: every failpoint is caught and shrunk to at most 4 requests', () => {
  for (const name of RUNTIME_FAILPOINTS) test(name, { timeout: NEGATIVE_CONTROL_TIMEOUT_MS }, () => expectCaughtAndShrunk(name, seed));

  test('kv-trim-noop: the stored exo scenario fails on its own', async () => {
    const r = await replay(exo, { embedded: { failpoints: ['kv-trim-noop'] } });
    expect(r.violation?.kind).toBe('history');
    expect(r.ok).toBe(false);
  });
});
