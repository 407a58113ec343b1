#!/usr/bin/env node
// amnesia's command line. Each command lives in src/commands/; mistakes get one line and exit 2.
import { checkCommand, checkHelp, type CommandResult } from './commands/check.ts';
import { helpText, usageLine, wantsHelp, type CommandHelp } from './commands/help.ts';
import { exportGgufHelp, makeTinyChatHelp, modelCommand, modelHelp } from './commands/model.ts';
import { renderCommand, renderHelp } from './commands/render.ts';
import { replayCommand, replayHelp } from './commands/replay.ts';
import { serveCommand, serveHelp } from './commands/serve.ts';
import { UsageError } from './commands/usage-error.ts';

/**
 * A command prints its result; a CommandResult also chooses the exit code (check: 1 = a property failed).
 * `helps`: the command's help, or one per subcommand (named `<command> <subcommand>`; the first is the default).
 */
const commands: Record<string, { helps: CommandHelp[]; run: (argv: string[]) => string | CommandResult | Promise<string | CommandResult> }> = {
  check: { helps: [checkHelp], run: checkCommand },
  replay: { helps: [replayHelp], run: replayCommand },
  render: { helps: [renderHelp], run: renderCommand },
  serve: { helps: [serveHelp], run: serveCommand },
  model: { helps: [modelHelp, makeTinyChatHelp, exportGgufHelp], run: modelCommand },
};

function helpFor(name: string, rest: string[]): CommandHelp {
  const { helps } = commands[name]!;
  return helps.find((h) => h.name === `${name} ${rest[0]}`) ?? helps[0]!;
}

function usage(): string {
  return [
    'amnesia: prove that an LLM server is stateless',
    '',
    ...Object.values(commands).flatMap((c) => c.helps.map(usageLine)),
    '',
    'amnesia <command> --help describes a command and each of its flags.',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  try {
    if (command === undefined) throw new UsageError(`unknown command '${name}' (try: ${Object.keys(commands).join(', ')})`);
    if (wantsHelp(rest)) {
      console.log(helpText(helpFor(name, rest)));
      return 0;
    }
    const result = await command.run(rest);
    if (typeof result === 'string') {
      process.stdout.write(`${result}\n`);
      return 0;
    }
    process.stdout.write(`${result.text}\n`);
    return result.code;
  } catch (e) {
    // parseArgs reports unknown or malformed flags with ERR_PARSE_ARGS_* codes.
    const code = (e as NodeJS.ErrnoException).code;
    if (e instanceof UsageError || code?.startsWith('ERR_PARSE_ARGS')) {
      // One line: parseArgs explains some mistakes over several lines; the first says what is wrong.
      console.error(`amnesia ${name}: ${(e as Error).message.split('\n')[0]}`);
      return 2;
    }
    throw e;
  }
}

process.exitCode = await main(process.argv.slice(2));
