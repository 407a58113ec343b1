#!/usr/bin/env node
// Builds native/build/Release/amnesia_native.node with node-gyp, using the Node headers that are
// already on this machine. It never downloads anything.
//
//   node native/build.mjs              build now (package.json "build:native"); exit 1 on failure
//   node native/build.mjs --if-needed  build only when the addon is missing or out of date
//   node native/build.mjs --install    package.json "install" (npm install, npm ci, npm rebuild):
//                                      --if-needed, except that
//                                      - in an installed copy (under node_modules) a build that
//                                        cannot run never fails the install: the reason goes to
//                                        native/build/amnesia-build.json, and the first use of the
//                                        engine prints it (src/engine/native-build-status.ts);
//                                      - in a clone run by `npx amnesia` (npm exec installs the
//                                        project into its cache and runs this), nothing is built;
//                                      - under `npm rebuild` it always builds, and fails loudly.
//
// Up to date means: the addon exists and native/build/amnesia-build.json holds the stamp of this
// build's inputs (the sources, binding.gyp, node-addon-api, Node, the header folder).
//
// What a build needs, each checked before node-gyp runs so a missing one is named: the Node headers
// ($npm_config_nodedir — npm passes ~/.npmrc's `nodedir` this way — else the prefix of the running
// node, e.g. /usr for /usr/bin/node), node-gyp and node-addon-api (dependencies of the package),
// Python 3 (gyp), make and a C++ compiler ($CXX, else g++).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { delimiter, dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const nativeDir = dirname(fileURLToPath(import.meta.url));
const root = resolve(nativeDir, '..');
const buildDir = join(nativeDir, 'build');
const addon = join(buildDir, 'Release', 'amnesia_native.node');
const statusFile = join(buildDir, 'amnesia-build.json');
const require = createRequire(import.meta.url);

const mode = process.argv.includes('--install') ? 'install' : process.argv.includes('--if-needed') ? 'if-needed' : 'build';
/** An installed copy (node_modules/amnesia, or npx's cache), not a clone. */
const installed = realpathSync(root).split(sep).includes('node_modules');
/** npm rebuild asks for a build, and wants to hear when it fails. */
const rebuild = process.env.npm_command === 'rebuild';

function onPath(name) {
  if (name.includes('/')) return existsSync(name) ? name : undefined;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

function hasHeaders(prefix) {
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) && existsSync(join(prefix, 'include', 'node', 'common.gypi'));
}

function packageDir(name) {
  try {
    return dirname(require.resolve(`${name}/package.json`));
  } catch {
    return undefined;
  }
}

/** The build's inputs, and each missing tool named (empty: all there). */
function preflight() {
  const missing = [];
  const candidates = [];
  if (process.env.npm_config_nodedir) candidates.push(resolve(process.env.npm_config_nodedir));
  candidates.push(dirname(dirname(process.execPath)));
  const nodedir = candidates.find(hasHeaders);
  if (!nodedir) {
    missing.push(
      `the Node headers (include/node/node_api.h under ${candidates.join(' or ')}; install the Node development headers or set npm_config_nodedir — they are never downloaded)`,
    );
  }
  const gypDir = packageDir('node-gyp');
  if (!gypDir) missing.push('node-gyp (a dependency of amnesia; reinstall it)');
  const napiDir = packageDir('node-addon-api');
  if (!napiDir) missing.push('node-addon-api (a dependency of amnesia; reinstall it)');
  const python = process.env.npm_config_python || process.env.PYTHON;
  if (python ? !onPath(python) : !onPath('python3') && !onPath('python'))
    missing.push(`Python 3 (${python ?? 'python3'} not found; node-gyp runs gyp with it)`);
  if (!onPath('make')) missing.push('make (not on PATH)');
  const cxx = process.env.CXX || 'g++';
  if (!onPath(cxx.split(' ')[0])) missing.push(`a C++ compiler (${cxx} not on PATH; set CXX to use another)`);
  return { missing, nodedir, gypDir, napiDir };
}

