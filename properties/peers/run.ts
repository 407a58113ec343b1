// `npm run peers [-- --peers a,b] [--settings a,b] [--runs N] [--seed S]`, or `-- --matrix-only` to
// rewrite spec/peers.md from the recorded runs alone: the statelessness matrix of the field
// (spec/peers.md). For each installed peer and each of its settings: start it on 127.0.0.1 with the
// talking tiny model, check it under --compare exact, check the properties that failed on a
// mode-dependent class again under tokens, then text; write the bug reports and the run's data under
// golden/peers/, and the matrix between the markers in spec/peers.md. A peer that is not installed
// is listed with the command that installs it.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { check } from '../../src/api.ts';
import type { TargetConnector } from '../../src/harness/check-target.ts';
import type { CompareMode } from '../../src/harness/classify.ts';
import { writeFailureReport } from '../../src/harness/report/bug-report.ts';
import { ProgressLine } from '../../src/harness/report/summary.ts';
import { ensureTinyChatCheckpoint } from '../../src/engine/make-tiny-chat.ts';
import { cellsOf, MODE_DEPENDENT, runMarkdown, summaryMarkdown, type PeerRun } from './matrix.ts';
import { PEERS, peerDir } from './peers.ts';
import { peerTarget } from './peer-target.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const goldenDir = join(root, 'golden', 'peers');
const specFile = join(root, 'spec', 'peers.md');
const BEGIN = '<!-- matrix:begin (npm run peers writes this block) -->';
const END = '<!-- matrix:end -->';

const { values } = parseArgs({
  options: {
    peers: { type: 'string' },
    settings: { type: 'string' },
    'matrix-only': { type: 'boolean', default: false },
    runs: { type: 'string', default: '10' },
    seed: { type: 'string', default: '1' },
  },
});
const runs = Number(values.runs);
const seed = Number(values.seed);
const wanted = values['matrix-only'] ? [] : (values.peers?.split(',') ?? PEERS.map((p) => p.name));
const wantedSettings = values.settings?.split(',');
const unknown = wanted.filter((w) => !PEERS.some((p) => p.name === w));
if (unknown.length > 0 || !Number.isInteger(runs) || runs < 1 || !Number.isInteger(seed)) {
  console.error(
    `peers: ${unknown.length > 0 ? `unknown peer ${unknown.join(', ')} (known: ${PEERS.map((p) => p.name).join(', ')})` : '--runs and --seed take integers'}`,
  );
  process.exit(2);
}

/** The check under exact, then under each looser mode the properties whose verdict it can change. */
async function checkEveryMode(target: TargetConnector, run: PeerRun, id: string): Promise<void> {
  const progress = new ProgressLine(process.stderr);
  let properties: string[] | undefined;
  for (const mode of ['exact', 'tokens', 'text'] as const satisfies readonly CompareMode[]) {
    if (properties !== undefined && properties.length === 0) return;
    const report = await check({
      target,
      model: run.model,
      compare: mode,
      seed: run.seed,
      runs: run.runs,
      ...(properties !== undefined && { properties }),
      onProgress: (e) => progress.update(e),
    });
    console.log(`${id} --compare ${mode}: ${report.results.filter((r) => r.status === 'failed').length} failed`);
    const reportDir = join(goldenDir, 'reports', id, mode);
    rmSync(reportDir, { recursive: true, force: true });
    const cells = cellsOf(report, (property) => {
      const result = report.results.find((r) => r.property === property)!;
      return relative(root, writeFailureReport(reportDir, result, report.target, report.model));
    });
    for (const [property, cell] of Object.entries(cells)) (run.cells[property] ??= {})[mode] = cell;
    properties = Object.entries(cells)
      .filter(([, c]) => (c.status === 'failed' || c.status === 'flaky') && c.class !== undefined && MODE_DEPENDENT.has(c.class))
      .map(([p]) => p);
  }
}

const modelDir = await ensureTinyChatCheckpoint();
mkdirSync(goldenDir, { recursive: true });
const missing: string[] = [];

for (const peer of PEERS.filter((p) => wanted.includes(p.name))) {
  const version = peer.version();
  if (version === undefined) {
    missing.push(`${peer.title}: not installed here (\`${peer.install}\`)`);
    console.log(`${peer.name}: not installed (${peer.install})`);
    continue;
  }
  for (const setting of peer.settings.filter((s) => wantedSettings === undefined || wantedSettings.includes(s.name))) {
    const id = `${peer.name}-${setting.name}`;
    console.log(`${id}: starting ${peer.title} ${version}`);
    const started = Date.now();
    // The peer's own log stays in the cache folder: it names this machine's paths.
    const logDir = join(peerDir(peer.name), 'logs');
    mkdirSync(logDir, { recursive: true });
    const run: PeerRun = {
      peer: peer.name,
      title: peer.title,
      version,
      setting: setting.name,
      what: setting.what,
      model: basename(modelDir),
      seed,
      runs,
      cells: {},
      minutes: 0,
    };
    const log = join(logDir, `${setting.name}.log`);
    writeFileSync(log, '');
    try {
      await checkEveryMode(peerTarget(peer, setting, modelDir, log), run, id);
    } catch (e) {
      // The first line only (the program's name, not its path): the rest is the peer's log, which names this machine's paths.
      run.error = `the check stopped: ${(e as Error).message.split('\n')[0]}`;
      console.log(`${id}: ${run.error}`);
    }
    run.minutes = (Date.now() - started) / 60_000;
    writeFileSync(join(goldenDir, `${id}.json`), `${JSON.stringify(run, null, 2)}\n`);
    console.log(`${id}: done in ${run.minutes.toFixed(1)} min`);
  }
}

// The matrix from every recorded run (a peer not run this time keeps its last recorded one).
const recorded = readdirSync(goldenDir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(join(goldenDir, f), 'utf8')) as PeerRun);
const block = [
  BEGIN,
  '',
  summaryMarkdown(recorded),
  '',
  ...missing.map((m) => `- ${m}`),
  ...(missing.length > 0 ? [''] : []),
  ...recorded.map((r) => `${runMarkdown(r)}\n`),
  END,
].join('\n');
const spec = readFileSync(specFile, 'utf8');
const from = spec.indexOf(BEGIN);
const to = spec.indexOf(END);
if (from < 0 || to < from) throw new Error(`${specFile} lacks the matrix markers`);
writeFileSync(specFile, spec.slice(0, from) + block + spec.slice(to + END.length));
console.log(`matrix: ${relative(root, specFile)}`);
