// For whoever files the bug: per failure a folder ready to attach to an issue, with scenario.json,
// one curl script per request, and REPORT.md (steps to reproduce, expected, actual, the first
// difference, where a wrong answer came from, the recorded exchanges).
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { answerOf, answerText } from '../answer.ts';
import { ChatClient, type ChatCall, type Observation } from '../client.ts';
import type { Entry, Recording } from '../record.ts';
import { BODY_SHRINK_RUNS, REPLAYS, type PropertyResult } from '../search.ts';
import { describeStep, memberOf, type Body, type Scenario, type Step } from '../scenario.ts';
import { coldServer, type Violation } from '../violation.ts';
import { curlRawScript, curlScript } from './curl.ts';
import { code, fence } from './markdown.ts';
import { classText } from './text.ts';
import { CONFIDENT_MARGIN } from '../classify.ts';
import { violationMessage } from './text.ts';
import { PROBE_PROPERTY } from '../probe-findings.ts';

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
  if ('burst' in step) return step.burst.map((m) => memberOf(m, step));
  if ('continue' in step) return [{ name: step.continue, stream: step.stream ?? false }];
  if ('cancel' in step) return [{ name: step.cancel, stream: true }];
  if ('stop' in step) return [{ name: step.stop, stream: false }]; // the stop-free answer comes as JSON
  return [];
}

interface Script {
  file: string;
  /** The request's name; `raw:<step>` for a malformed body, `derived:<step>` for a request built at run time. */
  name: string;
  stream: boolean;
  body: Body;
  /** A malformed body, sent as it is. */
  raw?: string;
}

/**
 * The scripts of a scenario: `<name>.sh` per request (JSON, unless the scenario only streams it), and
 * `<name>-stream.sh` for a request it sends both ways. File names are unique, case-insensitively.
 */
function scriptsOf(s: Scenario, includeUsage: boolean, rec?: Recording): { scripts: Script[]; fileFor(name: string, stream: boolean): string } {
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
  s.steps.forEach((step, i) => {
    if ('raw' in step) scripts.push({ file: unique(`malformed-${i + 1}`), name: `raw:${i}`, stream: false, body: {}, raw: step.raw });
  });
  // A request a compound step builds from an answer (a continuation, the request with a stop
  // string): as this run built and sent it.
  s.steps.forEach((step, i) => {
    if (!('continue' in step || 'cancel' in step || 'stop' in step)) return;
    // The step's second request (its first is the named one, or the cancelled stream of it).
    const e = (rec?.entries ?? []).filter((x) => x.step === i && !x.baseline)[1];
    if (e)
      scripts.push({
        file: unique(safeFileName(e.label.replace(/\s+/g, '-'))),
        name: `derived:${i}`,
        stream: e.call.stream,
        body: wireBody(e.call, includeUsage),
      });
  });
  return {
    scripts,
    fileFor: (name, stream) => (scripts.find((x) => x.name === name && x.stream === stream) ?? scripts.find((x) => x.name === name))?.file ?? '?',
  };
}

const html = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The text of a chat message, as a person reads it: string content, text parts, or tool calls. */
function messageText(m: unknown): string {
  if (typeof m !== 'object' || m === null) return JSON.stringify(m);
  const msg = m as { role?: unknown; content?: unknown; tool_calls?: unknown };
  const role = typeof msg.role === 'string' ? msg.role : '?';
  let text: string;
  if (typeof msg.content === 'string') text = msg.content;
  else if (Array.isArray(msg.content))
    text = msg.content
      .map((p) => (typeof p === 'object' && p !== null && typeof (p as { text?: unknown }).text === 'string' ? (p as { text: string }).text : ''))
      .join('');
  else if (Array.isArray(msg.tool_calls)) text = `tool calls ${JSON.stringify(msg.tool_calls)}`;
  else text = JSON.stringify(msg.content ?? null);
  return `${role}: ${text.length > 500 ? `${text.slice(0, 500)}…` : text}`;
}

