// `npm run golden:update`: rewrites every generated golden file from its case's inputs. Review the
// diff (`git diff golden/`) before committing: a golden changes only on purpose.
import { writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { caseDirs, goldenKinds } from './goldens.ts';

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
console.log(`${written} golden files written`);
