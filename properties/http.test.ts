// The harness against the reference server: the properties hold through the whole HTTP stack, the
// exo #1362 scenario replays clean, and every failpoint is caught by the default check and shrunk
// to at most 4 requests (spec/properties.md "Harness", spec/failpoints.md).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { RUNTIME_FAILPOINTS, type FailpointName } from '../src/engine/failpoints.ts';
import { startInProcessTarget } from '../src/embedded/in-process-target.ts';
import { EMBEDDED_RUNTIME } from '../src/embedded/embedded-target.ts';
import { requestCount } from '../src/harness/scenario.ts';
import { builtinScenarios } from '../src/harness/check-target.ts';
import { check, replay } from '../src/api.ts';
import { failpointCatchers } from './failpoint-catchers.ts';
import { startLocalServer, type LocalServer } from '../src/server/local-server.ts';

const seed = fc.readConfigureGlobal().seed ?? 20261124;
const exo = builtinScenarios().find((s) => s.name === 'exo-1362')!;

describe('over HTTP, the reference server holds', () => {
  let local: LocalServer;
  beforeAll(async () => {
    local = await startLocalServer({ runtime: EMBEDDED_RUNTIME });
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
  // In-process servers: hundreds of histories each, without a process start per history.
  const inProcess = (name: FailpointName) => () => startInProcessTarget({ failpoints: [name] });
  for (const name of RUNTIME_FAILPOINTS) {
    test(name, { timeout: 600_000 }, async () => {
      const report = await check({ target: inProcess(name), properties: [failpointCatchers[name]], runs: 200, seed });
      const failed = report.results[0]!;
      expect(failed.status, `${name} was not caught by ${failpointCatchers[name]}`).toBe('failed');
      expect(failed.flaky, 'the failure did not reproduce on a fresh server').toBeFalsy();
      expect(requestCount(failed.failure!.scenario), JSON.stringify(failed.failure!.scenario.steps)).toBeLessThanOrEqual(4);
      // The bug report replays: the shrunk scenario fails again on a fresh server with the failpoint…
      const again = await replay(failed.failure!.scenario, { target: inProcess(name) });
      expect(again.violation, 'the shrunk scenario did not fail again').toBeDefined();
    });
  }

  test('kv-trim-noop: the stored exo scenario fails on its own', async () => {
    const r = await replay(exo, { embedded: { failpoints: ['kv-trim-noop'] } });
    expect(r.violation?.kind).toBe('history');
    expect(r.ok).toBe(false);
  });
});
