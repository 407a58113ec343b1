// Hugging Face transformers loads the model folders amnesia writes (the tiny random checkpoint and
// the talking tiny model) and matches their golden logits within the engine's own tolerance, with the
// same greedy tokens (golden/reference/check_transformers.py). Runs where a Python with torch,
// transformers and accelerate is found: $AMNESIA_PYTHON, else the environment that
// golden/tiny-chat/install.sh makes in the cache folder. CI does not install it (5 GB of torch), so
// there this test is skipped.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { amnesiaCacheDir, ensureTinyCheckpoint } from '../src/engine/make-tiny.ts';
import { ensureTinyChatCheckpoint } from '../src/engine/make-tiny-chat.ts';

const python = process.env.AMNESIA_PYTHON ?? join(amnesiaCacheDir(), 'python', 'train', 'bin', 'python');
const available = existsSync(python) && spawnSync(python, ['-c', 'import transformers, accelerate, torch'], { stdio: 'ignore' }).status === 0;
const script = fileURLToPath(new URL('./reference/check_transformers.py', import.meta.url));

describe.skipIf(!available)('transformers loads the folders and matches the golden logits', () => {
  test.each([
    ['the tiny random checkpoint', 'tiny-seed1.json', () => ensureTinyCheckpoint(1)],
    ['the talking tiny model', 'tiny-chat.json', () => ensureTinyChatCheckpoint()],
  ] as const)('%s', { timeout: 300_000 }, async (_what, golden, ensureDir) => {
    const dir = await ensureDir();
    const r = spawnSync(python, [script, dir, fileURLToPath(new URL(`./logits/${golden}`, import.meta.url))], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { model: string; ok: boolean; greedy_equal: boolean; max_abs_diff: number };
    expect(result).toMatchObject({ model: 'GptOssForCausalLM', ok: true, greedy_equal: true });
  });
});
