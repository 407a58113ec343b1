// `npm run bench:mutation`: the mutation score of the default `amnesia check --time-budget 120` on
// the embedded server — every failpoint of spec/failpoints.md, several seeds. For each: caught or
// not, by which property, the time until the check failed (search, shrink and the replay on a fresh
// server), and the size of the shrunk scenario. No property is chosen for a failpoint: the default
// check runs its properties in order and stops at the first failure (`stopAtFirstFailure`).
//
// MUTATION_SEEDS (default 3, from MUTATION_FIRST_SEED, default 1), MUTATION_BUDGET_S (default 120), MUTATION_FILTER (failpoint names
// containing it, or any of a comma-separated list) change the run. MUTATION_TARGET=in-process runs
// the same server in this process (no process start per history: several times faster, for the
// failpoints, whose state lives in the server object, the same verdicts); default: the embedded
// child process, as `amnesia check` runs it.
import { cpus } from 'node:os';
import { FAILPOINTS } from '../src/engine/failpoints.ts';
import { requestCount } from '../src/harness/scenario.ts';
import { check } from '../src/api.ts';
import { startInProcessTarget } from '../src/embedded/in-process-target.ts';

const seeds = Number(process.env.MUTATION_SEEDS ?? 3);
const firstSeed = Number(process.env.MUTATION_FIRST_SEED ?? 1);
const budget = Number(process.env.MUTATION_BUDGET_S ?? 120);
const filters = (process.env.MUTATION_FILTER ?? '').split(',').map((f) => f.trim());
const inProcess = process.env.MUTATION_TARGET === 'in-process';

const median = (xs: number[]) => (xs.length === 0 ? NaN : [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!);
const secs = (ms: number) => (Number.isNaN(ms) ? '–' : (ms / 1000).toFixed(1));

interface Outcome {
  caught: boolean;
  property?: string;
  ms: number;
  size?: number;
  flaky?: boolean;
}

async function one(failpoint: (typeof FAILPOINTS)[number], seed: number): Promise<Outcome> {
  const started = performance.now();
  const where = inProcess ? { target: () => startInProcessTarget({ failpoints: [failpoint] }) } : { embedded: { failpoints: [failpoint] } };
  const report = await check({ ...where, timeBudgetSeconds: budget, seed, stopAtFirstFailure: true });
  const ms = performance.now() - started;
  const failed = report.results.find((r) => r.status === 'failed');
  if (!failed) return { caught: false, ms };
  return {
    caught: failed.failure !== undefined && !failed.flaky,
    property: failed.property,
    ms,
    ...(failed.failure ? { size: requestCount(failed.failure.scenario) } : {}),
    ...(failed.flaky ? { flaky: true } : {}),
  };
}

async function main(): Promise<void> {
  const names = FAILPOINTS.filter((f) => filters.some((part) => f.includes(part)));
  const target = inProcess ? 'the embedded server in process' : 'the embedded server (a child process per history)';
  console.log(
    `node ${process.version} (${process.platform}/${process.arch}, ${cpus().length} CPUs); ${target}; --time-budget ${budget}; seeds ${firstSeed}–${firstSeed + seeds - 1}\n`,
  );
  const lines = ['| failpoint | caught (seeds) | by | time to a verdict: median (s) | min–max (s) | shrunk requests |', '|---|---:|---|---:|---:|---:|'];
  let caughtAll = 0;
  const catchTimes: number[] = [];
  for (const failpoint of names) {
    const outcomes: Outcome[] = [];
    for (let seed = firstSeed; seed < firstSeed + seeds; seed++) {
      const outcome = await one(failpoint, seed);
      outcomes.push(outcome);
      // Each outcome as data too, so runs over other seeds (MUTATION_FIRST_SEED) can be merged.
      console.error(JSON.stringify({ failpoint, seed, ...outcome }));
    }
    const caught = outcomes.filter((o) => o.caught);
    if (caught.length === seeds) caughtAll++;
    catchTimes.push(...caught.map((o) => o.ms));
    const by = [...new Set(caught.map((o) => o.property))].join(', ') || (outcomes.some((o) => o.flaky) ? 'flaky only' : '–');
    const times = caught.map((o) => o.ms);
    const sizes = caught.map((o) => o.size!).sort((a, b) => a - b);
    const row = `| ${failpoint} | ${caught.length}/${seeds} | ${by} | ${secs(median(times))} | ${times.length ? `${secs(Math.min(...times))}–${secs(Math.max(...times))}` : '–'} | ${sizes.join(', ') || '–'} |`;
    lines.push(row);
    console.error(row);
  }
  console.log(lines.join('\n'));
  console.log(
    `\nMutation score: ${caughtAll}/${names.length} failpoints caught with every seed; median time to a verdict ${secs(median(catchTimes))} s over the ${catchTimes.length} catches.`,
  );
}

await main();
