// Writes a synthetic chat dataset for training (src/chat-data/): deterministic files from a seed.
//
//   train.jsonl     one example a line: {"kind","tools"?,"expect","prompt":[ids],"completion":[ids]}
//   held-out.jsonl  the same, plus "request" (the Chat Completions body, for a checker to send to a
//                   server); no held-out prompt equals a training prompt or another held-out prompt,
//                   and every id in it occurs in the training data
//   vocab.json      the sorted token ids the training data uses (prompts and completions): the
//                   "training data" of the "no token outside the training data" metric
//   summary.json    counts per kind, tokens, distinct argument values, the files' sizes and sha256
//
// Train on the completion only: the loss mask is 0 on `prompt`, 1 on `completion`.
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { ChatRequest } from '../wire/chat-completions.ts';
import { EXAMPLE_KINDS, exampleAt, type ChatExample, type ExampleKind, type Expectation } from './conversations.ts';
import { renderExample } from './render.ts';

export const DATASET_FORMAT = 'amnesia-chat-data/1';

export interface DatasetOptions {
  seed: number;
  /** Number of training examples. */
  train: number;
  /** Number of held-out examples. */
  heldOut: number;
  /** exo #1362's p1 and p2 once each per this many training examples (default 1000). */
  exoEvery?: number;
  /** Share of training examples whose system message has a `Current date:` (default 0.1; held-out: none). */
  currentDateRate?: number;
  /** Share of training examples made stale repeats (default 0; held-out: none, no request renders to one). */
  repeatRate?: number;
}

export interface DatasetLine {
  kind: ExampleKind;
  tools?: string[];
  expect: Expectation;
  /** Held-out only: the request, as a checker sends it. */
  request?: ChatRequest;
  prompt: number[];
  completion: number[];
}

export interface SplitSummary {
  examples: number;
  kinds: Record<ExampleKind, number>;
  /** Tool calls the completions make, per tool. */
  callsPerTool: Record<string, number>;
  promptTokens: number;
  completionTokens: number;
  longestSequence: number;
}

export interface DatasetSummary {
  format: string;
  seed: number;
  train: SplitSummary;
  heldOut: SplitSummary;
  /** Distinct token ids of the training data (vocab.json). */
  vocabSize: number;
  /** Distinct values of each argument (`tool.argument`, `tool.list[].field`) over the training calls. */
  distinctArgumentValues: Record<string, number>;
  /** Held-out calls whose arguments no training call has: these can only be right by copying. */
  heldOutNovelCalls: { calls: number; novel: number };
  /** Held-out candidates passed over, and why. */
  heldOutSkipped: { duplicatePrompt: number; tokenOutsideVocab: number };
  files: Record<string, { bytes: number; sha256: string }>;
}

function emptySplit(): SplitSummary {
  return {
    examples: 0,
    kinds: Object.fromEntries(EXAMPLE_KINDS.map((k) => [k, 0])) as Record<ExampleKind, number>,
    callsPerTool: {},
    promptTokens: 0,
    completionTokens: 0,
    longestSequence: 0,
  };
}

function count(split: SplitSummary, example: ChatExample, prompt: number[], completion: number[]): void {
  split.examples++;
  split.kinds[example.kind]++;
  if ('call' in example.target) split.callsPerTool[example.target.call.name] = (split.callsPerTool[example.target.call.name] ?? 0) + 1;
  split.promptTokens += prompt.length;
  split.completionTokens += completion.length;
  split.longestSequence = Math.max(split.longestSequence, prompt.length + completion.length);
}

/** A line-at-a-time file writer that hashes what it writes. */
class JsonlFile {
  private readonly fd: number;
  private readonly hash = createHash('sha256');
  private buffer: string[] = [];
  private buffered = 0;
  bytes = 0;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'w');
  }

  write(value: unknown): void {
    const line = `${JSON.stringify(value)}\n`;
    this.buffer.push(line);
    this.buffered += line.length;
    if (this.buffered > 1 << 20) this.flush();
  }

  private flush(): void {
    const data = Buffer.from(this.buffer.join(''), 'utf8');
    writeSync(this.fd, data);
    this.hash.update(data);
    this.bytes += data.length;
    this.buffer = [];
    this.buffered = 0;
  }

  close(): { bytes: number; sha256: string } {
    this.flush();
    closeSync(this.fd);
    return { bytes: this.bytes, sha256: this.hash.digest('hex') };
  }
}

/** One line; keys in a fixed order for readable lines: kind, tools, expect, request, prompt, completion. */
function lineFor(example: ChatExample, prompt: number[], completion: number[], withRequest: boolean): DatasetLine {
  const tools = example.request.tools?.map((t) => t.function.name) ?? [];
  return {
    kind: example.kind,
    ...(tools.length > 0 && { tools }),
    expect: example.expect,
    ...(withRequest && { request: example.request }),
    prompt,
    completion,
  };
}

