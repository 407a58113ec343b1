// export-gguf on the tiny random checkpoint, read back by an independent reader (@huggingface/gguf):
// llama.cpp's gpt-oss metadata and tensor layout, the tokenizer as the folder's tokenizer files hold
// it, float tensors bit for bit, MXFP4 experts that decode (ggml's way) to exactly the values the
// checkpoint's blocks and scales decode to (Hugging Face's way), pinned bytes, and refusals.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gguf, GGMLQuantizationType, type GGUFParseOutput, type GGUFTensorInfo } from '@huggingface/gguf';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CheckpointError, loadCheckpoint, parseModelConfig, readTensorBytes } from './checkpoint.ts';
import { exportGguf, GgufExportError, ggufModelMetadata, repackMxfp4Block } from './export-gguf.ts';
import { ensureTinyCheckpoint, makeTinyCheckpoint, tinyConfigJson } from './make-tiny.ts';
import type { NativeModelSpec } from './native-api.ts';
import { writeRandomCheckpoint } from './random-checkpoint.ts';

/** sha256 of the tiny random checkpoint's (seed 1) GGUF. Changes only when the tiny checkpoint's bytes (TINY_VERSION) or the export change. */
const TINY_GGUF_SHA256 = '0e7cdd998ad330bed67d71b370d42d6ec787f4c253f92791dea00583a05515d8';

const scratch = mkdtempSync(join(tmpdir(), 'amnesia-export-gguf-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** E2M1 code → value (the OCP MX spec's table, as openai/gpt-oss and transformers dequantize). */
const FP4 = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, -1, -1.5, -2, -3, -4, -6];

/** HF: row `r` of expert `e`, element k of block b is the (k&1 ? high : low) nibble of byte k>>1, times 2^(scale − 127). */
function hfRow(blocks: Buffer, scales: Buffer, rows: number, nb: number, e: number, r: number): number[] {
  const out: number[] = [];
  for (let b = 0; b < nb; b++) {
    const at = ((e * rows + r) * nb + b) * 16;
    const scale = 2 ** (scales[(e * rows + r) * nb + b]! - 127);
    // + 0: ggml's table has no −0 (code 8 decodes to 0), and toEqual tells −0 from 0.
    for (let k = 0; k < 32; k++) out.push(FP4[(blocks[at + (k >> 1)]! >> ((k & 1) * 4)) & 0xf]! * scale + 0);
  }
  return out;
}

/** ggml (dequantize_row_mxfp4): block = e, qs[16]; element j is qs[j] & 15, element j + 16 is qs[j] >> 4; kvalues·2^(e − 128). */
const KVALUES = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];
function ggmlRow(data: Buffer, at: number, nb: number): number[] {
  const out: number[] = [];
  for (let b = 0; b < nb; b++) {
    const block = data.subarray(at + b * 17, at + (b + 1) * 17);
    const d = 2 ** (block[0]! - 128);
    const row = new Array<number>(32);
    for (let j = 0; j < 16; j++) {
      row[j] = KVALUES[block[1 + j]! & 0xf]! * d;
      row[j + 16] = KVALUES[block[1 + j]! >> 4]! * d;
    }
    out.push(...row);
  }
  return out;
}

const bf16ToF32 = (b: Buffer) => Array.from({ length: b.length / 2 }, (_, i) => new Float32Array(new Uint32Array([b.readUInt16LE(2 * i) << 16]).buffer)[0]!);
const f32s = (b: Buffer) => Array.from({ length: b.length / 4 }, (_, i) => b.readFloatLE(4 * i));

