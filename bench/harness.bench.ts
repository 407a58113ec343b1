// Harness benchmark: how fast `amnesia check` gets through histories (sequences checked per minute,
// in-process against the embedded server and over loopback HTTP), and how long it takes to find and
// shrink each failpoint's bug (median over several seeds, the default check's property for it).
// The issue's target: exo's mechanism (kv-trim-noop) found and shrunk in under 60 s on 2 cores.
// Set BENCH_HARNESS_SEEDS (default 3) to change the number of seeds per failpoint (0: throughput only).
import fc from 'fast-check';
import { RUNTIME_FAILPOINTS } from '../src/engine/failpoints.ts';
import { ChatClient } from '../src/harness/client.ts';
import { historyIndependence } from '../src/harness/properties.ts';
import { failpointCatchers } from '../properties/failpoint-catchers.ts';
import { evaluateScenario, type Target } from '../src/harness/search.ts';
import { requestCount, type Scenario } from '../src/harness/scenario.ts';
import { EMBEDDED_RUNTIME } from '../src/embedded/embedded-target.ts';
import { injectTransport } from '../src/embedded/inject-transport.ts';
import { probe } from '../src/harness/probe.ts';
import { httpTransport, type Transport } from '../src/harness/transport.ts';
import { check } from '../src/api.ts';
import { startLocalServer } from '../src/server/local-server.ts';
import type { Suite } from './suite.ts';

const IN_PROCESS = 'history-independence sequence, in-process';
const OVER_HTTP = 'history-independence sequence, loopback HTTP';
const SEQUENCES = 32;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function findAndShrink(seeds: number): Promise<string> {
  const lines = [
    '| failpoint | property | found and shrunk: median (s) | min–max (s) | requests in the shrunk scenario | scenarios run (median) | caught |',
    '|---|---|---:|---:|---:|---:|---:|',
  ];
  for (const failpoint of RUNTIME_FAILPOINTS) {
    const times: number[] = [];
    const sizes: number[] = [];
    const runs: number[] = [];
    let caught = 0;
    for (let s = 1; s <= seeds; s++) {
      const started = performance.now();
      // No stored scenarios: the random search has to find the bug by itself.
      const report = await check({ embedded: { failpoints: [failpoint] }, properties: [failpointCatchers[failpoint]], runs: 200, seed: s, scenarios: [] });
      times.push((performance.now() - started) / 1000);
      const r = report.results.find((x) => x.property === failpointCatchers[failpoint])!;
      runs.push(r.scenarios);
      if (r.failure) {
        caught++;
        sizes.push(requestCount(r.failure.scenario));
      }
    }
    lines.push(
      `| ${failpoint} | ${failpointCatchers[failpoint]} | ${median(times).toFixed(1)} | ${Math.min(...times).toFixed(1)}–${Math.max(...times).toFixed(1)} | ${sizes.length ? `${Math.min(...sizes)}–${Math.max(...sizes)}` : '–'} | ${median(runs)} | ${caught}/${seeds} |`,
    );
  }
  return lines.join('\n');
}

export async function createSuite(): Promise<Suite> {
  const local = await startLocalServer({ model: 'tiny', runtime: EMBEDDED_RUNTIME });
  const targetOf = async (transport: Transport): Promise<Target> => {
    const client = new ChatClient(transport, { includeUsage: true, timeoutMs: 60_000 });
    return { client, model: local.modelId, caps: await probe(client, local.modelId) };
  };
  const inProcess = await targetOf(injectTransport(local.server.app));
  const overHttp = await targetOf(httpTransport(local.baseUrl));
  // A fixed sample of generated histories, cycled through by both tasks.
  const arbitrary = historyIndependence.scenarios({ model: local.modelId, caps: inProcess.caps, maxTokens: 8, concurrency: 4 });
  const sample: Scenario[] = fc.sample(arbitrary, { seed: 42, numRuns: SEQUENCES });
  const meanRequests = sample.reduce((n, s) => n + requestCount(s), 0) / sample.length;
  let i = 0;
  let j = 0;
  const seeds = Number(process.env.BENCH_HARNESS_SEEDS ?? 3);
  const shrinkTable = seeds > 0 ? await findAndShrink(seeds) : undefined;
  return {
    name: 'harness',
    anchor: IN_PROCESS,
    tasks: [
      { name: IN_PROCESS, fn: async () => void (await evaluateScenario(inProcess, sample[i++ % SEQUENCES]!)) },
      { name: OVER_HTTP, fn: async () => void (await evaluateScenario(overHttp, sample[j++ % SEQUENCES]!)) },
    ],
    report: (rows) =>
      [
        `Sequences: ${SEQUENCES} generated history-independence scenarios (mean ${meanRequests.toFixed(1)} requests, max_tokens ≤ 8), each run and checked.`,
        '',
        '| target | sequences checked per minute | requests per second |',
        '|---|---:|---:|',
        ...rows.map((r) => `| ${r.task} | ${(r.opsPerSec * 60).toFixed(0)} | ${(r.opsPerSec * meanRequests).toFixed(1)} |`),
        ...(shrinkTable ? ['', `Find and shrink, embedded server, ${seeds} seeds per failpoint, no stored scenarios (runs ≤ 200):`, '', shrinkTable] : []),
      ].join('\n'),
    close: () => local.close(),
  };
}
