import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { NATIVE_NOT_BUILT, nativeBuildCommand, nativeMissingMessage, nativeNotBuiltError } from './native-build-status.ts';

const tmp = mkdtempSync(join(tmpdir(), 'amnesia-native-status-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A copy of the package at `root`, with native/build/amnesia-build.json when `status` is given. */
function copyAt(root: string, status?: object): string {
  mkdirSync(join(root, 'native'), { recursive: true });
  if (status) {
    mkdirSync(join(root, 'native', 'build'), { recursive: true });
    writeFileSync(join(root, 'native', 'build', 'amnesia-build.json'), JSON.stringify(status));
  }
  return root;
}

describe('nativeMissingMessage: one line, what is missing and the command that builds it here', () => {
  test('an installed copy whose build failed at install: the reason, then build.mjs run in place', () => {
    const root = copyAt(join(tmp, 'a', 'node_modules', 'amnesia'), { ok: false, reason: 'missing make (not on PATH)' });
    const message = nativeMissingMessage(root);
    expect(message).toBe(
      `the native engine is not built: its last build failed: missing make (not on PATH). Fix that, then run \`node ${join(root, 'native', 'build.mjs')}\``,
    );
    expect(message).not.toContain('\n');
  });

  test('an installed copy whose install script never ran: says so, and how to allow it', () => {
    const root = copyAt(join(tmp, 'b', 'node_modules', 'amnesia'));
    expect(nativeMissingMessage(root)).toBe(
      "the native engine is not built: npm did not run amnesia's install script (--ignore-scripts, or an allowScripts policy that does not allow amnesia; " +
        `\`npm install-scripts approve amnesia\` allows it). Build it now: \`node ${join(root, 'native', 'build.mjs')}\``,
    );
  });

  test('a clone: npm run build:native', () => {
    const root = copyAt(join(tmp, 'clone'));
    expect(nativeBuildCommand(root)).toBe('npm run build:native');
    expect(nativeMissingMessage(root)).toMatch(/^the native engine is not built \(.*amnesia_native\.node is missing\): run `npm run build:native`$/);
    copyAt(root, { ok: false, reason: 'node-gyp failed (exit 2)' });
    expect(nativeMissingMessage(root)).toMatch(/its last build failed: node-gyp failed \(exit 2\)\. Fix that, then run `npm run build:native`$/);
  });

  test('a path with spaces is quoted for the shell', () => {
    const root = copyAt(join(tmp, 'my project', 'node_modules', 'amnesia'));
    expect(nativeBuildCommand(root)).toBe(`node '${join(root, 'native', 'build.mjs')}'`);
  });

  test('nativeNotBuiltError carries the code the bin recognises', () => {
    const e = nativeNotBuiltError(copyAt(join(tmp, 'c')));
    expect((e as NodeJS.ErrnoException).code).toBe(NATIVE_NOT_BUILT);
    expect(e.message).toContain('npm run build:native');
  });
});
