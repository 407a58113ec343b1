// `amnesia serve` as a user runs it: SIGTERM ends the process, cleanly, even while a prompt of
// megabytes is being tokenized (which once held the event loop for minutes and so ignored SIGTERM).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

const cli = fileURLToPath(new URL('../cli.ts', import.meta.url));

/** A run without spaces: one pre-tokenizer piece, the case that was quadratic (about 1 s a megabyte now). */
function noSpaces(chars: number): string {
  const words = ['bounded', 'work', 'per', 'request', 'the', 'of', 'tokens'];
  let s = '';
  for (let i = 0; s.length < chars; i++) s += words[(i * 5 + (i >> 2)) % words.length];
  return s.slice(0, chars);
}

describe('amnesia serve', () => {
  test('SIGTERM while an 8 MB prompt is being tokenized: the request gets 503, the process exits 0', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', cli, 'serve', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = once(child, 'exit');
    try {
      for (let i = 0; i < 600 && !/ at (http:\S+)/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
      const baseUrl = / at (http:\S+)/.exec(out)?.[1];
      expect(baseUrl, out).toBeDefined();
      // 8 MB: under context × 128 bytes, so it is tokenized (seconds, in a worker thread), not refused at once.
      const big = fetch(`${baseUrl}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [{ role: 'user', content: noSpaces(8 * 2 ** 20) }], max_tokens: 4 }),
      }).then(
        async (res) => ({ status: res.status, text: await res.text() }),
        (e: Error) => ({ status: 0, text: e.message }),
      );
      // The event loop is free while it is tokenized: /health answers, then SIGTERM lands mid-encode.
      await new Promise((r) => setTimeout(r, 1500));
      expect((await fetch(`${baseUrl!.replace(/\/v1$/, '')}/health`)).status).toBe(200);
      child.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      const answer = await big;
      expect(code, out).toBe(0);
      expect(answer.status, answer.text).toBe(503);
      expect(answer.text).toContain('"code":"server_shutting_down"');
      expect(out).toContain('amnesia serve: stopped (SIGTERM)');
      expect(out).not.toContain('internal error');
    } finally {
      child.kill('SIGKILL');
    }
  });
});
