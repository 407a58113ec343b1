#!/usr/bin/env node
// Builds native/build/Release/amnesia_native.node with node-gyp, using the Node headers that are
// already on this machine. It never downloads anything: when the headers are missing it prints one
// line and exits 1.
//
//   node native/build.mjs            (package.json: "build:native")
//
// Header lookup: $npm_config_nodedir (npm passes ~/.npmrc's `nodedir` this way), else the prefix of
// the running node binary (dirname(dirname(process.execPath)), e.g. /usr for /usr/bin/node).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const nativeDir = dirname(fileURLToPath(import.meta.url));
const root = resolve(nativeDir, '..');

function hasHeaders(prefix) {
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) && existsSync(join(prefix, 'include', 'node', 'common.gypi'));
}

const candidates = [];
if (process.env.npm_config_nodedir) candidates.push(resolve(process.env.npm_config_nodedir));
candidates.push(dirname(dirname(process.execPath)));
const nodedir = candidates.find(hasHeaders);
if (!nodedir) {
  console.error(
    `build:native: Node headers not found (looked for include/node/node_api.h under ${candidates.join(', ')}); install the Node development headers or set npm_config_nodedir — not downloading them.`,
  );
  process.exit(1);
}

const nodeGyp = join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
if (!existsSync(nodeGyp)) {
  console.error(`build:native: ${nodeGyp} is missing; run npm install first.`);
  process.exit(1);
}
if (!existsSync(join(root, 'node_modules', 'node-addon-api', 'napi.h'))) {
  console.error('build:native: node_modules/node-addon-api is missing; run npm install first.');
  process.exit(1);
}

const jobs = process.env.AMNESIA_BUILD_JOBS ?? '2';
const args = [nodeGyp, 'rebuild', `--directory=${nativeDir}`, `--nodedir=${nodedir}`, '-j', jobs];
const env = { ...process.env, npm_config_nodedir: nodedir };
// Make sure node-gyp can never fall back to fetching headers or a tarball.
delete env.npm_config_tarball;
delete env.npm_config_dist_url;
delete env.npm_config_disturl;
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env });
if (r.error) {
  console.error(`build:native: could not run node-gyp: ${r.error.message}`);
  process.exit(1);
}
if (r.status !== 0) {
  console.error(`build:native: node-gyp failed (exit ${r.status ?? r.signal})`);
  process.exit(r.status ?? 1);
}
const out = join(nativeDir, 'build', 'Release', 'amnesia_native.node');
if (!existsSync(out)) {
  console.error(`build:native: node-gyp succeeded but ${out} is missing`);
  process.exit(1);
}
console.log(`build:native: built ${out}`);
