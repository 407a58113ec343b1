// `npx tsx bench/tiny-chat.ts [MODEL_DIR]`: what the talking tiny model (issue 15) does on the
// held-out requests of its recipe (golden/tiny-chat/recipe.json; none of them is a training prompt),
// through the engine's runtime. Default model: `amnesia model make-tiny-chat`'s.
//
// Temperature 1 (seed = the request's index; no grammar, no top-k/top-p: the model alone):
//   well-formed   the completion is strict harmony — analysis messages, then one final message ending
//                 in <|return|> or one call to `functions.NAME` on commentary with <|constrain|>json
//                 ending in <|call|> — and parses with the strict parser
//   in-vocab      positions whose sampled token occurs in the training data (vocab.json)
//   calls valid   calls that name a tool the request declares, with JSON arguments its schema accepts
// Greedy (with the grammar a server applies when tool_choice needs enforcing: none, required):
//   args exact    of the requests that expect a call, those answered with that call, arguments equal
//   final result  of the requests that expect a final answer with a tool's result, those whose final
//                 answer contains it
// The targets are printed beside each number.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { DatasetLine } from '../src/chat-data/write.ts';
import { writeDataset } from '../src/chat-data/write.ts';
import { schemaErrors } from '../src/chat-data/schema-check.ts';
import { catalogueTool } from '../src/chat-data/tools.ts';
import { loadCheckpoint } from '../src/engine/checkpoint.ts';
import { ensureTinyChatCheckpoint } from '../src/engine/make-tiny-chat.ts';
import { loadNativeAddon } from '../src/engine/native-addon.ts';
import type { GrammarSpec, ToolChoice } from '../src/engine/runtime-api.ts';
import { Runtime } from '../src/engine/runtime.ts';
import type { Message } from '../src/harmony/conversation.ts';
import { parseMessagesFromCompletionTokens } from '../src/harmony/parser.ts';
import { Tok } from '../src/harmony/tokens.ts';

const MAX_TOKENS = 256;
const CONCURRENCY = 16;

const recipe = JSON.parse(readFileSync(new URL('../golden/tiny-chat/recipe.json', import.meta.url), 'utf8')) as {
  data: { seed: number; train: number; heldOut: number };
};

