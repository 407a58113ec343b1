// The reference server as a harness target in a child process: a fresh process per history, so no
// state survives a restart (module-level state included), and a server that hangs never blocks the
// harness — its requests time out (client.ts) and the process is killed at the next restart.
//
// - Spare children are started ahead (one per spare core), so a history does not wait for a whole
//   cold start (spawn, module loading, the model) unless histories come faster than children start.
// - The child listens on a port it picks (127.0.0.1:0) and says which over the IPC channel; the
//   harness talks HTTP to it, as to any target.
// - No child outlives its parent: a child exits when the IPC channel closes (the parent retired it,
//   or went away however it went); a retired child that has not exited after a grace is SIGKILLed;
//   and whatever is still alive when the parent exits is SIGKILLed then.
// - From the sources (vitest, tsx: this module ends in .ts) the child runs child-server.ts under
//   tsx's loader; from the built package (dist/*.js), plain node runs child-server.js.
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { TargetConnection } from '../harness/check-target.ts';
import { httpTransport, type Transport } from '../harness/transport.ts';
import type { ChildMessage } from './child-server.ts';

export interface ChildTargetOptions {
  /**
   * Children started ahead of need (default: one per spare core, 1 to 3). Starting a child costs
   * about half a second of CPU; spares on idle cores hide it, on a busy machine nothing does.
   */
  spares?: number;
  /** How long a retired child may take to exit before SIGKILL, ms (default 1000). */
  graceMs?: number;
  /** How long a child may take to start, ms (default 60 s: a cold tsx transform on a busy machine is slow). */
  startTimeoutMs?: number;
  /** The model the child serves, as `amnesia serve --model` takes it (default: the server's default, tiny-chat). */
  model?: string;
}

/** The embedded target's connection, with what a test needs to see that children come and go. */
export interface ChildTargetConnection extends TargetConnection {
  /** The process serving now. */
  readonly pid: number | undefined;
  /** Every child started so far (spares included). */
  readonly spawned: readonly number[];
}

/** Node's arguments for the child: plain JS from dist, or TypeScript through tsx's loader. */
function childArgs(): string[] {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return [fileURLToPath(new URL('./child-server.js', here))];
  const tsx = pathToFileURL(createRequire(fileURLToPath(here)).resolve('tsx')).href;
  return ['--import', tsx, fileURLToPath(new URL('./child-server.ts', here))];
}

/** Every child of this process still alive, killed when the process exits. */
const live = new Set<ChildProcess>();
let exitHook = false;
function track(proc: ChildProcess): void {
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const p of live) p.kill('SIGKILL');
  });
}

const tail = (text: string, lines = 8) => text.trim().split('\n').slice(-lines).join('\n');

class Child {
  readonly proc: ChildProcess;
  readonly ready: Promise<{ baseUrl: string; modelId: string }>;
  private exited = false;
  private stderr = '';

  constructor(args: string[], runtime: Record<string, unknown>, startTimeoutMs: number, model: string | undefined) {
    this.proc = spawn(process.execPath, args, {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: { ...process.env, AMNESIA_CHILD_RUNTIME: JSON.stringify(runtime), AMNESIA_FAILPOINTS: '', AMNESIA_CHILD_MODEL: model ?? '' },
    });
    track(this.proc);
    // Drained (a full pipe would block the child), the end kept for the error message.
    this.proc.stderr?.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    this.proc.once('exit', () => (this.exited = true));
    this.ready = new Promise((resolve, reject) => {
      const fail = (why: string, error?: Error) => {
        clearTimeout(timer);
        void this.stop(0);
        reject(error ?? new Error(`the embedded server ${why}${this.stderr ? `:\n${tail(this.stderr)}` : ''}`));
      };
      const timer = setTimeout(() => fail(`did not start within ${startTimeoutMs} ms`), startTimeoutMs);
      this.proc.on('message', (m: ChildMessage) => {
        // An error with a code (the native engine not built) is the child's own, passed on as it is.
        if ('error' in m) return fail(`did not start: ${m.error}`, m.code !== undefined ? Object.assign(new Error(m.error), { code: m.code }) : undefined);
        clearTimeout(timer);
        // From now on the child does not keep this process alive (the exit hook ends it).
        this.proc.unref();
        this.proc.channel?.unref();
        (this.proc.stderr as { unref?: () => void } | null)?.unref?.();
        resolve(m.ready);
      });
      this.proc.once('exit', (code, signal) => fail(`exited (${signal ?? `code ${code}`}) before it was ready`));
      this.proc.once('error', (e) => fail(`could not be started: ${e.message}`));
    });
    this.ready.catch(() => {});
  }

  /** Retires the child: the IPC channel closes (it exits), then SIGKILL after `graceMs`. Resolves once it has exited. */
  stop(graceMs: number): Promise<void> {
    if (this.exited) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
      timer.unref();
      this.proc.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      // Waited for: the process stays up until the child has gone (at most the grace).
      this.proc.ref();
      if (graceMs > 0 && this.proc.connected) this.proc.disconnect();
      else this.proc.kill('SIGKILL');
    });
  }
}

/**
 * Starts the reference server in a child process with these runtime options (JSON: failpoints as
 * names) and hands the harness a connection whose restart is a new child.
 */
export async function startChildTarget(runtime: Record<string, unknown>, options: ChildTargetOptions = {}): Promise<ChildTargetConnection> {
  const args = childArgs();
  const graceMs = options.graceMs ?? 1000;
  const startTimeoutMs = options.startTimeoutMs ?? 60_000;
  const spawned: number[] = [];
  const start = () => {
    const c = new Child(args, runtime, startTimeoutMs, options.model);
    if (c.proc.pid !== undefined) spawned.push(c.proc.pid);
    return c;
  };
  let current = start();
  const first = await current.ready;
  let transport: Transport = httpTransport(first.baseUrl);
  // The spare starts once the first child is up (they would only slow each other down before).
  const spareCount = options.spares ?? Math.min(3, Math.max(1, availableParallelism() - 1));
  const spares: Child[] = Array.from({ length: spareCount }, start);
  let closed = false;
  return {
    transport: {
      name: `embedded ${first.modelId} (child process)`,
      send: (x) => transport.send(x),
      sendOrigin: (x) => transport.sendOrigin(x),
    },
    get pid() {
      return current.proc.pid;
    },
    spawned,
    async restart() {
      if (closed) throw new Error('the embedded target is closed');
      const old = current;
      current = spares.shift() ?? start();
      while (spares.length < spareCount) spares.push(start());
      void old.stop(graceMs);
      transport = httpTransport((await current.ready).baseUrl);
    },
    async close() {
      closed = true;
      await Promise.all([current, ...spares.splice(0)].map((c) => c.stop(graceMs)));
    },
  };
}
