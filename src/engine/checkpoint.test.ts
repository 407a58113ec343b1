import { createHash } from 'node:crypto';
import {
  closeSync,
  cpSync,
  ftruncateSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CheckpointError, expectedTensors, loadCheckpoint, parseModelConfig, readModelConfig, readTensorBytes, yarnBounds } from './checkpoint.ts';
import { ensureTinyCheckpoint, makeTinyCheckpoint, tinyConfigJson } from './make-tiny.ts';
import type { NativeModelConfig, NativeModelSpec } from './native-api.ts';
import { readSafetensorsHeader, SafetensorsError, writeSafetensors, type SafetensorsWriteTensor } from './safetensors.ts';

const SHARD1 = 'model-00001-of-00002.safetensors';
const SHARD2 = 'model-00002-of-00002.safetensors';

let single: string; // the cached seed-1 tiny checkpoint (read only)
let sharded: string; // the same model in two shards
const scratch = mkdtempSync(join(tmpdir(), 'amnesia-checkpoint-test-'));
let copies = 0;

beforeAll(async () => {
  single = await ensureTinyCheckpoint(1);
  sharded = join(scratch, 'sharded');
  makeTinyCheckpoint(sharded, { seed: 1, shards: 2 });
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * A private copy of a checkpoint directory to break. The loader reads only headers, so each
 * safetensors file is copied as its exact header followed by a sparse (all-zero) data buffer of the
 * same size: same offsets and file size, no 50 MB of writes per test.
 */
function copy(dir: string): string {
  const out = join(scratch, `copy-${copies++}`);
  mkdirSync(out);
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.safetensors')) {
      cpSync(join(dir, name), join(out, name));
      continue;
    }
    const header = readSafetensorsHeader(join(dir, name));
    const head = Buffer.alloc(header.dataStart);
    const src = openSync(join(dir, name), 'r');
    readSync(src, head, 0, head.length, 0);
    closeSync(src);
    writeSparse(join(out, name), head, header.fileSize);
  }
  return out;
}

function writeSparse(file: string, head: Uint8Array, size: number): void {
  const fd = openSync(file, 'w');
  writeSync(fd, head);
  ftruncateSync(fd, size);
  closeSync(fd);
}

/** Rewrites a safetensors file from its tensors after `edit` (which may change names, dtypes, shapes, data). */
function rebuild(file: string, edit: (tensors: SafetensorsWriteTensor[]) => SafetensorsWriteTensor[]): void {
  const header = readSafetensorsHeader(file);
  const bytes = readFileSync(file);
  const tensors = [...header.tensors.values()].map((t) => ({
    name: t.name,
    dtype: t.dtype,
    shape: t.shape,
    data: new Uint8Array(bytes.buffer, bytes.byteOffset + t.offset, t.byteLength),
  }));
  writeSafetensors(file, edit(tensors), header.metadata);
}