/** A hash of everything the addon is built from. */
function stamp({ nodedir, napiDir }) {
  const h = createHash('sha256');
  h.update(`${process.version} ${process.platform} ${process.arch} ${nodedir}\n`);
  h.update(readFileSync(join(napiDir, 'package.json')));
  h.update(readFileSync(join(nativeDir, 'binding.gyp')));
  for (const f of readdirSync(join(nativeDir, 'src')).sort()) {
    h.update(`\n${f}\n`);
    h.update(readFileSync(join(nativeDir, 'src', f)));
  }
  return h.digest('hex');
}

function readStatus() {
  try {
    return JSON.parse(readFileSync(statusFile, 'utf8'));
  } catch {
    return undefined;
  }
}

function writeStatus(status) {
  mkdirSync(buildDir, { recursive: true });
  writeFileSync(statusFile, `${JSON.stringify({ ...status, node: process.version, at: new Date().toISOString() }, null, 2)}\n`);
}

/** Runs node-gyp, its output passed through; on failure the reason names its first line that says "error". */
function nodeGyp(args, env) {
  return new Promise((done) => {
    const child = spawn(process.execPath, args, { cwd: nativeDir, env, stdio: ['ignore', 'inherit', 'pipe'] });
    let errorLine = '';
    let tail = '';
    child.stderr.on('data', (chunk) => {
      process.stderr.write(chunk);
      const lines = (tail + chunk.toString()).split('\n');
      tail = lines.pop() ?? '';
      for (const line of lines) {
        if (/error/i.test(line) && !/^gyp ERR! (stack|System|command|cwd|node -v|node-gyp -v|not ok)/.test(line)) errorLine ||= line.trim();
      }
    });
    child.on('error', (e) => done({ ok: false, reason: `could not run node-gyp: ${e.message}` }));
    child.on('close', (code, signal) => {
      if (code === 0) done({ ok: true });
      else done({ ok: false, reason: `node-gyp failed (exit ${code ?? signal})${errorLine ? `: ${errorLine}` : ''}` });
    });
  });
}

async function main() {
  if (mode === 'install' && !installed && process.env.npm_command === 'exec') {
    // `npx amnesia` in a clone: the clone is built by `npm install` / `npm run build:native`.
    return 0;
  }
  const pre = preflight();
  // An installed copy must not fail `npm install`; a clone's `npm ci` and `npm rebuild` must.
  const lenient = mode === 'install' && installed && !rebuild;
  const fail = (reason) => {
    writeStatus({ ok: false, reason });
    console.error(`amnesia: the native engine was not built: ${reason}`);
    if (lenient) console.error('amnesia: install goes on; `amnesia serve` and `amnesia check` without --target will say how to build it.');
    return lenient ? 0 : 1;
  };
  if (pre.missing.length > 0) return fail(`missing ${pre.missing.join('; ')}`);

  const want = stamp(pre);
  if (mode !== 'build' && !rebuild && existsSync(addon) && readStatus()?.stamp === want) return 0;

  const gyp = JSON.parse(readFileSync(join(pre.gypDir, 'package.json'), 'utf8'));
  const gypBin = join(pre.gypDir, typeof gyp.bin === 'string' ? gyp.bin : gyp.bin['node-gyp']);
  const jobs = process.env.AMNESIA_BUILD_JOBS ?? String(Math.max(1, Math.min(availableParallelism(), 8)));
  const env = { ...process.env, npm_config_nodedir: pre.nodedir };
  // binding.gyp asks `node` where node-addon-api is: the node running this build.
  env.PATH = [dirname(process.execPath), process.env.PATH ?? ''].join(delimiter);
  // Make sure node-gyp can never fall back to fetching headers or a tarball.
  delete env.npm_config_tarball;
  delete env.npm_config_dist_url;
  delete env.npm_config_disturl;
  const r = await nodeGyp([gypBin, 'rebuild', `--directory=${nativeDir}`, `--nodedir=${pre.nodedir}`, '-j', jobs], env);
  if (!r.ok) return fail(r.reason);
  if (!existsSync(addon)) return fail(`node-gyp succeeded but ${addon} is missing`);
  writeStatus({ ok: true, stamp: want });
  console.log(`build:native: built ${addon}`);
  return 0;
}

process.exitCode = await main();
