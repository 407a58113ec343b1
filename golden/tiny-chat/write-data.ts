// Writes the talking tiny model's training data (src/chat-data/) into a folder, for train.py:
//   npx tsx golden/tiny-chat/write-data.ts OUT_DIR
// The seed and sizes are the recipe's (recipe.json), so the same files come out on any machine.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeDataset } from '../../src/chat-data/write.ts';

const out = process.argv[2];
if (out === undefined) {
  console.error('usage: npx tsx golden/tiny-chat/write-data.ts OUT_DIR');
  process.exit(2);
}
const recipe = JSON.parse(readFileSync(join(import.meta.dirname, 'recipe.json'), 'utf8')) as { data: { seed: number; train: number; heldOut: number; repeatRate?: number } };
const summary = writeDataset(out, recipe.data);
console.log(
  `${out}: ${summary.train.examples} training examples (${summary.train.promptTokens} prompt + ${summary.train.completionTokens} completion tokens), ${summary.heldOut.examples} held out, ${summary.vocabSize} distinct ids`,
);
