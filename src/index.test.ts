// The library checks someone else's server without loading amnesia's own: with a --target, importing
// 'amnesia' and running a check loads neither fastify nor the native engine, and without one they
// load only in the embedded target's child processes (a child process records every module it
// resolves and every native addon it opens).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startLocalServer, type LocalServer } from './server/local-server.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Runs `body` (an ES module's text, after `lib` is imported) in a child and returns what it loaded. */
async function loadedBy(body: string, entry = './src/index.ts'): Promise<{ modules: string[]; addons: string[]; stdout: string; stderr: string }> {
  const script = `
    import { register } from 'node:module';
    const addons = [];
    const dlopen = process.dlopen;
    process.dlopen = (m, file, ...rest) => { addons.push(file); return dlopen(m, file, ...rest); };
    const { port1, port2 } = new MessageChannel();
    const modules = [];
    port1.on('message', (url) => modules.push(url));
    port1.unref();
    register('data:text/javascript,' + encodeURIComponent(\`
      let port;
      export function initialize(data) { port = data.port; }
      export async function resolve(specifier, context, next) { const r = await next(specifier, context); port.postMessage(r.url); return r; }
    \`), { data: { port: port2 }, transferList: [port2] });
    const lib = await import(${JSON.stringify(entry)});
    ${body}
    await new Promise((r) => setTimeout(r, 50));
    console.log(JSON.stringify({ modules, addons }));
  `;
  // Asynchronously: the server under test answers from this process's event loop.
  const r = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120_000,
  }).catch((e: { stdout: string; stderr: string }) => e);
  const last = r.stdout.trim().split('\n').at(-1) ?? '{}';
  const { modules = [], addons = [] } = JSON.parse(last.startsWith('{') ? last : '{}') as { modules?: string[]; addons?: string[] };
  return { modules, addons, stdout: r.stdout, stderr: r.stderr };
}

const fastifyOrEngine = (urls: string[]) => urls.filter((u) => /node_modules\/fastify\/|\/src\/(server|engine|embedded)\/|\.node$/.test(u));

describe("import('amnesia') with a target", () => {
  let local: LocalServer;
  beforeAll(async () => {
    local = await startLocalServer();
  });
  afterAll(async () => local?.close());

  test('checks the target and loads neither fastify nor the native engine', { timeout: 120_000 }, async () => {
    const r = await loadedBy(`
      const report = await lib.check({ target: ${JSON.stringify(local.baseUrl)}, properties: ['history-independence'], runs: 2, seed: 1, scenarios: [] });
      console.log('ok=' + report.ok);
    `);
    expect(r.stdout, r.stderr).toContain('ok=true');
    expect(
      r.modules.some((u) => u.includes('/src/harness/')),
      'the record sees the harness load',
    ).toBe(true);
    expect(fastifyOrEngine(r.modules)).toEqual([]);
    expect(r.addons).toEqual([]);
  });

  test('without a target the check runs the embedded server in child processes: this one loads neither', { timeout: 120_000 }, async () => {
    const r = await loadedBy(`
      const report = await lib.check({ properties: ['history-independence'], runs: 1, seed: 1, scenarios: [] });
      console.log('ok=' + report.ok + ' target=' + report.target);
    `);
    expect(r.stdout, r.stderr).toMatch(/ok=true target=embedded .* \(child process\)/);
    expect(r.modules.some((u) => u.endsWith('/src/embedded/child-target.ts'))).toBe(true);
    expect(fastifyOrEngine(r.modules).filter((u) => !u.includes('/src/embedded/'))).toEqual([]);
    expect(r.addons).toEqual([]);
  });

  test('the same record sees them load when this process starts a server (the negative control)', { timeout: 120_000 }, async () => {
    const r = await loadedBy(`
      const { startLocalServer } = await import('./src/server/local-server.ts');
      const local = await startLocalServer();
      await local.close();
      console.log('ok=true');
    `);
    expect(r.stdout, r.stderr).toContain('ok=true');
    expect(r.modules.some((u) => /node_modules\/fastify\//.test(u))).toBe(true);
    expect(r.addons.some((f) => f.endsWith('amnesia_native.node'))).toBe(true);
  });
});
