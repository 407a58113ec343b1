// A hang is a verdict (spec/properties.md, "Running a check"): on a fake server whose streamed
// requests with tool_choice never get an answer ('hang-tool-stream', properties/fake-server.ts),
// `check()` fails tool-call-assembly with a 'hang' violation and a shrunk scenario that hangs again
// on a fresh instance, the properties after it still run (and pass), and `amnesia check` exits 1 with
// a bug report. The deadline (3 s) is far from both behaviours of the fake — an answer at once, or
// none ever — so no verdict depends on how busy the machine is.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { requestCount } from '../src/harness/scenario.ts';
import { check, replay } from '../src/api.ts';
import { useFakeServers } from './fake-server.ts';

/** A fresh fake (its own state) at its own host; returns its base URL. */
const fresh = useFakeServers('hang.amnesia.test');

const DEADLINE_MS = 3000;
const PROPERTIES = ['tool-call-assembly', 'truncation-consistency'];

/**
 * The fake over real HTTP on 127.0.0.1, for a CLI in another process (msw answers this process's
 * fetch only): each request is passed on to the fake, and abandoned when the client goes away.
 */
async function overHttp(baseUrl: string): Promise<{ url: string; close(): Promise<void> }> {
  const origin = new URL(baseUrl).origin;
  const http: Server = createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const controller = new AbortController();
      res.on('close', () => controller.abort());
      try {
        const r = await fetch(`${origin}${req.url ?? '/'}`, {
          method: req.method ?? 'GET',
          headers: { 'content-type': req.headers['content-type'] ?? 'application/json' },
          ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}),
          signal: controller.signal,
        });
        res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json' });
        if (r.body) for await (const c of r.body) res.write(c);
        res.end();
      } catch {
        res.destroy();
      }
    })();
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    close: () =>
      new Promise((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
}

const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
function amnesia(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', cli, ...args], { env: { ...process.env, GITHUB_ACTIONS: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('a target that hangs', () => {
  test('check(): a hang violation, shrunk, replayable; the next property still runs', { timeout: 120_000 }, async () => {
    const report = await check({ target: fresh('hang-tool-stream'), properties: PROPERTIES, runs: 10, seed: 1, requestTimeoutMs: DEADLINE_MS });
    expect(report.requestTimeoutMs).toBe(DEADLINE_MS);
    const [hung, next] = report.results;
    expect(hung!.status, hung!.reason).toBe('failed');
    expect(hung!.flaky).toBeUndefined();
    const f = hung!.failure!;
    expect(f.violation.kind, f.violation.message).toBe('hang');
    expect(f.violation.message).toMatch(/got no complete answer within 3\.0 s \(no response at all\)/);
    expect(requestCount(f.scenario), JSON.stringify(f.scenario.steps)).toBeLessThanOrEqual(2);
    // The scenario's hanging request is a stream with tool_choice, as the fake's hang is.
    const entry = f.recording.entries[f.violation.entries[0]!]!;
    expect(entry.call.stream).toBe(true);
    expect(entry.call.body.tool_choice).toBeDefined();
    // The property after it ran on the reset (flushed) target, and passed.
    expect(next).toMatchObject({ property: 'truncation-consistency', status: 'passed' });
    expect(report.ok).toBe(false);

    const again = await replay(f.scenario, { target: fresh('hang-tool-stream'), requestTimeoutMs: DEADLINE_MS });
    expect(again.violation?.kind).toBe('hang');
    const control = await replay(f.scenario, { target: fresh('correct'), requestTimeoutMs: DEADLINE_MS });
    expect(control.violation, control.violation?.message).toBeUndefined();
  });

  test('amnesia check: exit 1, a bug report for the hang; amnesia replay of it: exit 1', { timeout: 180_000 }, async () => {
    const target = await overHttp(fresh('hang-tool-stream'));
    try {
      const dir = mkdtempSync(join(tmpdir(), 'amnesia-hang-'));
      const r = await amnesia([
        'check',
        '--target',
        target.url,
        '--properties',
        PROPERTIES.join(','),
        '--runs',
        '10',
        '--seed',
        '1',
        '--request-timeout',
        String(DEADLINE_MS / 1000),
        '--report',
        dir,
        '--junit',
        join(dir, 'junit.xml'),
      ]);
      expect(r.status, r.stdout + r.stderr).toBe(1);
      expect(r.stdout).toMatch(/tool-call-assembly\s+FAIL .*contract \(hang\): .* got no complete answer within 3\.0 s/);
      expect(r.stdout).toMatch(/truncation-consistency\s+PASS/);
      expect(r.stdout).toContain('request deadline 3.0 s');
      const folder = join(dir, 'tool-call-assembly');
      for (const file of ['scenario.json', 'REPORT.md']) expect(existsSync(join(folder, file)), file).toBe(true);
      const md = readFileSync(join(folder, 'REPORT.md'), 'utf8');
      expect(md).toContain('**contract** — hang: ');
      expect(md).toContain('no complete answer');
      expect(readFileSync(join(dir, 'junit.xml'), 'utf8')).toContain('type="contract/hang"');

      const again = await amnesia(['replay', join(folder, 'scenario.json'), '--target', target.url, '--request-timeout', String(DEADLINE_MS / 1000)]);
      expect(again.status, again.stdout + again.stderr).toBe(1);
      expect(again.stdout).toContain('FAILS: contract — hang:');
    } finally {
      await target.close();
    }
  });
});
