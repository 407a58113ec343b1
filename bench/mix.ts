// `npx tsx bench/mix.ts [N]` (default N = 200): the tool-call / final-answer mix of the tiny model
// under the harmony grammar. N random chat requests from the property arbitrary `chatRequest`
// (fc.sample, seed 1), keeping those that declare at least one tool; each rendered with
// renderChatPrompt and generated with grammar {tools, toolChoice: 'auto'}, temperature-1 sampling
// seeded with the request's index in the sample, maxTokens 256. Each completion is classified by
// completionToChat of its tokens: tool call (finish tool_calls), final answer (stop) or cut off
// (length). The same over the first 50 kept requests with toolChoice 'none' and 'required'.
// One runtime serves every request, up to 16 at once, and is never flushed: the answers must not
// depend on what ran before or beside them.
import fc from 'fast-check';
import { chatRequest } from '../src/harness/arbitraries/chat.ts';
import { loadCheckpoint } from '../src/engine/checkpoint.ts';
import { ensureTinyCheckpoint } from '../src/engine/make-tiny.ts';
import { loadNativeAddon } from '../src/engine/native-addon.ts';
import type { ToolChoice } from '../src/engine/runtime-api.ts';
import { Runtime } from '../src/engine/runtime.ts';
import type { FinishReason } from '../src/wire/chat-completions.ts';
import { renderChatPrompt } from '../src/harmony/chat-to-harmony.ts';
import { completionToChat } from '../src/harmony/harmony-to-chat.ts';

const MAX_TOKENS = 256;
const CONCURRENCY = 16;
const SUBSET = 50;

interface Case {
  /** Index in the fc.sample (the sampling seed). */
  index: number;
  prompt: number[];
  tools: string[];
}

interface Outcome {
  finish: FinishReason;
  tokens: number;
  /** The runtime's own finish reason disagreed with completionToChat's. */
  disagrees: boolean;
  /** A tool call named a function the request did not declare. */
  undeclared: boolean;
  /** What the last output delta was writing (where a cut-off completion stopped). */
  lastKind: 'reasoning' | 'content' | 'tool arguments' | 'nothing';
}

const arg = process.argv[2];
const n = arg === undefined ? 200 : Number(arg);
if (!Number.isInteger(n) || n < 1) throw new Error(`usage: npx tsx bench/mix.ts [N]  (N a positive integer, got '${arg}')`);

const cases: Case[] = fc
  .sample(chatRequest, { numRuns: n, seed: 1 })
  .map((request, index) => ({ request, index }))
  .filter(({ request }) => (request.tools?.length ?? 0) > 0)
  .map(({ request, index }) => ({ index, prompt: renderChatPrompt(request).tokens, tools: request.tools!.map((t) => t.function.name) }));

const spec = loadCheckpoint(await ensureTinyCheckpoint(1));
const model = new (loadNativeAddon().NativeModel)(spec);
const runtime = new Runtime(model, spec);

async function generate(c: Case, toolChoice: ToolChoice): Promise<Outcome> {
  const g = runtime.generate({
    prompt: c.prompt,
    maxTokens: MAX_TOKENS,
    sampling: { temperature: 1, seed: c.index },
    grammar: { tools: c.tools, toolChoice },
  });
  const tokens = (await g.tokens()).map((t) => t.token);
  const chat = completionToChat(tokens);
  const undeclared = (chat.message.tool_calls ?? []).some((call) => !c.tools.includes(call.function.name));
  const last = chat.deltas.at(-1);
  const lastKind = last === undefined ? 'nothing' : last.tool_calls ? 'tool arguments' : last.reasoning !== undefined ? 'reasoning' : 'content';
  return { finish: chat.finishReason, tokens: tokens.length, disagrees: g.finishReason !== chat.finishReason, undeclared, lastKind };
}

/** Every case under one tool choice, at most CONCURRENCY at a time, results in case order. */
async function runAll(list: readonly Case[], toolChoice: ToolChoice): Promise<Outcome[]> {
  const out: Outcome[] = new Array(list.length);
  let next = 0;
  const worker = async () => {
    while (next < list.length) {
      const i = next++;
      out[i] = await generate(list[i]!, toolChoice);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, list.length) }, worker));
  return out;
}

const pct = (part: number, whole: number) => `${whole === 0 ? '0.0' : ((100 * part) / whole).toFixed(1)}%`;
const mean = (xs: readonly number[]) => (xs.length === 0 ? '–' : (xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(1));

function table(toolChoice: ToolChoice, outcomes: readonly Outcome[]): string {
  const classes: Array<[string, FinishReason]> = [
    ['tool call (`tool_calls`)', 'tool_calls'],
    ['final answer (`stop`)', 'stop'],
    ['cut off (`length`)', 'length'],
  ];
  const lines = [
    `toolChoice '${String(toolChoice)}', ${outcomes.length} requests:`,
    '',
    '| outcome | count | % | mean completion tokens |',
    '|---|---:|---:|---:|',
    ...classes.map(([label, finish]) => {
      const of = outcomes.filter((o) => o.finish === finish);
      return `| ${label} | ${of.length} | ${pct(of.length, outcomes.length)} | ${mean(of.map((o) => o.tokens))} |`;
    }),
    `| all | ${outcomes.length} | 100.0% | ${mean(outcomes.map((o) => o.tokens))} |`,
  ];
  const cut = outcomes.filter((o) => o.finish === 'length');
  if (cut.length > 0) {
    const kinds = ['reasoning', 'content', 'tool arguments', 'nothing'] as const;
    const counts = kinds.map((k) => [k, cut.filter((o) => o.lastKind === k).length] as const).filter(([, c]) => c > 0);
    lines.push('', `Cut off while writing: ${counts.map(([k, c]) => `${k} ${c}`).join(', ')}.`);
  }
  const disagree = outcomes.filter((o) => o.disagrees).length;
  const undeclared = outcomes.filter((o) => o.undeclared).length;
  if (disagree > 0 || undeclared > 0) {
    lines.push('', `⚠ runtime finish reason ≠ completionToChat's in ${disagree}; calls to undeclared tools in ${undeclared}.`);
  }
  return lines.join('\n');
}

try {
  const started = Date.now();
  const auto = await runAll(cases, 'auto');
  const subset = cases.slice(0, SUBSET);
  const none = await runAll(subset, 'none');
  const required = await runAll(subset, 'required');
  const seconds = (Date.now() - started) / 1000;
  const lengths = cases.map((c) => c.prompt.length);

  console.log(`## Tool-call / final mix of the tiny model under the harmony grammar\n`);
  console.log(
    `${n} requests from \`fc.sample(chatRequest, {numRuns: ${n}, seed: 1})\`, ${cases.length} with ≥ 1 tool (prompts ${Math.min(...lengths)}–${Math.max(...lengths)} tokens, mean ${mean(lengths)}); ` +
      `temperature 1, seed = the request's index in the sample, maxTokens ${MAX_TOKENS}; one runtime, up to ${CONCURRENCY} requests at once, never flushed.\n`,
  );
  console.log(table('auto', auto));
  console.log(`\nThe first ${subset.length} of them:\n`);
  console.log(table('none', none));
  console.log('');
  console.log(table('required', required));
  console.log(`\n${auto.length + none.length + required.length} generations in ${seconds.toFixed(1)} s (node ${process.version}).`);
} finally {
  await runtime.close();
  model.close();
}
