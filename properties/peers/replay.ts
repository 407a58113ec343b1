// `npm run peers:replay -- SCENARIO.json [--peer P] [--setting S]`: a stored scenario replayed on a
// real server. A peer's defect (spec/scenarios/<peer>-<defect>.json) names its peer and setting in
// `seenOn`; any other scenario (exo-1362.json, say) is run on the peer and setting given. This starts
// the peer on 127.0.0.1 as `npm run peers` does (the talking tiny model) and runs `amnesia replay` on
// it. Exit 1 when the scenario fails (the defect is there), 0 when it passes, 2 on a usage error.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { replay } from '../../src/api.ts';
import { ensureTinyChatCheckpoint } from '../../src/engine/make-tiny-chat.ts';
import { violationMessage } from '../../src/harness/report/text.ts';
import { loadScenario, ScenarioError } from '../../src/harness/scenario.ts';
import { peerTarget } from './peer-target.ts';
import { PEERS, peerDir } from './peers.ts';

const usage = (why: string): never => {
  console.error(`peers:replay: ${why}`);
  process.exit(2);
};
let args;
try {
  args = parseArgs({ allowPositionals: true, options: { peer: { type: 'string' }, setting: { type: 'string' } } });
} catch (e) {
  usage((e as Error).message);
}
const file = args!.positionals[0] ?? usage('usage: npm run peers:replay -- SCENARIO.json [--peer P] [--setting S]');
let scenario;
try {
  scenario = loadScenario(file!);
} catch (e) {
  usage(e instanceof ScenarioError ? e.message : `cannot read ${file}: ${(e as Error).message}`);
}
const seen = scenario!.seenOn;
const peerName = args!.values.peer ?? seen?.peer ?? usage(`${file} names no peer ("seenOn"): pass --peer`);
const peer = PEERS.find((p) => p.name === peerName) ?? usage(`unknown peer '${peerName}' (known: ${PEERS.map((p) => p.name).join(', ')})`);
const settingName = args!.values.setting ?? (seen?.peer === peer.name ? seen.setting : 'default');
const setting = peer.settings.find((s) => s.name === settingName) ?? usage(`${peer.name} has no setting '${settingName}'`);
const version = peer.version() ?? usage(`${peer.title} is not installed here: run ${peer.install}`);
if (seen?.peer === peer.name && version !== seen.version) console.log(`note: seen on ${seen.version}; installed here: ${version}`);

const logDir = join(peerDir(peer.name), 'logs');
mkdirSync(logDir, { recursive: true });
const log = join(logDir, 'replay.log');
writeFileSync(log, '');
const modelDir = await ensureTinyChatCheckpoint();
const result = await replay(scenario!, { target: peerTarget(peer, setting, modelDir, log) });
if (result.violation) {
  console.log(`${scenario!.name}: fails again on ${peer.title} ${version} (${setting.name}): ${violationMessage(result.recording, result.violation)}`);
  process.exit(1);
}
console.log(`${scenario!.name}: passes on ${peer.title} ${version} (${setting.name}): the defect did not show`);