describe('export-gguf: the tiny random checkpoint', () => {
  let dir: string;
  let spec: NativeModelSpec;
  let file: string;
  let data: Buffer;
  let parsed: GGUFParseOutput;
  let tensor: (name: string) => { ne: number[]; type: number; bytes: Buffer };

  beforeAll(async () => {
    dir = await ensureTinyCheckpoint(1);
    spec = loadCheckpoint(dir);
    file = join(scratch, 'tiny.gguf');
    exportGguf(dir, file);
    data = readFileSync(file);
    parsed = await gguf(file, { allowLocalFile: true });
    const infos = new Map<string, { t: GGUFTensorInfo; next: GGUFTensorInfo | undefined }>(
      parsed.tensorInfos.map((t, i) => [t.name, { t, next: parsed.tensorInfos[i + 1] }]),
    );
    tensor = (name) => {
      const entry = infos.get(name);
      if (entry === undefined) throw new Error(`no tensor ${name}`);
      const begin = Number(parsed.tensorDataOffset + entry.t.offset);
      const size = Number((entry.next?.offset ?? BigInt(data.length) - parsed.tensorDataOffset) - entry.t.offset);
      return { ne: entry.t.shape.map(Number), type: entry.t.dtype, bytes: data.subarray(begin, begin + size) };
    };
  });

  test('the same bytes every time (pinned)', () => {
    expect(sha256(data)).toBe(TINY_GGUF_SHA256);
  });

  test('a two-shard copy of the checkpoint exports to the same bytes', () => {
    const sharded = join(scratch, 'tiny-2-shards');
    makeTinyCheckpoint(sharded, { seed: 1, shards: 2 });
    exportGguf(sharded, join(sharded, 'model.gguf'));
    expect(sha256(readFileSync(join(sharded, 'model.gguf')))).toBe(TINY_GGUF_SHA256);
  });

  test("the model metadata llama.cpp's gpt-oss loader reads", () => {
    const m = parsed.metadata as Record<string, unknown>;
    expect(Object.fromEntries(Object.entries(m).filter(([k]) => !k.startsWith('tokenizer.')))).toEqual({
      version: 3,
      tensor_count: 79n,
      kv_count: 32n,
      'general.architecture': 'gpt-oss',
      'general.type': 'model',
      'general.file_type': 38,
      'general.quantization_version': 2,
      'gpt-oss.block_count': 4,
      'gpt-oss.context_length': 131072,
      'gpt-oss.embedding_length': 64,
      'gpt-oss.feed_forward_length': 96,
      'gpt-oss.expert_feed_forward_length': 96,
      'gpt-oss.attention.head_count': 8,
      'gpt-oss.attention.head_count_kv': 2,
      'gpt-oss.attention.key_length': 16,
      'gpt-oss.attention.value_length': 16,
      'gpt-oss.attention.sliding_window': 8,
      'gpt-oss.attention.layer_norm_rms_epsilon': Math.fround(1e-5),
      'gpt-oss.rope.freq_base': 150000,
      'gpt-oss.rope.scaling.type': 'yarn',
      'gpt-oss.rope.scaling.factor': 32,
      'gpt-oss.rope.scaling.original_context_length': 4096,
      'gpt-oss.rope.scaling.yarn_beta_fast': 32,
      'gpt-oss.rope.scaling.yarn_beta_slow': 1,
      'gpt-oss.expert_count': 8,
      'gpt-oss.expert_used_count': 2,
    });
  });

  test("the tokenizer is the folder's tokenizer.json and tokenizer_config.json", () => {
    const m = parsed.metadata as Record<string, unknown>;
    const tj = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as {
      model: { vocab: Record<string, number>; merges: [string, string][] };
      added_tokens: { id: number; content: string }[];
    };
    const tc = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, string>;
    const expected: string[] = [];
    for (const [name, id] of Object.entries(tj.model.vocab)) expected[id] = name;
    for (const t of tj.added_tokens) expected[t.id] = t.content;
    const tokens = m['tokenizer.ggml.tokens'] as string[];
    expect(tokens.length).toBe(201088);
    expect(tokens).toEqual(expected);
    expect(m['tokenizer.ggml.token_type']).toEqual(tokens.map((_, id) => (id < 199998 ? 1 : 3)));
    expect(m['tokenizer.ggml.merges']).toEqual(tj.model.merges.map(([a, b]) => `${a} ${b}`));
    expect(m['tokenizer.ggml.model']).toBe('gpt2');
    expect(m['tokenizer.ggml.pre']).toBe('gpt-4o');
    const id = (content: string) => tj.added_tokens.find((t) => t.content === content)!.id;
    expect(m['tokenizer.ggml.bos_token_id']).toBe(id(tc.bos_token!));
    expect(m['tokenizer.ggml.eos_token_id']).toBe(id(tc.eos_token!));
    expect(m['tokenizer.ggml.padding_token_id']).toBe(id(tc.pad_token!));
    expect([m['tokenizer.ggml.bos_token_id'], m['tokenizer.ggml.eos_token_id'], m['tokenizer.ggml.padding_token_id']]).toEqual([199998, 200002, 199999]);
    expect(m['tokenizer.chat_template']).toBe(tc.chat_template);
  });

  test("tensor names, shapes (ggml's ne) and types as llama.cpp's openai-moe loader creates them", () => {
    const { hiddenSize: H, intermediateSize: I, numExperts: E, numHeads, numKvHeads, headDim, vocabSize: V } = spec.config;
    const { F32, BF16, MXFP4 } = GGMLQuantizationType;
    const expected: [string, number[], number][] = [['token_embd.weight', [H, V], BF16]];
    for (let n = 0; n < 4; n++) {
      const b = `blk.${n}`;
      expected.push(
        [`${b}.attn_norm.weight`, [H], F32],
        [`${b}.attn_q.weight`, [H, numHeads * headDim], BF16],
        [`${b}.attn_q.bias`, [numHeads * headDim], F32],
        [`${b}.attn_k.weight`, [H, numKvHeads * headDim], BF16],
        [`${b}.attn_k.bias`, [numKvHeads * headDim], F32],
        [`${b}.attn_v.weight`, [H, numKvHeads * headDim], BF16],
        [`${b}.attn_v.bias`, [numKvHeads * headDim], F32],
        [`${b}.attn_output.weight`, [numHeads * headDim, H], BF16],
        [`${b}.attn_output.bias`, [H], F32],
        [`${b}.attn_sinks.weight`, [numHeads], F32],
        [`${b}.post_attention_norm.weight`, [H], F32],
        [`${b}.ffn_gate_inp.weight`, [H, E], F32],
        [`${b}.ffn_gate_inp.bias`, [E], F32],
        [`${b}.ffn_gate_exps.weight`, [H, I, E], MXFP4],
        [`${b}.ffn_gate_exps.bias`, [I, E], F32],
        [`${b}.ffn_up_exps.weight`, [H, I, E], MXFP4],
        [`${b}.ffn_up_exps.bias`, [I, E], F32],
        [`${b}.ffn_down_exps.weight`, [I, H, E], MXFP4],
        [`${b}.ffn_down_exps.bias`, [H, E], F32],
      );
    }
    expected.push(['output_norm.weight', [H], F32], ['output.weight', [H, V], BF16]);
    expect(parsed.tensorInfos.map((t) => [t.name, t.shape.map(Number), t.dtype])).toEqual(expected);
  });

  test('float tensors: bf16 weights bit for bit, the rest widened exactly to f32, gate/up biases split even/odd', () => {
    const raw = (name: string) => readTensorBytes(spec, name);
    const starts = (big: Buffer, small: Buffer) => big.subarray(0, small.length).equals(small);
    expect(starts(tensor('token_embd.weight').bytes, raw('model.embed_tokens.weight'))).toBe(true);
    expect(starts(tensor('output.weight').bytes, raw('lm_head.weight'))).toBe(true);
    for (let n = 0; n < 4; n++) {
      const p = `model.layers.${n}`;
      const b = `blk.${n}`;
      expect(starts(tensor(`${b}.attn_q.weight`).bytes, raw(`${p}.self_attn.q_proj.weight`))).toBe(true);
      expect(starts(tensor(`${b}.attn_output.weight`).bytes, raw(`${p}.self_attn.o_proj.weight`))).toBe(true);
      for (const [g, h] of [
        ['attn_norm.weight', 'input_layernorm.weight'],
        ['attn_k.bias', 'self_attn.k_proj.bias'],
        ['attn_sinks.weight', 'self_attn.sinks'],
        ['ffn_gate_inp.weight', 'mlp.router.weight'],
        ['ffn_down_exps.bias', 'mlp.experts.down_proj_bias'],
      ]) {
        const want = bf16ToF32(raw(`${p}.${h}`));
        expect(f32s(tensor(`${b}.${g}`).bytes).slice(0, want.length), g).toEqual(want);
      }
      const gateUp = bf16ToF32(raw(`${p}.mlp.experts.gate_up_proj_bias`));
      expect(f32s(tensor(`${b}.ffn_gate_exps.bias`).bytes).slice(0, gateUp.length / 2)).toEqual(gateUp.filter((_, i) => i % 2 === 0));
      expect(f32s(tensor(`${b}.ffn_up_exps.bias`).bytes).slice(0, gateUp.length / 2)).toEqual(gateUp.filter((_, i) => i % 2 === 1));
    }
  });

  test('MXFP4 experts decode to exactly the values of the HF blocks and scales (gate = even rows, up = odd rows)', () => {
    const { hiddenSize: H, intermediateSize: I, numExperts: E } = spec.config;
    let compared = 0;
    for (let n = 0; n < 4; n++) {
      const p = `model.layers.${n}.mlp.experts`;
      const gub = readTensorBytes(spec, `${p}.gate_up_proj_blocks`);
      const gus = readTensorBytes(spec, `${p}.gate_up_proj_scales`);
      const db = readTensorBytes(spec, `${p}.down_proj_blocks`);
      const ds = readTensorBytes(spec, `${p}.down_proj_scales`);
      const gate = tensor(`blk.${n}.ffn_gate_exps.weight`).bytes;
      const up = tensor(`blk.${n}.ffn_up_exps.weight`).bytes;
      const down = tensor(`blk.${n}.ffn_down_exps.weight`).bytes;
      for (let e = 0; e < E; e++) {
        for (let r = 0; r < I; r++) {
          const at = (e * I + r) * (H / 32) * 17;
          expect(ggmlRow(gate, at, H / 32)).toEqual(hfRow(gub, gus, 2 * I, H / 32, e, 2 * r));
          expect(ggmlRow(up, at, H / 32)).toEqual(hfRow(gub, gus, 2 * I, H / 32, e, 2 * r + 1));
          compared += 2;
        }
        for (let r = 0; r < H; r++) expect(ggmlRow(down, (e * H + r) * (I / 32) * 17, I / 32)).toEqual(hfRow(db, ds, H, I / 32, e, r));
        compared += H;
      }
    }
    expect(compared).toBe(4 * E * (2 * I + H));
  });
});