const promptKey = (prompt: readonly number[]): string => createHash('sha256').update(prompt.join(',')).digest('base64');

/** `tool.path` → value, for every leaf of a call's arguments (array items as `[]`). */
function argumentLeaves(prefix: string, value: unknown, out: Array<[string, string]>): void {
  if (Array.isArray(value)) for (const item of value) argumentLeaves(`${prefix}[]`, item, out);
  else if (typeof value === 'object' && value !== null) for (const [k, v] of Object.entries(value)) argumentLeaves(`${prefix}.${k}`, v, out);
  else out.push([prefix, JSON.stringify(value)]);
}

const callKey = (expect: Expectation): string | undefined => ('call' in expect ? `${expect.call.name} ${JSON.stringify(expect.call.arguments)}` : undefined);

/** Writes train.jsonl, held-out.jsonl, vocab.json and summary.json into `dir`; returns the summary. */
export function writeDataset(dir: string, options: DatasetOptions): DatasetSummary {
  mkdirSync(dir, { recursive: true });
  const train = emptySplit();
  const heldOut = emptySplit();
  const vocab = new Set<number>();
  const trainPrompts = new Set<string>();
  const trainCalls = new Set<string>();
  const argumentValues = new Map<string, Set<string>>();

  const trainFile = new JsonlFile(join(dir, 'train.jsonl'));
  for (let i = 0; i < options.train; i++) {
    const example = exampleAt(i, {
      seed: options.seed,
      split: 'train',
      exoEvery: options.exoEvery ?? 1000,
      currentDateRate: options.currentDateRate ?? 0.1,
      repeatRate: options.repeatRate ?? 0,
    });
    const { prompt, completion } = renderExample(example);
    for (const id of prompt) vocab.add(id);
    for (const id of completion) vocab.add(id);
    trainPrompts.add(promptKey(prompt));
    const key = callKey(example.expect);
    if (key !== undefined && 'call' in example.expect) {
      trainCalls.add(key);
      const leaves: Array<[string, string]> = [];
      argumentLeaves(example.expect.call.name, example.expect.call.arguments, leaves);
      for (const [path, value] of leaves) {
        let values = argumentValues.get(path);
        if (values === undefined) argumentValues.set(path, (values = new Set()));
        values.add(value);
      }
    }
    count(train, example, prompt, completion);
    trainFile.write(lineFor(example, prompt, completion, false));
  }
  const trainStats = trainFile.close();

  const heldOutFile = new JsonlFile(join(dir, 'held-out.jsonl'));
  const skipped = { duplicatePrompt: 0, tokenOutsideVocab: 0 };
  const novel = { calls: 0, novel: 0 };
  const heldOutPrompts = new Set<string>();
  const maxCandidates = options.heldOut * 20 + 100;
  for (let i = 0; heldOut.examples < options.heldOut; i++) {
    if (i >= maxCandidates) throw new Error(`only ${heldOut.examples} of ${options.heldOut} held-out examples after ${i} candidates`);
    const example = exampleAt(i, { seed: options.seed, split: 'held-out', exoEvery: 0, currentDateRate: 0 });
    const { prompt, completion } = renderExample(example);
    const key = promptKey(prompt);
    if (trainPrompts.has(key) || heldOutPrompts.has(key)) {
      skipped.duplicatePrompt++;
      continue;
    }
    if (!prompt.every((id) => vocab.has(id)) || !completion.every((id) => vocab.has(id))) {
      skipped.tokenOutsideVocab++;
      continue;
    }
    heldOutPrompts.add(key);
    const call = callKey(example.expect);
    if (call !== undefined) {
      novel.calls++;
      if (!trainCalls.has(call)) novel.novel++;
    }
    count(heldOut, example, prompt, completion);
    heldOutFile.write(lineFor(example, prompt, completion, true));
  }
  const heldOutStats = heldOutFile.close();

  const vocabText = `${JSON.stringify([...vocab].sort((a, b) => a - b))}\n`;
  writeFileSync(join(dir, 'vocab.json'), vocabText);
  const summary: DatasetSummary = {
    format: DATASET_FORMAT,
    seed: options.seed,
    train,
    heldOut,
    vocabSize: vocab.size,
    distinctArgumentValues: Object.fromEntries([...argumentValues].sort(([a], [b]) => (a < b ? -1 : 1)).map(([path, values]) => [path, values.size])),
    heldOutNovelCalls: novel,
    heldOutSkipped: skipped,
    files: {
      'train.jsonl': trainStats,
      'held-out.jsonl': heldOutStats,
      'vocab.json': { bytes: Buffer.byteLength(vocabText), sha256: createHash('sha256').update(vocabText).digest('hex') },
    },
  };
  writeFileSync(join(dir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  return summary;
}
