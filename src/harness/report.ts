// What `amnesia check` hands to people and to CI: a terminal summary table, JUnit XML, GitHub
// Actions annotations and step summary, and per failure a bug-report folder ready to file
// (scenario.json, one curl script per request, REPORT.md). Everything here is a pure function of a
// CheckReport / PropertyResult, except writeFailureReport (writes the folder) and ProgressLine (a TTY).
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { answerOf, answerText } from './answer.ts';
import { describeViolation, type Violation } from './check.ts';
import { ChatClient, type ChatCall, type Observation } from './client.ts';
import type { Capability } from './probe.ts';
import type { Entry, Recording } from './run.ts';
import type { PropertyResult, RunOptions } from './runner.ts';
import { describeStep, type Body, type Scenario, type Step } from './scenario.ts';
import type { CheckReport } from './session.ts';

// ── Summary rows (shared by the terminal table and the step summary) ─────────────────────────────

const RESULT = { passed: 'PASS', failed: 'FAIL', skipped: 'SKIP' } as const;

/** Capability labels, in report order; `satisfies` makes a new Capability a compile error here. */
const CAPABILITY_LABELS = {
  stream: 'stream',
  streamOptions: 'stream-usage',
  tools: 'tools',
  toolChoice: 'tool-choice',
  n: 'n',
  seed: 'seed',
  seedAccepted: 'seed-accepted',
  logprobs: 'logprobs',
  flush: 'flush',
} satisfies Record<Capability, string>;

const seconds = (ms: number) => (ms / 1000).toFixed(1);

/** The note column, on one line: why a property was skipped, or what broke. */
function note(r: PropertyResult): string {
  const text = r.status === 'skipped' ? (r.reason ?? '') : r.status === 'failed' ? (r.failure ? `${r.failure.violation.kind}: ${r.failure.violation.message}` : (r.reason ?? 'failed')) : '';
  return text.replace(/\s*[\r\n]+\s*/g, ' ');
}

function capabilityLine(report: CheckReport): string {
  const caps = (Object.keys(CAPABILITY_LABELS) as Capability[]).map((c) => `${CAPABILITY_LABELS[c]} ${report.caps[c] ? '✓' : '✗'}`);
  return `${caps.join(' ')}; deterministic in isolation ${report.caps.deterministic ? '✓' : '✗'}`;
}

function countLine(report: CheckReport): string {
  const n = (s: PropertyResult['status']) => report.results.filter((r) => r.status === s).length;
  const total = report.results.length;
  return `${total} ${total === 1 ? 'property' : 'properties'}: ${n('passed')} passed, ${n('failed')} failed, ${n('skipped')} skipped`;
}

