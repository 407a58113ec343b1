import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { renderCommand } from './render.ts';
import { UsageError } from './usage-error.ts';

const golden = (file: string) => fileURLToPath(new URL(`../../golden/chat/exo-1362-p2/${file}`, import.meta.url));
const cli = fileURLToPath(new URL('../cli.ts', import.meta.url));

/** Runs the real CLI in a child process, as a user would. */
function amnesia(args: string[], input?: string) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', cli, ...args], { input, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('amnesia render', () => {
  test('prints the harmony completion prompt of a request', () => {
    expect(renderCommand(['--current-date', '2025-06-28', golden('request.json')])).toBe(readFileSync(golden('prompt.txt'), 'utf8'));
  });

  test('--tokens prints the token ids as a JSON array', () => {
    const out = renderCommand(['--tokens', '--current-date', '2025-06-28', golden('request.json')]);
    expect(JSON.parse(out)).toEqual(JSON.parse(readFileSync(golden('prompt.tokens.json'), 'utf8')));
  });

  test('without --current-date there is no date line', () => {
    expect(renderCommand([golden('request.json')])).not.toContain('Current date:');
  });

  test.each([
    [['--current-date', '28/06/2025', 'x.json'], /--current-date must be YYYY-MM-DD/],
    [['missing.json'], /cannot read missing.json: no such file/],
    [[], /usage: amnesia render/],
  ])('refuses %j', (args, message) => {
    expect(() => renderCommand(args)).toThrow(UsageError);
    expect(() => renderCommand(args)).toThrow(message);
  });

  test('reads standard input, and answers bad input with one line and exit code 2', () => {
    const ok = amnesia(['render', '-'], readFileSync(golden('request.json'), 'utf8'));
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/<\|start\|>assistant\n$/);

    for (const [input, message] of [
      ['{not json', /standard input is not valid JSON/],
      [
        '{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}',
        /messages\[0\]\.content\[0\]\.type 'image_url' is not supported/,
      ],
    ] as const) {
      const bad = amnesia(['render', '-'], input);
      expect(bad.status).toBe(2);
      expect(bad.stdout).toBe('');
      expect(bad.stderr.trim().split('\n')).toHaveLength(1);
      expect(bad.stderr).toMatch(message);
    }
    expect(amnesia(['render', '--bogus', 'x']).status).toBe(2);
    expect(amnesia(['frobnicate']).status).toBe(2);
  });
});
