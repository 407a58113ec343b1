// The 'reseeded-rng' fake (properties/fake-server.ts): one sampler RNG that every seeded request
// re-seeds. Alone, and one after another, a seeded request always answers the same, so every property
// whose requests never overlap passes as on the correct server, under the strictest mode; only the
// properties that send bursts can see it (properties/compare-modes.test.ts: concurrency-independence
// fails, a divergence).
import { expect, test } from 'vitest';
import { check } from '../src/api.ts';
import { properties } from '../src/harness/properties.ts';
import { useFakeServers } from './fake-server.ts';

const fresh = useFakeServers('reseeded-rng.amnesia.test');

/** The properties that send concurrent requests (bursts, cancel storms). */
const overlapping = new Set(['concurrency-independence', 'cancel-no-trace']);

test('serial properties pass under --compare exact, seeded traffic included', { timeout: 120_000 }, async () => {
  const serial = properties.map((p) => p.name).filter((name) => !overlapping.has(name));
  const report = await check({ target: fresh('reseeded-rng'), compare: 'exact', runs: 10, seed: 1, properties: serial });
  // Seeded answers reproduce in isolation (so generated traffic uses seeds), choice i as seed + i.
  expect(report.caps).toMatchObject({ seed: true, deterministic: true, nSeedOffset: true });
  for (const r of report.results) expect(r.status, `${r.property}: ${r.reason ?? r.failure?.violation.message}`).toBe('passed');
  expect(report.results.map((r) => r.property)).toEqual(expect.arrayContaining(serial));
});
