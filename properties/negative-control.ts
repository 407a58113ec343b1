// One negative control over HTTP: the default check's property for a failpoint (failpoint-catchers.ts)
// against in-process servers with it, which must fail, not flakily, shrunk to at most 4 requests,
// with a shrunk scenario that fails again on a fresh server. Shared by http.test.ts (the first
// failpoints) and catalogue.test.ts (the mutation catalogue), so the two files run side by side.
import { expect } from 'vitest';
import type { FailpointName } from '../src/engine/failpoints.ts';
import { startInProcessTarget } from '../src/embedded/in-process-target.ts';
import { requestCount } from '../src/harness/scenario.ts';
import { REPLAYS } from '../src/harness/search.ts';
import { check, replay } from '../src/api.ts';
import { failpointCatchers } from './failpoint-catchers.ts';

/** Scenarios the property may run before the failpoint must have been caught. */
const RUNS = 200;

/**
 * A bound for a run that never ends, not a speed target: the search and shrinking are counted, not
 * timed; the slowest controls (search, fast-check's 30 shrinking candidates, delta debugging over
 * steps and requests, three replays, each history with its cold runs) took up to 15 minutes on two
 * busy cores with 100 candidates and free text shrunk character by character, 2 to 4 minutes now.
 */
export const NEGATIVE_CONTROL_TIMEOUT_MS = 900_000;

export async function expectCaughtAndShrunk(name: FailpointName, seed: number): Promise<void> {
  // In-process servers: hundreds of histories each, without a process start per history.
  const inProcess = () => startInProcessTarget({ failpoints: [name] });
  const report = await check({ target: inProcess, properties: [failpointCatchers[name]], runs: RUNS, seed });
  const failed = report.results.find((r) => r.property === failpointCatchers[name])!;
  expect(failed.status, `${name} was not caught by ${failpointCatchers[name]}`).toBe('failed');
  expect(failed.flaky, 'the failure did not reproduce on a fresh server').toBeFalsy();
  expect(requestCount(failed.failure!.scenario), JSON.stringify(failed.failure!.scenario.steps)).toBeLessThanOrEqual(4);
  // The bug report replays: the shrunk scenario fails again on a fresh server with the failpoint,
  // within the REPLAYS the harness itself allows a race (clock-ids needs two requests to meet in time).
  let again = await replay(failed.failure!.scenario, { target: inProcess });
  for (let i = 1; i < REPLAYS && again.violation === undefined; i++) again = await replay(failed.failure!.scenario, { target: inProcess });
  expect(again.violation, `the shrunk scenario did not fail again in ${REPLAYS} replays`).toBeDefined();
}