const at = (e: Entry) => `${code(e.label)} at step ${e.step + 1}`;

/** Where the expected answer comes from, by kind of violation. */
function expectedSource(rec: Recording, v: Violation): string {
  const ref = v.entries[0] ?? -1;
  if (v.kind === 'cache' || ref < 0) return `The answer of the same request alone on ${coldServer(v)}`;
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
  const lines: string[] = [obs.status === 0 ? '(no response)' : `HTTP ${obs.status}`];
  if (obs.events !== undefined) {
    lines.push(...obs.events.map((ev) => `data: ${JSON.stringify(ev)}`));
    if (obs.done) lines.push('data: [DONE]');
    if (obs.leftAtDeadline)
      lines.push(`(the client went away after ${obs.events.length} events, at its deadline of ${obs.deadlineMs} ms: the server kept the rest back)`);
    else if (obs.cancelled) lines.push(`(the client went away after ${obs.events.length} events)`);
  } else if (obs.json !== undefined) {
    lines.push(JSON.stringify(obs.json, null, 2));
  }
  if (obs.problem) lines.push(`(problem: ${obs.problem})`);
  if (obs.timedOut) lines.push(`(no complete answer within ${obs.deadlineMs ?? Math.round(obs.ended - obs.started)} ms: the client gave up and went away)`);
  return lines.join('\n');
}

/** One recorded exchange, folded: the request as sent, the answer, the response as it came. */
function exchangeBlock(e: Entry, role: string, includeUsage: boolean): string[] {
  const request = e.call.raw ?? JSON.stringify(wireBody(e.call, includeUsage), null, 2);
  const answer = e.call.raw === undefined && e.obs.status !== 0 ? answerText(answerOf(e.obs)) : '';
  const how = [
    e.call.stream ? 'stream' : 'JSON',
    e.obs.timedOut ? `no complete answer (HTTP ${e.obs.status})` : `HTTP ${e.obs.status}`,
    `${Math.round(e.obs.ended - e.obs.started)} ms`,
  ];
  return [
    '<details>',
    `<summary>Step ${e.step + 1}: <code>${html(e.label)}</code>${role ? ` (${role})` : ''}, ${how.join(', ')}</summary>`,
    '',
    `Request (POST /chat/completions${e.call.cancelAfter !== undefined ? `, cancelled after ${e.call.cancelAfter} events` : ''}):`,
    '',
    fence(request, e.call.raw === undefined ? 'json' : 'text'),
    '',
    ...(answer ? [e.obs.cancelled || e.obs.timedOut ? 'Partial answer:' : 'Answer:', '', fence(answer, 'text'), ''] : []),
    'Response:',
    '',
    fence(responseText(e.obs), 'text'),
    '',
    '</details>',
    '',
  ];
}

/**
 * Where the tokens part (a divergence with log-probs): the tokens before, what each run chose, and
 * the expected run's alternatives there with the margin; or, for numeric drift, the largest Δ.
 */
