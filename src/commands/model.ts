// `amnesia model make-tiny [--out DIR] [--seed N] [--shards 1|2]`: writes the tiny random gpt-oss
// checkpoint used by the tests (to DIR, or to the cache directory) and prints its directory.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureTinyCheckpoint, makeTinyCheckpoint } from '../engine/make-tiny.ts';
import { usageLine, type CommandHelp } from './help.ts';
import { UsageError } from './usage-error.ts';

export const makeTinyFlags = { out: { type: 'string' }, seed: { type: 'string' }, shards: { type: 'string' } } as const;

export const modelHelp: CommandHelp = {
  name: 'model make-tiny',
  summary:
    "Writes the project's tiny random gpt-oss checkpoint (the real architecture and 201,088-token vocabulary, small dimensions) in the " +
    'Hugging Face layout, the same bytes for the same seed, and prints its folder. Without --out it goes to the cache ' +
    '($AMNESIA_CACHE_DIR, else $XDG_CACHE_HOME/amnesia, else ~/.cache/amnesia), where amnesia serve --model tiny finds it.',
  flags: [
    { flag: '--out', value: 'DIR', text: 'write into this folder instead (new or empty)' },
    { flag: '--seed', value: 'N', text: "the weights' seed, 0 to 4294967295 (default 1: the model of amnesia serve --model tiny)" },
    { flag: '--shards', value: '1|2', text: 'safetensors files to split the weights into (default 1)' },
  ],
  exit: ['0  written: its folder is printed', '2  usage error, or --out is not an empty folder (one line on stderr)'],
};

export const modelUsage = usageLine(modelHelp);

function parseUint(flag: string, text: string, max: number): number {
  if (!/^\d+$/.test(text) || Number(text) > max) throw new UsageError(`${flag} must be an integer from 0 to ${max}, got '${text}'`);
  return Number(text);
}

async function makeTiny(argv: string[]): Promise<string> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: makeTinyFlags,
    allowPositionals: true,
  });
  if (positionals.length !== 0) throw new UsageError(modelUsage);
  const seed = values.seed === undefined ? 1 : parseUint('--seed', values.seed, 0xffffffff);
  let shards: 1 | 2 = 1;
  if (values.shards !== undefined) {
    if (values.shards !== '1' && values.shards !== '2') throw new UsageError(`--shards must be 1 or 2, got '${values.shards}'`);
    shards = values.shards === '1' ? 1 : 2;
  }
  if (values.out === undefined) return ensureTinyCheckpoint(seed, shards);
  const out = resolve(values.out);
  if (existsSync(out) && (!statSync(out).isDirectory() || readdirSync(out).length > 0)) {
    throw new UsageError(`--out ${values.out} exists and is not an empty directory`);
  }
  makeTinyCheckpoint(out, { seed, shards });
  return out;
}

export async function modelCommand(argv: string[]): Promise<string> {
  const [sub, ...rest] = argv;
  if (sub === 'make-tiny') return makeTiny(rest);
  if (sub === undefined) throw new UsageError(modelUsage);
  throw new UsageError(`unknown subcommand '${sub}' (try: make-tiny)`);
}
