// The bug-report folder: scenario.json, the curl scripts (run with a fake curl), REPORT.md.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Scenario } from '../scenario.ts';
import { requestKey, type Recording } from '../record.ts';
import { chatJson, completion, lp, recording as ruleRecording, violationsOf } from '../rules/testing.ts';
import { equality } from '../rules/equality.ts';
import type { Violation } from '../violation.ts';
import { reportMarkdown, safeFileName, writeFailureReport } from './bug-report.ts';
import { failed, flaky, LEAKED, p1, p2, passed, recording, runWithFakeCurl, scenario, TARGET } from './testing.ts';

const temp = mkdtempSync(join(tmpdir(), 'amnesia-report-'));
afterAll(() => rmSync(temp, { recursive: true, force: true }));

describe('writeFailureReport', () => {
  it('writes scenario.json, a script per request (and a stream variant), and REPORT.md', () => {
    const dir = join(temp, 'reports');
    mkdirSync(join(dir, 'history-independence'), { recursive: true });
    writeFileSync(join(dir, 'history-independence', 'stale.sh'), 'old');
    const folder = writeFailureReport(dir, failed, TARGET, 'gpt-oss-20b');
    expect(folder).toBe(join(dir, 'history-independence'));
    expect(readdirSync(folder).sort()).toEqual(['REPORT.md', 'p1-stream.sh', 'p1.sh', 'p2.sh', 'scenario.json']);
    for (const f of ['p1.sh', 'p1-stream.sh', 'p2.sh']) expect(statSync(join(folder, f)).mode & 0o777).toBe(0o755);
    expect(JSON.parse(readFileSync(join(folder, 'scenario.json'), 'utf8'))).toEqual(scenario);

    // The scripts send what the harness sent: p1 as JSON; p2 only ever streamed, with the usage chunk asked for.
    expect(JSON.parse(runWithFakeCurl(temp, readFileSync(join(folder, 'p1.sh'), 'utf8')).stdin)).toEqual(p1);
    const streamed = runWithFakeCurl(temp, readFileSync(join(folder, 'p2.sh'), 'utf8'));
    expect(JSON.parse(streamed.stdin)).toEqual({ ...p2, stream: true, stream_options: { include_usage: true } });
    expect(streamed.args).toContain('-N');
  });

  it('for a flaky failure: both recordings as data beside REPORT.md', () => {
    const folder = writeFailureReport(join(temp, 'flaky'), flaky, TARGET, 'gpt-oss-20b');
    expect(readdirSync(folder).sort()).toEqual(['REPORT.md', 'p1-stream.sh', 'p1.sh', 'p2.sh', 'recording.json', 'replay-recording.json', 'scenario.json']);
    expect(JSON.parse(readFileSync(join(folder, 'recording.json'), 'utf8'))).toEqual(recording);
    expect(JSON.parse(readFileSync(join(folder, 'replay-recording.json'), 'utf8'))).toEqual(flaky.failure!.replay);
  });

  it('sanitises request and property names into unique file names', () => {
    const odd: Scenario = {
      name: 'x',
      requests: { '#0': p1, '../etc/passwd': p1, P1: p1, p1, '': p1 },
      steps: [{ burst: ['#0', '../etc/passwd', 'P1', 'p1', ''] }],
    };
    const folder = writeFailureReport(
      temp,
      { ...failed, property: '../up', failure: { ...failed.failure!, scenario: odd } },
      'embedded tiny (in-process)',
      'tiny',
    );
    expect(folder).toBe(join(temp, '_.._up'));
    expect(readdirSync(folder).sort()).toEqual(['P1.sh', 'REPORT.md', '_.sh', '_0.sh', '_.._etc_passwd.sh', 'p1-2.sh', 'scenario.json'].sort());
    const md = readFileSync(join(folder, 'REPORT.md'), 'utf8');
    expect(md).toContain('`./_0.sh & ./_.._etc_passwd.sh & ./P1.sh & ./p1-2.sh & ./_.sh & wait`');
    // No URL to point at: the scripts default to `amnesia serve`, and replay runs the embedded server.
    expect(readFileSync(join(folder, 'P1.sh'), 'utf8')).toContain("default_target='http://127.0.0.1:8000/v1'");
    expect(md).toMatch(/amnesia replay scenario.json\n/);
  });

  it('safeFileName keeps p1 and defuses separators and leading dots', () => {
    expect(['p1', 'a/b', '..', '-rf', 'x y'].map(safeFileName)).toEqual(['p1', 'a_b', '_..', '_-rf', 'x_y']);
  });
});