function tokensSection(v: Violation): string[] {
  if (v.class === 'numeric-drift' && v.drift !== undefined) {
    return ['## Numeric drift', '', `The same tokens; log-probs differ by up to ${v.drift.toPrecision(3)} (nats).`, ''];
  }
  const m = v.margin;
  const entries = m ? v.expected?.choices[m.choice]?.logprobs : undefined;
  if (!m || !entries) return [];
  const before = entries
    .slice(Math.max(0, m.position - 8), m.position)
    .map((e) => e.token)
    .join('');
  const here = entries[m.position]!;
  const chosenBy = (token: string) => [token === m.expected ? 'the expected run' : '', token === m.actual ? 'the other run' : ''].filter(Boolean).join(', ');
  const alternatives = (here.top_logprobs ?? []).map((t) => `| ${code(JSON.stringify(t.token))} | ${t.logprob.toFixed(4)} | ${chosenBy(t.token)} |`);
  return [
    '## Where the tokens part',
    '',
    `Token ${m.position + 1}${m.choice > 0 ? ` of choice ${m.choice}` : ''}, after ${code(JSON.stringify(before))}: the expected run chose ${code(JSON.stringify(m.expected))} ` +
      `(log-prob ${here.logprob.toFixed(4)}), the other run ${code(JSON.stringify(m.actual))}. The expected run's margin: ${m.atLeast ? 'at least ' : ''}${m.gap.toFixed(4)} nats` +
      `${m.gap < 0.05 && !m.atLeast ? ' — a near-tie, which numeric drift can tip' : m.gap >= CONFIDENT_MARGIN ? ' — it was sure: drift does not tip that' : ''}.`,
    '',
    ...(alternatives.length > 0
      ? ["The expected run's alternatives there:", '', '| token | log-prob | chosen by |', '|---|---:|---|', ...alternatives, '']
      : []),
  ];
}

