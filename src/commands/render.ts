// `amnesia render [--current-date YYYY-MM-DD] [--tokens] FILE|-`: an OpenAI chat-completions request
// in, the harmony completion prompt out (text with formatting tokens written out, or token ids).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ChatMappingError, renderChatPrompt } from '../harmony/chat-to-harmony.ts';
import { usageLine, type CommandHelp } from './help.ts';
import { UsageError } from './usage-error.ts';

export const renderFlags = { 'current-date': { type: 'string' }, tokens: { type: 'boolean', default: false } } as const;

export const renderHelp: CommandHelp = {
  name: 'render',
  after: 'FILE|-',
  summary:
    'Reads an OpenAI chat-completions request (JSON, from FILE or - for standard input) and prints the harmony completion prompt the ' +
    'reference server renders for it: the text with its formatting tokens written out, or its token ids.',
  flags: [
    {
      flag: '--current-date',
      value: 'YYYY-MM-DD',
      text: "the system message's Current date (default: none rendered, so the output does not change from day to day)",
    },
    { flag: '--tokens', text: 'print the token ids, as a JSON array' },
  ],
  exit: ['0  rendered', '2  usage error, or a request that cannot be read or mapped (one line on stderr)'],
};

export const renderUsage = usageLine(renderHelp);

const READ_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'it is a directory',
};

function readRequest(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    const why = READ_ERRORS[code] ?? (e as Error).message;
    throw new UsageError(`cannot read ${file === '-' ? 'standard input' : file}: ${why}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${file === '-' ? 'standard input' : file} is not valid JSON: ${(e as Error).message}`);
  }
}

export function renderCommand(argv: string[]): string {
  const { values, positionals } = parseArgs({
    args: argv,
    options: renderFlags,
    allowPositionals: true,
  });
  if (positionals.length !== 1) throw new UsageError(renderUsage);
  const date = values['current-date'];
  if (date !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(date)) {
    throw new UsageError(`--current-date must be YYYY-MM-DD, got '${date}'`);
  }
  const request = readRequest(positionals[0]!);
  try {
    const prompt = renderChatPrompt(request, date === undefined ? {} : { currentDate: date });
    return values.tokens ? JSON.stringify(prompt.tokens) : prompt.text;
  } catch (e) {
    if (e instanceof ChatMappingError) throw new UsageError(`invalid request: ${e.message}`);
    throw e;
  }
}
