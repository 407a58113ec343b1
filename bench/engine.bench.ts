// Engine benchmark: prefill and decode tokens/s on the tiny model and on a "20b-shaped" checkpoint
// (the real gpt-oss-20b dimensions, 2 layers, random weights, generated once into the cache folder),
// batched decode at 1, 4 and 16 sequences, and decode against the memory roofline measured in the same
// run: weight bytes read per decoded token ÷ read bandwidth. Decode is memory-bound, so that
// percentage is the number to watch (the best CPU engines reach about 50%).
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { loadCheckpoint } from '../src/engine/checkpoint.ts';
import { amnesiaCacheDir, ensureTinyCheckpoint, tinyConfigJson } from '../src/engine/make-tiny.ts';
import type { NativeEngine, NativeModel, NativeModelSpec } from '../src/engine/native-api.ts';
import { loadNativeAddon } from '../src/engine/native-addon.ts';
import { ensureCheckpoint } from '../src/engine/checkpoint-folder.ts';
import { writeRandomCheckpoint } from '../src/engine/random-checkpoint.ts';
import type { Row, Suite } from './suite.ts';

/** The real gpt-oss-20b dimensions (notes §1.1) with `layers` layers, in the tiny config's HF style. */
export function shaped20bConfigJson(layers: number): Record<string, unknown> {
  return {
    ...tinyConfigJson(),
    hidden_size: 2880,
    intermediate_size: 2880,
    num_attention_heads: 64,
    num_key_value_heads: 8,
    head_dim: 64,
    num_local_experts: 32,
    num_experts_per_tok: 4,
    experts_per_token: 4,
    sliding_window: 128,
    num_hidden_layers: layers,
    layer_types: Array.from({ length: layers }, (_, n) => (n % 2 === 0 ? 'sliding_attention' : 'full_attention')),
  };
}

/**
 * Weight bytes one decoded token reads: every non-expert tensor whole, except one embedding row; of
 * the experts, the k of E that the router picks. KV reads are left out (at the short contexts
 * benchmarked here they are under 0.1% of the weights).
 */
export function decodeBytesPerToken(spec: NativeModelSpec): number {
  const { expertsPerToken: k, numExperts: e, hiddenSize } = spec.config;
  let bytes = 0;
  for (const t of spec.tensors) {
    if (t.name === 'model.embed_tokens.weight') bytes += hiddenSize * (t.byteLength / t.shape.reduce((a, b) => a * b, 1));
    else if (t.name.includes('.mlp.experts.')) bytes += (t.byteLength * k) / e;
    else bytes += t.byteLength;
  }
  return bytes;
}

/** Deterministic token ids (ordinary text tokens), so every run feeds the same prompt. */
function prompt(length: number): Int32Array {
  return Int32Array.from({ length }, (_, i) => (i * 7919 + 13) % 199_000);
}

interface Loaded {
  model: NativeModel;
  engine: NativeEngine;
  spec: NativeModelSpec;
}

function load(dir: string, kvBlocks: number): Loaded {
  const spec = loadCheckpoint(dir);
  const model = new (loadNativeAddon().NativeModel)(spec);
  return { model, spec, engine: model.createEngine({ kvBlocks, kvBlockSize: 16 }) };
}

/** One prefill of `length` tokens on a fresh sequence (freed afterwards). */
function prefillTask(e: NativeEngine, length: number): () => Promise<void> {
  const tokens = prompt(length);
  return async () => {
    const seq = e.createSequence();
    try {
      await e.step([{ seq, tokens }]);
    } finally {
      e.freeSequence(seq);
    }
  };
}

/**
 * One decode step for each of `batch` sequences, each holding a `context`-token prompt. Sequences
 * are truncated back to the prompt every 64 tokens so the context stays between `context` and
 * `context + 64` however long tinybench runs.
 */
