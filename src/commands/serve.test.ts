import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { parseServeArgs, serveUsage } from './serve.ts';
import { UsageError } from './usage-error.ts';

const cli = fileURLToPath(new URL('../cli.ts', import.meta.url));

describe('parseServeArgs', () => {
  test('defaults: loopback, port 8000, no key, /metrics behind the key', () => {
    const config = parseServeArgs([], {});
    expect(config).toMatchObject({ model: 'tiny-chat', host: '127.0.0.1', port: 8000, apiKey: undefined, publicMetrics: false });
  });

  test('--api-key and --public-metrics', () => {
    expect(parseServeArgs(['--api-key', 'k', '--public-metrics'], {})).toMatchObject({ apiKey: 'k', publicMetrics: true });
    expect(() => parseServeArgs(['--api-key', ''], {})).toThrow(UsageError);
    expect(() => parseServeArgs(['--public-metrics=yes'], {})).toThrow(/public-metrics/);
    expect(serveUsage).toContain('[--public-metrics]');
  });
});

describe('amnesia serve', () => {
  test('--api-key with --public-metrics: /metrics and /health open, /v1 and /admin need the key; SIGTERM stops it', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', cli, 'serve', '--port', '0', '--api-key', 'sk-serve', '--public-metrics'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    try {
      await expect.poll(() => stdout, { timeout: 30_000 }).toMatch(/ at http:\/\/127\.0\.0\.1:\d+\/v1/);
      const origin = /(http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(stdout)![1]!;
      expect((await fetch(`${origin}/metrics`)).status).toBe(200);
      expect((await fetch(`${origin}/health`)).status).toBe(200);
      expect((await fetch(`${origin}/v1/models`)).status).toBe(401);
      expect((await fetch(`${origin}/admin/cache/flush`, { method: 'POST' })).status).toBe(401);
      expect((await fetch(`${origin}/v1/models`, { headers: { authorization: 'Bearer sk-serve' } })).status).toBe(200);
    } finally {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      expect(code).toBe(0);
    }
    expect(stdout).toContain('amnesia serve: stopped (SIGTERM)');
  });
});