/** A plain-text table for a terminal, then the target line and the counts. */
export function summaryTable(report: CheckReport): string {
  const header = ['property', 'result', 'scenarios', 'requests', 'seconds', 'note'];
  const rows = report.results.map((r) => [r.property, RESULT[r.status], String(r.scenarios), String(r.requests), seconds(r.ms), note(r)]);
  const numeric = new Set([2, 3, 4]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [
    line(header),
    ...rows.map(line),
    '',
    `target ${report.target}, model ${report.model}, seed ${report.seed}`,
    capabilityLine(report),
    countLine(report),
  ].join('\n');
}

// ── JUnit XML ────────────────────────────────────────────────────────────────────────────────────

/** Characters XML 1.0 cannot hold at all, not even as references (control characters, lone surrogates, U+FFFE/F). */
const XML_ILLEGAL = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

export function xmlText(s: string): string {
  return s.replace(XML_ILLEGAL, '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Attribute values also escape quotes, and whitespace that parsers would otherwise normalise to spaces. */
export function xmlAttr(s: string): string {
  return xmlText(s).replace(/"/g, '&quot;').replace(/'/g, '&apos;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;').replace(/\t/g, '&#9;');
}

/** What a failure says in full: the violation, the steps, the replay data. */
function failureText(r: PropertyResult): string {
  const f = r.failure;
  if (!f) return `${r.property} failed`;
  return [
    describeViolation(f.recording, f.violation),
    '',
    'steps:',
    ...f.scenario.steps.map((s, i) => `  ${i + 1}. ${describeStep(s)}`),
    '',
    `fast-check seed ${f.seed}, path ${JSON.stringify(f.path)}`,
  ].join('\n');
}

export function junitXml(report: CheckReport): string {
  const count = (s: PropertyResult['status']) => report.results.filter((r) => r.status === s).length;
  const time = (ms: number) => (ms / 1000).toFixed(3);
  const total = report.results.reduce((t, r) => t + r.ms, 0);
  const suite = `tests="${report.results.length}" failures="${report.results.filter((r) => r.failure).length}" errors="${report.results.filter((r) => r.status === 'failed' && !r.failure).length}" skipped="${count('skipped')}" time="${time(total)}"`;
  const out = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="amnesia" ${suite}>`,
    `  <testsuite name="amnesia check" ${suite}>`,
    '    <properties>',
    `      <property name="seed" value="${report.seed}"/>`,
    `      <property name="target" value="${xmlAttr(report.target)}"/>`,
    `      <property name="model" value="${xmlAttr(report.model)}"/>`,
    '    </properties>',
  ];
  for (const r of report.results) {
    const open = `    <testcase classname="${xmlAttr(`amnesia.${report.target}`)}" name="${xmlAttr(r.property)}" time="${time(r.ms)}"`;
    if (r.status === 'passed') {
      out.push(`${open}/>`);
    } else if (r.status === 'skipped') {
      out.push(`${open}>`, `      <skipped message="${xmlAttr(r.reason ?? 'skipped')}"/>`, '    </testcase>');
    } else if (!r.failure) {
      // Infrastructure (a timeout, a missing endpoint), not a violated property.
      out.push(`${open}>`, `      <error message="${xmlAttr(r.reason ?? 'error')}"/>`, '    </testcase>');
    } else {
      const v = r.failure?.violation;
      out.push(
        `${open}>`,
        `      <failure message="${xmlAttr(v?.message ?? 'failed')}" type="${xmlAttr(v?.kind ?? 'failure')}">${xmlText(failureText(r))}</failure>`,
        '    </testcase>',
      );
    }
  }
  out.push('  </testsuite>', '</testsuites>', '');
  return out.join('\n');
}

// ── GitHub Actions ───────────────────────────────────────────────────────────────────────────────

/** Workflow-command data (the message after `::`). */
export function escapeData(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/** Workflow-command property values (`title=…`), where `:` and `,` delimit. */
export function escapeProperty(s: string): string {
  return escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

/** GitHub shows at most 10 annotations of each level per step; more would be dropped silently. */
const MAX_ANNOTATIONS = 10;

export function githubAnnotations(report: CheckReport): string[] {
  const failed = report.results.filter((r) => r.status === 'failed').slice(0, MAX_ANNOTATIONS);
  const skipped = report.results.filter((r) => r.status === 'skipped').slice(0, MAX_ANNOTATIONS);
  return [
    ...failed.map((r) => `::error title=${escapeProperty(`amnesia ${r.property}`)}::${escapeData(r.failure ? describeViolation(r.failure.recording, r.failure.violation) : `${r.property} failed`)}`),
    ...skipped.map((r) => `::notice title=${escapeProperty(`amnesia ${r.property} skipped`)}::${escapeData(r.reason ?? 'skipped')}`),
  ];
}

/** A markdown table cell: pipes would end the cell, newlines the row. */
const cell = (s: string) => s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');

/** Markdown for $GITHUB_STEP_SUMMARY: the summary table, then each failure's violation. */
export function githubStepSummary(report: CheckReport): string {
  const failures = report.results.filter((r) => r.status === 'failed');
  const icon = { passed: '✅ PASS', failed: '❌ FAIL', skipped: '⏭️ SKIP' } as const;
  const out = [
    `## amnesia check: ${failures.length === 0 ? 'no property failed' : `${failures.length} failed`}`,
    '',
    `Target ${code(report.target)}, model ${code(report.model)}, seed ${report.seed}. Capabilities: ${capabilityLine(report)}.`,
    '',
    '| property | result | scenarios | requests | seconds | note |',
    '|---|---|---:|---:|---:|---|',
    ...report.results.map((r) => `| ${cell(r.property)} | ${icon[r.status]} | ${r.scenarios} | ${r.requests} | ${seconds(r.ms)} | ${cell(note(r))} |`),
    '',
    countLine(report),
    '',
  ];
  for (const r of failures) out.push(`### ${r.property}`, '', `${r.statement}.`, '', fence(failureText(r), 'text'), '');
  return out.join('\n');
}

// ── curl scripts ─────────────────────────────────────────────────────────────────────────────────

/** Where the scripts point when the target has no URL (the embedded server): `amnesia serve`'s default. */
const DEFAULT_BASE_URL = 'http://127.0.0.1:8000/v1';

const isUrl = (target: string) => /^https?:\/\//i.test(target);
const originOf = (url: string) => {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
};
const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * A bash script that sends one request with curl. The body sits in a quoted heredoc, so nothing in
 * it is expanded; the delimiter cannot occur as a line of the body, because every line of
 * JSON.stringify(object, null, 2) starts with a brace, a bracket or indentation. For a stream, the
 * body gets `stream: true` and curl gets -N (no buffering).
 */
export function curlScript(baseUrl: string, body: Record<string, unknown>, stream: boolean): string {
  const sent = stream && body.stream !== true ? { ...body, stream: true } : body;
  return [
    '#!/usr/bin/env bash',
    '# Sends one request recorded by amnesia. AMNESIA_TARGET overrides the base URL (ending in /v1);',
    '# OPENAI_API_KEY, when set, is sent as a bearer token.',
    'set -euo pipefail',
    `default_target=${shellQuote(baseUrl.replace(/\/+$/, ''))}`,
    'url="${AMNESIA_TARGET:-$default_target}"',
    'url="${url%/}/chat/completions"',
    'auth=()',
    'if [ -n "${OPENAI_API_KEY:-}" ]; then auth=(-H "Authorization: Bearer $OPENAI_API_KEY"); fi',
    '# ${auth[@]+...}: an empty array is "unbound" under set -u in bash before 4.4 (macOS).',
    `curl -sS${stream ? ' -N' : ''} "$url" -H 'Content-Type: application/json' \${auth[@]+"\${auth[@]}"} --data-binary @- <<'AMNESIA_REQUEST_BODY'`,
    JSON.stringify(sent, null, 2),
    'AMNESIA_REQUEST_BODY',
    '',
  ].join('\n');
}

// ── Bug reports ──────────────────────────────────────────────────────────────────────────────────

/** A name made safe as a file name: no separators, no leading dot or dash, not empty. */
export function safeFileName(name: string): string {
  const s = name.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100);
  return s === '' ? '_' : /^[.-]/.test(s) ? `_${s}` : s;
}

/** The client's own rule for the body as sent (stream fields on top), without a transport. */
const offline = { name: 'offline', send: () => Promise.reject(new Error('offline')), sendOrigin: () => Promise.reject(new Error('offline')) };
const wireBody = (call: ChatCall, includeUsage: boolean) => new ChatClient(offline, { includeUsage, timeoutMs: 0 }).wireBody(call);

/**
 * Whether the streams asked for the usage chunk. The recording does not say (the client adds
 * stream_options when the target supports it), but a stream that carries a usage chunk was asked.
 */
const askedUsage = (rec: Recording) =>
  rec.entries.some((e) => e.call.stream && (e.obs.events ?? []).some((ev) => typeof ev === 'object' && ev !== null && (ev as { usage?: unknown }).usage));

/** How a step sends each request it names itself (the derived second request of a compound step aside). */
function sends(step: Step): Array<{ name: string; stream: boolean }> {
  if ('send' in step) return [{ name: step.send, stream: step.stream ?? false }];
  if ('burst' in step) return step.burst.map((name) => ({ name, stream: step.stream ?? false }));
  if ('continue' in step) return [{ name: step.continue, stream: step.stream ?? false }];
  if ('cancel' in step) return [{ name: step.cancel, stream: true }];
  if ('stop' in step) return [{ name: step.stop, stream: false }]; // the stop-free answer comes as JSON
  return [];
}

interface Script {
  file: string;
  name: string;
  stream: boolean;
  body: Body;
}

/**
 * The scripts of a scenario: `<name>.sh` per request (JSON, unless the scenario only streams it), and
 * `<name>-stream.sh` for a request it sends both ways. File names are unique, case-insensitively.
 */
function scriptsOf(s: Scenario, includeUsage: boolean): { scripts: Script[]; fileFor(name: string, stream: boolean): string } {
  const modes = new Map<string, Set<boolean>>();
  for (const step of s.steps) for (const { name, stream } of sends(step)) (modes.get(name) ?? modes.set(name, new Set()).get(name)!).add(stream);
  const taken = new Set<string>();
  const unique = (base: string) => {
    let file = `${base}.sh`;
    for (let k = 2; taken.has(file.toLowerCase()); k++) file = `${base}-${k}.sh`;
    taken.add(file.toLowerCase());
    return file;
  };
  const scripts: Script[] = [];
  for (const [name, body] of Object.entries(s.requests)) {
    const used = modes.get(name) ?? new Set([false]);
    const primary = !used.has(false);
    const make = (stream: boolean, base: string) => scripts.push({ file: unique(base), name, stream, body: wireBody({ body, stream }, includeUsage) });
    make(primary, safeFileName(name));
    if (used.size === 2) make(true, `${safeFileName(name)}-stream`);
  }
  return {
    scripts,
    fileFor: (name, stream) => (scripts.find((x) => x.name === name && x.stream === stream) ?? scripts.find((x) => x.name === name))?.file ?? '?',
  };
}

/** An inline code span that survives backticks in the text. */
function code(s: string): string {
  const longest = Math.max(0, ...(s.match(/`+/g) ?? []).map((m) => m.length));
  const ticks = '`'.repeat(longest + 1);
  return longest > 0 || s.startsWith(' ') ? `${ticks} ${s} ${ticks}` : `${ticks}${s}${ticks}`;
}

/** A fenced block longer than any backtick run inside it. */
function fence(s: string, lang = ''): string {
  const longest = Math.max(0, ...(s.match(/`+/g) ?? []).map((m) => m.length));
  const ticks = '`'.repeat(Math.max(3, longest + 1));
  return `${ticks}${lang}\n${s}\n${ticks}`;
}

const html = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The text of a chat message, as a person reads it: string content, text parts, or tool calls. */
function messageText(m: unknown): string {
  if (typeof m !== 'object' || m === null) return JSON.stringify(m);
  const msg = m as { role?: unknown; content?: unknown; tool_calls?: unknown };
  const role = typeof msg.role === 'string' ? msg.role : '?';
  let text: string;
  if (typeof msg.content === 'string') text = msg.content;
  else if (Array.isArray(msg.content)) text = msg.content.map((p) => (typeof p === 'object' && p !== null && typeof (p as { text?: unknown }).text === 'string' ? (p as { text: string }).text : '')).join('');
  else if (Array.isArray(msg.tool_calls)) text = `tool calls ${JSON.stringify(msg.tool_calls)}`;
  else text = JSON.stringify(msg.content ?? null);
  return `${role}: ${text.length > 500 ? `${text.slice(0, 500)}…` : text}`;
}

const at = (e: Entry) => `${code(e.label)} at step ${e.step + 1}`;

/** Where the expected answer comes from, by kind of violation. */
function expectedSource(rec: Recording, v: Violation): string {
  const ref = v.entries[0] ?? -1;
  if (v.kind === 'cache' || ref < 0) return 'The answer of the same request alone on a cold server (prefix cache flushed)';
  const e = rec.entries[ref]!;
  if (v.kind === 'truncation') return `The answer with the larger max_tokens, ${at(e)}; the actual answer must be a prefix of it`;
  if (v.kind === 'stop') return `The answer of ${at(e)} without the stop string, cut before its first occurrence`;
  if (v.kind === 'expectation') return `The answer of ${at(e)} (the scenario's expectation)`;
  return `The answer of the identical request ${at(e)}`;
}

/** Both strings around the first difference, with a caret under it (the text before it is common). */
function differenceExcerpt(expected: string, actual: string, position: number, radius = 30): string {
  const lit = (t: string) => JSON.stringify(t).slice(1, -1);
  const start = Math.max(0, position - radius);
  const before = lit(expected.slice(start, position));
  const show = (s: string) => `"${start > 0 ? '…' : ''}${before}${lit(s.slice(position, position + radius))}${position + radius < s.length ? '…' : ''}"`;
  const caret = ' '.repeat('expected: "'.length + (start > 0 ? 1 : 0) + before.length);
  return [`expected: ${show(expected)}`, `actual:   ${show(actual)}`, `${caret}^`].join('\n');
}

/** The response as recorded: the JSON body, or the stream's events as SSE lines. */
function responseText(obs: Observation): string {
  const lines: string[] = [`HTTP ${obs.status}`];
  if (obs.events !== undefined) {
    lines.push(...obs.events.map((ev) => `data: ${JSON.stringify(ev)}`));
    if (obs.done) lines.push('data: [DONE]');
    if (obs.cancelled) lines.push(`(the client went away after ${obs.events.length} events)`);
  } else if (obs.json !== undefined) {
    lines.push(JSON.stringify(obs.json, null, 2));
  }
  if (obs.problem) lines.push(`(problem: ${obs.problem})`);
  return lines.join('\n');
}

/** REPORT.md for one failure: a bug report ready to file. */
export function reportMarkdown(result: PropertyResult, target: string, model: string): string {
  const f = result.failure;
  if (!f) throw new RangeError(`${result.property} has no failure to report`);
  const { recording: rec, violation: v, scenario } = f;
  const baseUrl = isUrl(target) ? target : DEFAULT_BASE_URL;
  const { fileFor } = scriptsOf(scenario, askedUsage(rec));
  const run = (name: string, stream: boolean) => code(`./${fileFor(name, stream)}`);
  const involved = [...new Set([...v.entries.filter((i) => i >= 0), ...(v.leakedFrom !== undefined ? [v.leakedFrom] : [])])].sort((a, b) => a - b);
  const derived = (request: string) => `${request} is built from that answer at run time, so it has no script (\`amnesia replay\` sends it)`;

  const stepLine = (step: Step, i: number): string => {
    const what = describeStep(step);
    if ('send' in step) return `${i + 1}. ${what}: ${run(step.send, step.stream ?? false)}`;
    if ('burst' in step) return `${i + 1}. ${what}: ${code(`${step.burst.map((n) => `./${fileFor(n, step.stream ?? false)} &`).join(' ')} wait`)}`;
    if ('continue' in step) return `${i + 1}. ${what}: ${run(step.continue, step.stream ?? false)}; ${derived('the continued conversation')}`;
    if ('cancel' in step) return `${i + 1}. ${what}: ${run(step.cancel, true)}, interrupted after ${step.after} events; ${derived('the continuation')}`;
    if ('stop' in step) return `${i + 1}. ${what}: ${run(step.stop, false)}; ${derived('the request with the stop string')}`;
    if ('raw' in step) return `${i + 1}. ${what}: no script (the body is in scenario.json)`;
    return `${i + 1}. ${what}: ${code(`curl -X POST ${originOf(baseUrl)}/admin/cache/flush`)}`;
  };

  const out: string[] = [
    `# ${result.property}: ${result.statement}`,
    '',
    `- Target: ${code(target)}`,
    `- Model: ${code(model)}`,
    `- Found by \`amnesia check\` (${result.scenarios} scenarios, ${result.requests} requests)`,
    '',
    `**${v.kind}**: ${v.message}`,
    '',
    '## Steps to reproduce',
    '',
    `Each request is a script in this folder; set \`AMNESIA_TARGET\` to send it elsewhere (default ${code(baseUrl)}) and \`OPENAI_API_KEY\` if the server wants a key.`,
    '',
    ...scenario.steps.map(stepLine),
    ...(scenario.coldBaseline
      ? ['', `Then compare with each request alone on a cold server: ${code(`curl -X POST ${originOf(baseUrl)}/admin/cache/flush`)}, and send it again.`]
      : []),
    '',
    'Or replay the whole scenario, checked:',
    '',
    fence(`amnesia replay scenario.json${isUrl(target) ? ` --target ${target}` : ''}`, 'sh'),
    '',
  ];

  const bad = v.entries[v.entries.length - 1];
  const badEntry = bad !== undefined && bad >= 0 ? rec.entries[bad] : undefined;
  if (v.expected) out.push('## Expected', '', `${expectedSource(rec, v)}:`, '', fence(answerText(v.expected), 'text'), '');
  else if (v.kind === 'shape') out.push('## Expected', '', 'A response with the Chat Completions shape (spec/properties.md, "Shape").', '');
  else if (v.kind === 'envelope') out.push('## Expected', '', 'A 4xx with the OpenAI error envelope `{"error":{"message","type","param","code"}}`.', '');
  out.push('## Actual', '', badEntry ? `The answer of ${at(badEntry)}:` : 'The answer:', '', fence(v.actual ? answerText(v.actual) : v.message, 'text'), '');

  const d = v.difference;
  if (d) {
    out.push('## First difference', '', `At ${code(d.path || '(the whole answer)')}${d.position !== undefined ? `, character ${d.position}` : ''}:`, '');
    if (d.position !== undefined && typeof d.expected === 'string' && typeof d.actual === 'string') out.push(fence(differenceExcerpt(d.expected, d.actual, d.position), 'text'), '');
    else out.push(fence(`expected: ${JSON.stringify(d.expected)}\nactual:   ${JSON.stringify(d.actual)}`, 'text'), '');
  }

  if (v.leakedFrom !== undefined) {
    const src = rec.entries[v.leakedFrom]!;
    const messages = Array.isArray(src.call.body.messages) ? src.call.body.messages : [];
    out.push(
      '## Where the wrong answer comes from',
      '',
      `The wrong answer is the answer of an earlier, different request: ${at(src)}. Its request's last message:`,
      '',
      fence(messages.length > 0 ? messageText(messages[messages.length - 1]) : '(no messages)', 'text'),
      '',
    );
  }

  const includeUsage = askedUsage(rec);
  const role = (i: number) => [i === v.entries[0] && v.entries.length > 1 ? 'reference' : '', i === bad ? 'wrong answer' : '', i === v.leakedFrom ? 'source of the wrong answer' : ''].filter(Boolean).join(', ');
  out.push('## Recorded exchanges', '');
  for (const i of involved) {
    const e = rec.entries[i]!;
    const request = e.call.raw ?? JSON.stringify(wireBody(e.call, includeUsage), null, 2);
    const answer = e.call.raw === undefined ? answerText(answerOf(e.obs)) : '';
    out.push(
      '<details>',
      `<summary>Step ${e.step + 1}: <code>${html(e.label)}</code> (${role(i)}), ${e.call.stream ? 'stream' : 'JSON'}, HTTP ${e.obs.status}, ${Math.round(e.obs.ended - e.obs.started)} ms</summary>`,
      '',
      `Request (POST /chat/completions${e.call.cancelAfter !== undefined ? `, cancelled after ${e.call.cancelAfter} events` : ''}):`,
      '',
      fence(request, e.call.raw === undefined ? 'json' : 'text'),
      '',
      ...(answer ? [e.obs.cancelled ? 'Partial answer:' : 'Answer:', '', fence(answer, 'text'), ''] : []),
      'Response:',
      '',
      fence(responseText(e.obs), 'text'),
      '',
      '</details>',
      '',
    );
  }

  out.push(
    '## Replay data',
    '',
    `fast-check seed ${f.seed}, path ${code(JSON.stringify(f.path))} (the counterexample before amnesia shrank it step by step). ` +
      `${code(`amnesia check --properties ${result.property} --seed ${f.seed}${isUrl(target) ? ` --target ${target}` : ''}`)}, with the same --runs, --max-tokens and --concurrency and no time budget, generates the same scenarios again.`,
    '',
  );
  return out.join('\n');
}

/**
 * Writes `dir/<property>/` (replacing an existing one): scenario.json, a script per request, and
 * REPORT.md. Returns the folder.
 */
export function writeFailureReport(dir: string, result: PropertyResult, target: string, model: string): string {
  const f = result.failure;
  if (!f) throw new RangeError(`${result.property} has no failure to report`);
  const folder = join(dir, safeFileName(result.property));
  rmSync(folder, { recursive: true, force: true });
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'scenario.json'), `${JSON.stringify(f.scenario, null, 2)}\n`);
  const baseUrl = isUrl(target) ? target : DEFAULT_BASE_URL;
  for (const s of scriptsOf(f.scenario, askedUsage(f.recording)).scripts) {
    const path = join(folder, s.file);
    writeFileSync(path, curlScript(baseUrl, s.body, s.stream));
    chmodSync(path, 0o755); // explicitly: the mode given to writeFileSync is subject to the umask
  }
  writeFileSync(join(folder, 'REPORT.md'), reportMarkdown(result, target, model));
  return folder;
}

// ── Progress ─────────────────────────────────────────────────────────────────────────────────────

/** What the runner reports as it goes (RunOptions.onProgress). */
export type ProgressEvent = Parameters<NonNullable<RunOptions['onProgress']>>[0];

export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

/**
 * One status line on a terminal, rewritten in place at most ~10 times a second; the latest event is
 * shown when the interval ends. On anything but a TTY (a log file, CI) it prints nothing.
 */
export class ProgressLine {
  private last = 0;
  private shown = false;
  private pending: ProgressEvent | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly stream: ProgressStream,
    private readonly intervalMs = 100,
  ) {}

  update(event: ProgressEvent): void {
    if (!this.stream.isTTY) return;
    const wait = this.last + this.intervalMs - Date.now();
    if (wait <= 0) return this.render(event);
    this.pending = event;
    // unref: a pending redraw must not keep the process alive.
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      if (this.pending) this.render(this.pending);
    }, wait).unref();
  }

  done(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = undefined;
    if (this.shown) this.stream.write('\r\x1b[K');
    this.shown = false;
  }

  private render(e: ProgressEvent): void {
    this.pending = undefined;
    this.last = Date.now();
    this.shown = true;
    const text = `${e.phase} ${e.property}: ${e.done} scenario${e.done === 1 ? '' : 's'}${e.requests !== undefined ? `, ${e.requests} requests` : ''}`;
    // A line longer than the terminal wraps, and \r would then rewrite only its last row.
    const width = (this.stream.columns ?? 80) - 1;
    this.stream.write(`\r${text.length > width ? `${text.slice(0, width - 1)}…` : text}\x1b[K`);
  }
}
