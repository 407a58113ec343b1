// Test support for the reporter tests: exo #1362 in miniature, as a failed property in a check
// report beside a passed and a skipped one; and a fake curl to run the bug-report scripts with.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Observation } from '../client.ts';
import type { Capabilities } from '../probe.ts';
import { findViolations } from '../rules/index.ts';
import { requestKey, type Entry, type Recording } from '../record.ts';
import type { PropertyResult } from '../search.ts';
import type { Body, Scenario } from '../scenario.ts';
import type { CheckReport } from '../check-target.ts';

const completion = (content: string): Observation['json'] => ({
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1,
  model: 'gpt-oss-20b',
  choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 },
});
const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
  id: 'c',
  object: 'chat.completion.chunk',
  choices: [{ index: 0, delta, finish_reason: finish }],
});
const streamOf = (content: string, usage: boolean): unknown[] => [
  chunk({ role: 'assistant', content: '' }),
  chunk({ content }),
  chunk({}, 'stop'),
  ...(usage ? [{ id: 'c', object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 } }] : []),
];

export const p1: Body = {
  model: 'gpt-oss-20b',
  messages: [{ role: 'user', content: 'What is 2+2? Use the calculator tool.' }],
  temperature: 0,
  max_tokens: 64,
};
export const p2: Body = {
  ...p1,
  messages: [
    ...(p1.messages as unknown[]),
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'calculator', arguments: '{"expression":"2+2"}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: 'The tool says 4' },
  ],
};
export const RIGHT = 'The answer is 4.';
export const LEAKED = 'The answer is 4, as the tool said.';

/** p1, p2 (streamed), p1 again answers as p2 did; then p1 streamed. */
export const scenario: Scenario = {
  name: 'history-independence',
  requests: { p1, p2 },
  steps: [{ send: 'p1' }, { send: 'p2', stream: true }, { send: 'p1' }, { send: 'p1', stream: true }],
  expect: [{ equal: [1, 3] }],
};
const entry = (step: number, label: string, body: Body, stream: boolean, obs: Partial<Observation>): Entry => ({
  step,
  label,
  call: { body, stream },
  key: requestKey(body),
  obs: { status: 200, cancelled: false, started: step * 100, ended: step * 100 + 40, ...obs },
});
export const recording: Recording = {
  scenario,
  entries: [
    entry(0, 'p1', p1, false, { json: completion(RIGHT) }),
    entry(1, 'p2', p2, true, { events: streamOf(LEAKED, false), done: true }),
    entry(2, 'p1', p1, false, { json: completion(LEAKED) }),
    entry(3, 'p1', p1, true, { events: streamOf(RIGHT, true), done: true }),
  ],
};
export const violation = findViolations(recording)!;

export const failed: PropertyResult = {
  property: 'history-independence',
  statement: 'an identical request gets an identical answer whatever ran before it',
  status: 'failed',
  scenarios: 12,
  asked: 25,
  requests: 40,
  ms: 3210,
  failure: { scenario, recording, violation, seed: 42, path: '3:0:1' },
};
export const passed: PropertyResult = {
  property: 'stream-equivalence',
  statement: 'the folded stream equals the JSON answer',
  status: 'passed',
  scenarios: 25,
  asked: 25,
  requests: 88,
  ms: 1500,
};
export const skipped: PropertyResult = {
  property: 'cache-transparency',
  statement: 'cold equals warm',
  status: 'skipped',
  reason: 'the target lacks flush',
  scenarios: 0,
  asked: 25,
  requests: 0,
  ms: 0,
};

const caps: Capabilities = {
  stream: true,
  streamOptions: true,
  tools: true,
  toolChoice: true,
  n: false,
  seed: true,
  seedAccepted: true,
  logprobs: true,
  flush: false,
  deterministic: true,
};
export const TARGET = 'http://127.0.0.1:8000/v1';
export const report: CheckReport = { target: TARGET, model: 'gpt-oss-20b', caps, seed: 42, results: [failed, passed, skipped], ok: false };

/** Runs a script (in a fresh folder under `temp`) with a fake `curl` first on PATH that records its arguments and stdin. */
export function runWithFakeCurl(temp: string, script: string, env: Record<string, string> = {}): { args: string[]; stdin: string } {
  const dir = mkdtempSync(join(temp, 'curl-'));
  mkdirSync(join(dir, 'bin'));
  writeFileSync(join(dir, 'bin', 'curl'), '#!/usr/bin/env bash\nprintf \'%s\\n\' "$@" > "$FAKE_OUT/args"\ncat > "$FAKE_OUT/stdin"\n');
  chmodSync(join(dir, 'bin', 'curl'), 0o755);
  writeFileSync(join(dir, 'p.sh'), script);
  execFileSync('bash', [join(dir, 'p.sh')], { env: { PATH: `${join(dir, 'bin')}:${process.env.PATH}`, FAKE_OUT: dir, ...env } });
  return { args: readFileSync(join(dir, 'args'), 'utf8').split('\n').slice(0, -1), stdin: readFileSync(join(dir, 'stdin'), 'utf8') };
}

/** The same failure, but its shrunk scenario passed when replayed: flaky. */
export const flaky: PropertyResult = {
  ...failed,
  property: 'concurrency-independence',
  flaky: true,
  bursts: { sent: 20, overlapped: 18 },
  failure: { ...failed.failure!, replay: { scenario: { ...scenario, steps: scenario.steps.slice(0, 3) }, entries: recording.entries.slice(0, 1) } },
};

/** A pass cut short by the time budget, with bursts. */
export const short: PropertyResult = {
  ...passed,
  property: 'cancel-no-trace',
  scenarios: 12,
  asked: 25,
  budgetSpent: true,
  bursts: { sent: 5, overlapped: 5 },
};
