// `npm run golden:update`: rewrites every generated golden file from its inputs. Review the diff
// (`git diff golden/`) before committing: a golden changes only on purpose.
//   golden/chat, golden/completions — from each case folder's inputs (golden/goldens.ts);
//   golden/api — what one local server on the tiny model answers to each case's request;
//   golden/logits — the numpy reference (golden/reference/, needs python3 with numpy) on the tiny model.
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ensureTinyCheckpoint } from '../src/engine/make-tiny.ts';
import { apiResponses, caseDirs, goldenKinds, goldenRoot, startApiGoldenServer } from './goldens.ts';

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
const server = await startApiGoldenServer();
try {
  for (const dir of caseDirs(apiResponses)) {
    const files = await apiResponses.expectedFilesAsync(dir, server.baseUrl);
    for (const [file, content] of Object.entries(files)) {
      writeFileSync(join(dir, file), content);
      written++;
    }
    // A case that changed form (stream ⇄ JSON) must not keep the other form's file.
    for (const file of apiResponses.outputFiles) if (!(file in files) && existsSync(join(dir, file))) rmSync(join(dir, file));
    process.stdout.write(`${apiResponses.folder}/${basename(dir)}\n`);
  }
} finally {
  await server.close();
}

// After golden/chat: the reference reads the exo-1362 prompts' token files.
const model = await ensureTinyCheckpoint(1);
const script = join(goldenRoot, 'reference', 'make_golden_logits.py');
const out = join(goldenRoot, 'logits', 'tiny-seed1.json');
const run = spawnSync('python3', [script, model, out], { stdio: 'inherit' });
if (run.error || run.status !== 0) {
  console.error(`golden:update: the numpy reference failed (${run.error?.message ?? `exit ${run.status}`}); golden/logits needs python3 with numpy`);
  process.exit(1);
}
written++;
console.log(`logits/${basename(out)}\n${written} golden files written`);
