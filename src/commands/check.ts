// `amnesia check`: runs the properties against a target (or the embedded reference server), prints
// a summary, writes a bug report folder per failure, JUnit XML and GitHub annotations on request.
// Exit codes: 0 every property holds, 1 a property failed, 2 usage error, 3 target unreachable.
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writeFailureReport } from '../harness/report/bug-report.ts';
import { githubAnnotations, githubStepSummary } from '../harness/report/github.ts';
import { writeHtmlReport } from '../harness/report/html.ts';
import { junitXml } from '../harness/report/junit.ts';
import { ProgressLine, summaryTable } from '../harness/report/summary.ts';
import { selectProperties } from '../harness/check-target.ts';
import { check, type CheckOptions } from '../api.ts';
import { UnreachableError } from '../harness/transport.ts';
import { COMPARE_MODES } from '../harness/classify.ts';
import { usageLine, type CommandHelp, type FlagHelp } from './help.ts';
import { UsageError } from './usage-error.ts';

export interface CommandResult {
  text: string;
  code: number;
}

/** Exit codes shared by check and replay. */
export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3 } as const;

/** The exit codes, as help explains them: what 0 and 1 mean for the command. */
export const exitHelp = (ok: string, failed: string): string[] => [
  `${EXIT.ok}  ${ok}`,
  `${EXIT.failed}  ${failed}`,
  `${EXIT.usage}  usage error (one line on stderr)`,
  `${EXIT.unreachable}  the target cannot be reached`,
];

/** The target flags check and replay share, as help describes them. */
export const targetFlagsHelp: FlagHelp[] = [
  {
    flag: '--target',
    value: 'URL',
    text: "the server's OpenAI base URL, e.g. http://127.0.0.1:8000/v1 (default: the embedded reference server, a fresh child process per history)",
  },
  { flag: '--model', value: 'NAME', text: 'the model to ask for (default: the first one the target lists at /models)' },
  { flag: '--api-key', value: 'KEY', text: 'sent as a bearer token (default: $OPENAI_API_KEY)' },
  {
    flag: '--request-timeout',
    value: 'SECONDS',
    text: "a request with no complete answer within this is a hang, reported as a violation (default: from the probe's slowest answer, at least 10 s)",
  },
  {
    flag: '--extra-body',
    value: 'JSON',
    text: "fields added to every chat request that does not set them, e.g. a server's own cache switch: '{\"cache_prompt\":false}' for llama.cpp",
  },
  {
    flag: '--flush-command',
    value: 'CMD',
    text:
      "a shell command that empties the target's caches (exit 0), run between histories and before each cold run, for a server " +
      "without amnesia's POST /admin/cache/flush (a restart script, say); at most 120 s",
  },
  {
    flag: '--cache-bust',
    text:
      "a fresh nonce in front of the first message of every history, so no history meets another's cached prefix; " +
      'for a server with no way to empty its caches. It gives no cold run of a request already sent (properties that need one still skip)',
  },
  {
    flag: '--compare',
    value: 'exact|tokens|text',
    text:
      'what a difference must be to fail: exact, any (default); tokens, other tokens, not log-probs that drift with the same tokens; ' +
      'text, content leaks and divergences where the expected run was sure of its token, not near-ties. Contract breaks fail in every ' +
      "mode; each violation's class is shown whatever the mode",
  },
];

export function positiveInt(flag: string, text: string | undefined, max = 1_000_000): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > max) throw new UsageError(`${flag} must be an integer from 1 to ${max}, got '${text}'`);
  return Number(text);
}

/** A positive number of seconds (decimals allowed), as milliseconds. */
export function positiveSeconds(flag: string, text: string | undefined, max = 86_400): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+(\.\d+)?$/.test(text) || Number(text) <= 0 || Number(text) > max)
    throw new UsageError(`${flag} must be a number of seconds above 0 and at most ${max}, got '${text}'`);
  return Math.round(Number(text) * 1000);
}