/** REPORT.md for one failure: a bug report ready to file. */
export function reportMarkdown(result: PropertyResult, target: string, model: string): string {
  const f = result.failure;
  if (!f) throw new RangeError(`${result.property} has no failure to report`);
  const { recording: rec, violation: v, scenario } = f;
  const message = violationMessage(rec, v);
  const baseUrl = isUrl(target) ? target : DEFAULT_BASE_URL;
  const { fileFor } = scriptsOf(scenario, askedUsage(rec), rec);
  const run = (name: string, stream: boolean) => code(`./${fileFor(name, stream)}`);
  const involved = [...new Set([...v.entries.filter((i) => i >= 0), ...(v.leakedFrom !== undefined ? [v.leakedFrom] : [])])].sort((a, b) => a - b);
  const derived = (request: string, i: number) => {
    const file = fileFor(`derived:${i}`, false);
    return file === '?'
      ? `${request} is built from that answer at run time (\`amnesia replay\` sends it)`
      : `then ${code(`./${file}`)}: ${request} as this run built it from that answer (\`amnesia replay\` builds it anew)`;
  };

  const stepLine = (step: Step, i: number): string => {
    const what = describeStep(step);
    if ('send' in step) return `${i + 1}. ${what}: ${run(step.send, step.stream ?? false)}`;
    if ('burst' in step) {
      const members = step.burst.map((m) => memberOf(m, step));
      const [only] = members;
      // One abandoned stream (a lifted cancel step): run its script and interrupt it.
      if (members.length === 1 && only!.cancelAfter !== undefined) {
        return `${i + 1}. ${what}: ${run(only!.name, true)}, interrupted after ${only!.cancelAfter} events (\`amnesia replay\` does it)`;
      }
      const command = members
        .map(({ name, stream, delayMs }) => (delayMs ? `(sleep ${delayMs / 1000}; ./${fileFor(name, stream)}) &` : `./${fileFor(name, stream)} &`))
        .join(' ');
      const cancels = members
        .filter((m) => m.cancelAfter !== undefined)
        .map((m) => `${m.name} goes away after ${m.cancelAfter} events (interrupt its script then; \`amnesia replay\` does it)`);
      return `${i + 1}. ${what}: ${code(`${command} wait`)}${cancels.length > 0 ? `; ${cancels.join('; ')}` : ''}`;
    }
    if ('continue' in step) return `${i + 1}. ${what}: ${run(step.continue, step.stream ?? false)}; ${derived('the continued conversation', i)}`;
    if ('cancel' in step) return `${i + 1}. ${what}: ${run(step.cancel, true)}, interrupted after ${step.after} events; ${derived('the continuation', i)}`;
    if ('stop' in step) return `${i + 1}. ${what}: ${run(step.stop, false)}; ${derived('the request with the stop string', i)}`;
    if ('raw' in step) return `${i + 1}. ${what}: ${run(`raw:${i}`, false)}`;
    return `${i + 1}. ${what}: ${code(`curl -X POST ${originOf(baseUrl)}/admin/cache/flush`)}`;
  };

  const out: string[] = [
    `# ${result.property}: ${result.statement}`,
    '',
    `- Target: ${code(target)}`,
    `- Model: ${code(model)}`,
    `- Found by \`amnesia check\` (${result.scenarios} scenarios, ${result.requests} requests)`,
    '',
    `**${classText(v)}** — ${v.kind}: ${message}`,
    '',
    ...(result.flaky
      ? [
          '**Flaky: did not reproduce.** This scenario failed once (its recording is below); shrunk, it passed when replayed on a fresh target' +
            `${f.replay ? ' ("The replay that passed", below)' : ''}. A failure that comes and goes is still worth a look (a race, state a restart ` +
            'does not clear, a load-dependent bug), but these steps are not a reliable reproduction.',
          '',
        ]
      : []),
    ...(f.reproducedOnReplay
      ? [
          `**Timing-dependent.** The shrunk scenario failed again on a fresh target on replay ${f.reproducedOnReplay} of ${REPLAYS}, not the first: ` +
            'the bug needs requests to meet in time (a race). Replay it several times.',
          '',
        ]
      : []),
    ...(f.shrinkStopped
      ? [`Shrinking stopped at its budget (${BODY_SHRINK_RUNS} simplifications of the requests): a smaller scenario may still fail.`, '']
      : []),
    '## Steps to reproduce',
    '',
    `Each request is a script in this folder; set \`AMNESIA_TARGET\` to send it elsewhere (default ${code(baseUrl)}) and \`OPENAI_API_KEY\` if the server wants a key.`,
    '',
    ...scenario.steps.map(stepLine),
    ...(scenario.coldBaseline
      ? [
          '',
          v.baselineBy === 'restart'
            ? 'Then compare with each request alone on a fresh server: restart the server, and send it again.'
            : `Then compare with each request alone on a cold server: ${code(`curl -X POST ${originOf(baseUrl)}/admin/cache/flush`)}, and send it again.`,
        ]
      : []),
    '',
    'Or replay the whole scenario, checked:',
    '',
    fence(`npx amnesia replay scenario.json${isUrl(target) ? ` --target ${target}` : ''}`, 'sh'),
    '',
  ];

  const bad = v.entries[v.entries.length - 1];
  const badEntry = bad !== undefined && bad >= 0 ? rec.entries[bad] : undefined;
  if (v.expected) out.push('## Expected', '', `${expectedSource(rec, v)}:`, '', fence(answerText(v.expected), 'text'), '');
  else if (v.kind === 'shape') out.push('## Expected', '', 'A response with the Chat Completions shape (spec/properties.md, "Shape").', '');
  else if (v.kind === 'envelope') out.push('## Expected', '', 'A 4xx with the OpenAI error envelope `{"error":{"message","type","param","code"}}`.', '');
  else if (v.kind === 'hang')
    out.push(
      '## Expected',
      '',
      'A complete answer (a JSON body, or a stream that ends with `data: [DONE]`) within the deadline, which is generous (spec/properties.md, "Running a check").',
      '',
    );
  const what = v.kind === 'hang' ? 'What came back for' : 'The answer of';
  out.push('## Actual', '', badEntry ? `${what} ${at(badEntry)}:` : 'The answer:', '', fence(v.actual ? answerText(v.actual) : message, 'text'), '');

  const d = v.difference;
  if (d) {
    out.push('## First difference', '', `At ${code(d.path || '(the whole answer)')}${d.position !== undefined ? `, character ${d.position}` : ''}:`, '');
    if (d.position !== undefined && typeof d.expected === 'string' && typeof d.actual === 'string')
      out.push(fence(differenceExcerpt(d.expected, d.actual, d.position), 'text'), '');
    else out.push(fence(`expected: ${JSON.stringify(d.expected)}\nactual:   ${JSON.stringify(d.actual)}`, 'text'), '');
  }

  out.push(...tokensSection(v));

  if (v.leakedFrom !== undefined) {
    const src = rec.entries[v.leakedFrom]!;
    const messages = Array.isArray(src.call.body.messages) ? src.call.body.messages : [];
    out.push(
      '## Where the wrong answer comes from',
      '',
      `The wrong answer carries what another request, in another conversation, answered: ${at(src)}. Its request's last message:`,
      '',
      fence(messages.length > 0 ? messageText(messages[messages.length - 1]) : '(no messages)', 'text'),
      '',
    );
  }

  const role = (i: number) =>
    [
      i === v.entries[0] && v.entries.length > 1 ? 'reference' : '',
      i === bad ? (v.kind === 'hang' ? 'no answer' : 'wrong answer') : '',
      i === v.leakedFrom ? 'source of the wrong answer' : '',
    ]
      .filter(Boolean)
      .join(', ');
  out.push('## Recorded exchanges', '');
  for (const i of involved) out.push(...exchangeBlock(rec.entries[i]!, role(i), askedUsage(rec)));

  const replay = f.replay;
  if (result.flaky && replay) {
    out.push(
      '## The replay that passed',
      '',
      'The shrunk scenario, replayed on a fresh target, met every rule:',
      '',
      ...replay.scenario.steps.map((step, i) => `${i + 1}. ${describeStep(step)}`),
      '',
      ...replay.entries.flatMap((e) => exchangeBlock(e, '', askedUsage(replay))),
    );
  }

  const searched = result.foundBy ?? result.property;
  out.push(
    '## Replay data',
    '',
    result.property === PROBE_PROPERTY
      ? 'The probe sends this request at the start of every check; `amnesia replay scenario.json` sends it alone.'
      : `fast-check seed ${f.seed}, path ${code(JSON.stringify(f.path))} (the counterexample before amnesia shrank it step by step). ` +
          `${code(`amnesia check --properties ${searched} --seed ${f.seed}${isUrl(target) ? ` --target ${target}` : ''}`)}, with the same --runs, --max-tokens and --concurrency and no time budget, generates the same scenarios again` +
          (result.foundBy !== undefined ? `; ${searched}'s traffic met this request, and it breaks the contract alone.` : '.'),
    '',
  );
  return out.join('\n');
}

