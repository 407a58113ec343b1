// `amnesia model make-tiny`: the command writes what makeTinyCheckpoint writes, and refuses bad
// flags with one line and exit code 2. `amnesia model export-gguf`: writes what exportGguf writes.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { exportGguf } from '../engine/export-gguf.ts';
import { makeTinyCheckpoint } from '../engine/make-tiny.ts';
import { modelCommand } from './model.ts';
import { UsageError } from './usage-error.ts';

const scratch = mkdtempSync(join(tmpdir(), 'amnesia-model-command-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const cli = fileURLToPath(new URL('../cli.ts', import.meta.url));

const amnesia = (args: string[], env: Record<string, string> = {}) => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', cli, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
};

describe('amnesia model make-tiny', () => {
  test('--out DIR --seed N writes there and prints the directory', () => {
    const out = join(scratch, 'cli-out');
    const r = amnesia(['model', 'make-tiny', '--out', out, '--seed', '2']);
    expect(r).toMatchObject({ status: 0, stdout: `${out}\n`, stderr: '' });
    makeTinyCheckpoint(join(scratch, 'lib-seed2'), { seed: 2 });
    expect(sha256(join(out, 'model.safetensors'))).toBe(sha256(join(scratch, 'lib-seed2', 'model.safetensors')));
  });

  test.each([
    [[], 'usage: amnesia model make-tiny [--out DIR] [--seed N] [--shards 1|2]'],
    [['frobnicate'], "unknown subcommand 'frobnicate' (try: make-tiny, make-tiny-chat, export-gguf)"],
    [['make-tiny', 'extra'], 'usage: amnesia model make-tiny [--out DIR] [--seed N] [--shards 1|2]'],
    [['make-tiny', '--seed', 'x'], "--seed must be an integer from 0 to 4294967295, got 'x'"],
    [['make-tiny', '--seed', '4294967296'], "--seed must be an integer from 0 to 4294967295, got '4294967296'"],
    [['make-tiny', '--shards', '3'], "--shards must be 1 or 2, got '3'"],
    [['make-tiny', '--out', '/'], '--out / exists and is not an empty directory'],
  ])('refuses %j', async (args, message) => {
    const p = modelCommand(args);
    await expect(p).rejects.toThrow(UsageError);
    await expect(p).rejects.toThrow(message);
  });

  test('mistakes get one line on stderr and exit code 2', () => {
    const r = amnesia(['model', 'make-tiny', '--bogus']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^amnesia model: Unknown option '--bogus'[^\n]*\n$/);
  });
});

describe('amnesia model export-gguf', () => {
  const tiny = join(scratch, 'tiny');
  const notCheckpoint = join(scratch, 'not-a-checkpoint');
  beforeAll(() => {
    makeTinyCheckpoint(tiny);
    mkdirSync(notCheckpoint);
  });

  test('DIR writes DIR/model.gguf, the bytes exportGguf writes, and prints it', () => {
    const r = amnesia(['model', 'export-gguf', tiny]);
    expect(r).toMatchObject({ status: 0, stdout: `${join(tiny, 'model.gguf')}\n`, stderr: '' });
    exportGguf(tiny, join(scratch, 'lib.gguf'));
    expect(sha256(join(tiny, 'model.gguf'))).toBe(sha256(join(scratch, 'lib.gguf')));
  });

  test('--out FILE writes there', async () => {
    const out = join(scratch, 'elsewhere.gguf');
    await expect(modelCommand(['export-gguf', tiny, '--out', out])).resolves.toBe(out);
    expect(sha256(out)).toBe(sha256(join(scratch, 'lib.gguf')));
  });

  const usage = 'usage: amnesia model export-gguf DIR [--out FILE]';
  test.each([
    [['export-gguf'], usage],
    [['export-gguf', 'a', 'b'], usage],
    [['export-gguf', '/no/such/dir'], '/no/such/dir is not a directory'],
    [['export-gguf', notCheckpoint], `${join(notCheckpoint, 'config.json')}: cannot read: no such file`],
    [['export-gguf', notCheckpoint, '--out', scratch], `${scratch} is a directory`],
    [['export-gguf', notCheckpoint, '--out', '/no/such/dir/x.gguf'], '/no/such/dir/x.gguf: no directory /no/such/dir'],
  ])('refuses %j', async (args, message) => {
    const p = modelCommand(args);
    await expect(p).rejects.toThrow(UsageError);
    await expect(p).rejects.toThrow(message);
  });

  test('a folder that is not a checkpoint: one line on stderr, exit code 2', () => {
    const r = amnesia(['model', 'export-gguf', notCheckpoint]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`amnesia model: ${join(notCheckpoint, 'config.json')}: cannot read: no such file\n`);
  });
});
