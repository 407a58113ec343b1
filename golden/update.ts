// `npm run golden:update`: rewrites every generated golden file from its inputs. Review the diff
// (`git diff golden/`) before committing: a golden changes only on purpose.
//   golden/chat, golden/completions — from each case folder's inputs (golden/goldens.ts);
//   golden/api — what one local server on the tiny model answers to each case's request;
//   golden/logits — the numpy reference (golden/reference/, needs python3 with numpy; $PYTHON names another
//   interpreter) on the tiny random model and on the talking tiny model.
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ensureTinyCheckpoint } from '../src/engine/make-tiny.ts';
import { ensureTinyChatCheckpoint } from '../src/engine/make-tiny-chat.ts';
import { apiKinds, caseDirs, goldenKinds, goldenRoot, startApiGoldenServer } from './goldens.ts';

let written = 0;
for (const kind of goldenKinds) {
  for (const dir of caseDirs(kind)) {
    for (const [file, content] of Object.entries(kind.expectedFiles(dir))) {
      writeFileSync(join(dir, file), content);
      written++;
    }
    process.stdout.write(`${kind.folder}/${basename(dir)}\n`);
  }
}

// Before anything else uses the engine in this process (it picks the scalar kernels).
for (const kind of apiKinds) {
  const server = await startApiGoldenServer(kind.model);
  try {
    for (const dir of caseDirs(kind)) {
      const files = await kind.expectedFilesAsync(dir, server.baseUrl);
      for (const [file, content] of Object.entries(files)) {
        writeFileSync(join(dir, file), content);
        written++;
      }
      // A case that changed form (stream ⇄ JSON) must not keep the other form's file.
      for (const file of kind.outputFiles) if (!(file in files) && existsSync(join(dir, file))) rmSync(join(dir, file));
      process.stdout.write(`${kind.folder}/${basename(dir)}\n`);
    }
  } finally {
    await server.close();
  }
}

// After golden/chat: the reference reads the exo-1362 prompts' token files.
const script = join(goldenRoot, 'reference', 'make_golden_logits.py');
const python = process.env.PYTHON ?? 'python3';
for (const [file, model] of [
  ['tiny-seed1.json', await ensureTinyCheckpoint(1)],
  ['tiny-chat.json', await ensureTinyChatCheckpoint()],
] as const) {
  const out = join(goldenRoot, 'logits', file);
  const run = spawnSync(python, [script, model, out], { stdio: 'inherit' });
  if (run.error || run.status !== 0) {
    console.error(`golden:update: the numpy reference failed (${run.error?.message ?? `exit ${run.status}`}); golden/logits needs ${python} with numpy`);
    process.exit(1);
  }
  written++;
  console.log(`logits/${basename(out)}`);
}
console.log(`${written} golden files written`);
