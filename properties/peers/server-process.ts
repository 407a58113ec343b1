// A peer server as a child process: started on 127.0.0.1 with a port of its own, waited for until
// its health URL answers, stopped with its whole process group (a Python server's workers included),
// its output kept in a log file for the matrix's notes.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ServerProcess {
  /** http://127.0.0.1:PORT */
  origin: string;
  log: string;
  /** The log's last lines, for an error message. */
  tail(lines?: number): string;
  stop(): Promise<void>;
}

export interface StartOptions {
  command: string;
  args: (port: number) => string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Path answered with 2xx once the server is ready, e.g. /health. */
  health: string;
  /** Appended to: several starts of one peer (a fresh server per history) share it. */
  log: string;
  /** How long loading may take (default 180 s). */
  readyTimeoutMs?: number;
}

/** A port the OS says is free now (the peer binds it a moment later; a clash fails the start loudly). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok, fail) => server.once('error', fail).listen(0, '127.0.0.1', ok));
  const { port } = server.address() as { port: number };
  await new Promise((ok) => server.close(ok));
  return port;
}

export async function startServerProcess(options: StartOptions): Promise<ServerProcess> {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const fd = openSync(options.log, 'a');
  let child: ChildProcess;
  try {
    child = spawn(options.command, options.args(port), { env: options.env ?? process.env, cwd: options.cwd, stdio: ['ignore', fd, fd], detached: true });
  } finally {
    closeSync(fd);
  }
  let exited: string | undefined;
  const gone = new Promise<void>((ok) =>
    child.once('exit', (code, signal) => {
      exited = signal ?? `exit ${code}`;
      ok();
    }),
  );
  child.once('error', (e) => (exited = e.message));
  const tail = (lines = 20) => {
    try {
      return readFileSync(options.log, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  };
  const stop = async () => {
    if (exited !== undefined || child.pid === undefined) return;
    const group = -child.pid;
    try {
      process.kill(group, 'SIGTERM');
    } catch {
      return;
    }
    const killed = await Promise.race([gone.then(() => true), sleep(10_000).then(() => false)]);
    if (!killed) {
      try {
        process.kill(group, 'SIGKILL');
      } catch {
        // already gone
      }
      await gone;
    }
  };
  const deadline = Date.now() + (options.readyTimeoutMs ?? 180_000);
  while (Date.now() < deadline) {
    if (exited !== undefined) throw new Error(`${basename(options.command)} stopped before it was ready (${exited}):\n${tail()}`);
    try {
      const r = await fetch(origin + options.health, { signal: AbortSignal.timeout(5_000) });
      if (r.ok) return { origin, log: options.log, tail, stop };
    } catch {
      // not listening yet
    }
    await sleep(500);
  }
  await stop();
  throw new Error(
    `${basename(options.command)} was not ready at ${origin}${options.health} within ${(options.readyTimeoutMs ?? 180_000) / 1000} s:\n${tail()}`,
  );
}
