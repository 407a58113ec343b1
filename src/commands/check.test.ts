// `amnesia check` and `amnesia replay` as a user runs them: exit codes 0/1/2/3, the bug report
// folder, and a shrunk scenario that replays the failure (the harness's "done when").
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { rerunCommand } from './check.ts';

const cli = fileURLToPath(new URL('../cli.ts', import.meta.url));

/** Runs the real CLI in a child process (asynchronously, so the test's own timers keep running). */
function amnesia(args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', cli, ...args], { env: { ...process.env, AMNESIA_FAILPOINTS: '', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('rerunCommand', () => {
  test('the same flags with the seed that ran, quoted for sh', () => {
    expect(rerunCommand(['--runs', '3', '--seed', '9', '--report', 'my report'], 42)).toBe("npx amnesia check --runs 3 --report 'my report' --seed 42");
    expect(rerunCommand(['--seed=9', '--target', 'http://h/v1'], 7)).toBe('npx amnesia check --target http://h/v1 --seed 7');
  });
});

describe('amnesia check / replay', () => {
  test('a usage mistake: one line, exit 2', async () => {
    for (const args of [
      ['check', '--runs', 'many'],
      ['check', '--properties', 'nope'],
      ['check', '--target', 'ftp://x'],
      ['check', '--request-timeout', '0'],
      ['check', '--time-budget', 'soon'],
      ['check', '--extra-body', '{"a":'],
      ['check', '--compare', 'loose'],
      ['replay', 'x.json', '--flush-command', ' '],
      ['replay', 'x.json', '--request-timeout', '-1'],
      ['replay'],
      ['replay', 'no-such-file.json'],
    ]) {
      const r = await amnesia(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
  });

  test('an unreachable target: exit 3', async () => {
    const r = await amnesia(['check', '--target', 'http://127.0.0.1:9/v1', '--model', 'm']);
    expect(r.status).toBe(3);
    expect(r.stdout).toContain('target unreachable');
  });

  // A liveness bound, not a speed target: it took 87 s on a busy two-core machine.
  test('with kv-trim-noop: exit 1, a bug report whose scenario replays the failure; without: exit 0', { timeout: 360_000 }, async () => {
    const report = mkdtempSync(join(tmpdir(), 'amnesia-report-'));
    const failing = await amnesia(
      ['check', '--properties', 'history-independence', '--runs', '10', '--seed', '1', '--report', report, '--junit', join(report, 'junit.xml')],
      {
        AMNESIA_FAILPOINTS: 'kv-trim-noop',
      },
    );
    expect(failing.status, failing.stdout + failing.stderr).toBe(1);
    // Not a terminal: a line as each property starts and ends; the summary says how to rerun it.
    expect(failing.stderr).toMatch(/^history-independence: started\n/);
    expect(failing.stderr).toMatch(/\nhistory-independence: FAIL, \d+ scenarios, \d+ requests, [\d.]+ s\n/);
    expect(failing.stdout).toContain(
      `rerun: npx amnesia check --properties history-independence --runs 10 --report ${report} --junit ${join(report, 'junit.xml')} --seed 1\n`,
    );
    const folder = join(report, 'history-independence');
    for (const file of ['scenario.json', 'REPORT.md', 'p1.sh']) expect(existsSync(join(folder, file)), file).toBe(true);
    expect(readFileSync(join(report, 'junit.xml'), 'utf8')).toContain('<failure');

    const scenario = join(folder, 'scenario.json');
    const again = await amnesia(['replay', scenario], { AMNESIA_FAILPOINTS: 'kv-trim-noop' });
    expect(again.status, again.stdout).toBe(1);
    const fixed = await amnesia(['replay', scenario]);
    expect(fixed.status, fixed.stdout).toBe(0);
  });
});
