// Shared shape of a benchmark suite and the tinybench runner for it.
// A suite file is `bench/*.bench.ts` exporting `createSuite()`; bench/run.ts finds and runs them all.
import { Bench } from 'tinybench';

export interface BenchTask {
  name: string;
  /** One operation; tinybench times each call (and awaits it when it returns a promise). */
  fn: () => unknown;
  /** Tokens one operation processes, for a tokens/s column. */
  tokensPerOp?: number;
}

export interface Suite {
  name: string;
  /** The task every ratio is taken against (its ratio is 1.00). */
  anchor: string;
  tasks: BenchTask[];
  /** Extra lines printed after the suite's table (e.g. a roofline table), from the measured rows. */
  report?: (rows: Row[]) => string;
  /** Releases what the suite holds (models, engines) once it has run. */
  close?: () => void | Promise<void>;
}

export interface Row {
  suite: string;
  task: string;
  /** Operations per second over the whole run: 1 ÷ tinybench's mean latency. (tinybench's own
   *  `throughput.mean` is a mean of per-sample rates, which overstates the rate of operations whose
   *  durations vary, such as histories of 1 to 20 requests.) */
  opsPerSec: number;
  /** tinybench's `result.latency.mean`, in µs. */
  meanUs: number;
  /** tinybench's `result.latency.p99`, in µs. */
  p99Us: number;
  /** tinybench's `result.latency.samplesCount`. */
  samples: number;
  /** opsPerSec ÷ the anchor's opsPerSec. */
  ratio: number;
  /** opsPerSec × the task's tokensPerOp, when it has one. */
  tokensPerSec?: number;
  anchor: boolean;
}

export interface RunOptions {
  /** Time budget per task, ms (tinybench `time`). */
  time: number;
  /** Warmup budget per task, ms (tinybench `warmupTime`). */
  warmupTime: number;
}

export const DEFAULT_RUN_OPTIONS: RunOptions = { time: 1500, warmupTime: 300 };

/** Runs one suite's tasks in one tinybench Bench, sequentially, and returns one row per task. */
export async function runSuite(suite: Suite, options: RunOptions = DEFAULT_RUN_OPTIONS): Promise<Row[]> {
  if (!suite.tasks.some((t) => t.name === suite.anchor)) throw new Error(`suite ${suite.name}: anchor '${suite.anchor}' is not a task`);
  const bench = new Bench({ name: suite.name, time: options.time, warmupTime: options.warmupTime, throws: true });
  for (const task of suite.tasks) bench.add(task.name, task.fn);
  await bench.run();

  const measured = bench.tasks.map((task) => {
    const result = task.result;
    if (result.state !== 'completed') {
      const why = result.state === 'errored' ? `: ${result.error.message}` : '';
      throw new Error(`suite ${suite.name}, task '${task.name}' ended ${result.state}${why}`);
    }
    return {
      task: task.name,
      opsPerSec: 1000 / result.latency.mean,
      meanUs: result.latency.mean * 1000,
      p99Us: result.latency.p99 * 1000,
      samples: result.latency.samplesCount,
    };
  });
  const anchorOps = measured.find((m) => m.task === suite.anchor)!.opsPerSec;
  return measured.map((m) => {
    const tokens = suite.tasks.find((t) => t.name === m.task)!.tokensPerOp;
    const row: Row = { suite: suite.name, ...m, ratio: m.opsPerSec / anchorOps, anchor: m.task === suite.anchor };
    if (tokens !== undefined) row.tokensPerSec = m.opsPerSec * tokens;
    return row;
  });
}