/** A config or header parsed from JSON, edited in place by the corruption cases. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type JsonEdit = Record<string, any>;

/** Rewrites the JSON header of a (copied) safetensors file; the data buffer keeps its size. */
function editHeader(file: string, edit: (json: JsonEdit) => void): void {
  const header = readSafetensorsHeader(file);
  const head = Buffer.alloc(header.dataStart);
  const fd = openSync(file, 'r');
  readSync(fd, head, 0, head.length, 0);
  closeSync(fd);
  const json = JSON.parse(head.subarray(8).toString('utf8'));
  edit(json);
  let text = Buffer.from(JSON.stringify(json));
  text = Buffer.concat([text, Buffer.alloc((8 - (text.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(text.length));
  writeSparse(file, Buffer.concat([len, text]), 8 + text.length + (header.fileSize - header.dataStart));
}

function editJson(file: string, edit: (json: JsonEdit) => void): void {
  const json = JSON.parse(readFileSync(file, 'utf8'));
  edit(json);
  writeFileSync(file, JSON.stringify(json));
}

function tensorHash(spec: NativeModelSpec, name: string): string {
  return createHash('sha256').update(readTensorBytes(spec, name)).digest('hex');
}

const TINY_CONFIG: NativeModelConfig = {
  hiddenSize: 64,
  intermediateSize: 96,
  numLayers: 4,
  numHeads: 8,
  numKvHeads: 2,
  headDim: 16,
  numExperts: 8,
  expertsPerToken: 2,
  vocabSize: 201088,
  slidingWindow: 8,
  slidingLayers: [true, false, true, false],
  ropeTheta: 150000,
  ropeScalingFactor: 32,
  ropeBetaFast: 32,
  ropeBetaSlow: 1,
  initialContextLength: 4096,
  swigluLimit: 7,
  swigluAlpha: 1.702,
  rmsNormEps: 1e-5,
};

describe('loadCheckpoint on the tiny model', () => {
  test('single file: config, names, shapes, dtypes and contiguous absolute offsets', () => {
    const spec = loadCheckpoint(single);
    expect(spec.config).toEqual(TINY_CONFIG);
    expect(spec.files).toEqual([join(single, 'model.safetensors')]);
    expect(spec.tensors).toHaveLength(3 + 4 * 19);
    const byName = new Map(spec.tensors.map((t) => [t.name, t]));
    expect(byName.get('model.embed_tokens.weight')).toMatchObject({ dtype: 'BF16', shape: [201088, 64], byteLength: 201088 * 64 * 2 });
    expect(byName.get('lm_head.weight')).toMatchObject({ dtype: 'BF16', shape: [201088, 64] });
    expect(byName.get('model.layers.1.self_attn.q_proj.weight')!.shape).toEqual([128, 64]);
    expect(byName.get('model.layers.1.self_attn.k_proj.weight')!.shape).toEqual([32, 64]);
    expect(byName.get('model.layers.1.self_attn.o_proj.weight')!.shape).toEqual([64, 128]);
    expect(byName.get('model.layers.1.self_attn.sinks')!.shape).toEqual([8]);
    expect(byName.get('model.layers.3.mlp.experts.gate_up_proj_blocks')).toMatchObject({ dtype: 'U8', shape: [8, 192, 2, 16] });
    expect(byName.get('model.layers.3.mlp.experts.gate_up_proj_scales')).toMatchObject({ dtype: 'U8', shape: [8, 192, 2] });
    expect(byName.get('model.layers.3.mlp.experts.down_proj_blocks')).toMatchObject({ dtype: 'U8', shape: [8, 64, 3, 16] });
    expect(byName.get('model.layers.3.mlp.experts.down_proj_scales')).toMatchObject({ dtype: 'U8', shape: [8, 64, 3] });
    expect(byName.get('model.layers.3.mlp.experts.down_proj_bias')).toMatchObject({ dtype: 'BF16', shape: [8, 64] });
    // Written in canonical order without gaps: offsets are absolute (8 + N + data_offsets[0]).
    const header = readSafetensorsHeader(spec.files[0]!);
    expect(header.dataStart % 8).toBe(0);
    expect(spec.tensors[0]!.offset).toBe(header.dataStart);
    for (let i = 1; i < spec.tensors.length; i++) {
      expect(spec.tensors[i]!.offset).toBe(spec.tensors[i - 1]!.offset + spec.tensors[i - 1]!.byteLength);
    }
    const last = spec.tensors[spec.tensors.length - 1]!;
    expect(last.offset + last.byteLength).toBe(statSync(spec.files[0]!).size);
  });

  test('two shards give the same tensors, shapes and bytes; layer 2 straddles the shards', () => {
    const a = loadCheckpoint(single);
    const b = loadCheckpoint(sharded);
    expect(b.config).toEqual(a.config);
    expect(b.files).toEqual([join(sharded, SHARD1), join(sharded, SHARD2)]);
    const strip = (s: NativeModelSpec) => s.tensors.map(({ name, dtype, shape, byteLength }) => ({ name, dtype, shape, byteLength }));
    expect(strip(b)).toEqual(strip(a));
    for (const t of a.tensors) expect(tensorHash(b, t.name), t.name).toBe(tensorHash(a, t.name));
    const fileOf = (name: string) => b.tensors.find((t) => t.name === name)!.file;
    expect(fileOf('model.layers.2.self_attn.q_proj.weight')).toBe(0);
    expect(fileOf('model.layers.2.mlp.router.weight')).toBe(1);
  });

  test('the expected tensor list matches the config', () => {
    const names = expectedTensors(TINY_CONFIG).map((t) => t.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names[0]).toBe('model.embed_tokens.weight');
    expect(names.slice(-2)).toEqual(['model.norm.weight', 'lm_head.weight']);
  });

  test('float tensors may be F32, and unknown extra tensors are ignored', () => {
    const dir = join(scratch, 'f32');
    cpSync(sharded, dir, { recursive: true });
    rebuild(join(dir, SHARD2), (ts) => {
      const norm = ts.find((t) => t.name === 'model.norm.weight')!;
      const bf = new Uint16Array((norm.data as Uint8Array).slice().buffer);
      const f32 = Float32Array.from(bf, (v) => new Float32Array(new Uint32Array([v << 16]).buffer)[0]!);
      norm.dtype = 'F32';
      norm.data = new Uint8Array(f32.buffer);
      return [...ts, { name: 'model.layers.3.extra.unknown', dtype: 'F16', shape: [3], data: new Uint8Array(6) }];
    });
    const spec = loadCheckpoint(dir);
    expect(spec.tensors.find((t) => t.name === 'model.norm.weight')).toMatchObject({ dtype: 'F32', byteLength: 64 * 4 });
    expect(spec.tensors.some((t) => t.name.includes('unknown'))).toBe(false);
  });
});

describe('config.json variants', () => {
  const base = () => structuredClone(tinyConfigJson()) as JsonEdit;

  test('transformers v5 rope_parameters (rope_theta inside) loads like rope_scaling', () => {
    const dir = join(scratch, 'v5');
    cpSync(single, dir, { recursive: true, filter: (src) => !src.endsWith('.safetensors') });
    editJson(join(dir, 'config.json'), (c) => {
      c.rope_parameters = { ...c.rope_scaling, rope_theta: c.rope_theta };
      delete c.rope_scaling;
      delete c.rope_theta;
    });
    expect(readModelConfig(dir)).toEqual(TINY_CONFIG);
  });

  test('num_experts / experts_per_token, no layer_types, no swiglu_alpha or rms_norm_eps', () => {
    const c = base();
    c.num_experts = c.num_local_experts;
    delete c.num_local_experts;
    delete c.num_experts_per_tok; // experts_per_token stays
    delete c.layer_types;
    delete c.rms_norm_eps;
    expect(parseModelConfig(c)).toEqual(TINY_CONFIG);
  });

  test('layer_types is followed; no rope scaling means factor 1', () => {
    const c = base();
    c.layer_types = ['full_attention', 'full_attention', 'sliding_attention', 'full_attention'];
    c.rope_scaling = null;
    c.swiglu_alpha = 1.5;
    c.rms_norm_eps = 1e-6;
    const cfg = parseModelConfig(c);
    expect(cfg.slidingLayers).toEqual([false, false, true, false]);
    expect(cfg.ropeScalingFactor).toBe(1);
    expect(cfg.swigluAlpha).toBe(1.5);
    expect(cfg.rmsNormEps).toBe(1e-6);
  });

  test('YaRN bounds of the real and the tiny config (notes §1.6)', () => {
    const real = yarnBounds(64, 150000, 4096, 32, 1);
    expect(real.low).toBeCloseTo(8.092779, 5);
    expect(real.high).toBeCloseTo(17.398025, 5);
    const tiny = yarnBounds(16, 150000, 4096, 32, 1);
    expect(tiny.low).toBeCloseTo(2.02, 2);
    expect(tiny.high).toBeCloseTo(4.35, 2);
  });

  test.each<[string, (c: JsonEdit) => void, RegExp]>([
    ['missing hidden_size', (c) => delete c.hidden_size, /config\.json: missing field "hidden_size"$/],
    ['missing head_dim', (c) => delete c.head_dim, /missing field "head_dim"/],
    ['missing experts', (c) => (delete c.num_local_experts, delete c.num_experts), /missing field "num_local_experts" or "num_experts"/],
    ['missing swiglu_limit', (c) => delete c.swiglu_limit, /missing field "swiglu_limit"/],
    ['missing rope_theta', (c) => delete c.rope_theta, /missing field "rope_theta"/],
    ['missing yarn factor', (c) => delete c.rope_scaling.factor, /missing field "rope_scaling\.factor"/],
    ['fractional heads', (c) => (c.num_attention_heads = 7.5), /field "num_attention_heads" must be a positive integer, got 7\.5/],
    ['string vocab', (c) => (c.vocab_size = '201088'), /field "vocab_size" must be a positive integer, got "201088"/],
    ['hidden not MXFP4', (c) => (c.hidden_size = 80), /field "hidden_size" must be a multiple of 32 \(MXFP4 blocks\), got 80/],
    ['intermediate not MXFP4', (c) => (c.intermediate_size = 100), /field "intermediate_size" must be a multiple of 32/],
    ['GQA mismatch', (c) => (c.num_key_value_heads = 3), /"num_attention_heads" \(8\) must be a multiple of "num_key_value_heads" \(3\)/],
    ['top-k > experts', (c) => (c.num_experts_per_tok = 9), /experts per token \(9\) exceeds the number of experts \(8\)/],
    ['layer_types length', (c) => c.layer_types.pop(), /field "layer_types" must be a list of num_hidden_layers \(4\) entries/],
    ['layer_types value', (c) => (c.layer_types[1] = 'local'), /field "layer_types\[1\]" must be "sliding_attention" or "full_attention", got "local"/],
    [
      'YaRN constraint',
      (c) => (c.head_dim = 4),
      /YaRN needs 0 < low < high < head_dim\/2 - 1, got low 0\.5058, high 1\.0874, head_dim\/2 - 1 = 1 \(from head_dim 4,/,
    ],
    ['YaRN betas swapped', (c) => ((c.rope_scaling.beta_fast = 1), (c.rope_scaling.beta_slow = 32)), /YaRN needs 0 < low < high/],
    ['truncated YaRN', (c) => (c.rope_scaling.truncate = true), /field "rope_scaling\.truncate" is true/],
    ['missing rope_type', (c) => delete c.rope_scaling.rope_type, /missing field "rope_scaling\.rope_type"/],
    ['other rope type', (c) => (c.rope_scaling.rope_type = 'linear'), /field "rope_scaling\.rope_type" must be "yarn" or "default", got "linear"/],
    ['other quantization', (c) => (c.quantization_config.quant_method = 'gptq'), /"quantization_config\.quant_method" must be "mxfp4"/],
    ['tied embeddings', (c) => (c.tie_word_embeddings = true), /tie_word_embeddings" is true/],
  ])('%s', (_, edit, message) => {
    const c = base();
    edit(c);
    expect(() => parseModelConfig(c, '/x/config.json')).toThrow(CheckpointError);
    expect(() => parseModelConfig(c, '/x/config.json')).toThrow(message);
  });
});

describe('bad checkpoints get clear errors', () => {
  const model = (dir: string) => join(dir, 'model.safetensors');
  const load = (dir: string) => () => loadCheckpoint(dir);

  test('truncated file', () => {
    const dir = copy(single);
    const size = statSync(model(dir)).size;
    truncateSync(model(dir), size - 100);
    expect(load(dir)).toThrow(SafetensorsError);
    expect(load(dir)).toThrow(`${model(dir)}: tensor lm_head.weight ends at byte ${size}, past the end of the file (size ${size - 100})`);
  });

  test('header length past the end of the file', () => {
    const dir = copy(single);
    const size = statSync(model(dir)).size;
    const fd = openSync(model(dir), 'r+');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(size));
    writeSync(fd, len, 0, 8, 0);
    closeSync(fd);
    expect(load(dir)).toThrow(`${model(dir)}: header length ${size} runs past the end of the file (size ${size})`);
  });

  test('header that is not JSON', () => {
    const dir = copy(single);
    const fd = openSync(model(dir), 'r+');
    writeSync(fd, Buffer.from('!'), 0, 1, 8);
    closeSync(fd);
    expect(load(dir)).toThrow(new RegExp(`^${model(dir)}: header is not valid JSON: `));
  });

  test('file shorter than the length prefix', () => {
    const dir = copy(single);
    writeFileSync(model(dir), Buffer.alloc(5));
    expect(load(dir)).toThrow(`${model(dir)}: too short for a safetensors file (size 5, need at least 8 bytes)`);
  });

  test('data_offsets that disagree with the shape, overlapping ranges, unknown dtype', () => {
    const dir = copy(single);
    editHeader(model(dir), (h) => (h['model.norm.weight'].data_offsets[1] += 2));
    expect(load(dir)).toThrow(/tensor model\.norm\.weight: data_offsets \[\d+, \d+\] hold 130 bytes, but BF16 \[64\] needs 128/);
    const dir2 = copy(single);
    editHeader(model(dir2), (h) => {
      const begin: number = h['model.layers.3.mlp.experts.down_proj_bias'].data_offsets[0] + 2;
      h['model.norm.weight'].data_offsets = [begin, begin + 128];
    });
    expect(load(dir2)).toThrow(/tensors model\.layers\.3\.mlp\.experts\.down_proj_bias and model\.norm\.weight overlap/);
    const dir3 = copy(single);
    editHeader(model(dir3), (h) => (h['model.norm.weight'].dtype = 'Q4'));
    expect(load(dir3)).toThrow(/tensor model\.norm\.weight: unknown dtype "Q4" \(known: BOOL, U8/);
  });

  test('wrong shape names the expected shape and the config fields behind it', () => {
    const dir = copy(single);
    editHeader(model(dir), (h) => (h['model.layers.1.self_attn.q_proj.weight'].shape = [64, 128]));
    expect(load(dir)).toThrow(
      `${model(dir)}: tensor model.layers.1.self_attn.q_proj.weight has shape [64, 128], expected [128, 64] = [num_attention_heads·head_dim, hidden_size]`,
    );
    const dir2 = copy(single);
    editHeader(model(dir2), (h) => (h['model.layers.0.mlp.experts.down_proj_blocks'].shape = [8, 96, 2, 16]));
    expect(load(dir2)).toThrow(
      'tensor model.layers.0.mlp.experts.down_proj_blocks has shape [8, 96, 2, 16], expected [8, 64, 3, 16] = [num_local_experts, hidden_size, intermediate_size/32, 16 bytes per MXFP4 block]',
    );
  });

  test('wrong dtype', () => {
    const dir = copy(single);
    editHeader(model(dir), (h) => (h['model.norm.weight'].dtype = 'F16'));
    expect(load(dir)).toThrow(`${model(dir)}: tensor model.norm.weight has dtype F16, expected BF16 or F32`);
    const dir2 = copy(single);
    editHeader(model(dir2), (h) => {
      const t = h['model.layers.2.mlp.experts.gate_up_proj_scales'];
      t.dtype = 'BF16';
      t.shape = [8, 192, 1];
    });
    expect(load(dir2)).toThrow('tensor model.layers.2.mlp.experts.gate_up_proj_scales has dtype BF16, expected U8');
  });

  test('missing tensor', () => {
    const dir = copy(single);
    editHeader(model(dir), (h) => delete h['model.layers.3.self_attn.sinks']);
    expect(load(dir)).toThrow(`${model(dir)}: missing tensor model.layers.3.self_attn.sinks`);
  });

  test('a dequantized (bf16 experts) checkpoint is recognised', () => {
    const dir = copy(single);
    editHeader(model(dir), (h) => {
      h['model.layers.0.mlp.experts.gate_up_proj'] = h['model.layers.0.mlp.experts.gate_up_proj_blocks'];
      delete h['model.layers.0.mlp.experts.gate_up_proj_blocks'];
    });
    expect(load(dir)).toThrow(/missing tensor model\.layers\.0\.mlp\.experts\.gate_up_proj_blocks \(found .*gate_up_proj: a dequantized bf16 checkpoint/);
  });

  test('missing shard file', () => {
    const dir = copy(sharded);
    rmSync(join(dir, SHARD2));
    expect(load(dir)).toThrow(
      new RegExp(
        `^${join(dir, 'model.safetensors.index.json')}: shard ${SHARD2} does not exist \\(named for 29 tensors, e\\.g\\. lm_head\\.weight; looked for ${join(dir, SHARD2)}\\)$`,
      ),
    );
  });

  test('index entry pointing to a shard that lacks the tensor', () => {
    const dir = copy(sharded);
    editJson(join(dir, 'model.safetensors.index.json'), (j) => (j.weight_map['lm_head.weight'] = SHARD1));
    expect(load(dir)).toThrow(
      `${join(dir, 'model.safetensors.index.json')}: weight_map puts tensor lm_head.weight in ${SHARD1}, but ${join(dir, SHARD1)} has no tensor lm_head.weight`,
    );
  });

  test('index without an entry for a tensor, index without weight_map, shard outside the directory', () => {
    const index = (dir: string) => join(dir, 'model.safetensors.index.json');
    const dir = copy(sharded);
    editJson(index(dir), (j) => delete j.weight_map['model.layers.0.mlp.router.bias']);
    expect(load(dir)).toThrow(`${index(dir)}: missing tensor model.layers.0.mlp.router.bias (no weight_map entry)`);
    editJson(index(dir), (j) => delete j.weight_map);
    expect(load(dir)).toThrow(`${index(dir)}: missing field "weight_map"`);
    const dir2 = copy(sharded);
    editJson(index(dir2), (j) => (j.weight_map['lm_head.weight'] = '../elsewhere.safetensors'));
    expect(load(dir2)).toThrow(/shard "\.\.\/elsewhere\.safetensors" \(for lm_head\.weight\) is not a file inside/);
  });

  test('a shard with a broken header is named', () => {
    const dir = copy(sharded);
    truncateSync(join(dir, SHARD2), 1000);
    expect(load(dir)).toThrow(
      new RegExp(
        `^${join(dir, SHARD2)}: header length \\d+ runs past the end of the file \\(size 1000\\)|^${join(dir, SHARD2)}: tensor .* past the end of the file \\(size 1000\\)`,
      ),
    );
  });

  test('missing config.json, missing config field, missing weights', () => {
    const dir = copy(single);
    editJson(join(dir, 'config.json'), (c) => delete c.num_hidden_layers);
    expect(load(dir)).toThrow(`${join(dir, 'config.json')}: missing field "num_hidden_layers"`);
    rmSync(join(dir, 'config.json'));
    expect(load(dir)).toThrow(`${join(dir, 'config.json')}: cannot read: no such file`);
    writeFileSync(join(dir, 'config.json'), '{"hidden_size": 64,');
    expect(load(dir)).toThrow(new RegExp(`^${join(dir, 'config.json')}: not valid JSON: `));
    const dir2 = join(scratch, 'config-only');
    cpSync(join(single, 'config.json'), join(dir2, 'config.json'));
    expect(load(dir2)).toThrow(`${dir2}: no model.safetensors or model.safetensors.index.json`);
  });
});

describe('safetensors writer', () => {
  test('standard layout: LE u64 length, space-padded JSON with __metadata__, data in order', () => {
    const file = join(scratch, 'small.safetensors');
    writeSafetensors(
      file,
      [
        { name: 'a', dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 3]) },
        { name: 'b', dtype: 'F32', shape: [1, 2], data: () => new Uint8Array(new Float32Array([1.5, -2]).buffer) },
        { name: 'empty', dtype: 'BF16', shape: [0, 4], data: new Uint8Array(0) },
      ],
      { format: 'pt' },
    );
    const bytes = readFileSync(file);
    const n = Number(bytes.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const text = bytes.subarray(8, 8 + n).toString('utf8');
    expect(JSON.parse(text)).toEqual({
      __metadata__: { format: 'pt' },
      a: { dtype: 'U8', shape: [3], data_offsets: [0, 3] },
      b: { dtype: 'F32', shape: [1, 2], data_offsets: [3, 11] },
      empty: { dtype: 'BF16', shape: [0, 4], data_offsets: [11, 11] },
    });
    expect(text).toMatch(/^\{.*\} *$/);
    expect([...bytes.subarray(8 + n)]).toEqual([1, 2, 3, ...new Uint8Array(new Float32Array([1.5, -2]).buffer)]);
    const header = readSafetensorsHeader(file);
    expect(header.metadata).toEqual({ format: 'pt' });
    expect(header.tensors.get('b')).toMatchObject({ offset: 8 + n + 3, byteLength: 8, shape: [1, 2] });
  });

  test('refuses data of the wrong size and unknown dtypes', () => {
    const file = join(scratch, 'bad.safetensors');
    expect(() => writeSafetensors(file, [{ name: 'a', dtype: 'BF16', shape: [3], data: new Uint8Array(5) }])).toThrow(/got 5 bytes, BF16 \[3\] needs 6/);
    expect(() => writeSafetensors(file, [{ name: 'a', dtype: 'Q4', shape: [3], data: new Uint8Array(3) }])).toThrow(/unknown dtype Q4/);
  });
});
