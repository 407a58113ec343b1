// `amnesia <command> --help`: each command describes itself (what it does, every flag it parses,
// its exit codes) beside the flags it parses; this file prints those descriptions and the one-line
// usage shown with a mistake.

export interface FlagHelp {
  /** `--name`, as typed. */
  flag: string;
  /** The value's placeholder (`URL`, `N`); none for a switch. */
  value?: string;
  /** The flag may be given more than once. */
  repeat?: true;
  text: string;
}

export interface CommandHelp {
  /** As typed after `amnesia`: `check`, `model make-tiny`. */
  name: string;
  /** Positional arguments before the flags (`FILE`) or after them (`FILE|-`). */
  before?: string;
  after?: string;
  summary: string;
  flags: FlagHelp[];
  /** Exit codes, one per line. */
  exit: string[];
}

const WIDTH = 100;

const label = (f: FlagHelp) => `${f.flag}${f.value ? ` ${f.value}` : ''}`;

/** The usage's parts, each kept on one line when wrapped: `usage: amnesia replay`, `FILE`, `[--target URL]` … */
const usageParts = (help: CommandHelp): string[] =>
  [`usage: amnesia ${help.name}`, help.before, ...help.flags.map((f) => `[${label(f)}]${f.repeat ? '...' : ''}`), help.after].filter(
    (part) => part !== undefined,
  );

/** The one-line usage: `usage: amnesia replay FILE [--target URL] …`. */
export const usageLine = (help: CommandHelp): string => usageParts(help).join(' ');

const words = (text: string) => text.split(/\s+/).filter(Boolean);

/** `parts` joined by spaces in lines of at most WIDTH characters (a longer part keeps a line of its own): the first after `first`, the rest after `indent`. */
function wrap(parts: string[], indent: string, first = indent): string[] {
  const lines: string[] = [];
  let line = first;
  let empty = true;
  for (const word of parts) {
    if (!empty && line.length + 1 + word.length > WIDTH) {
      lines.push(line);
      line = indent + word;
    } else line = empty ? line + word : `${line} ${word}`;
    empty = false;
  }
  if (!empty) lines.push(line);
  return lines;
}

/** The whole help: usage, what the command does, every flag described, exit codes. */
export function helpText(help: CommandHelp): string {
  const column = Math.max(...help.flags.map((f) => label(f).length)) + 4;
  const flagLines = help.flags.flatMap((f) => wrap(words(f.text), ' '.repeat(column), `  ${label(f).padEnd(column - 2)}`));
  return [
    ...wrap(usageParts(help), '  ', ''),
    '',
    ...wrap(words(help.summary), ''),
    '',
    'Flags:',
    ...flagLines,
    `  ${'--help'.padEnd(column - 2)}this help`,
    '',
    'Exit codes:',
    ...help.exit.map((e) => `  ${e}`),
  ].join('\n');
}

/** Whether the arguments ask for help (`--help` or `-h` anywhere before a `--`). */
export function wantsHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
}
