// report.ts on hand-built reports: the terminal table, JUnit XML, GitHub annotations, curl scripts
// (run with a fake curl), the bug-report folder and its REPORT.md, the progress line.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { checkRecording, type Violation } from './check.ts';
import type { Observation } from './client.ts';
import type { Capabilities } from './probe.ts';
import {
  curlScript,
  escapeData,
  escapeProperty,
  githubAnnotations,
  githubStepSummary,
  junitXml,
  ProgressLine,
  reportMarkdown,
  safeFileName,
  summaryTable,
  writeFailureReport,
} from './report.ts';
import type { Entry, Recording } from './run.ts';
import { requestKey } from './run.ts';
import type { PropertyResult } from './runner.ts';
import type { Body, Scenario } from './scenario.ts';
import type { CheckReport } from './session.ts';

// ── Fixtures ─────────────────────────────────────────────────────────────────────────────────────

const completion = (content: string): Observation['json'] => ({
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1,
  model: 'gpt-oss-20b',
  choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 },
});
const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({ id: 'c', object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }] });
const streamOf = (content: string, usage: boolean): unknown[] => [
  chunk({ role: 'assistant', content: '' }),
  chunk({ content }),
  chunk({}, 'stop'),
  ...(usage ? [{ id: 'c', object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 } }] : []),
];

const p1: Body = { model: 'gpt-oss-20b', messages: [{ role: 'user', content: 'What is 2+2? Use the calculator tool.' }], temperature: 0, max_tokens: 64 };
const p2: Body = {
  ...p1,
  messages: [...(p1.messages as unknown[]), { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'calculator', arguments: '{"expression":"2+2"}' } }] }, { role: 'tool', tool_call_id: 'call_1', content: 'The tool says 4' }],
};
const RIGHT = 'The answer is 4.';
const LEAKED = 'The answer is 4, as the tool said.';