const dataDir = mkdtempSync(join(tmpdir(), 'amnesia-tiny-chat-bench-'));
let lines: DatasetLine[];
let vocab: Set<number>;
try {
  writeDataset(dataDir, recipe.data);
  lines = readFileSync(join(dataDir, 'held-out.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as DatasetLine);
  vocab = new Set(JSON.parse(readFileSync(join(dataDir, 'vocab.json'), 'utf8')) as number[]);
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}

const modelDir = process.argv[2] ?? (await ensureTinyChatCheckpoint());
const spec = loadCheckpoint(modelDir);
const model = new (loadNativeAddon().NativeModel)(spec);
const runtime = new Runtime(model, spec);

const text = (m: Message) => m.content.map((c) => ('text' in c ? c.text : '')).join('');

interface Parsed {
  /** Strict harmony in the shape the model is trained on. */
  wellFormed: boolean;
  call?: { name: string; arguments: string };
  final?: string;
}

function parse(tokens: readonly number[]): Parsed {
  const last = tokens.at(-1);
  if (last !== Tok.call && last !== Tok.return) return { wellFormed: false };
  let messages: Message[];
  try {
    messages = parseMessagesFromCompletionTokens(tokens, 'assistant', true);
  } catch {
    return { wellFormed: false };
  }
  const end = messages.at(-1);
  if (end === undefined) return { wellFormed: false };
  const before = messages
    .slice(0, -1)
    .every((m) => m.role === 'assistant' && m.channel === 'analysis' && m.recipient === undefined && !text(m).includes('\uFFFD'));
  if (last === Tok.return) {
    const ok = before && end.role === 'assistant' && end.channel === 'final' && end.recipient === undefined && !text(end).includes('\uFFFD');
    return { wellFormed: ok, final: text(end) };
  }
  const name = end.recipient?.startsWith('functions.') ? end.recipient.slice('functions.'.length) : undefined;
  const ok = before && end.channel === 'commentary' && end.content_type === '<|constrain|>json' && name !== undefined && name.length > 0;
  return { wellFormed: ok, ...(name !== undefined ? { call: { name, arguments: text(end) } } : {}) };
}

/** A call is valid when it names a declared tool and its arguments are JSON that the tool's schema accepts. */
function validCall(call: { name: string; arguments: string }, declared: readonly string[]): boolean {
  if (!declared.includes(call.name)) return false;
  let args: unknown;
  try {
    args = JSON.parse(call.arguments);
  } catch {
    return false;
  }
  return schemaErrors(catalogueTool(call.name).parameters, args).length === 0;
}

function grammarFor(line: DatasetLine): GrammarSpec | null {
  const choice = line.request?.tool_choice;
  const tools = line.tools ?? [];
  if (choice === 'none' || choice === 'required') return { tools, toolChoice: choice };
  if (typeof choice === 'object' && choice !== null) return { tools, toolChoice: { name: choice.function.name } as ToolChoice };
  return null;
}

/** The expected call with equal arguments, or a final answer containing every expected string. */
function rightAnswer(line: DatasetLine, got: Parsed): boolean {
  const expect = line.expect;
  if ('final' in expect) return got.final !== undefined && expect.final.contains.every((c) => got.final!.includes(c));
  if (got.call?.name !== expect.call.name) return false;
  try {
    return isDeepStrictEqual(JSON.parse(got.call.arguments), expect.call.arguments);
  } catch {
    return false;
  }
}

async function runAll<T>(f: (line: DatasetLine, index: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(lines.length);
  let next = 0;
  const worker = async () => {
    while (next < lines.length) {
      const i = next++;
      out[i] = await f(lines[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return out;
}

const pct = (part: number, whole: number) => `${part}/${whole} = ${whole === 0 ? '–' : ((100 * part) / whole).toFixed(1)}%`;

try {
  const started = Date.now();
  const sampled = await runAll(async (line, index) => {
    const tokens = (await runtime.generate({ prompt: line.prompt, maxTokens: MAX_TOKENS, sampling: { temperature: 1, seed: index } }).tokens()).map(
      (t) => t.token,
    );
    return { tokens, parsed: parse(tokens) };
  });
  const greedy = await runAll(async (line) => {
    const tokens = (
      await runtime.generate({ prompt: line.prompt, maxTokens: MAX_TOKENS, sampling: { temperature: 0 }, grammar: grammarFor(line) }).tokens()
    ).map((t) => t.token);
    return parse(tokens);
  });
  const seconds = (Date.now() - started) / 1000;

  const wellFormed = sampled.filter((s) => s.parsed.wellFormed).length;
  const positions = sampled.reduce((n, s) => n + s.tokens.length, 0);
  const inVocab = sampled.reduce((n, s) => n + s.tokens.filter((t) => vocab.has(t)).length, 0);
  const calls = sampled.flatMap((s, i) => (s.parsed.call !== undefined ? [{ call: s.parsed.call, declared: lines[i]!.tools ?? [] }] : []));
  const validCalls = calls.filter((c) => validCall(c.call, c.declared)).length;

  const right = lines.map((l, i) => rightAnswer(l, greedy[i]!));
  const wantCall = lines.flatMap((l, i) => ('call' in l.expect ? [i] : []));
  const wantResult = lines.flatMap((l, i) => ('final' in l.expect && l.expect.final.contains.length > 0 ? [i] : []));
  const exact = wantCall.filter((i) => right[i]).length;
  const withResult = wantResult.filter((i) => right[i]).length;
  const kinds = new Map<string, [number, number]>();
  lines.forEach((l, i) => {
    const k = kinds.get(l.kind) ?? [0, 0];
    kinds.set(l.kind, [k[0] + (right[i] ? 1 : 0), k[1] + 1]);
  });

  console.log(`## The talking tiny model on ${lines.length} held-out requests\n`);
  console.log(`model ${modelDir}; data seed ${recipe.data.seed}; max ${MAX_TOKENS} tokens; one runtime, ${CONCURRENCY} requests at once, never flushed.\n`);
  console.log('| measure | result | target |');
  console.log('|---|---:|---:|');
  console.log(`| temperature 1: completions strictly well-formed | ${pct(wellFormed, lines.length)} | ≥ 99% |`);
  console.log(`| temperature 1: positions sampling a token of the training data | ${pct(inVocab, positions)} | ≥ 99.9% |`);
  console.log(`| temperature 1: tool calls to a declared tool with schema-valid JSON | ${pct(validCalls, calls.length)} | ≥ 95% |`);
  console.log(`| greedy: expected calls made with exactly the question's arguments | ${pct(exact, wantCall.length)} | ≥ 90% |`);
  console.log(`| greedy: final answers containing the tool's result | ${pct(withResult, wantResult.length)} | ≥ 90% |`);
  console.log('\nGreedy, per kind (the expected call or a final answer with what it must contain):\n');
  console.log('| kind | right |');
  console.log('|---|---:|');
  for (const [k, [right, all]] of [...kinds].sort()) console.log(`| ${k} | ${pct(right, all)} |`);
  console.log(`\n${2 * lines.length} generations in ${seconds.toFixed(1)} s (node ${process.version}).`);
} finally {
  await runtime.close();
  model.close();
}
