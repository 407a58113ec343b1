// SLOW (about a minute here, a few on 2 cores: it builds the native engine for real): the npm
// package as a user gets it. `npm pack` the repository, install the tarball into a temporary project
// with `npm install --offline` (the project gets a lockfile cut from ours, so every tarball comes
// from the npm cache that `npm ci` filled: no network), and use it from there:
//
// - the install script built the native engine in node_modules/amnesia;
// - the README's library example type-checks against the package's .d.ts (tsc, strict);
// - import('amnesia') and import('amnesia/server'): a local server, replay() and check() on it;
// - `npx amnesia serve` + `npx amnesia check --target …`;
// - the replay command a failure prints (and REPORT.md's) works as printed, from the project and
//   from this clone (`npx amnesia` here runs the clone's own build, with no rebuild);
// - stopping `npx amnesia serve` (SIGTERM or SIGINT to npx) stops the server;
// - without the engine (no compiler at install, or no install script): one line naming what is
//   missing and the command that builds it.
//
// No verdict depends on time: every wait is for an event (a line, an exit), under vitest timeouts
// far above what it needs.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const repo = fileURLToPath(new URL('..', import.meta.url));
const ourPackage = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const ourLock = JSON.parse(readFileSync(join(repo, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };

interface LockEntry {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  [key: string]: unknown;
}

const tmp = mkdtempSync(join(tmpdir(), 'amnesia-package-'));
const project = join(tmp, 'project');
const installed = join(project, 'node_modules', 'amnesia');

/**
 * npm's own variables from `npm test` stay out (they describe the repository), and so do failpoints
 * and GitHub's (a failing check here must not write the CI's step summary); no network.
 */
const env: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(
    ([k]) => !/^(npm_(lifecycle_|package_|command$|config_local_prefix$)|INIT_CWD$|AMNESIA_FAILPOINTS$|GITHUB_ACTIONS$|GITHUB_STEP_SUMMARY$)/.test(k),
  ),
);
Object.assign(env, { npm_config_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' });

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], cwd: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const shell = (line: string, cwd: string, extraEnv: NodeJS.ProcessEnv = {}) => run('sh', ['-c', line], cwd, extraEnv);

/** The lockfile entries that `roots` need, as our lockfile places them (a closed subset of a valid tree is valid). */
function lockClosure(roots: string[]): Record<string, LockEntry> {
  const out: Record<string, LockEntry> = {};
  const find = (from: string, name: string): string | undefined => {
    for (let base = from; ;) {
      const path = `${base === '' ? '' : `${base}/`}node_modules/${name}`;
      if (ourLock.packages[path]) return path;
      if (base === '') return undefined;
      const i = base.lastIndexOf('/node_modules/');
      base = i < 0 ? '' : base.slice(0, i);
    }
  };
  const visit = (path: string) => {
    if (out[path]) return;
    const { dev: _dev, devOptional: _devOptional, peer: _peer, ...entry } = ourLock.packages[path]!;
    out[path] = entry;
    const optionalPeers = new Set(Object.entries(entry.peerDependenciesMeta ?? {}).flatMap(([n, m]) => (m.optional ? [n] : [])));
    const names = [
      ...Object.keys(entry.dependencies ?? {}),
      ...Object.keys(entry.optionalDependencies ?? {}),
      ...Object.keys(entry.peerDependencies ?? {}).filter((n) => !optionalPeers.has(n)),
    ];
    for (const name of names) {
      const found = find(path, name);
      if (found) visit(found);
    }
  };
  for (const name of roots) {
    const path = `node_modules/${name}`;
    if (!ourLock.packages[path]) throw new Error(`${name} is not in package-lock.json`);
    visit(path);
  }
  return out;
}

/** The pids below `pid` (ps works on Linux and macOS). */
function descendants(pid: number): number[] {
  const rows = spawnSync('ps', ['-A', '-o', 'pid=,ppid='], { encoding: 'utf8' })
    .stdout.trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number) as [number, number]);
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [child, parent] of rows) {
      if (parent === p) {
        out.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return out;
}

/** Running: a zombie (exited, not yet reaped by whoever adopted it) counts as gone. */
function alive(pid: number): boolean {
  const stat = spawnSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' }).stdout.trim();
  return stat !== '' && !stat.startsWith('Z');
}

const started: ChildProcess[] = [];

/** `npx amnesia serve --port 0 …` from the project; resolves with its URL once it listens. */
function serve(args: string[] = [], detached = false): Promise<{ child: ChildProcess; url: string; exited: Promise<number | null> }> {
  const child = spawn('npx', ['amnesia', 'serve', '--port', '0', ...args], { cwd: project, env, stdio: ['ignore', 'pipe', 'pipe'], detached });
  started.push(child);
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const url = /at (http:\/\/\S+\/v1)/.exec(out)?.[1];
      if (url) resolve({ child, url, exited });
    });
    void exited.then((code) => reject(new Error(`npx amnesia serve exited (${code}) before listening:\n${out}\n${err}`)));
  });
}

