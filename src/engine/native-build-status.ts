// Why the native engine is missing, in one line, with the command that builds it where this copy of
// amnesia lives: a clone (`npm run build:native`) or an installed package (native/build.mjs run in
// place; npm runs it as amnesia's install script unless --ignore-scripts or an allowScripts policy
// keeps it from running). native/build.mjs records each attempt in native/build/amnesia-build.json.
import { readFileSync, realpathSync } from 'node:fs';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (package.json, native/, dist/ or src/): two folders up from src/engine or dist/engine. */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The code of the Error thrown when the engine is needed and not built. */
export const NATIVE_NOT_BUILT = 'AMNESIA_NATIVE_NOT_BUILT';

interface BuildStatus {
  ok: boolean;
  reason?: string;
}

function readStatus(root: string): BuildStatus | undefined {
  try {
    const status = JSON.parse(readFileSync(join(root, 'native', 'build', 'amnesia-build.json'), 'utf8')) as BuildStatus;
    return typeof status === 'object' && status !== null && typeof status.ok === 'boolean' ? status : undefined;
  } catch {
    return undefined;
  }
}

/** Whether `root` is an installed copy (under node_modules) rather than a clone. */
function isInstalled(root: string): boolean {
  let real = root;
  try {
    real = realpathSync(root);
  } catch {
    // keep the path as given
  }
  return real.split(sep).includes('node_modules');
}

const shellWord = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`);

/** The command that builds the engine for the copy of amnesia at `root`. */
export function nativeBuildCommand(root: string = PACKAGE_ROOT): string {
  return isInstalled(root) ? `node ${shellWord(join(root, 'native', 'build.mjs'))}` : 'npm run build:native';
}

/** One line: what is missing and the command that builds the engine. */
export function nativeMissingMessage(root: string = PACKAGE_ROOT): string {
  const addon = join(root, 'native', 'build', 'Release', 'amnesia_native.node');
  const status = readStatus(root);
  const command = nativeBuildCommand(root);
  if (status?.ok === false) {
    return `the native engine is not built: its last build failed: ${status.reason ?? 'no reason recorded'}. Fix that, then run \`${command}\``;
  }
  if (status === undefined && isInstalled(root)) {
    return (
      "the native engine is not built: npm did not run amnesia's install script (--ignore-scripts, or an allowScripts policy that does not allow amnesia; " +
      `\`npm install-scripts approve amnesia\` allows it). Build it now: \`${command}\``
    );
  }
  return `the native engine is not built (${addon} is missing): run \`${command}\``;
}

/** The Error to throw when the engine is needed and not built (code NATIVE_NOT_BUILT). */
export function nativeNotBuiltError(root: string = PACKAGE_ROOT): Error {
  return Object.assign(new Error(nativeMissingMessage(root)), { code: NATIVE_NOT_BUILT });
}
