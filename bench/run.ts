// `npm run bench`: runs every suite in bench/ (each `*.bench.ts` exporting `createSuite()`) with
// tinybench, in one process, and prints one markdown table per suite.
//
// BENCH_TIME_MS / BENCH_WARMUP_MS override the per-task budgets (defaults 1500 / 300 ms), and
// BENCH_FILTER=name runs only the suites whose file name contains it.
import { readdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { DEFAULT_RUN_OPTIONS, runSuite, type Row, type RunOptions, type Suite } from './suite.ts';

interface SuiteModule {
  createSuite: () => Suite | Promise<Suite>;
}

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number, got '${raw}'`);
  return value;
}

function fmt(value: number, digits: number): string {
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function markdownTable(rows: readonly Row[], anchor: string): string {
  const tokens = rows.some((r) => r.tokensPerSec !== undefined);
  const header = ['task', 'ops/s', ...(tokens ? ['tokens/s'] : []), 'mean (µs)', 'p99 (µs)', 'samples', `ratio vs anchor`];
  const lines = [
    `| ${header.join(' | ')} |`,
    `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...rows.map(
      (r) =>
        `| ${r.anchor ? `**${r.task}** (anchor)` : r.task} | ${fmt(r.opsPerSec, 0)} | ${tokens ? `${r.tokensPerSec === undefined ? '–' : fmt(r.tokensPerSec, 0)} | ` : ''}${fmt(r.meanUs, 1)} | ${fmt(r.p99Us, 1)} | ${r.samples} | ${fmt(r.ratio, 2)} |`,
    ),
  ];
  return `${lines.join('\n')}\n\nratio = ops/s of the task ÷ ops/s of \`${anchor}\`; ops/s is 1 ÷ the mean latency; mean and p99 are of tinybench's \`latency\`.`;
}

async function main(): Promise<void> {
  const options: RunOptions = {
    time: envNumber('BENCH_TIME_MS', DEFAULT_RUN_OPTIONS.time),
    warmupTime: envNumber('BENCH_WARMUP_MS', DEFAULT_RUN_OPTIONS.warmupTime),
  };
  const filter = process.env.BENCH_FILTER ?? '';
  const dir = fileURLToPath(new URL('.', import.meta.url));
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.bench.ts') && f.includes(filter))
    .sort();
  if (files.length === 0) throw new Error(`no bench/*.bench.ts suite matches '${filter}'`);

  console.log(`node ${process.version} (${process.platform}/${process.arch}, ${cpus().length} CPUs)`);
  console.log(`tinybench: time ${options.time} ms, warmupTime ${options.warmupTime} ms per task, tasks run sequentially`);
  console.log(`suites: ${files.join(', ')}\n`);

  const started = Date.now();
  const results: Array<{ suite: Suite; rows: Row[] }> = [];
  for (const file of files) {
    const mod = (await import(new URL(file, import.meta.url).href)) as Partial<SuiteModule>;
    if (typeof mod.createSuite !== 'function') throw new Error(`bench/${file} does not export createSuite()`);
    const suite = await mod.createSuite();
    try {
      results.push({ suite, rows: await runSuite(suite, options) });
    } finally {
      // Wait for an async close (a server's), so the next suite does not start while this one shuts down.
      await suite.close?.();
    }
  }
  const seconds = (Date.now() - started) / 1000;

  for (const { suite, rows } of results) {
    console.log(`\n## ${suite.name}\n`);
    console.log(markdownTable(rows, suite.anchor));
    if (suite.report) console.log(`\n${suite.report(rows)}`);
  }
  console.log(`\nAll rows come from this one run (one process, node ${process.version}, ${seconds.toFixed(1)} s).`);
}

await main();
