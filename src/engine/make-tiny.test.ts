import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { loadCheckpoint, readModelConfig, readTensorBytes } from './checkpoint.ts';
import { ensureTinyCheckpoint, HARMONY_BOOST, makeTinyCheckpoint, tinyModelDir, TINY_VERSION } from './make-tiny.ts';
import { END_PULL, MESSAGE_ENDS, RESIDUAL_ANCHOR } from './random-checkpoint.ts';
import type { NativeModelSpec } from './native-api.ts';

/**
 * sha256 of the seed-1 model.safetensors. If this changes on purpose, bump TINY_VERSION (cached
 * copies are named after it) and update the hash; if it changes by accident, generation is no
 * longer deterministic across machines or runs.
 */
const SEED1_SHA256 = '9f6d1fee9d414ea15c7dada0ec25a3d9dafc6dd31ea7c0a73d317ccde3c07b1c';

const scratch = mkdtempSync(join(tmpdir(), 'amnesia-make-tiny-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const makeTinyModule = fileURLToPath(new URL('./make-tiny.ts', import.meta.url));

/** A tensor's elements as numbers (bf16 widened to float32, or the raw bytes for U8). */
function tensorValues(spec: NativeModelSpec, name: string): Float32Array | Uint8Array {
  const bytes = readTensorBytes(spec, name);
  if (spec.tensors.find((x) => x.name === name)!.dtype === 'U8') return new Uint8Array(bytes);
  const out = new Uint32Array(bytes.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readUInt16LE(2 * i) << 16;
  return new Float32Array(out.buffer);
}

function stats(v: ArrayLike<number>, from = 0, to = v.length) {
  let s = 0;
  let s2 = 0;
  for (let i = from; i < to; i++) {
    s += v[i]!;
    s2 += v[i]! * v[i]!;
  }
  const n = to - from;
  return { mean: s / n, rms: Math.sqrt(s2 / n), std: Math.sqrt(s2 / n - (s / n) ** 2) };
}

describe('makeTinyCheckpoint', () => {
  const dirA = join(scratch, 'a');
  const spec = () => loadCheckpoint(dirA);

  test('is deterministic: same bytes twice and the pinned hash; another seed differs', () => {
    makeTinyCheckpoint(dirA);
    makeTinyCheckpoint(join(scratch, 'b'), { seed: 1 });
    makeTinyCheckpoint(join(scratch, 'c'), { seed: 2 });
    const a = sha256(join(dirA, 'model.safetensors'));
    expect(sha256(join(scratch, 'b', 'model.safetensors'))).toBe(a);
    expect(a).toBe(SEED1_SHA256);
    expect(sha256(join(scratch, 'c', 'model.safetensors'))).not.toBe(a);
    expect(readFileSync(join(scratch, 'c', 'config.json'), 'utf8')).toBe(readFileSync(join(dirA, 'config.json'), 'utf8'));
    // The Hugging Face tokenizer files (src/harmony/hf-tokenizer.ts), the same whatever the seed.
    expect(readdirSync(dirA).sort()).toEqual([
      'config.json',
      'generation_config.json',
      'model.safetensors',
      'special_tokens_map.json',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    expect(sha256(join(scratch, 'c', 'tokenizer.json'))).toBe(sha256(join(dirA, 'tokenizer.json')));
  });

  test('config.json writes the float fields as floats, as the published config does (transformers 5 refuses swiglu_limit: 7)', () => {
    const text = readFileSync(join(dirA, 'config.json'), 'utf8');
    for (const line of [
      '"swiglu_limit": 7.0',
      '"attention_dropout": 0.0',
      '"factor": 32.0',
      '"beta_fast": 32.0',
      '"beta_slow": 1.0',
      '"router_aux_loss_coef": 0.9',
    ])
      expect(text).toContain(line);
    expect(text).toContain('"rope_theta": 150000,');
    expect(text).toContain('"original_max_position_embeddings": 4096,');
  });

  test('config.json has the real HF keys and the layout-bug-exposing dimensions', () => {
    const json = JSON.parse(readFileSync(join(dirA, 'config.json'), 'utf8'));
    expect(json).toMatchObject({
      model_type: 'gpt_oss',
      architectures: ['GptOssForCausalLM'],
      vocab_size: 201088,
      hidden_size: 64,
      intermediate_size: 96,
      num_attention_heads: 8,
      head_dim: 16,
      num_key_value_heads: 2,
      num_hidden_layers: 4,
      layer_types: ['sliding_attention', 'full_attention', 'sliding_attention', 'full_attention'],
      sliding_window: 8,
      num_local_experts: 8,
      num_experts_per_tok: 2,
      experts_per_token: 2,
      rope_theta: 150000,
      rope_scaling: { rope_type: 'yarn', factor: 32, beta_fast: 32, beta_slow: 1, original_max_position_embeddings: 4096, truncate: false },
      max_position_embeddings: 131072,
      eos_token_id: 200002,
      pad_token_id: 199999,
      swiglu_limit: 7,
      tie_word_embeddings: false,
      quantization_config: { quant_method: 'mxfp4' },
    });
    expect(readModelConfig(dirA).ropeScalingFactor).toBe(32);
    expect(JSON.parse(readFileSync(join(dirA, 'generation_config.json'), 'utf8')).eos_token_id).toEqual([200002, 199999, 200012]);
  });

  test('weights have the intended scales; harmony rows of lm_head are boosted', () => {
    const s = spec();
    const H = 64;
    const embedding = tensorValues(s, 'model.embed_tokens.weight');
    // Dimension 0 of every embedding is the residual anchor; the rest is N(0, 1).
    expect(embedding.filter((_, i) => i % H === 0).every((v) => v === RESIDUAL_ANCHOR)).toBe(true);
    const emb = stats(embedding.filter((_, i) => i % H !== 0));
    expect(Math.abs(emb.mean)).toBeLessThan(0.01);
    expect(emb.std).toBeGreaterThan(0.95);
    expect(emb.std).toBeLessThan(1.05);
    const q = stats(tensorValues(s, 'model.layers.0.self_attn.q_proj.weight'));
    expect(q.std).toBeCloseTo(1 / 8, 1); // 1/sqrt(fan_in 64)
    const norm = stats(tensorValues(s, 'model.layers.1.input_layernorm.weight'));
    expect(norm.mean).toBeGreaterThan(0.9);
    expect(norm.mean).toBeLessThan(1.1);
    const sinks = stats(tensorValues(s, 'model.layers.2.self_attn.sinks'));
    expect(sinks.rms).toBeGreaterThan(0.3);

    const lm = tensorValues(s, 'lm_head.weight');
    const plain = stats(lm, 0, 200000 * H).rms;
    expect(plain).toBeCloseTo(1 / 8, 2);
    for (const [tok, boost] of Object.entries(HARMONY_BOOST)) {
      // Element 0 of a message terminator's row reads the anchor (END_PULL); the rest is boosted.
      const end = MESSAGE_ENDS.includes(Number(tok));
      if (end) expect(lm[Number(tok) * H]).toBe(END_PULL);
      const row = stats(lm, Number(tok) * H + (end ? 1 : 0), (Number(tok) + 1) * H).rms;
      expect(row / plain, `token ${tok}`).toBeGreaterThan(boost * 0.6);
      expect(row / plain, `token ${tok}`).toBeLessThan(boost * 1.5);
    }

    const codes = new Set<number>();
    for (const b of tensorValues(s, 'model.layers.0.mlp.experts.down_proj_blocks')) codes.add(b & 15).add(b >> 4);
    expect(codes.size).toBe(16);
    const up = new Set(tensorValues(s, 'model.layers.0.mlp.experts.gate_up_proj_scales'));
    expect([...up].sort()).toEqual([120, 121, 122, 123, 124]);
    const down = new Set(tensorValues(s, 'model.layers.3.mlp.experts.down_proj_scales'));
    expect([...down].sort()).toEqual([118, 119, 120, 121, 122]);
  });

  test('two shards plus an index, with the same tensor bytes', () => {
    const dir = join(scratch, 'sharded');
    makeTinyCheckpoint(dir, { shards: 2 });
    expect(readdirSync(dir).sort()).toEqual([
      'config.json',
      'generation_config.json',
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
      'model.safetensors.index.json',
      'special_tokens_map.json',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8'));
    const a = spec();
    expect(Object.keys(index.weight_map).sort()).toEqual(a.tensors.map((t) => t.name).sort());
    expect(index.metadata.total_size).toBe(a.tensors.reduce((n, t) => n + t.byteLength, 0));
    const b = loadCheckpoint(dir);
    for (const name of ['model.embed_tokens.weight', 'model.layers.2.self_attn.sinks', 'model.layers.2.mlp.experts.down_proj_blocks', 'lm_head.weight']) {
      expect(readTensorBytes(b, name).equals(readTensorBytes(a, name)), name).toBe(true);
    }
  });

  test('refuses bad options', () => {
    expect(() => makeTinyCheckpoint(join(scratch, 'x'), { seed: -1 })).toThrow(/seed must be an integer/);
    expect(() => makeTinyCheckpoint(join(scratch, 'x'), { shards: 3 as 2 })).toThrow(/shards must be 1 or 2/);
  });
});

describe('tinyModelDir and ensureTinyCheckpoint', () => {
  test('cache directory: AMNESIA_CACHE_DIR, else XDG_CACHE_HOME/amnesia, else ~/.cache/amnesia', () => {
    const saved = { a: process.env.AMNESIA_CACHE_DIR, x: process.env.XDG_CACHE_HOME };
    try {
      process.env.AMNESIA_CACHE_DIR = '/c/own';
      process.env.XDG_CACHE_HOME = '/c/xdg';
      expect(tinyModelDir()).toBe(`/c/own/models/tiny-${TINY_VERSION}-seed1`);
      expect(tinyModelDir(7, 2)).toBe(`/c/own/models/tiny-${TINY_VERSION}-seed7-shards2`);
      delete process.env.AMNESIA_CACHE_DIR;
      expect(tinyModelDir(3)).toBe(`/c/xdg/amnesia/models/tiny-${TINY_VERSION}-seed3`);
      delete process.env.XDG_CACHE_HOME;
      expect(tinyModelDir()).toBe(join(homedir(), '.cache', 'amnesia', 'models', `tiny-${TINY_VERSION}-seed1`));
    } finally {
      for (const [k, v] of [
        ['AMNESIA_CACHE_DIR', saved.a],
        ['XDG_CACHE_HOME', saved.x],
      ] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  test('processes racing to create it all get the same complete directory, no temp dirs left', async () => {
    const cache = join(scratch, 'race-cache');
    const script = `import { ensureTinyCheckpoint } from ${JSON.stringify(makeTinyModule)}; console.log(await ensureTinyCheckpoint(1));`;
    const run = () =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
          env: { ...process.env, AMNESIA_CACHE_DIR: cache },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        let err = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (err += d));
        child.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`exit ${code}: ${err}`))));
      });
    const dirs = await Promise.all([run(), run(), run()]);
    const want = join(cache, 'models', `tiny-${TINY_VERSION}-seed1`);
    expect(dirs).toEqual([want, want, want]);
    expect(readdirSync(join(cache, 'models'))).toEqual([`tiny-${TINY_VERSION}-seed1`]);
    expect(sha256(join(want, 'model.safetensors'))).toBe(SEED1_SHA256);
    // A later call finds it and does not regenerate.
    writeFileSync(join(want, 'marker'), '');
    const saved = process.env.AMNESIA_CACHE_DIR;
    process.env.AMNESIA_CACHE_DIR = cache;
    try {
      expect(await ensureTinyCheckpoint(1)).toBe(want);
    } finally {
      if (saved === undefined) delete process.env.AMNESIA_CACHE_DIR;
      else process.env.AMNESIA_CACHE_DIR = saved;
    }
    expect(existsSync(join(want, 'marker'))).toBe(true);
  });
});
