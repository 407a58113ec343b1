// Tokenizing large prompts off the event loop: a few worker threads (tokenize-worker.ts), started on
// first use, behind a bounded queue, so that /health and every other request are served while a
// megabyte prompt is encoded. stop() ends it all at once (the workers are terminated mid-job), which
// is what lets SIGTERM end the process within a bound.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ApiError } from './api-error.ts';
import type { TokenizeJob, TokenizeResult } from './tokenize-worker.ts';

/** What every job still pending gets once the pool is stopped (the server is shutting down). */
export class TokenizingStopped extends Error {
  override name = 'TokenizingStopped';
  constructor() {
    super('tokenizing stopped: the server is shutting down');
  }
}

export interface TokenizePoolOptions {
  /** Worker threads at most (default: one per core but one, 1 to 2). */
  workers?: number;
  /** Jobs waiting for a worker at most; one more gets 429 (default 16: each holds its prompt text). */
  maxQueue?: number;
}

interface Job extends TokenizeJob {
  resolve(tokens: number[] | null): void;
  reject(error: Error): void;
}

interface Slot {
  worker: Worker;
  job: Job | undefined;
  error: Error | undefined;
}

/** The worker's entry: the compiled .js next to this file, or from source the .ts through tsx. */
function startWorker(): Worker {
  const fromSource = import.meta.url.endsWith('.ts');
  const entry = new URL(fromSource ? './tokenize-worker.ts' : './tokenize-worker.js', import.meta.url);
  if (!fromSource) return new Worker(entry);
  // Running from source (tsx, vitest): the worker registers tsx's loader (a worker does not run the
  // parent's `--import tsx`), then loads the entry.
  const tsx = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(bootstrap, { eval: true });
}

export class TokenizePool {
  private readonly size: number;
  private readonly maxQueue: number;
  private slots: Slot[] = [];
  private queue: Job[] = [];
  private nextId = 0;
  private stopped = false;

  constructor(options: TokenizePoolOptions = {}) {
    this.size = options.workers ?? Math.min(2, Math.max(1, availableParallelism() - 1));
    this.maxQueue = options.maxQueue ?? 16;
  }

  /** Jobs a worker is encoding now. */
  get running(): number {
    return this.slots.filter((s) => s.job !== undefined).length;
  }

  /** Jobs waiting for a worker. */
  get queued(): number {
    return this.queue.length;
  }

  /** encodePieces(pieces, limit) in a worker: the ids, or null when they are more than `limit`. */
  encode(pieces: (string | number)[], limit: number): Promise<number[] | null> {
    if (this.stopped) return Promise.reject(new TokenizingStopped());
    const idle = this.slots.some((s) => s.job === undefined) || this.slots.length < this.size;
    if (!idle && this.queue.length >= this.maxQueue) {
      return Promise.reject(
        new ApiError(429, 'the server is busy tokenizing other large prompts, retry shortly', 'rate_limit_error', null, 'rate_limit_exceeded', {
          'retry-after': '1',
        }),
      );
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, pieces, limit, resolve, reject });
      this.pump();
    });
  }

  /** Terminates the workers; every pending job, and every later one, rejects with TokenizingStopped. */
  async stop(): Promise<void> {
    this.stopped = true;
    const stopped = new TokenizingStopped();
    for (const job of this.queue.splice(0)) job.reject(stopped);
    const slots = this.slots.splice(0);
    for (const slot of slots) {
      slot.job?.reject(stopped);
      slot.job = undefined;
    }
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  private pump(): void {
    while (this.queue.length > 0 && !this.stopped) {
      let slot = this.slots.find((s) => s.job === undefined);
      if (slot === undefined && this.slots.length < this.size) {
        try {
          slot = this.spawn();
        } catch (e) {
          // No worker can start (its entry cannot load): the job fails rather than waiting forever.
          this.queue.shift()!.reject(e as Error);
          continue;
        }
      }
      if (slot === undefined) return;
      const job = this.queue.shift()!;
      slot.job = job;
      const message: TokenizeJob = { id: job.id, pieces: job.pieces, limit: job.limit };
      slot.worker.postMessage(message);
    }
  }

  private spawn(): Slot {
    const slot: Slot = { worker: startWorker(), job: undefined, error: undefined };
    // An idle worker does not keep the process alive.
    slot.worker.unref();
    slot.worker.on('message', (result: TokenizeResult) => {
      const job = slot.job;
      if (job === undefined || job.id !== result.id) return;
      slot.job = undefined;
      if ('error' in result) job.reject(new Error(`tokenize worker: ${result.error}`));
      else job.resolve(result.tokens === null ? null : Array.from(result.tokens));
      this.pump();
    });
    slot.worker.on('error', (e) => (slot.error = e));
    slot.worker.on('exit', (code) => {
      // An unexpected exit (a crash, out of memory): fail its job, let a new worker take the queue.
      const at = this.slots.indexOf(slot);
      if (at < 0) return;
      this.slots.splice(at, 1);
      slot.job?.reject(slot.error ?? new Error(`tokenize worker exited with code ${code}`));
      slot.job = undefined;
      this.pump();
    });
    this.slots.push(slot);
    return slot;
  }
}

let shared: TokenizePool | undefined;

/** The pool every server in this process shares (its workers start on the first large prompt). */
export function sharedTokenizePool(): TokenizePool {
  return (shared ??= new TokenizePool());
}

/** Stops the shared pool for good (SIGINT/SIGTERM): prompts being tokenized end with TokenizingStopped. */
export function stopTokenizing(): Promise<void> {
  return sharedTokenizePool().stop();
}
