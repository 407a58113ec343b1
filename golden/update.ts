// `npm run golden:update`: rewrites every generated golden file from its inputs. Review the diff
// (`git diff golden/`) before committing: a golden changes only on purpose.
//   golden/chat, golden/completions — from each case folder's inputs (golden/goldens.ts);
//   golden/logits — the numpy reference (golden/reference/, needs python3 with numpy) on the tiny model.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ensureTinyCheckpoint } from '../src/engine/make-tiny.ts';
import { caseDirs, goldenKinds, goldenRoot } from './goldens.ts';

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
