// Tokenizer benchmark: our o200k encoder (src/harmony/bpe.ts, tiktoken's merges in O(n log n))
// against the anchor, gpt-tokenizer's `encode` (what encodeText used before; tiktoken's O(n²) merge
// loop), on text without spaces: a run of lowercase words, which the o200k pattern keeps as one piece,
// at 1K, 10K, 100K and 1M characters. English prose (10K) shows the ordinary case.
//
// gpt-tokenizer caches merged pieces (100K entries): on the runs its cache is cleared before each
// operation, so every operation encodes (ours caches only pieces under 32 bytes, never these runs).
// On prose both keep their caches, as a server would. tinybench takes at least 64 samples a task, so
// gpt-tokenizer's 100K (seconds an operation) and 1M (minutes) are not tasks: its 100K is timed once,
// outside tinybench, and shown under the table.
import { readFileSync } from 'node:fs';
import { clearMergeCache, encode as gptTokenizerEncode } from 'gpt-tokenizer/encoding/o200k_harmony';
import { encodeText } from '../src/harmony/tokens.ts';
import type { BenchTask, Row, Suite } from './suite.ts';

const SIZES = [
  ['1K', 1_000],
  ['10K', 10_000],
  ['100K', 100_000],
  ['1M', 1_000_000],
] as const;
/** Sizes gpt-tokenizer runs as tinybench tasks (64 samples of its 100K would take ~400 s). */
const GPT_TOKENIZER_SIZES = new Set(['1K', '10K']);
const ANCHOR = 'gpt-tokenizer, no spaces, 1K';

const WORDS = ['bounded', 'work', 'per', 'request', 'the', 'of', 'tokens', 'heap', 'merge', 'rank', 'piece', 'linear'];

/** `chars` characters of lowercase words without spaces (one pre-tokenizer piece). */
export function noSpaces(chars: number): string {
  let s = '';
  for (let i = 0; s.length < chars; i++) s += WORDS[(i * 7 + (i >> 3)) % WORDS.length];
  return s.slice(0, chars);
}

const gptTokenizer = (text: string): number[] => gptTokenizerEncode(text, { disallowedSpecial: new Set() });
/** gpt-tokenizer with its piece cache emptied first, so that the operation encodes. */
const gptTokenizerUncached = (text: string): number[] => {
  clearMergeCache();
  return gptTokenizer(text);
};

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`tokenizer bench: verification failed: ${what}`);
}

export function createSuite(log: (line: string) => void = console.log): Suite {
  const tasks: BenchTask[] = [];
  const prose = readFileSync(new URL('../ARCHITECTURE.md', import.meta.url), 'utf8')
    .repeat(3)
    .slice(0, 10_000);
  const proseTokens = encodeText(prose);
  check(JSON.stringify(proseTokens) === JSON.stringify(gptTokenizer(prose)), 'prose: ours ≠ gpt-tokenizer');
  let gpt100K = { seconds: 0, tokens: 0 };
  for (const [label, chars] of SIZES) {
    const text = noSpaces(chars);
    const tokens = encodeText(text);
    if (chars <= 100_000) {
      const started = performance.now();
      const theirs = gptTokenizerUncached(text);
      if (chars === 100_000) gpt100K = { seconds: (performance.now() - started) / 1000, tokens: theirs.length };
      check(JSON.stringify(tokens) === JSON.stringify(theirs), `${label}: ours ≠ gpt-tokenizer`);
    }
    log(`tokenizer: ${label} characters without spaces → ${tokens.length} tokens`);
    if (GPT_TOKENIZER_SIZES.has(label))
      tasks.push({ name: `gpt-tokenizer, no spaces, ${label}`, fn: () => gptTokenizerUncached(text), tokensPerOp: tokens.length });
    tasks.push({ name: `ours, no spaces, ${label}`, fn: () => encodeText(text), tokensPerOp: tokens.length });
  }
  tasks.push({ name: 'gpt-tokenizer, English prose, 10K', fn: () => gptTokenizer(prose), tokensPerOp: proseTokens.length });
  tasks.push({ name: 'ours, English prose, 10K', fn: () => encodeText(prose), tokensPerOp: proseTokens.length });

  const report = (rows: Row[]): string => {
    const ops = (name: string) => rows.find((r) => r.task === name)?.opsPerSec;
    const lines = ['| input | ours ÷ gpt-tokenizer (ops/s) |', '|---|---:|'];
    for (const [label] of SIZES) {
      const theirs = label === '100K' ? 1 / gpt100K.seconds : ops(`gpt-tokenizer, no spaces, ${label}`);
      const ours = ops(`ours, no spaces, ${label}`)!;
      const note = label === '100K' ? ' (gpt-tokenizer timed once)' : '';
      lines.push(
        `| no spaces, ${label} | ${theirs === undefined ? 'gpt-tokenizer not run: quadratic, ~100× its 100K time' : `${(ours / theirs).toFixed(1)}×${note}`} |`,
      );
    }
    lines.push(`| English prose, 10K | ${(ops('ours, English prose, 10K')! / ops('gpt-tokenizer, English prose, 10K')!).toFixed(2)}× |`);
    lines.push(
      '',
      `gpt-tokenizer, no spaces, 100K, timed once outside tinybench: ${gpt100K.seconds.toFixed(2)} s, ` +
        `${Math.round(gpt100K.tokens / gpt100K.seconds).toLocaleString('en-US')} tokens/s (same ids as ours).`,
    );
    return lines.join('\n');
  };
  return { name: 'tokenizer', anchor: ANCHOR, tasks, report };
}