function killAll(child: ChildProcess): void {
  for (const pid of [...descendants(child.pid!), child.pid!]) if (alive(pid)) process.kill(pid, 'SIGKILL');
}

/** Polls until `done()` (a process's exit is an event, but not one we can wait on from here). */
async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((r) => setTimeout(r, 100));
}

beforeAll(async () => {
  mkdirSync(project, { recursive: true });
  const packed = await run('npm', ['pack', '--json', '--pack-destination', tmp], repo);
  expect(packed.code, packed.stderr).toBe(0);
  const [info] = JSON.parse(packed.stdout) as [{ filename: string; files: { path: string }[] }];
  writeFileSync(join(tmp, 'files.json'), JSON.stringify(info.files.map((f) => f.path)));
  const tarball = `file:${info.filename}`;
  renameSync(join(tmp, info.filename), join(project, info.filename));

  const devDependencies = Object.fromEntries(['typescript', 'vitest', '@types/node'].map((n) => [n, ourPackage.devDependencies[n]!]));
  const manifest = { name: 'amnesia-consumer', version: '1.0.0', private: true, type: 'module', dependencies: { amnesia: tarball }, devDependencies };
  writeFileSync(join(project, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  const lock = {
    name: manifest.name,
    version: manifest.version,
    lockfileVersion: 3,
    requires: true,
    packages: {
      '': { name: manifest.name, version: manifest.version, dependencies: manifest.dependencies, devDependencies },
      ...lockClosure([...Object.keys(ourPackage.dependencies), ...Object.keys(devDependencies)]),
    },
  };
  writeFileSync(join(project, 'package-lock.json'), `${JSON.stringify(lock, null, 2)}\n`);

  const install = await run('npm', ['install', '--offline', '--no-audit', '--no-fund'], project);
  expect(install.code, `${install.stdout}\n${install.stderr}`).toBe(0);
}, 900_000);

afterAll(() => {
  for (const child of started) killAll(child);
  rmSync(tmp, { recursive: true, force: true });
}, 120_000);

describe('the npm package, packed and installed offline (slow)', { timeout: 300_000 }, () => {
  test('the tarball holds the build, its types, the native sources and the scenarios; no maps, tests or build output', () => {
    const files = JSON.parse(readFileSync(join(tmp, 'files.json'), 'utf8')) as string[];
    for (const f of [
      'package.json',
      'README.md',
      'bin/amnesia.js',
      'dist/cli.js',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/server/local-server.d.ts',
      'dist/engine/native-build-status.js',
      'native/build.mjs',
      'native/binding.gyp',
      'native/src/addon.cpp',
      'spec/scenarios/exo-1362.json',
      'golden/tiny-chat/tiny-chat-delta.safetensors',
    ]) {
      expect(files).toContain(f);
    }
    expect(files.filter((f) => /\.map$|\.test\.|^native\/build\/|^src\/|node_modules/.test(f))).toEqual([]);
  });

  test('the install script built the native engine in node_modules/amnesia', () => {
    expect(existsSync(join(installed, 'native', 'build', 'Release', 'amnesia_native.node'))).toBe(true);
    expect(JSON.parse(readFileSync(join(installed, 'native', 'build', 'amnesia-build.json'), 'utf8'))).toMatchObject({ ok: true });
  });

  test("the README's library example type-checks against the package's .d.ts", async () => {
    const readme = readFileSync(join(repo, 'README.md'), 'utf8');
    const example = /### Library use[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(example).toContain("from 'amnesia'");
    writeFileSync(join(project, 'readme-example.test.ts'), example!);
    // Types that are really there (an unresolved import would make everything `any` and pass).
    writeFileSync(
      join(project, 'types.ts'),
      [
        "import { builtinScenarios, check, replay, type CheckReport, type ReplayReport } from 'amnesia';",
        "import { startLocalServer, type LocalServer } from 'amnesia/server';",
        "export const report: Promise<CheckReport> = check({ target: 'http://127.0.0.1:1/v1', runs: 1 });",
        "export const replayed: Promise<boolean> = replay(builtinScenarios()[0]!, { target: 'http://127.0.0.1:1/v1' }).then((r: ReplayReport) => r.ok);",
        'export const server: Promise<LocalServer> = startLocalServer({ port: 0 });',
        '// @ts-expect-error runs is a number',
        "void check({ runs: 'many' });",
        '// @ts-expect-error no such option',
        'void startLocalServer({ noSuchOption: true });',
        '',
      ].join('\n'),
    );
    const tsconfig = {
      compilerOptions: { strict: true, target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', noEmit: true, types: ['node'], skipLibCheck: true },
      include: ['*.ts'],
    };
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify(tsconfig));
    const tsc = await run(process.execPath, [join(project, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], project);
    expect(`${tsc.stdout}${tsc.stderr}`).toBe('');
    expect(tsc.code).toBe(0);
    // The package's own declarations, checked too (skipLibCheck skips every .d.ts).
    const own = await run(
      process.execPath,
      [
        join(project, 'node_modules', 'typescript', 'bin', 'tsc'),
        ...['--noEmit', '--strict', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022', '--types', 'node'],
        'types.ts',
      ],
      project,
    );
    expect(`${own.stdout}${own.stderr}`).toBe('');
  });

  test("import('amnesia') and import('amnesia/server'): a local server, replay() and check() on it", async () => {
    writeFileSync(
      join(project, 'library.mjs'),
      [
        "import { builtinScenarios, check, replay } from 'amnesia';",
        "import { startLocalServer } from 'amnesia/server';",
        'const server = await startLocalServer({ port: 0 });',
        'try {',
        '  const replayed = await replay(builtinScenarios()[0], { target: server.baseUrl });',
        "  const checked = await check({ target: server.baseUrl, runs: 1, properties: ['history-independence'] });",
        '  console.log(JSON.stringify({ replayOk: replayed.ok, checkOk: checked.ok }));',
        '} finally {',
        '  await server.close();',
        '}',
        '',
      ].join('\n'),
    );
    const r = await run(process.execPath, ['library.mjs'], project);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ replayOk: true, checkOk: true });
    expect(r.code).toBe(0);
  });

  test('npx amnesia model make-tiny-chat finds the delta the package ships', async () => {
    const out = join(tmp, 'tiny-chat');
    const made = await run('npx', ['amnesia', 'model', 'make-tiny-chat', '--out', out], project);
    expect(made.stderr).toBe('');
    expect(made.stdout.trim()).toBe(out);
    expect(existsSync(join(out, 'model.safetensors'))).toBe(true);
  });

  test('npx amnesia serve, then npx amnesia check --target it: exit 0', async () => {
    const { child, url, exited } = await serve();
    // A fixed seed: this test is about the package (the two commands working together), and a random
    // one would make it a different check on every run.
    const checked = await run('npx', ['amnesia', 'check', '--target', url, '--runs', '2', '--seed', '1', '--report', join(tmp, 'report-ok')], project);
    expect(checked.stdout).toMatch(/11 properties: 11 passed, 0 failed/);
    expect(checked.code).toBe(0);
    child.kill('SIGTERM');
    await exited;
  });

  test('the replay command of a failure works as printed: from the project, from its report folder, and from this clone', async () => {
    const { child, url, exited } = await serve(['--failpoint', 'kv-trim-noop']);
    const reportDir = join(tmp, 'report-fail');
    const checked = await run(
      'npx',
      ['amnesia', 'check', '--target', url, '--properties', 'history-independence', '--runs', '5', '--seed', '1', '--report', reportDir],
      project,
    );
    expect(checked.code).toBe(1);
    const printed = /\(replay: (npx amnesia replay .*)\)$/m.exec(checked.stdout)?.[1];
    expect(printed).toBe(`npx amnesia replay ${reportDir}/history-independence/scenario.json --target ${url}`);

    const fromProject = await shell(printed!, project);
    expect(fromProject.stdout).toMatch(/FAILS/);
    expect(fromProject.code).toBe(1);

    const folder = join(reportDir, 'history-independence');
    const fenced = /```sh\n(npx amnesia replay scenario\.json[^\n]*)\n```/.exec(readFileSync(join(folder, 'REPORT.md'), 'utf8'))?.[1];
    expect(fenced).toBe(`npx amnesia replay scenario.json --target ${url}`);
    // A report folder inside the project (the default ./amnesia-report/<property>/).
    const inside = join(project, 'amnesia-report', 'history-independence');
    mkdirSync(inside, { recursive: true });
    writeFileSync(join(inside, 'scenario.json'), readFileSync(join(folder, 'scenario.json')));
    const fromFolder = await shell(fenced!, inside);
    expect(fromFolder.stdout).toMatch(/FAILS/);
    expect(fromFolder.code).toBe(1);

    // In a clone npx installs the project into its cache as a link and runs its install and
    // prepare scripts: they must find everything built and build nothing. A fresh npm cache shows
    // it needs no registry either.
    const fromClone = await shell(printed!, repo, { npm_config_cache: join(tmp, 'npm-cache') });
    expect(fromClone.stdout).toMatch(/FAILS/);
    expect(fromClone.code).toBe(1);

    child.kill('SIGTERM');
    await exited;
  });

  // npx runs the bin through `sh -c`. SIGTERM to npx reaches that shell, which dies; the bin sees its
  // parent go and stops as if signalled. SIGINT is what a terminal's Ctrl-C sends to the whole
  // process group. (SIGINT to npx's pid alone cannot reach node where sh is dash: `sh -c` catches
  // SIGINT and waits for its child before acting on it.)
  test.each([
    ['SIGTERM', 'to npx'],
    ['SIGINT', "to npx's process group, as Ctrl-C"],
  ] as const)('stopping npx amnesia serve with %s %s stops the server', async (signal, to) => {
    const group = to !== 'to npx';
    const { child, exited } = await serve([], group);
    const below = descendants(child.pid!);
    expect(below.length).toBeGreaterThan(0);
    if (group) process.kill(-child.pid!, signal);
    else child.kill(signal);
    await exited;
    await until(() => below.every((pid) => !alive(pid)));
  });

  test('without a compiler at install: one line that names what is missing and the command that builds it', async () => {
    const build = join(installed, 'native', 'build');
    const kept = join(tmp, 'native-build');
    renameSync(build, kept);
    try {
      // What the install script does on a machine with node but no python, make or g++.
      const bare = join(tmp, 'bare-bin');
      mkdirSync(bare);
      symlinkSync(process.execPath, join(bare, 'node'));
      const attempt = await run(process.execPath, [join(installed, 'native', 'build.mjs'), '--install'], installed, { PATH: bare });
      expect(attempt.code).toBe(0);
      const served = await run('npx', ['amnesia', 'serve', '--port', '0'], project);
      expect(served.code).toBe(1);
      const lines = served.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^amnesia: the native engine is not built: .*a C\+\+ compiler \(g\+\+ not on PATH.*`node \S+\/native\/build\.mjs`$/);

      // npm never ran the install script (--ignore-scripts, or allowScripts denies it).
      rmSync(build, { recursive: true, force: true });
      const checked = await run('npx', ['amnesia', 'check', '--runs', '1'], project);
      expect(checked.code).toBe(1);
      expect(checked.stderr.trim().split('\n')).toEqual([
        expect.stringMatching(/^amnesia: .*did not run amnesia's install script.*`node \S+\/native\/build\.mjs`$/),
      ]);
    } finally {
      rmSync(build, { recursive: true, force: true });
      renameSync(kept, build);
    }
  });
});
