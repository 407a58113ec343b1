// llama.cpp runs the GGUF that `amnesia model export-gguf` writes as the model the engine runs
// (node-llama-cpp's prebuilt CPU build of llama.cpp; nothing is downloaded or built). Over exo #1362's
// prompt and 16 greedy tokens (llama.cpp's own greedy, compared with the engine's):
//
// - Layout, exactly: the same export with every tensor widened to F32 (bf16 as is, MXFP4 decoded the
//   ggml way) and an F32 KV cache gives the engine's tokens and logits to fp32 rounding, with plain
//   RoPE (measured: max |Δ| 4.8e-6 over 16 × 201088 logits). Every name, shape, split, bias, norm and
//   hyperparameter takes part; the MXFP4 repacking itself is checked value by value in
//   src/engine/export-gguf.test.ts.
// - YaRN: llama.cpp rounds the correction range to whole dimensions (ggml_rope_yarn_corr_dims: floor
//   and ceil) where gpt-oss blends with the exact bounds, so with the checkpoint's own YaRN the F32
//   logits differ by up to 0.9 (measured), against ~10 if the YaRN keys were not read at all.
// - The file as written (bf16 weights, MXFP4 experts): llama.cpp's CPU matmuls round the
//   activations (to bf16, and to 8-bit blocks for MXFP4) and its KV cache is f16: with plain RoPE the
//   tokens are the engine's and the logits within 0.13 (measured). With YaRN on top, greedy decoding
//   parts from the engine's at the 6th token, where the engine's top two logits are 0.02 apart.
// - llama.cpp's tokenizer reads the prompt's harmony text as the engine's does.
//
// The talking tiny model's file, exactly as written and with its YaRN, gives the engine's greedy tokens
// (its margins are wide where the random model's are near-ties).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getLlama, LlamaLogLevel, type ControlledEvaluateInputItem, type Llama, type Token } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { encodeHarmonyText, encodeText } from '../src/harmony/tokens.ts';
import { CONFIG_FILE, loadCheckpoint } from '../src/engine/checkpoint.ts';
import { exportGguf, ggufModelMetadata, ggufTensors, ggufTokenizerMetadata } from '../src/engine/export-gguf.ts';
import { writeGguf, type GgufTensor } from '../src/engine/gguf.ts';
import { ensureTinyCheckpoint } from '../src/engine/make-tiny.ts';
import { ensureTinyChatCheckpoint, TINY_CHAT_DELTA } from '../src/engine/make-tiny-chat.ts';
import { loadNativeAddon } from '../src/engine/native-addon.ts';

const PROMPT_DIR = new URL('../golden/chat/exo-1362-p1/', import.meta.url);
const PROMPT = JSON.parse(readFileSync(new URL('prompt.tokens.json', PROMPT_DIR), 'utf8')) as number[];
const PROMPT_TEXT = readFileSync(new URL('prompt.txt', PROMPT_DIR), 'utf8');
const STEPS = 16;
/** A safety net, not a measurement: a run takes ~15 s on the 2-core machine. */
const SLOW = 300_000;