/** The target flags check and replay share. */
export const targetFlags = {
  target: { type: 'string' },
  model: { type: 'string' },
  'api-key': { type: 'string' },
  'request-timeout': { type: 'string' },
  compare: { type: 'string' },
  'extra-body': { type: 'string' },
  'flush-command': { type: 'string' },
  'cache-bust': { type: 'boolean' },
} as const;

export function targetOptions(
  values: {
    target?: string | undefined;
    model?: string | undefined;
    'api-key'?: string | undefined;
    'request-timeout'?: string | undefined;
    compare?: string | undefined;
    'extra-body'?: string | undefined;
    'flush-command'?: string | undefined;
    'cache-bust'?: boolean | undefined;
  },
  env: NodeJS.ProcessEnv,
): CheckOptions {
  const options: CheckOptions = {};
  if (values['extra-body'] !== undefined) {
    let extra: unknown;
    try {
      extra = JSON.parse(values['extra-body']);
    } catch {
      extra = undefined;
    }
    if (typeof extra !== 'object' || extra === null || Array.isArray(extra)) {
      throw new UsageError(`--extra-body must be a JSON object such as '{"cache_prompt":false}', got '${values['extra-body']}'`);
    }
    options.extraBody = extra as Record<string, unknown>;
  }
  if (values['flush-command'] !== undefined) {
    if (values['flush-command'].trim() === '') throw new UsageError('--flush-command must not be empty');
    options.flushCommand = values['flush-command'];
  }
  if (values['cache-bust']) options.cacheBust = true;
  if (values.compare !== undefined) {
    const mode = COMPARE_MODES.find((m) => m === values.compare);
    if (mode === undefined) throw new UsageError(`--compare must be ${COMPARE_MODES.join(', ')}, got '${values.compare}'`);
    options.compare = mode;
  }
  if (values.target !== undefined) {
    try {
      const url = new URL(values.target);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http');
    } catch {
      throw new UsageError(`--target must be an http(s) URL such as http://127.0.0.1:8000/v1, got '${values.target}'`);
    }
    options.target = values.target;
  }
  if (values.model !== undefined) options.model = values.model;
  const requestTimeoutMs = positiveSeconds('--request-timeout', values['request-timeout']);
  if (requestTimeoutMs !== undefined) options.requestTimeoutMs = requestTimeoutMs;
  const key = values['api-key'] ?? env.OPENAI_API_KEY;
  if (key !== undefined && key !== '') options.apiKey = key;
  return options;
}