/** exo #1362 in miniature: p1, p2 (streamed), p1 again answers as p2 did; then p1 streamed. */
const scenario: Scenario = {
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
const recording: Recording = {
  scenario,
  entries: [
    entry(0, 'p1', p1, false, { json: completion(RIGHT) }),
    entry(1, 'p2', p2, true, { events: streamOf(LEAKED, false), done: true }),
    entry(2, 'p1', p1, false, { json: completion(LEAKED) }),
    entry(3, 'p1', p1, true, { events: streamOf(RIGHT, true), done: true }),
  ],
};
const violation = checkRecording(recording)!;

const failed: PropertyResult = {
  property: 'history-independence',
  statement: 'an identical request gets an identical answer whatever ran before it',
  status: 'failed',
  scenarios: 12,
  requests: 40,
  ms: 3210,
  failure: { scenario, recording, violation, seed: 42, path: '3:0:1' },
};
const passed: PropertyResult = { property: 'stream-equivalence', statement: 'the folded stream equals the JSON answer', status: 'passed', scenarios: 25, requests: 88, ms: 1500 };
const skipped: PropertyResult = { property: 'cache-transparency', statement: 'cold equals warm', status: 'skipped', reason: 'the target lacks flush', scenarios: 0, requests: 0, ms: 0 };

const caps: Capabilities = { stream: true, streamOptions: true, tools: true, toolChoice: true, n: false, seed: true, seedAccepted: true, logprobs: true, flush: false, deterministic: true };
const TARGET = 'http://127.0.0.1:8000/v1';
const report: CheckReport = { target: TARGET, model: 'gpt-oss-20b', caps, seed: 42, results: [failed, passed, skipped], ok: false };

const temp = mkdtempSync(join(tmpdir(), 'amnesia-report-'));
afterAll(() => rmSync(temp, { recursive: true, force: true }));

it('the fixture is a history violation whose wrong answer leaked from p2', () => {
  expect(violation.kind).toBe('history');
  expect(violation.entries).toEqual([0, 2]);
  expect(violation.leakedFrom).toBe(1);
  expect(violation.difference).toMatchObject({ path: 'choices[0].content', position: 15 });
});

// ── Terminal table ───────────────────────────────────────────────────────────────────────────────

describe('summaryTable', () => {
  const text = summaryTable(report);
  const lines = text.split('\n');

  it('has one row per property with result, counts, seconds and the note', () => {
    expect(lines[0]).toMatch(/^property\s+result\s+scenarios\s+requests\s+seconds\s+note$/);
    expect(lines[1]).toMatch(/^history-independence\s+FAIL\s+12\s+40\s+3\.2\s+history: p1 at step 3 answered differently/);
    expect(lines[2]).toMatch(/^stream-equivalence\s+PASS\s+25\s+88\s+1\.5$/);
    expect(lines[3]).toMatch(/^cache-transparency\s+SKIP\s+0\s+0\s+0\.0\s+the target lacks flush$/);
    // Columns line up: every row's result starts where the header's does.
    const col = lines[0]!.indexOf('result');
    for (const l of lines.slice(1, 4)) expect(l.slice(col, col + 4)).toMatch(/PASS|FAIL|SKIP/);
  });

  it('ends with the target, the capabilities and the counts', () => {
    expect(text).toContain(`target ${TARGET}, model gpt-oss-20b, seed 42`);
    expect(text).toContain('stream ✓ stream-usage ✓ tools ✓ tool-choice ✓ n ✗ seed ✓ seed-accepted ✓ logprobs ✓ flush ✗; deterministic in isolation ✓');
    expect(lines.at(-1)).toBe('3 properties: 1 passed, 1 failed, 1 skipped');
  });
});

// ── JUnit XML ────────────────────────────────────────────────────────────────────────────────────

/** A small well-formedness check: balanced tags, quoted attributes, no raw `<` or stray `&`, legal characters only. */
function assertWellFormed(xml: string): void {
  expect(xml).not.toMatch(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/);
  const body = xml.replace(/^<\?xml [^?]*\?>\n/, '');
  const entity = /&(?:amp|lt|gt|quot|apos|#\d+);/g;
  const stack: string[] = [];
  const token = /<(\/?)([A-Za-z][\w.-]*)((?:\s+[A-Za-z][\w.-]*="[^"<]*")*)\s*(\/?)>|([^<]+)/y;
  let m: RegExpExecArray | null;
  let end = 0;
  while ((m = token.exec(body)) !== null) {
    end = token.lastIndex;
    const [, close, name, attrs, selfClosing, text] = m;
    const raw = text ?? attrs ?? '';
    expect(raw.replace(entity, ''), raw).not.toMatch(/&/);
    if (text !== undefined) continue;
    if (close) expect(stack.pop()).toBe(name);
    else if (!selfClosing) stack.push(name!);
  }
  expect(end, 'unparsed XML from here').toBe(body.length);
  expect(stack).toEqual([]);
}

describe('junitXml', () => {
  it('has one testsuite with properties, and one testcase per property', () => {
    const xml = junitXml(report);
    assertWellFormed(xml);
    expect(xml).toContain('<testsuite name="amnesia check" tests="3" failures="1" errors="0" skipped="1" time="4.710">');
    expect(xml).toContain('<property name="seed" value="42"/>');
    expect(xml).toContain(`<property name="target" value="${TARGET}"/>`);
    expect(xml).toContain(`<testcase classname="amnesia.${TARGET}" name="stream-equivalence" time="1.500"/>`);
    expect(xml).toContain('<skipped message="the target lacks flush"/>');
    expect(xml).toMatch(/<failure message="p1 at step 3 answered differently[^"]*" type="history">history: p1 at step 3/);
    expect(xml).toContain('the wrong answer is the answer of p2 at step 2');
    expect(xml).toContain('fast-check seed 42, path &quot;3:0:1&quot;'.replace(/&quot;/g, '"'));
  });

  it('escapes markup and quotes, and strips characters XML 1.0 cannot hold', () => {
    const nasty = `a <b> & "c" 'd' \u0001\u0000\uFFFE\uD800 e\n\tf 😀`;
    const xml = junitXml({
      ...report,
      model: nasty,
      results: [{ ...failed, property: nasty, failure: { ...failed.failure!, violation: { ...violation, message: nasty } } }, { ...skipped, reason: nasty }],
    });
    assertWellFormed(xml);
    expect(xml).toContain('value="a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;  e&#10;&#9;f 😀"');
    expect(xml).toContain('<skipped message="a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;  e&#10;&#9;f 😀"/>');
    // In text, quotes may stay and newlines are kept as they are.
    expect(xml).toContain(`history: a &lt;b&gt; &amp; "c" 'd'  e\n\tf 😀`);
  });
});

// ── GitHub Actions ───────────────────────────────────────────────────────────────────────────────

describe('GitHub output', () => {
  it('escapes workflow-command data and properties', () => {
    expect(escapeData('50% a\r\nb: c, d')).toBe('50%25 a%0D%0Ab: c, d');
    expect(escapeProperty('50% a\r\nb: c, d')).toBe('50%25 a%0D%0Ab%3A c%2C d');
  });

  it('annotates each failure as an error and each skip as a notice, one line each', () => {
    const lines = githubAnnotations(report);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^::error title=amnesia history-independence::history: p1 at step 3 answered differently .*%0A  expected: content: "The answer is 4."/);
    expect(lines[1]).toBe('::notice title=amnesia cache-transparency skipped::the target lacks flush');
    for (const l of lines) expect(l).not.toMatch(/[\r\n]/);
  });

  it('escapes a property name with delimiters, and stops at 10 errors', () => {
    const many = Array.from({ length: 12 }, (_, i) => ({ ...failed, property: `p${i}: a, b` }));
    const lines = githubAnnotations({ ...report, results: many });
    expect(lines).toHaveLength(10);
    expect(lines[3]).toMatch(/^::error title=amnesia p3%3A a%2C b::/);
  });

  it('writes a markdown step summary with the table and each violation', () => {
    const md = githubStepSummary({ ...report, results: [...report.results, { ...skipped, property: 'a|b', reason: 'x\ny' }] });
    expect(md).toContain('## amnesia check: 1 failed');
    expect(md).toContain('| history-independence | ❌ FAIL | 12 | 40 | 3.2 |');
    expect(md).toContain('| a\\|b | ⏭️ SKIP | 0 | 0 | 0.0 | x y |');
    expect(md).toMatch(/### history-independence\n\nan identical request .*\n\n```text\nhistory: p1 at step 3/);
  });
});

// ── curl scripts ─────────────────────────────────────────────────────────────────────────────────

/** Runs a script with a fake `curl` first on PATH that records its arguments and stdin. */
function runWithFakeCurl(script: string, env: Record<string, string> = {}): { args: string[]; stdin: string } {
  const dir = mkdtempSync(join(temp, 'curl-'));
  mkdirSync(join(dir, 'bin'));
  writeFileSync(join(dir, 'bin', 'curl'), '#!/usr/bin/env bash\nprintf \'%s\\n\' "$@" > "$FAKE_OUT/args"\ncat > "$FAKE_OUT/stdin"\n');
  chmodSync(join(dir, 'bin', 'curl'), 0o755);
  writeFileSync(join(dir, 'p.sh'), script);
  execFileSync('bash', [join(dir, 'p.sh')], { env: { PATH: `${join(dir, 'bin')}:${process.env.PATH}`, FAKE_OUT: dir, ...env } });
  return { args: readFileSync(join(dir, 'args'), 'utf8').split('\n').slice(0, -1), stdin: readFileSync(join(dir, 'stdin'), 'utf8') };
}

describe('curlScript', () => {
  // Everything a shell or a heredoc could trip on, including lines that look like delimiters.
  const body: Body = {
    model: "it's $HOME `whoami` $(id) \\ \"q\"",
    messages: [{ role: 'user', content: "EOF\nAMNESIA_REQUEST_BODY\n'EOF'\n${x}\r\n\t€ 😀 \u0000 \u2028" }],
    stop: ['EOF', 'AMNESIA_REQUEST_BODY'],
  };

  it('is valid bash', () => {
    const path = join(temp, 'syntax.sh');
    writeFileSync(path, curlScript(TARGET, body, true));
    execFileSync('bash', ['-n', path]);
  });

  it('sends the body byte for byte to the target, with no key unless OPENAI_API_KEY is set', () => {
    const script = curlScript(`${TARGET}/`, body, false);
    expect(script.startsWith('#!/usr/bin/env bash\n')).toBe(true);
    expect(script).toContain('set -euo pipefail');
    const { args, stdin } = runWithFakeCurl(script);
    expect(stdin).toBe(`${JSON.stringify(body, null, 2)}\n`); // the heredoc adds the final newline
    expect(JSON.parse(stdin)).toEqual(body);
    expect(args).toContain(`${TARGET}/chat/completions`);
    expect(args).not.toContain('-N');
    expect(args.some((a) => a.startsWith('Authorization'))).toBe(false);
  });

  it('honours AMNESIA_TARGET and OPENAI_API_KEY, and streams with -N and stream: true', () => {
    const { args, stdin } = runWithFakeCurl(curlScript(TARGET, body, true), { AMNESIA_TARGET: 'http://other:9/v1/', OPENAI_API_KEY: 'sk-$x y' });
    expect(args).toContain('http://other:9/v1/chat/completions');
    expect(args).toContain('-N');
    expect(args).toContain('Authorization: Bearer sk-$x y');
    expect(JSON.parse(stdin)).toEqual({ ...body, stream: true });
  });

  it('quotes a base URL with shell characters', () => {
    const { args } = runWithFakeCurl(curlScript("http://h/v1?a='$(id)'", { model: 'm' }, false));
    expect(args).toContain("http://h/v1?a='$(id)'/chat/completions");
  });
});

// ── Bug-report folder ────────────────────────────────────────────────────────────────────────────

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
    expect(JSON.parse(runWithFakeCurl(readFileSync(join(folder, 'p1.sh'), 'utf8')).stdin)).toEqual(p1);
    const streamed = runWithFakeCurl(readFileSync(join(folder, 'p2.sh'), 'utf8'));
    expect(JSON.parse(streamed.stdin)).toEqual({ ...p2, stream: true, stream_options: { include_usage: true } });
    expect(streamed.args).toContain('-N');
  });

  it('sanitises request and property names into unique file names', () => {
    const odd: Scenario = { name: 'x', requests: { '#0': p1, '../etc/passwd': p1, P1: p1, p1, '': p1 }, steps: [{ burst: ['#0', '../etc/passwd', 'P1', 'p1', ''] }] };
    const folder = writeFailureReport(temp, { ...failed, property: '../up', failure: { ...failed.failure!, scenario: odd } }, 'embedded tiny (in-process)', 'tiny');
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
    expect(md).toContain('**history**: p1 at step 3 answered differently');
    for (const h of ['Steps to reproduce', 'Expected', 'Actual', 'First difference', 'Where the wrong answer comes from', 'Recorded exchanges', 'Replay data']) {
      expect(md).toContain(`\n## ${h}\n`);
    }
  });

  it('names the script of each step, and the replay command', () => {
    expect(md).toContain('1. send p1: `./p1.sh`\n2. send p2 (stream): `./p2.sh`\n3. send p1: `./p1.sh`\n4. send p1 (stream): `./p1-stream.sh`\n');
    expect(md).toContain(`amnesia replay scenario.json --target ${TARGET}`);
  });

  it('shows expected and actual, the first difference with an excerpt, and the leak source', () => {
    expect(md).toContain('The answer of the identical request `p1` at step 1:\n\n```text\ncontent: "The answer is 4."\nfinish_reason: stop'.replace('\nfinish', '; finish'));
    expect(md).toContain(`content: ${JSON.stringify(LEAKED)}`);
    expect(md).toContain('At `choices[0].content`, character 15:');
    expect(md).toContain('expected: "The answer is 4."\nactual:   "The answer is 4, as the tool said."\n                          ^');
    expect(md).toContain('`p2` at step 2. Its request\'s last message:\n\n```text\ntool: The tool says 4\n```');
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

  it('says which requests of compound steps have no script', () => {
    const compound: Scenario = {
      name: 'cancel-no-trace',
      requests: { p1, p2 },
      steps: [{ burst: ['p1', 'p2'] }, { continue: 'p1' }, { cancel: 'p2', after: 2 }, { stop: 'p1', from: 0, length: 3, stream: true }, { raw: '{' }, { flush: true }],
    };
    const shape: Violation = { kind: 'shape', message: 'malformed body at step 5: HTTP 500, not a 4xx', entries: [0] };
    const text = reportMarkdown({ ...failed, failure: { ...failed.failure!, scenario: compound, violation: shape } }, TARGET, 'm');
    const steps = text.split('## Steps to reproduce')[1]!.split('Or replay')[0]!;
    expect(steps).toContain('1. send p1, p2 at once: `./p1.sh & ./p2.sh & wait`');
    expect(steps).toContain('2. send p1, then continue the conversation from its answer: `./p1.sh`; the continued conversation is built from that answer at run time, so it has no script');
    // p2 is sent as JSON in the burst and streamed by the cancel step: the stream has its own script.
    expect(steps).toMatch(/3\. stream p2, .*: `\.\/p2-stream\.sh`, interrupted after 2 events; the continuation is built .* no script/);
    expect(steps).toMatch(/4\. send p1 with a stop string .*: `\.\/p1\.sh`; the request with the stop string is built .* no script/);
    expect(steps).toContain('5. send the malformed body "{": no script (the body is in scenario.json)');
    expect(steps).toContain('6. flush the prefix cache: `curl -X POST http://127.0.0.1:8000/admin/cache/flush`');
    expect(text).toContain('## Expected\n\nA response with the Chat Completions shape');
    expect(text).not.toContain('## First difference');
  });

  it('refuses a result without a failure', () => {
    expect(() => reportMarkdown(passed, TARGET, 'm')).toThrow(RangeError);
  });
});

// ── Progress line ────────────────────────────────────────────────────────────────────────────────

describe('ProgressLine', () => {
  afterEach(() => vi.useRealTimers());
  const stream = (isTTY: boolean) => {
    const writes: string[] = [];
    return { writes, isTTY, columns: 40, write: (s: string) => writes.push(s) };
  };

  it('rewrites one line at most every 100 ms, shows the latest event, and clears it', () => {
    vi.useFakeTimers();
    const tty = stream(true);
    const line = new ProgressLine(tty);
    line.update({ property: 'history-independence', phase: 'checking', done: 1, requests: 3 });
    for (let i = 2; i <= 50; i++) line.update({ property: 'history-independence', phase: 'checking', done: i, requests: 3 * i });
    expect(tty.writes).toEqual(['\rchecking history-independence: 1 scena…\x1b[K']);
    vi.advanceTimersByTime(100);
    expect(tty.writes).toHaveLength(2);
    expect(tty.writes[1]).toMatch(/^\rchecking history-independence: 50 scen…\x1b\[K$/);
    line.update({ property: 'stop', phase: 'shrinking', done: 7 });
    line.done();
    vi.advanceTimersByTime(1000);
    expect(tty.writes.slice(2)).toEqual(['\r\x1b[K']);
  });

  it('prints nothing on a stream that is not a terminal', () => {
    const log = stream(false);
    const line = new ProgressLine(log);
    line.update({ property: 'x', phase: 'checking', done: 1 });
    line.done();
    expect(log.writes).toEqual([]);
  });
});