const scratch = mkdtempSync(join(tmpdir(), 'amnesia-gguf-llama-cpp-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface Run {
  tokens: number[];
  /** The logits each token was chosen from. */
  logits: Float32Array[];
}

/** Greedy, lowest id on ties (the engine's rule). */
function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

async function engineRun(dir: string): Promise<Run> {
  const model = new (loadNativeAddon().NativeModel)(loadCheckpoint(dir));
  const engine = model.createEngine({ kvBlocks: 32, kvBlockSize: 16 });
  try {
    const seq = engine.createSequence();
    const run: Run = { tokens: [], logits: [] };
    let input = Int32Array.from(PROMPT);
    for (let s = 0; s < STEPS; s++) {
      const logits = new Float32Array(model.config.vocabSize);
      const [r] = await engine.step([{ seq, tokens: input, logits: 'last', logitsOut: logits }]);
      run.tokens.push(r!.next);
      run.logits.push(logits);
      input = Int32Array.of(r!.next);
    }
    return run;
  } finally {
    engine.close();
    model.close();
  }
}

/** llama.cpp's greedy continuation of PROMPT, or with `forced` its logits along those tokens instead. */
async function llamaRun(llama: Llama, file: string, vocab: number, options: { f32Cache?: boolean; forced?: number[] } = {}): Promise<Run> {
  const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
  const cache = options.f32Cache ? ({ experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32', flashAttention: false } as const) : {};
  const context = await model.createContext({ contextSize: 512, batchSize: 512, sequences: 1, threads: 2, ...cache });
  try {
    const sequence = context.getSequence();
    const run: Run = { tokens: [], logits: [] };
    let input = [...PROMPT];
    for (let s = 0; s < STEPS; s++) {
      const last = input.length - 1;
      const items = input.map((t, i): ControlledEvaluateInputItem => (i < last ? (t as Token) : [t as Token, { generateNext: { logits: true } }]));
      const out = await sequence.controlledEvaluate(items);
      const map = out[last]?.next.logits;
      if (map === undefined) throw new Error('llama.cpp returned no logits');
      const logits = new Float32Array(vocab);
      for (const [token, value] of map) logits[token] = value;
      run.tokens.push(argmax(logits));
      run.logits.push(logits);
      input = [options.forced?.[s] ?? argmax(logits)];
    }
    return run;
  } finally {
    await context.dispose();
    await model.dispose();
  }
}

/** max over every step and token of |engine − llama| − rtol·|engine| (rtol 0: the plain max |Δ|). */
function excess(engine: Run, llama: Run, rtol = 0): number {
  let worst = 0;
  engine.logits.forEach((e, s) => {
    const l = llama.logits[s]!;
    for (let i = 0; i < e.length; i++) worst = Math.max(worst, Math.abs(e[i]! - l[i]!) - rtol * Math.abs(e[i]!));
  });
  return worst;
}

/** The same weights as `dir` (linked, not copied), with plain RoPE: config.json without rope_scaling. */
function withoutYarn(dir: string, name: string): string {
  const out = join(scratch, name);
  mkdirSync(out);
  const config = JSON.parse(readFileSync(join(dir, CONFIG_FILE), 'utf8')) as Record<string, unknown>;
  delete config.rope_scaling;
  writeFileSync(join(out, CONFIG_FILE), JSON.stringify(config));
  for (const f of ['model.safetensors', 'model.safetensors.index.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']) {
    if (existsSync(join(dir, f))) symlinkSync(join(dir, f), join(out, f));
  }
  return out;
}

const E2M1_DOUBLED = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/** A tensor of the export, widened to F32: bf16 shifted into f32, MXFP4 decoded as ggml's dequantize_row_mxfp4 does. */
function widened(t: GgufTensor): GgufTensor {
  if (t.type === 'F32' || t.type === 'F16') return t;
  const mxfp4 = t.type === 'MXFP4';
  return {
    ...t,
    type: 'F32',
    data: function* () {
      for (const chunk of t.data()) {
        const b = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        if (!mxfp4) {
          const out = Buffer.alloc(b.length * 2);
          for (let i = 0; i < b.length / 2; i++) out.writeUInt32LE((b.readUInt16LE(2 * i) << 16) >>> 0, 4 * i);
          yield out;
          continue;
        }
        const out = Buffer.alloc((b.length / 17) * 32 * 4);
        for (let k = 0; k < b.length / 17; k++) {
          const d = 2 ** (b[17 * k]! - 128);
          for (let j = 0; j < 16; j++) {
            const q = b[17 * k + 1 + j]!;
            out.writeFloatLE(E2M1_DOUBLED[q & 15]! * d, 4 * (32 * k + j));
            out.writeFloatLE(E2M1_DOUBLED[q >> 4]! * d, 4 * (32 * k + j + 16));
          }
        }
        yield out;
      }
    },
  };
}

/** exportGguf's file for `dir`, with every tensor in F32. */
function exportF32(dir: string, out: string): void {
  const spec = loadCheckpoint(dir);
  const raw = JSON.parse(readFileSync(join(dir, CONFIG_FILE), 'utf8')) as Record<string, unknown>;
  writeGguf(out, [...ggufModelMetadata(spec.config, raw), ...ggufTokenizerMetadata()], ggufTensors(spec).map(widened));
}

let llama: Llama;
beforeAll(async () => {
  llama = await getLlama({ gpu: false, build: 'never', usePrebuiltBinaries: true, progressLogs: false, logLevel: LlamaLogLevel.error });
});
afterAll(async () => {
  await llama?.dispose();
});

/** [what, its folder, random: whether its near-ties call for the plain-RoPE comparison instead of the served file's tokens] */
const checkpoints: [string, () => Promise<string>, boolean][] = [['the tiny random checkpoint', () => ensureTinyCheckpoint(1), true]];
if (existsSync(TINY_CHAT_DELTA)) checkpoints.push(['the talking tiny model', () => ensureTinyChatCheckpoint(), false]);

describe.each(checkpoints)('llama.cpp runs the GGUF export of %s', (name, ensureDir, random) => {
  const tag = name.replace(/\W+/g, '-');
  let dir: string;
  let plain: string;
  beforeAll(async () => {
    dir = await ensureDir();
    plain = withoutYarn(dir, `${tag}-plain-rope`);
  }, SLOW);

  test('every tensor in F32, plain RoPE: the engine’s 16 greedy tokens, logits within fp32 rounding', { timeout: SLOW }, async () => {
    const file = join(scratch, `${tag}-plain-f32.gguf`);
    exportF32(plain, file);
    const engine = await engineRun(plain);
    const ours = await llamaRun(llama, file, engine.logits[0]!.length, { f32Cache: true });
    expect(ours.tokens).toEqual(engine.tokens);
    // The golden logits' tolerance (golden/engine-logits.test.ts): fp32 sums in another order.
    expect(excess(engine, ours, 1e-5)).toBeLessThanOrEqual(1e-4);
  });

  test('the file as written loads, and its tokenizer reads the prompt’s harmony text as the engine’s does', { timeout: SLOW }, async () => {
    const file = join(scratch, `${tag}.gguf`);
    exportGguf(dir, file);
    const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
    try {
      expect(model.tokenize(PROMPT_TEXT, true)).toEqual(PROMPT);
      expect(encodeHarmonyText(PROMPT_TEXT)).toEqual(PROMPT);
      for (const text of ["Hello, world! I've been 'told he's there.", '数字 12345 678901 3.14159', 'emoji 🚀😶‍🌫️ ✅ 🦙🦙', '  tabs\t\tand\r\nnewlines\n\n']) {
        expect(model.tokenize(text, false), text).toEqual(encodeText(text));
        expect(model.detokenize(model.tokenize(text, false))).toBe(text);
      }
    } finally {
      await model.dispose();
    }
  });

  test('every tensor in F32, YaRN: logits within llama.cpp’s rounding of the YaRN range', { timeout: SLOW }, async () => {
    const file = join(scratch, `${tag}-yarn-f32.gguf`);
    exportF32(dir, file);
    const engine = await engineRun(dir);
    const ours = await llamaRun(llama, file, engine.logits[0]!.length, { f32Cache: true, forced: engine.tokens });
    expect(excess(engine, ours)).toBeLessThan(1.5);
  });

  if (random) {
    // The random model's greedy path has near-ties (0.02 apart at the 6th token), which llama.cpp's
    // YaRN and activation rounding can tip: compare the file as written with plain RoPE.
    test('the file as written, plain RoPE: the engine’s 16 greedy tokens, logits within activation rounding', { timeout: SLOW }, async () => {
      const file = join(scratch, `${tag}-plain.gguf`);
      exportGguf(plain, file);
      const engine = await engineRun(plain);
      const ours = await llamaRun(llama, file, engine.logits[0]!.length);
      expect(ours.tokens).toEqual(engine.tokens);
      expect(excess(engine, ours)).toBeLessThan(0.5);
    });
  } else {
    // The talking model's greedy path has clear margins (0.19 at the closest): the file exactly as a
    // user would run it gives the engine's tokens (measured: the whole analysis sentence, logits within 1.35).
    test('the file as written (YaRN, bf16, MXFP4): the engine’s 16 greedy tokens', { timeout: SLOW }, async () => {
      const file = join(scratch, `${tag}-as-written.gguf`);
      exportGguf(dir, file);
      const engine = await engineRun(dir);
      const ours = await llamaRun(llama, file, engine.logits[0]!.length);
      expect(ours.tokens).toEqual(engine.tokens);
      expect(excess(engine, ours)).toBeLessThan(2.5);
    });
  }
});
