// `amnesia model make-tiny [--out DIR] [--seed N] [--shards 1|2]`: writes the tiny random gpt-oss
// checkpoint used by the tests (to DIR, or to the cache directory) and prints its directory.
// `amnesia model make-tiny-chat [--out DIR]`: the same for the talking tiny model (make-tiny-chat.ts).
// `amnesia model export-gguf DIR [--out FILE]`: a gpt-oss checkpoint folder as llama.cpp's GGUF (export-gguf.ts).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CheckpointError } from '../engine/checkpoint.ts';
import { exportGguf } from '../engine/export-gguf.ts';
import { ensureTinyCheckpoint, makeTinyCheckpoint } from '../engine/make-tiny.ts';
import { ensureTinyChatCheckpoint, makeTinyChatCheckpoint } from '../engine/make-tiny-chat.ts';
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

export const makeTinyChatFlags = { out: { type: 'string' } } as const;

export const makeTinyChatHelp: CommandHelp = {
  name: 'model make-tiny-chat',
  summary:
    "Writes the project's talking tiny gpt-oss (the real architecture, trained once by golden/tiny-chat/train.py to reason " +
    'briefly, call declared tools with JSON arguments and answer with their results) in the Hugging Face layout, the same ' +
    'bytes every time, and prints its folder. Without --out it goes to the cache, where amnesia serve finds it.',
  flags: [{ flag: '--out', value: 'DIR', text: 'write into this folder instead (new or empty)' }],
  exit: ['0  written: its folder is printed', '2  usage error, or --out is not an empty folder (one line on stderr)'],
};

export const exportGgufFlags = { out: { type: 'string' } } as const;

export const exportGgufHelp: CommandHelp = {
  name: 'model export-gguf',
  before: 'DIR',
  summary:
    "Writes the gpt-oss checkpoint folder DIR (Hugging Face layout, as make-tiny writes it) as llama.cpp's GGUF file, architecture " +
    'gpt-oss, the experts kept in MXFP4, with the o200k_harmony tokenizer and the chat template, the same bytes every time, and ' +
    'prints the file.',
  flags: [{ flag: '--out', value: 'FILE', text: 'write this file instead of DIR/model.gguf (replaced if it exists)' }],
  exit: ['0  written: the file is printed', '2  usage error, or DIR is not a gpt-oss checkpoint that GGUF can hold (one line on stderr)'],
};

/** `--out` resolved, refused unless it is new or an empty folder. */
function outDir(out: string): string {
  const dir = resolve(out);
  if (existsSync(dir) && (!statSync(dir).isDirectory() || readdirSync(dir).length > 0)) {
    throw new UsageError(`--out ${out} exists and is not an empty directory`);
  }
  return dir;
}

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
  const out = outDir(values.out);
  makeTinyCheckpoint(out, { seed, shards });
  return out;
}

async function makeTinyChat(argv: string[]): Promise<string> {
  const { values, positionals } = parseArgs({ args: argv, options: makeTinyChatFlags, allowPositionals: true });
  if (positionals.length !== 0) throw new UsageError(usageLine(makeTinyChatHelp));
  if (values.out === undefined) return ensureTinyChatCheckpoint();
  const out = outDir(values.out);
  makeTinyChatCheckpoint(out);
  return out;
}

function exportGgufCommand(argv: string[]): string {
  const { values, positionals } = parseArgs({ args: argv, options: exportGgufFlags, allowPositionals: true });
  if (positionals.length !== 1) throw new UsageError(usageLine(exportGgufHelp));
  const dir = resolve(positionals[0]!);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`${positionals[0]} is not a directory`);
  const out = resolve(values.out ?? join(dir, 'model.gguf'));
  if (existsSync(out) && statSync(out).isDirectory()) throw new UsageError(`${values.out ?? out} is a directory`);
  if (!existsSync(dirname(out))) throw new UsageError(`${values.out ?? out}: no directory ${dirname(out)}`);
  try {
    exportGguf(dir, out);
  } catch (e) {
    // Not a gpt-oss checkpoint, or one GGUF cannot hold: the message names the file and what is wrong.
    if (e instanceof CheckpointError) throw new UsageError(e.message);
    throw e;
  }
  return out;
}

export async function modelCommand(argv: string[]): Promise<string> {
  const [sub, ...rest] = argv;
  if (sub === 'make-tiny') return makeTiny(rest);
  if (sub === 'make-tiny-chat') return makeTinyChat(rest);
  if (sub === 'export-gguf') return exportGgufCommand(rest);
  if (sub === undefined) throw new UsageError(modelUsage);
  throw new UsageError(`unknown subcommand '${sub}' (try: make-tiny, make-tiny-chat, export-gguf)`);
}