/** `s` as one word for sh (quoted only when it needs to be): the printed replay command runs as printed. */
const shellWord = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`);

export const checkFlags = {
  ...targetFlags,
  properties: { type: 'string' },
  runs: { type: 'string' },
  seed: { type: 'string' },
  'time-budget': { type: 'string' },
  'max-tokens': { type: 'string' },
  concurrency: { type: 'string' },
  report: { type: 'string', default: 'amnesia-report' },
  junit: { type: 'string' },
} as const;

export const checkHelp: CommandHelp = {
  name: 'check',
  summary:
    'Probes an OpenAI-compatible server (what it supports; whether identical requests sent alone get identical answers), then runs the ' +
    'properties of spec/properties.md: random histories of prefix-related requests, concurrent bursts, cancelled streams, JSON and streams ' +
    'interleaved, checking that identical requests get identical answers whatever ran before or beside them. A failure is shrunk to the ' +
    'fewest requests, replayed on a fresh target and written as a bug report (scenario.json, a curl script per request, REPORT.md).',
  flags: [
    ...targetFlagsHelp,
    {
      flag: '--properties',
      value: 'a,b',
      text: `the properties to run, comma-separated (default: all of ${selectProperties(undefined)
        .map((p) => p.name)
        .join(', ')})`,
    },
    { flag: '--runs', value: 'N', text: 'scenarios per property (default 25); with --time-budget, the most per property' },
    { flag: '--seed', value: 'S', text: 'seed of the random search, 0 to 2^31-1 (default: random; the summary prints it)' },
    {
      flag: '--time-budget',
      value: 'SECONDS',
      text: 'spend this long generating scenarios, shared among the properties (shrinking a failure finishes after it); a pass that ran fewer scenarios than asked says so',
    },
    { flag: '--max-tokens', value: 'N', text: 'max_tokens of generated requests, 1 to 4096 (default 8; cancelled streams ask for more)' },
    { flag: '--concurrency', value: 'K', text: 'the largest burst of concurrent requests, 1 to 64 (default 4)' },
    {
      flag: '--report',
      value: 'DIR',
      text: 'where bug reports go, a folder per failed property, and report.html, the whole check as one page to open in a browser (default: amnesia-report)',
    },
    { flag: '--junit', value: 'FILE', text: 'also write the results as JUnit XML' },
  ],
  exit: exitHelp('every property holds', 'a property failed, or was flaky (see its report)'),
};

export const checkUsage = usageLine(checkHelp);

/** This check again, same flags, same seed: the same scenarios in the same order. */
export function rerunCommand(argv: readonly string[], seed: number): string {
  const kept: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--seed') i++;
    else if (!argv[i]!.startsWith('--seed=')) kept.push(argv[i]!);
  }
  return ['npx amnesia check', ...kept.map(shellWord), '--seed', String(seed)].join(' ');
}

export async function checkCommand(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<CommandResult> {
  const { values, positionals } = parseArgs({ args: argv, options: checkFlags, allowPositionals: true });
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'; ${checkUsage}`);
  const options = targetOptions(values, env);
  const names = values.properties
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  try {
    selectProperties(names);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (names) options.properties = names;
  const runs = positiveInt('--runs', values.runs);
  if (values.seed !== undefined && (!/^\d+$/.test(values.seed) || Number(values.seed) >= 2 ** 31)) {
    throw new UsageError(`--seed must be an integer from 0 to ${2 ** 31 - 1}, got '${values.seed}'`);
  }
  const seed = values.seed === undefined ? undefined : Number(values.seed);
  const budget = positiveInt('--time-budget', values['time-budget'], 86_400);
  const maxTokens = positiveInt('--max-tokens', values['max-tokens'], 4096);
  const concurrency = positiveInt('--concurrency', values.concurrency, 64);
  if (runs !== undefined) options.runs = runs;
  if (seed !== undefined) options.seed = seed;
  if (budget !== undefined) options.timeBudgetSeconds = budget;
  if (maxTokens !== undefined) options.maxTokens = maxTokens;
  if (concurrency !== undefined) options.concurrency = concurrency;

  const progress = new ProgressLine(process.stderr);
  options.onProgress = (e) => progress.update(e);
  let report;
  try {
    report = await check(options);
  } catch (e) {
    if (e instanceof UnreachableError) return { text: `amnesia check: target unreachable: ${e.message}`, code: EXIT.unreachable };
    throw e;
  } finally {
    progress.done();
  }

  const rerun = rerunCommand(argv, report.seed);
  const lines = [summaryTable(report), `rerun: ${rerun}`];
  const reportDir = resolve(values.report);
  for (const result of report.results) {
    if (!result.failure) continue;
    const folder = writeFailureReport(reportDir, result, report.target, report.model);
    const replay = `npx amnesia replay ${shellWord(`${folder}/scenario.json`)}${values.target ? ` --target ${shellWord(values.target)}` : ''}`;
    lines.push(
      result.flaky
        ? `${result.property}: flaky, did not reproduce: report in ${folder} (the failing run and the passing replay; the scenario that failed once: ${replay})`
        : `${result.property}: bug report in ${folder} (replay: ${replay})`,
    );
  }
  // After the folders: the page links to them.
  lines.push(`report: ${writeHtmlReport(reportDir, report, { rerun, reportDirLinks: true })}`);
  if (values.junit !== undefined) {
    mkdirSync(dirname(resolve(values.junit)), { recursive: true });
    writeFileSync(values.junit, junitXml(report));
  }
  if (env.GITHUB_ACTIONS === 'true') {
    lines.push(...githubAnnotations(report));
    if (env.GITHUB_STEP_SUMMARY) appendFileSync(env.GITHUB_STEP_SUMMARY, githubStepSummary(report));
  }
  return { text: lines.join('\n'), code: report.ok ? EXIT.ok : EXIT.failed };
}
