// The regression gate on a real server (spec/peers.md "The gate"): llama.cpp's llama-server, built by
// .ci/run (`properties/peers/install.sh llama.cpp`), must still show every defect the matrix recorded
// for its default setting: each recorded bug report, replayed on a fresh server, fails again with
// the recorded class and cause. A harness change that loses a finding, or moves it to another class
// or cause, fails here; the whole check (a new finding, a lost skip) is `npm run peers`, which takes
// too long for every CI run (a fresh llama-server for each of hundreds of histories). Where llama.cpp
// is not installed the gate is skipped, unless AMNESIA_REQUIRE_PEERS names it (.ci/run does): then it
// fails.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { replay } from '../../src/api.ts';
import { causeOf } from '../../src/harness/causes.ts';
import { ensureTinyChatCheckpoint } from '../../src/engine/make-tiny-chat.ts';
import { loadScenario } from '../../src/harness/scenario.ts';
import { REPLAYS } from '../../src/harness/search.ts';
import type { PeerRun } from './matrix.ts';
import { peerTarget } from './peer-target.ts';
import { PEERS, peerDir } from './peers.ts';

const PEER = 'llama.cpp';
const SETTING = 'default';
const root = fileURLToPath(new URL('../../', import.meta.url));
const recorded = JSON.parse(readFileSync(join(root, 'golden', 'peers', `${PEER}-${SETTING}.json`), 'utf8')) as PeerRun;

const peer = PEERS.find((p) => p.name === PEER)!;
const setting = peer.settings.find((s) => s.name === SETTING)!;
const version = peer.version();
const required = (process.env.AMNESIA_REQUIRE_PEERS ?? '').split(',').includes(PEER);

/** The recorded defects under exact: the cells that failed (not flaky), with their reports. */
const defects = Object.entries(recorded.cells).flatMap(([property, byMode]) => {
  const c = byMode.exact;
  return c?.status === 'failed' && c.report !== undefined ? [{ property, cell: c, report: c.report }] : [];
});

describe(`the gate: ${PEER} (${SETTING}) still shows what the matrix recorded`, () => {
  test.runIf(required && version === undefined)(`${PEER} is installed (AMNESIA_REQUIRE_PEERS names it)`, () => {
    expect.fail(`${PEER} is not installed: run ${peer.install}`);
  });

  // Required (CI), the recorded build must be the installed one; otherwise a stale matrix skips the replays.
  test.runIf(required && version !== undefined)('the matrix was recorded on the installed build, and holds defects to check', () => {
    expect(version, 'recorded on another build: run `npm run peers -- --peers llama.cpp`').toBe(recorded.version);
    expect(defects.length).toBeGreaterThan(0);
  });

  test.runIf(version !== undefined && version === recorded.version).each(defects)(
    '$property: its bug report fails again, as $cell.class, $cell.cause',
    { timeout: 300_000 },
    async ({ cell, report }) => {
      const modelDir = await ensureTinyChatCheckpoint();
      const logDir = join(peerDir(PEER), 'logs');
      mkdirSync(logDir, { recursive: true });
      const log = join(logDir, 'gate.log');
      writeFileSync(log, '');
      const scenario = loadScenario(join(root, report, 'scenario.json'));
      // Up to REPLAYS times, as the search reproduced it: a race need not show on every run.
      const again = () => replay(scenario, { target: peerTarget(peer, setting, modelDir, log) });
      let result = await again();
      for (let k = 1; k < REPLAYS && result.violation === undefined; k++) result = await again();
      expect(result.violation, 'the recorded defect did not show').toBeDefined();
      expect({ class: result.violation!.class, cause: causeOf(result.recording, result.violation!).text }).toEqual({ class: cell.class, cause: cell.cause });
    },
  );
});