describe('reportMarkdown', () => {
  const md = reportMarkdown(failed, TARGET, 'gpt-oss-20b');

  it('has the title, target, verdict and every section', () => {
    expect(md.startsWith('# history-independence: an identical request gets an identical answer whatever ran before it\n')).toBe(true);
    expect(md).toContain(`- Target: \`${TARGET}\``);
    expect(md).toContain('**content leak** — history: p1 at step 3 answered differently');
    for (const h of [
      'Steps to reproduce',
      'Expected',
      'Actual',
      'First difference',
      'Where the wrong answer comes from',
      'Recorded exchanges',
      'Replay data',
    ]) {
      expect(md).toContain(`\n## ${h}\n`);
    }
  });

  it('names the script of each step, and the replay command', () => {
    expect(md).toContain('1. send p1: `./p1.sh`\n2. send p2 (stream): `./p2.sh`\n3. send p1: `./p1.sh`\n4. send p1 (stream): `./p1-stream.sh`\n');
    expect(md).toContain(`amnesia replay scenario.json --target ${TARGET}`);
  });

  it('shows expected and actual, the first difference with an excerpt, and the leak source', () => {
    expect(md).toContain(
      'The answer of the identical request `p1` at step 1:\n\n```text\ncontent: "The answer is 4."\nfinish_reason: stop'.replace('\nfinish', '; finish'),
    );
    expect(md).toContain(`content: ${JSON.stringify(LEAKED)}`);
    expect(md).toContain('At `choices[0].content`, character 15:');
    expect(md).toContain('expected: "The answer is 4."\nactual:   "The answer is 4, as the tool said."\n                          ^');
    expect(md).toContain("`p2` at step 2. Its request's last message:\n\n```text\ntool: The tool says 4\n```");
  });

  it('records the exchanges involved, bodies as sent, in details blocks', () => {
    const details = md.split('<details>').slice(1);
    expect(details).toHaveLength(3); // the reference, the leak source, the wrong answer
    expect(details[0]).toContain('<summary>Step 1: <code>p1</code> (reference), JSON, HTTP 200, 40 ms</summary>');
    expect(details[1]).toContain('(source of the wrong answer), stream');
    expect(details[1]).toContain('"stream": true,\n  "stream_options": {\n    "include_usage": true\n  }');
    expect(details[1]).toContain('data: [DONE]');
    expect(details[2]).toContain('(wrong answer)');
    expect(md).toContain('fast-check seed 42, path `"3:0:1"`');
  });

  it('gives every request a script; a request built from an answer at run time has none without its run', () => {
    const compound: Scenario = {
      name: 'cancel-no-trace',
      requests: { p1, p2 },
      steps: [
        { burst: ['p1', 'p2'] },
        { continue: 'p1' },
        { cancel: 'p2', after: 2 },
        { stop: 'p1', from: 0, length: 3, stream: true },
        { raw: '{' },
        { flush: true },
      ],
    };
    const shape: Violation = {
      rule: 'shape',
      kind: 'shape',
      class: 'contract',
      entries: [0],
      problems: ['HTTP 500 for a well-formed request'],
      message: 'p1 at step 1: HTTP 500 for a well-formed request',
    };
    const text = reportMarkdown({ ...failed, failure: { ...failed.failure!, scenario: compound, violation: shape } }, TARGET, 'm');
    const steps = text.split('## Steps to reproduce')[1]!.split('Or replay')[0]!;
    expect(steps).toContain('1. send p1, p2 at once: `./p1.sh & ./p2.sh & wait`');
    expect(steps).toContain(
      '2. send p1, then continue the conversation from its answer: `./p1.sh`; the continued conversation is built from that answer at run time (`amnesia replay` sends it)',
    );
    // p2 is sent as JSON in the burst and streamed by the cancel step: the stream has its own script.
    expect(steps).toMatch(/3\. stream p2, .*: `\.\/p2-stream\.sh`, interrupted after 2 events; the continuation is built from that answer at run time/);
    expect(steps).toMatch(/4\. send p1 with a stop string .*: `\.\/p1\.sh`; the request with the stop string is built from that answer at run time/);
    expect(steps).toContain('5. send the malformed body "{": `./malformed-5.sh`');
    expect(steps).toContain('6. flush the prefix cache: `curl -X POST http://127.0.0.1:8000/admin/cache/flush`');
    expect(text).toContain('## Expected\n\nA response with the Chat Completions shape');
    expect(text).not.toContain('## First difference');
  });

  it('a request a compound step built from an answer gets a script of the body this run sent', () => {
    const scenario: Scenario = { name: 'stop-semantics', requests: { p1 }, steps: [{ stop: 'p1', from: 0, length: 2 }] };
    const withStop = { ...p1, stop: 'ab' };
    const rec: Recording = {
      scenario,
      entries: [
        { step: 0, label: 'p1', call: { body: p1, stream: false }, key: requestKey(p1), obs: completion('abc') },
        { step: 0, label: 'p1 with stop "ab"', call: { body: withStop, stream: false }, key: requestKey(withStop), obs: completion('abc') },
      ],
    };
    const v: Violation = { rule: 'shape', kind: 'shape', class: 'contract', entries: [1], problems: ['HTTP 500'], message: 'HTTP 500' };
    const text = reportMarkdown({ ...failed, failure: { ...failed.failure!, scenario, recording: rec, violation: v } }, TARGET, 'm');
    expect(text).toContain('`./p1.sh`; then `./p1-with-stop-_ab_.sh`: the request with the stop string as this run built it from that answer');
  });

  it("shows where the tokens part: the tokens before, both choices, and the expected run's alternatives with its margin", () => {
    const cold = chatJson([
      {
        content: 'the fox',
        logprobs: [
          lp('the', -0.1),
          lp(' fox', -0.69, [
            [' fox', -0.69],
            [' dog', -0.7],
          ]),
        ],
      },
    ]);
    const warm = chatJson([{ content: 'the dog', logprobs: [lp('the', -0.1), lp(' dog', -0.69)] }]);
    const rec = ruleRecording([{ obs: cold }, { obs: warm }]);
    const v = violationsOf(equality, rec)[0]!;
    const text = reportMarkdown({ ...failed, failure: { ...failed.failure!, scenario: rec.scenario, recording: rec, violation: v } }, TARGET, 'm');
    const part = text.split('## Where the tokens part')[1]!;
    expect(part).toContain('Token 2, after `"the"`: the expected run chose `" fox"` (log-prob -0.6900), the other run `" dog"`.');
    expect(part).toContain("The expected run's margin: 0.0100 nats — a near-tie, which numeric drift can tip.");
    expect(part).toContain('| `" dog"` | -0.7000 | the other run |');
    expect(text).toContain('**divergence (at token 2 the expected run put');
  });

  it('says a flaky failure did not reproduce, and shows the replay that passed', () => {
    const text = reportMarkdown(flaky, TARGET, 'm');
    expect(text).toContain('**Flaky: did not reproduce.** This scenario failed once');
    const replay = text.split('## The replay that passed')[1]!;
    expect(replay).toContain('1. send p1\n2. send p2 (stream)\n3. send p1\n');
    expect(replay.split('<details>')).toHaveLength(2);
    expect(reportMarkdown(failed, TARGET, 'm')).not.toContain('did not reproduce');
  });

  it('says a failure that reproduced only on a later replay depends on timing', () => {
    const race = reportMarkdown({ ...failed, failure: { ...failed.failure!, reproducedOnReplay: 2 } }, TARGET, 'm');
    expect(race).toContain('**Timing-dependent.** The shrunk scenario failed again on a fresh target on replay 2 of 3, not the first');
    expect(reportMarkdown(failed, TARGET, 'm')).not.toContain('Timing-dependent');
  });

  it('writes burst members as they are sent: delayed, cancelled', () => {
    const burst: Scenario = { name: 'b', requests: { p1, p2 }, steps: [{ burst: ['p1', { send: 'p2', stream: true, cancelAfter: 2, delayMs: 50 }] }] };
    const text = reportMarkdown({ ...failed, failure: { ...failed.failure!, scenario: burst } }, TARGET, 'm');
    expect(text).toContain(
      '1. send p1, p2 (stream, cancelled after 2 events, 50 ms later) at once: `./p1.sh & (sleep 0.05; ./p2.sh) & wait`; p2 goes away after 2 events (interrupt its script then; `amnesia replay` does it)',
    );
  });

  it('writes a lone abandoned stream (a lifted cancel step) as its script, interrupted', () => {
    const lifted: Scenario = { name: 'l', requests: { p1, p1c: p2 }, steps: [{ burst: [{ send: 'p1', stream: true, cancelAfter: 2 }] }, { send: 'p1c' }] };
    const text = reportMarkdown({ ...failed, failure: { ...failed.failure!, scenario: lifted } }, TARGET, 'm');
    expect(text).toMatch(
      /^1\. send p1 \(stream, cancelled after 2 events\): `\.\/p1(-stream)?\.sh`, interrupted after 2 events \(`amnesia replay` does it\)$/m,
    );
    expect(text).toContain('2. send p1c: `./p1c.sh`');
  });

  it('says what came of a request that hung', () => {
    const hung = {
      ...recording,
      entries: [{ ...recording.entries[0]!, obs: { status: 0, cancelled: false, started: 0, ended: 10_000, timedOut: true, deadlineMs: 10_000 } }],
    };
    const v: Violation = {
      rule: 'deadline',
      kind: 'hang',
      class: 'contract',
      entries: [0],
      problems: ['no response at all'],
      message: 'p1 at step 1 got no complete answer within 10 s (no response at all)',
    };
    const text = reportMarkdown({ ...failed, failure: { ...failed.failure!, recording: hung, violation: v } }, TARGET, 'm');
    expect(text).toContain('**contract** — hang: p1 at step 1 got no complete answer within 10 s (no response at all)');
    expect(text).toContain('## Expected\n\nA complete answer (a JSON body, or a stream that ends with `data: [DONE]`) within the deadline');
    expect(text).toContain('<summary>Step 1: <code>p1</code> (no answer), JSON, no complete answer (HTTP 0), 10000 ms</summary>');
    expect(text).toContain('(no response)\n(no complete answer within 10000 ms: the client gave up and went away)');
  });

  it('refuses a result without a failure', () => {
    expect(() => reportMarkdown(passed, TARGET, 'm')).toThrow(RangeError);
  });
});
