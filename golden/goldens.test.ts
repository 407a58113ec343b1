import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { caseDirs, chatMapping, goldenKinds } from './goldens.ts';

for (const kind of goldenKinds) {
  describe(`golden/${kind.folder}`, () => {
    const dirs = caseDirs(kind);
    test('has cases', () => expect(dirs.length).toBeGreaterThan(0));

    test.each(dirs.map((d) => [basename(d), d] as const))('%s', (_name, dir) => {
      for (const [file, content] of Object.entries(kind.expectedFiles(dir))) {
        const path = join(dir, file);
        expect(existsSync(path), `${path} is missing: run npm run golden:update`).toBe(true);
        expect(content, `${kind.folder}/${basename(dir)}/${file}`).toBe(readFileSync(path, 'utf8'));
      }
    });
  });
}

describe('golden/chat error cases', () => {
  test('a case makes an error.json exactly when its name starts with error-', () => {
    for (const dir of caseDirs(chatMapping)) {
      expect('error.json' in chatMapping.expectedFiles(dir), basename(dir)).toBe(basename(dir).startsWith('error-'));
    }
  });
});