/**
 * Writes `dir/<property>/` (replacing an existing one): scenario.json, a script per request, and
 * REPORT.md; for a flaky failure also recording.json (the failing run) and replay-recording.json
 * (the passing replay). Returns the folder.
 */
export function writeFailureReport(dir: string, result: PropertyResult, target: string, model: string): string {
  const f = result.failure;
  if (!f) throw new RangeError(`${result.property} has no failure to report`);
  const folder = join(dir, safeFileName(result.property));
  rmSync(folder, { recursive: true, force: true });
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'scenario.json'), `${JSON.stringify(f.scenario, null, 2)}\n`);
  const baseUrl = isUrl(target) ? target : DEFAULT_BASE_URL;
  for (const s of scriptsOf(f.scenario, askedUsage(f.recording), f.recording).scripts) {
    const path = join(folder, s.file);
    writeFileSync(path, s.raw !== undefined ? curlRawScript(baseUrl, s.raw) : curlScript(baseUrl, s.body, s.stream));
    chmodSync(path, 0o755); // explicitly: the mode given to writeFileSync is subject to the umask
  }
  writeFileSync(join(folder, 'REPORT.md'), reportMarkdown(result, target, model));
  if (result.flaky) {
    // Both runs as data (checked again offline by the same rules): the failing one, and the passing replay.
    writeFileSync(join(folder, 'recording.json'), `${JSON.stringify(f.recording, null, 2)}\n`);
    if (f.replay) writeFileSync(join(folder, 'replay-recording.json'), `${JSON.stringify(f.replay, null, 2)}\n`);
  }
  return folder;
}