describe('repackMxfp4Block', () => {
  test('moves HF element k (byte k>>1, high nibble when odd) to ggml position k: byte k%16, high nibble when k ≥ 16', () => {
    for (let k = 0; k < 32; k++) {
      const hf = new Uint8Array(16);
      hf[k >> 1] = k & 1 ? 0x50 : 0x05;
      const out = new Uint8Array(20);
      repackMxfp4Block(hf, 0, 0x7f, out, 2);
      const want = new Uint8Array(20);
      want[2] = 0x7f;
      want[3 + (k % 16)] = k < 16 ? 0x05 : 0x50;
      expect([...out], `element ${k}`).toEqual([...want]);
    }
  });
});

describe('export-gguf refuses', () => {
  test('a folder that is not a checkpoint', () => {
    expect(() => exportGguf(join(scratch, 'nothing-here'), join(scratch, 'x.gguf'))).toThrow(CheckpointError);
    expect(() => exportGguf(join(scratch, 'nothing-here'), join(scratch, 'x.gguf'))).toThrow(/config\.json: cannot read: no such file/);
  });

  test.each([
    ['another vocabulary', { vocab_size: 1024 }, /vocab_size is 1024; the GGUF carries o200k_harmony's tokenizer, which needs 201088/],
    // (checked before the vocabulary, so a small, cheap checkpoint shows it)
    [
      'SwiGLU constants llama.cpp does not have',
      { vocab_size: 1024, swiglu_limit: 5 },
      /swiglu_limit 5 and swiglu_alpha 1.702; llama.cpp's gpt-oss has 7 and 1.702 built in/,
    ],
  ])('%s', (_what, change, message) => {
    const dir = join(scratch, `refuse-${Object.keys(change).join('-')}`);
    writeRandomCheckpoint(dir, { ...tinyConfigJson(), ...change });
    expect(() => exportGguf(dir, join(dir, 'x.gguf'))).toThrow(GgufExportError);
    expect(() => exportGguf(dir, join(dir, 'x.gguf'))).toThrow(message);
  });

  test('layer types other than the even/odd alternation are written out for llama.cpp', () => {
    const config = parseModelConfig(tinyConfigJson());
    const meta = new Map(ggufModelMetadata({ ...config, slidingLayers: [false, true, true, false] }, {}));
    expect(meta.get('gpt-oss.attention.sliding_window_pattern')).toEqual({ type: 'array', of: 'bool', values: [false, true, true, false] });
    expect(new Map(ggufModelMetadata(config, {})).has('gpt-oss.attention.sliding_window_pattern')).toBe(false);
  });
});