async function decodeTask(e: NativeEngine, batch: number, context: number): Promise<() => Promise<void>> {
  const seqs = Array.from({ length: batch }, () => e.createSequence());
  await e.step(seqs.map((seq) => ({ seq, tokens: prompt(context) })));
  let next = seqs.map(() => 1000);
  return async () => {
    if (e.sequenceLength(seqs[0]!) >= context + 64) for (const s of seqs) e.truncateSequence(s, context);
    const out = await e.step(seqs.map((seq, i) => ({ seq, tokens: Int32Array.of(next[i]!) })));
    next = out.map((r) => r.next);
  };
}

const BIG_LAYERS = 2;

export async function createSuite(log: (line: string) => void = console.log): Promise<Suite> {
  const addon = loadNativeAddon();
  const threads = availableParallelism(); // the engine's default thread count
  const bandwidth = addon.memoryBandwidth(1 << 30, threads, 5);
  log(`engine: kernels ${addon.simd()}, ${threads} threads; read bandwidth ${(bandwidth.bytesPerSecond / 1e9).toFixed(1)} GB/s (1 GiB, best of 5)`);

  const bigDir = join(amnesiaCacheDir(), 'models', `gpt-oss-20b-shaped-${BIG_LAYERS}layers-v2`);
  const started = Date.now();
  await ensureCheckpoint(bigDir, (dir) => writeRandomCheckpoint(dir, shaped20bConfigJson(BIG_LAYERS), { seed: 1 }));
  if (Date.now() - started > 1000) log(`engine: generated the 20b-shaped checkpoint in ${((Date.now() - started) / 1000).toFixed(0)} s (${bigDir})`);

  const tiny = load(await ensureTinyCheckpoint(1), 512);
  const big = load(bigDir, 512);
  const bytes = { tiny: decodeBytesPerToken(tiny.spec), big: decodeBytesPerToken(big.spec) };
  log(`engine: weight bytes per decoded token — tiny ${(bytes.tiny / 1e6).toFixed(1)} MB, 20b-shaped ${(bytes.big / 1e9).toFixed(3)} GB`);

  const tasks = [
    { name: 'tiny: prefill 128', fn: prefillTask(tiny.engine, 128), tokensPerOp: 128 },
    { name: 'tiny: decode', fn: await decodeTask(tiny.engine, 1, 128), tokensPerOp: 1 },
    { name: '20b-shaped: prefill 64', fn: prefillTask(big.engine, 64), tokensPerOp: 64 },
    { name: '20b-shaped: decode ×1', fn: await decodeTask(big.engine, 1, 64), tokensPerOp: 1 },
    { name: '20b-shaped: decode ×4', fn: await decodeTask(big.engine, 4, 64), tokensPerOp: 4 },
    { name: '20b-shaped: decode ×16', fn: await decodeTask(big.engine, 16, 64), tokensPerOp: 16 },
  ];

  const report = (rows: Row[]): string => {
    const roofline = (task: string, perToken: number) => {
      const row = rows.find((r) => r.task === task)!;
      const achieved = row.opsPerSec * perToken;
      const ceiling = bandwidth.bytesPerSecond / perToken;
      return `| ${task} | ${(perToken / 1e6).toFixed(1)} MB | ${row.opsPerSec.toFixed(1)} | ${ceiling.toFixed(1)} | ${(achieved / 1e9).toFixed(1)} GB/s | **${((100 * achieved) / bandwidth.bytesPerSecond).toFixed(0)}%** |`;
    };
    return [
      `Roofline (single-sequence decode; read bandwidth ${(bandwidth.bytesPerSecond / 1e9).toFixed(1)} GB/s measured in this run):`,
      '',
      '| decode | weight bytes/token | tokens/s | roofline tokens/s | bytes/s achieved | % of roofline |',
      '|---|---:|---:|---:|---:|---:|',
      roofline('tiny: decode', bytes.tiny),
      roofline('20b-shaped: decode ×1', bytes.big),
    ].join('\n');
  };

  return {
    name: 'engine',
    anchor: '20b-shaped: decode ×1',
    tasks,
    report,
    close() {
      for (const m of [tiny, big]) {
        m.engine.close();
        m.model.close();
      }
    },
  };
}
