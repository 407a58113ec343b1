// `amnesia model make-tiny [--out DIR] [--seed N] [--shards 1|2]`: writes the tiny random gpt-oss
// checkpoint used by the tests (to DIR, or to the cache directory) and prints its directory.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureTinyCheckpoint, makeTinyCheckpoint } from '../engine/make-tiny.ts';
import { UsageError } from './usage-error.ts';

export const modelUsage = 'usage: amnesia model make-tiny [--out DIR] [--seed N] [--shards 1|2]';

function parseUint(flag: string, text: string, max: number): number {
  if (!/^\d+$/.test(text) || Number(text) > max) throw new UsageError(`${flag} must be an integer from 0 to ${max}, got '${text}'`);
  return Number(text);
}

async function makeTiny(argv: string[]): Promise<string> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { out: { type: 'string' }, seed: { type: 'string' }, shards: { type: 'string' } },
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
  if (sub === undefined || sub === '--help' || sub === '-h') throw new UsageError(modelUsage);
  throw new UsageError(`unknown subcommand '${sub}' (try: make-tiny)`);
}
