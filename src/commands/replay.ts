// `amnesia replay FILE`: runs one scenario (a bug report as data) against a target and checks its
// expectations and the universal rules. Exit codes as `amnesia check`.
import { parseArgs } from 'node:util';
import { describeViolation } from '../harness/report/text.ts';
import { describeStep, loadScenario, ScenarioError } from '../harness/scenario.ts';
import { replay } from '../api.ts';
import { UnreachableError } from '../harness/transport.ts';
import { EXIT, exitHelp, targetFlags, targetFlagsHelp, targetOptions, type CommandResult } from './check.ts';
import { usageLine, type CommandHelp } from './help.ts';
import { UsageError } from './usage-error.ts';

export const replayHelp: CommandHelp = {
  name: 'replay',
  before: 'FILE',
  summary:
    'Runs one scenario, a bug report as data (the scenario.json of a report, or spec/scenarios/*.json), against a target and checks ' +
    "its expectations and every rule of amnesia check; a scenario that asks for cold runs gets them (the target's flush, or a fresh embedded server).",
  flags: targetFlagsHelp,
  exit: exitHelp('the scenario holds', 'the scenario fails: its violation is printed'),
};

export const replayUsage = usageLine(replayHelp);

export async function replayCommand(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<CommandResult> {
  const { values, positionals } = parseArgs({ args: argv, options: targetFlags, allowPositionals: true });
  if (positionals.length !== 1) throw new UsageError(replayUsage);
  let scenario;
  try {
    scenario = loadScenario(positionals[0]!);
  } catch (e) {
    if (e instanceof ScenarioError) throw new UsageError(e.message);
    throw e;
  }
  let report;
  try {
    report = await replay(scenario, targetOptions(values, env));
  } catch (e) {
    if (e instanceof UnreachableError) return { text: `amnesia replay: target unreachable: ${e.message}`, code: EXIT.unreachable };
    throw e;
  }
  const lines = [`${scenario.name}: ${report.target}, model ${report.model}`, ...scenario.steps.map((s, i) => `  ${i + 1}. ${describeStep(s)}`)];
  if (report.violation === undefined) {
    lines.push(
      `holds: ${report.recording.entries.length} requests, identical requests answered identically${scenario.expect?.length ? ', expectations met' : ''}`,
    );
    return { text: lines.join('\n'), code: EXIT.ok };
  }
  lines.push(`FAILS: ${describeViolation(report.recording, report.violation)}`);
  return { text: lines.join('\n'), code: EXIT.failed };
}
