// `amnesia <command> --help`: every command explains itself and every flag it parses, exit 0; the
// described flags are exactly the parsed ones, so a new flag without a description fails here.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { checkFlags, checkHelp, targetFlags } from './check.ts';
import { helpText, usageLine, wantsHelp, type CommandHelp } from './help.ts';
import { exportGgufFlags, exportGgufHelp, makeTinyChatFlags, makeTinyChatHelp, makeTinyFlags, modelHelp } from './model.ts';
import { renderFlags, renderHelp } from './render.ts';
import { replayHelp } from './replay.ts';
import { serveFlags, serveHelp } from './serve.ts';

const cli = fileURLToPath(new URL('../cli.ts', import.meta.url));

function amnesia(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', cli, ...args]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const commands: Array<[string[], CommandHelp, Record<string, unknown>]> = [
  [['check'], checkHelp, checkFlags],
  [['replay'], replayHelp, targetFlags],
  [['serve'], serveHelp, serveFlags],
  [['render'], renderHelp, renderFlags],
  [['model', 'make-tiny'], modelHelp, makeTinyFlags],
  [['model', 'make-tiny-chat'], makeTinyChatHelp, makeTinyChatFlags],
  [['model', 'export-gguf'], exportGgufHelp, exportGgufFlags],
];

describe('help', () => {
  test.each(commands.map(([argv, help, flags]) => [argv.join(' '), help, flags] as const))('%s: the flags described are the flags parsed', (_, help, flags) => {
    expect(help.flags.map((f) => f.flag).sort()).toEqual(
      Object.keys(flags)
        .map((k) => `--${k}`)
        .sort(),
    );
    for (const f of help.flags) expect(f.text.length, f.flag).toBeGreaterThan(10);
    for (const line of helpText(help).split('\n')) expect(line.length, line).toBeLessThanOrEqual(100);
  });

  test.each(commands.map(([argv, help]) => [argv.join(' '), argv, help] as const))('amnesia %s --help: the whole help, exit 0', async (_, argv, help) => {
    const r = await amnesia([...argv, '--help']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${helpText(help)}\n`);
    for (const f of help.flags) expect(r.stdout).toContain(`  ${f.flag}`);
    expect(r.stdout).toMatch(/\nExit codes:\n {2}0 {2}/);
  });

  test('-h anywhere among the flags asks for help; after -- it is an argument', async () => {
    const r = await amnesia(['check', '--runs', '3', '-h']);
    expect(r.status).toBe(0);
    expect(r.stdout.startsWith('usage: amnesia check ')).toBe(true);
    expect(wantsHelp(['render', '--', '-h'])).toBe(false);
  });

  test('amnesia alone lists every command (exit 2); amnesia --help too (exit 0)', async () => {
    const bare = await amnesia([]);
    const asked = await amnesia(['--help']);
    expect(bare.status).toBe(2);
    expect(asked.status).toBe(0);
    for (const [, help] of commands) expect(asked.stdout).toContain(usageLine(help));
    expect(asked.stdout).toContain('amnesia <command> --help');
  });
});
