// The embedded target in child processes: a fresh process per history, a hung one killed, none left
// behind — not after close(), not when the parent exits without closing, not when the parent is
// killed outright. Every wait is for an event (an exit, a line), under limits far above what it needs.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { ChatClient } from '../harness/client.ts';
import { startEmbeddedTarget } from './embedded-target.ts';
import type { ChildTargetConnection } from './child-target.ts';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Resolves once none of `pids` is alive (polled: another process's exit has no event here). */
async function gone(pids: readonly number[], withinMs = 30_000): Promise<number[]> {
  const until = Date.now() + withinMs;
  while (Date.now() < until) {
    if (!pids.some(alive)) return [];
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return pids.filter(alive);
}

const ask = async (c: ChildTargetConnection, timeoutMs = 30_000) => {
  const client = new ChatClient(c.transport, { includeUsage: false, timeoutMs });
  const model = (await client.models())![0]!;
  return client.chat({ body: { model, messages: [{ role: 'user', content: 'What is 2+2?' }], max_tokens: 4, temperature: 0 }, stream: false });
};

describe('the embedded target in child processes', () => {
  test('answers, restarts into a new process, and leaves none behind after close', { timeout: 120_000 }, async () => {
    const c = (await startEmbeddedTarget({}, { graceMs: 500 })) as ChildTargetConnection;
    try {
      expect(c.transport.name).toMatch(/^embedded .* \(child process\)$/);
      expect((await ask(c)).status).toBe(200);
      const first = c.pid!;
      await c.restart!();
      expect(c.pid).not.toBe(first);
      expect((await ask(c)).status).toBe(200);
      expect(await gone([first])).toEqual([]);
    } finally {
      await c.close();
    }
    expect(c.spawned.length).toBeGreaterThanOrEqual(3); // the first, its spare, the next spare
    expect(await gone(c.spawned)).toEqual([]);
  });

  test('a hung server: its request times out, and the restart kills it', { timeout: 120_000 }, async () => {
    const c = (await startEmbeddedTarget({}, { graceMs: 200 })) as ChildTargetConnection;
    try {
      const hung = c.pid!;
      process.kill(hung, 'SIGSTOP'); // as stuck as a process gets: it will not even exit on its own
      const obs = await ask(c, 500).catch(() => undefined);
      // models() itself runs into the deadline on a stopped process: either way, no answer came.
      expect(obs?.status ?? 0).toBe(0);
      await c.restart!();
      expect((await ask(c)).status).toBe(200);
      expect(await gone([hung])).toEqual([]);
    } finally {
      await c.close();
    }
    expect(await gone(c.spawned)).toEqual([]);
  });

  test('failpoints reach the child; an unknown one is the child’s error, and no child stays', { timeout: 120_000 }, async () => {
    await expect(startEmbeddedTarget({ failpoints: ['no-such-failpoint'] })).rejects.toThrow(/did not start: unknown failpoint 'no-such-failpoint'/);
  });

  for (const how of ['exits without closing', 'is killed'] as const) {
    test(`no child outlives a parent that ${how}`, { timeout: 120_000 }, async () => {
      const script = `
        const { startEmbeddedTarget } = await import(${JSON.stringify(fileURLToPath(new URL('./embedded-target.ts', import.meta.url)))});
        const c = await startEmbeddedTarget();
        await c.restart();
        await new Promise((r) => setTimeout(r, 100));
        console.log(JSON.stringify(c.spawned));
        ${how === 'exits without closing' ? 'process.exit(0);' : 'setInterval(() => {}, 1000);'}
      `;
      const parent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      const pids = await new Promise<number[]>((resolve, reject) => {
        let out = '';
        parent.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!) as number[]);
        });
        parent.once('exit', (code) => reject(new Error(`the parent exited (${code}) before it printed its children: ${out}`)));
      });
      expect(pids.length).toBeGreaterThanOrEqual(2);
      if (how === 'is killed') parent.kill('SIGKILL');
      await new Promise((resolve) => (parent.exitCode !== null || parent.signalCode !== null ? resolve(undefined) : parent.once('exit', resolve)));
      expect(await gone(pids)).toEqual([]);
    });
  }
});
