// Loads the C++ engine (native/build/Release/amnesia_native.node, built on install by native/build.mjs).
// The path is relative to this file, so it works from src/engine (tsx, vitest) and dist/engine.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { NativeAddon } from './native-api.ts';
import { nativeBuildCommand, nativeNotBuiltError } from './native-build-status.ts';

/** Absolute path of the built addon. */
export const NATIVE_ADDON_PATH = fileURLToPath(new URL('../../native/build/Release/amnesia_native.node', import.meta.url));

const require = createRequire(import.meta.url);
let cached: NativeAddon | undefined;

/** The addon (loaded once per process). Throws one clear Error when it is not built or cannot load. */
export function loadNativeAddon(): NativeAddon {
  if (cached !== undefined) return cached;
  if (!existsSync(NATIVE_ADDON_PATH)) throw nativeNotBuiltError();
  try {
    cached = require(NATIVE_ADDON_PATH) as NativeAddon;
  } catch (e) {
    throw new Error(`cannot load the native engine ${NATIVE_ADDON_PATH}: ${(e as Error).message}; rebuild it with \`${nativeBuildCommand()}\``, { cause: e });
  }
  return cached;
}

/** Whether the addon has been built (does not load it). */
export function nativeAddonBuilt(): boolean {
  return existsSync(NATIVE_ADDON_PATH);
}
