// A gpt-oss checkpoint folder (Hugging Face layout, checkpoint.ts) → llama.cpp's GGUF, architecture
// `gpt-oss`, with the experts kept in MXFP4 (ggml's MXFP4 type): what llama.cpp's
// convert_hf_to_gguf.py writes for openai/gpt-oss-20b, in TypeScript. Followed: conversion/gpt_oss.py
// (GptOssModel), conversion/base.py (TextModel.set_gguf_parameters, prepare_tensors, get_vocab_base),
// gguf-py's vocab.py (SpecialVocab), tensor_mapping.py and constants.py; src/models/openai-moe.cpp
// (the keys and shapes llama.cpp loads), src/llama-arch.cpp (names), ggml-common.h and
// ggml-quants.c (block_mxfp4 and its dequantization).
//
// Tensors (HF row-major shape [a, b] is ggml ne [b, a]; the bytes do not move):
//   model.embed_tokens.weight → token_embd.weight, lm_head.weight → output.weight, model.norm → output_norm
//   layer n: input_layernorm → blk.n.attn_norm, post_attention_layernorm → blk.n.post_attention_norm,
//   self_attn.{q,k,v,o}_proj → blk.n.attn_{q,k,v,output} (.weight, .bias), self_attn.sinks → blk.n.attn_sinks.weight,
//   mlp.router → blk.n.ffn_gate_inp, mlp.experts.gate_up_proj → blk.n.ffn_gate_exps (HF's even rows) and
//   blk.n.ffn_up_exps (odd rows), mlp.experts.down_proj → blk.n.ffn_down_exps; the biases split likewise.
// Types, as the converter chooses them for a bf16 checkpoint: 2-d float weights keep their dtype (BF16
// or F32); 1-d tensors, norms, every bias and the router weight become F32 (bf16 → f32 is exact);
// the experts are MXFP4, ne [in, out, experts].
//
// MXFP4: HF stores a block of 32 as 16 bytes where element 2i is byte i's low nibble and 2i+1 its
// high nibble, the E8M0 scale in a separate tensor; ggml's block_mxfp4 is the same scale byte then
// 16 bytes where element j is byte j's low nibble and j + 16 its high nibble (dequantize_row_mxfp4).
// The nibble codes are the same E2M1 values (ggml's table holds them doubled and halves the scale),
// so repacking moves nibbles and copies bytes; no value is rounded.
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { GPT_OSS_CHAT_TEMPLATE } from '../harmony/hf-chat-template.ts';
import { deriveMerges, HF_VOCAB_SIZE, hfSpecialTokens, hfVocabNames } from '../harmony/hf-tokenizer.ts';
import { Tok } from '../harmony/tokens.ts';
import { CheckpointError, CONFIG_FILE, loadCheckpoint, MXFP4_BLOCK } from './checkpoint.ts';
import { arr, f32, str, u32, writeGguf, type GgmlTypeName, type GgufTensor, type GgufValue } from './gguf.ts';
import type { NativeModelConfig, NativeModelSpec, NativeTensor } from './native-api.ts';

export const GGUF_ARCH = 'gpt-oss';

/** llama.cpp's LLAMA_FTYPE_MOSTLY_MXFP4_MOE: MXFP4 experts, the rest as converted. */
const FILE_TYPE_MXFP4_MOE = 38;
/** ggml's GGML_QNT_VERSION. */
const QUANTIZATION_VERSION = 2;
/** tokenizer.ggml.token_type values (llama.h llama_token_type). */
const TOKEN_NORMAL = 1;
const TOKEN_CONTROL = 3;
/** llama.cpp's gpt-oss SwiGLU has these constants built in (llama-graph.cpp, LLM_FFN_SWIGLU_OAI_MOE); GGUF has no key for them. */
const LLAMA_CPP_SWIGLU = { alpha: 1.702, limit: 7.0 };

/** Bytes per read when streaming a tensor's data. */
const CHUNK = 8 << 20;
const MXFP4_BYTES = MXFP4_BLOCK / 2;

/**
 * Repacks one HF MXFP4 block (16 code bytes at `blocks[at…]`, its scale byte) into ggml's 17-byte
 * block_mxfp4 at `out[to…]`: the scale, then element j in byte j's low nibble and j + 16 in its high nibble.
 */
export function repackMxfp4Block(blocks: Uint8Array, at: number, scale: number, out: Uint8Array, to: number): void {
  out[to] = scale;
  for (let j = 0; j < MXFP4_BYTES; j++) {
    // HF element k sits in byte k >> 1, in its high nibble when k is odd.
    const lo = (blocks[at + (j >> 1)]! >> ((j & 1) * 4)) & 0xf;
    const hi = (blocks[at + 8 + (j >> 1)]! >> ((j & 1) * 4)) & 0xf;
    out[to + 1 + j] = lo | (hi << 4);
  }
}

/** A checkpoint the exporter cannot turn into a GGUF that llama.cpp would run as the same model. */
export class GgufExportError extends CheckpointError {
  override name = 'GgufExportError';
}

/** The gpt-oss hyperparameters as GGUF metadata, in the converter's order. `raw` is config.json as parsed. */
export function ggufModelMetadata(c: NativeModelConfig, raw: Record<string, unknown>): [string, GgufValue][] {
  const key = (name: string): string => `${GGUF_ARCH}.${name}`;
  const maxPositions = raw.max_position_embeddings;
  const contextLength =
    typeof maxPositions === 'number' && Number.isSafeInteger(maxPositions) && maxPositions > 0
      ? maxPositions
      : Math.round(c.initialContextLength * c.ropeScalingFactor);
  const out: [string, GgufValue][] = [
    ['general.architecture', str(GGUF_ARCH)],
    ['general.type', str('model')],
    [key('block_count'), u32(c.numLayers)],
    [key('context_length'), u32(contextLength)],
    [key('embedding_length'), u32(c.hiddenSize)],
    [key('feed_forward_length'), u32(c.intermediateSize)],
    [key('attention.head_count'), u32(c.numHeads)],
    [key('attention.head_count_kv'), u32(c.numKvHeads)],
  ];
  if (c.ropeScalingFactor > 1) {
    // llama.cpp's gpt-oss reads type, factor and original context; the betas only where they are its defaults (32, 1).
    out.push(
      [key('rope.scaling.type'), str('yarn')],
      [key('rope.scaling.factor'), f32(c.ropeScalingFactor)],
      [key('rope.scaling.original_context_length'), u32(c.initialContextLength)],
      [key('rope.scaling.yarn_beta_fast'), f32(c.ropeBetaFast)],
      [key('rope.scaling.yarn_beta_slow'), f32(c.ropeBetaSlow)],
    );
  }
  out.push(
    [key('rope.freq_base'), f32(c.ropeTheta)],
    [key('attention.layer_norm_rms_epsilon'), f32(c.rmsNormEps)],
    [key('expert_count'), u32(c.numExperts)],
    [key('expert_used_count'), u32(c.expertsPerToken)],
    [key('attention.key_length'), u32(c.headDim)],
    [key('attention.value_length'), u32(c.headDim)],
    ['general.file_type', u32(FILE_TYPE_MXFP4_MOE)],
    [key('attention.sliding_window'), u32(c.slidingWindow)],
    [key('expert_feed_forward_length'), u32(c.intermediateSize)],
  );
  // llama.cpp assumes gpt-oss's alternation (even layers sliding) unless the pattern says otherwise.
  if (c.slidingLayers.some((s, n) => s !== (n % 2 === 0))) out.push([key('attention.sliding_window_pattern'), arr('bool', c.slidingLayers)]);
  out.push(['general.quantization_version', u32(QUANTIZATION_VERSION)]);
  return out;
}

/**
 * o200k_harmony as GGUF tokenizer metadata: a GPT-2-style BPE (`gpt2`) with the `gpt-4o`
 * pre-tokenizer (the name convert_hf_to_gguf.py gives this vocabulary), tokens in tokenizer.json's
 * byte-level spelling, the added tokens as CONTROL, merges "left right", bos/eos/pad as in
 * tokenizer_config.json, and the chat template.
 */
export function ggufTokenizerMetadata(): [string, GgufValue][] {
  const names = hfVocabNames();
  if (names.length !== Tok.startoftext) throw new Error(`o200k_base has ${names.length} ranks, expected ${Tok.startoftext}`);
  const specials = hfSpecialTokens();
  const tokens = [...names, ...specials.map(([, content]) => content)];
  if (tokens.length !== HF_VOCAB_SIZE) throw new Error(`the vocabulary has ${tokens.length} tokens, expected ${HF_VOCAB_SIZE}`);
  const types = tokens.map((_, id) => (id < Tok.startoftext ? TOKEN_NORMAL : TOKEN_CONTROL));
  const merges = deriveMerges().map(([a, b]) => `${names[a]} ${names[b]}`);
  return [
    ['tokenizer.ggml.model', str('gpt2')],
    ['tokenizer.ggml.pre', str('gpt-4o')],
    ['tokenizer.ggml.tokens', arr('string', tokens)],
    ['tokenizer.ggml.token_type', arr('int32', types)],
    ['tokenizer.ggml.merges', arr('string', merges)],
    ['tokenizer.ggml.bos_token_id', u32(Tok.startoftext)],
    ['tokenizer.ggml.eos_token_id', u32(Tok.return)],
    ['tokenizer.ggml.padding_token_id', u32(Tok.endoftext)],
    ['tokenizer.chat_template', str(GPT_OSS_CHAT_TEMPLATE)],
  ];
}

function readRange(fd: number, buf: Uint8Array, position: number): void {
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, buf.length - done, position + done);
    if (n === 0) throw new CheckpointError(`unexpected end of file at byte ${position + done}`);
    done += n;
  }
}

/** Reads a tensor's byte range [begin, begin + length) through `read(fd)`, the file opened for the generator's life. */
function* withFile<T>(spec: NativeModelSpec, t: NativeTensor, body: (read: (begin: number, length: number) => Buffer) => Generator<T>): Generator<T> {
  const fd = openSync(spec.files[t.file]!, 'r');
  try {
    yield* body((begin, length) => {
      const buf = Buffer.alloc(length);
      readRange(fd, buf, t.offset + begin);
      return buf;
    });
  } finally {
    closeSync(fd);
  }
}

/** bf16 or f32 little-endian bytes → f32 little-endian bytes. */
function toF32(bytes: Buffer, dtype: string): Buffer {
  if (dtype === 'F32') return bytes;
  const out = Buffer.alloc(bytes.length * 2);
  for (let i = 0; i < bytes.length / 2; i++) out.writeUInt32LE((bytes.readUInt16LE(2 * i) << 16) >>> 0, 4 * i);
  return out;
}

/** The export plan: GGUF tensors whose data generators read the checkpoint when written. */
export function ggufTensors(spec: NativeModelSpec): GgufTensor[] {
  const c = spec.config;
  const byName = new Map(spec.tensors.map((t) => [t.name, t]));
  const hf = (name: string): NativeTensor => {
    const t = byName.get(name);
    if (t === undefined) throw new CheckpointError(`no tensor ${name} in the checkpoint`);
    return t;
  };
  const ne = (t: NativeTensor): number[] => [...t.shape].reverse();

  // A float tensor as is (BF16 or F32), streamed in chunks.
  const keep = (name: string, from: string): GgufTensor => {
    const t = hf(from);
    return {
      name,
      type: t.dtype as GgmlTypeName,
      ne: ne(t),
      data: () =>
        withFile(spec, t, function* (read) {
          for (let at = 0; at < t.byteLength; at += CHUNK) yield read(at, Math.min(CHUNK, t.byteLength - at));
        }),
    };
  };
  // A float tensor widened to F32 (small tensors: norms, biases, sinks, the router).
  const asF32 = (name: string, from: string): GgufTensor => {
    const t = hf(from);
    return {
      name,
      type: 'F32',
      ne: ne(t),
      data: () =>
        withFile(spec, t, function* (read) {
          yield toF32(read(0, t.byteLength), t.dtype);
        }),
    };
  };
  // gate_up_proj_bias [E, 2I]: gate is the even columns, up the odd ones; → F32 ne [I, E].
  const splitBias = (name: string, from: string, parity: 0 | 1): GgufTensor => {
    const t = hf(from);
    const [E, I2] = t.shape as [number, number];
    return {
      name,
      type: 'F32',
      ne: [I2 / 2, E],
      data: () =>
        withFile(spec, t, function* (read) {
          const all = toF32(read(0, t.byteLength), t.dtype);
          const out = Buffer.alloc(all.length / 2);
          for (let i = 0; i < (E * I2) / 2; i++) out.writeUInt32LE(all.readUInt32LE(4 * (2 * i + parity)), 4 * i);
          yield out;
        }),
    };
  };
  // Experts: blocks [E, R, nb, 16] + scales [E, R, nb] → MXFP4 ne [nb·32, rows, E], one expert per chunk.
  // `rows`: which HF rows, in order (all of down_proj's; gate_up's even or odd ones).
  const experts = (name: string, from: string, parity?: 0 | 1): GgufTensor => {
    const blocks = hf(`${from}_blocks`);
    const scales = hf(`${from}_scales`);
    const [E, R, nb] = blocks.shape as [number, number, number];
    const rows = parity === undefined ? R : R / 2;
    const step = parity === undefined ? 1 : 2;
    const first = parity ?? 0;
    return {
      name,
      type: 'MXFP4',
      ne: [nb * MXFP4_BLOCK, rows, E],
      data: () =>
        withFile(spec, blocks, function* (readBlocks) {
          yield* withFile(spec, scales, function* (readScales) {
            for (let e = 0; e < E; e++) {
              const b = readBlocks(e * R * nb * MXFP4_BYTES, R * nb * MXFP4_BYTES);
              const s = readScales(e * R * nb, R * nb);
              const out = Buffer.alloc(rows * nb * (MXFP4_BYTES + 1));
              for (let r = 0; r < rows; r++) {
                const src = first + r * step;
                for (let k = 0; k < nb; k++) repackMxfp4Block(b, (src * nb + k) * MXFP4_BYTES, s[src * nb + k]!, out, (r * nb + k) * (MXFP4_BYTES + 1));
              }
              yield out;
            }
          });
        }),
    };
  };

  const out: GgufTensor[] = [keep('token_embd.weight', 'model.embed_tokens.weight')];
  for (let n = 0; n < c.numLayers; n++) {
    const p = `model.layers.${n}`;
    const b = `blk.${n}`;
    out.push(
      asF32(`${b}.attn_norm.weight`, `${p}.input_layernorm.weight`),
      keep(`${b}.attn_q.weight`, `${p}.self_attn.q_proj.weight`),
      asF32(`${b}.attn_q.bias`, `${p}.self_attn.q_proj.bias`),
      keep(`${b}.attn_k.weight`, `${p}.self_attn.k_proj.weight`),
      asF32(`${b}.attn_k.bias`, `${p}.self_attn.k_proj.bias`),
      keep(`${b}.attn_v.weight`, `${p}.self_attn.v_proj.weight`),
      asF32(`${b}.attn_v.bias`, `${p}.self_attn.v_proj.bias`),
      keep(`${b}.attn_output.weight`, `${p}.self_attn.o_proj.weight`),
      asF32(`${b}.attn_output.bias`, `${p}.self_attn.o_proj.bias`),
      asF32(`${b}.attn_sinks.weight`, `${p}.self_attn.sinks`),
      asF32(`${b}.post_attention_norm.weight`, `${p}.post_attention_layernorm.weight`),
      asF32(`${b}.ffn_gate_inp.weight`, `${p}.mlp.router.weight`),
      asF32(`${b}.ffn_gate_inp.bias`, `${p}.mlp.router.bias`),
      experts(`${b}.ffn_gate_exps.weight`, `${p}.mlp.experts.gate_up_proj`, 0),
      splitBias(`${b}.ffn_gate_exps.bias`, `${p}.mlp.experts.gate_up_proj_bias`, 0),
      experts(`${b}.ffn_up_exps.weight`, `${p}.mlp.experts.gate_up_proj`, 1),
      splitBias(`${b}.ffn_up_exps.bias`, `${p}.mlp.experts.gate_up_proj_bias`, 1),
      experts(`${b}.ffn_down_exps.weight`, `${p}.mlp.experts.down_proj`),
      asF32(`${b}.ffn_down_exps.bias`, `${p}.mlp.experts.down_proj_bias`),
    );
  }
  out.push(asF32('output_norm.weight', 'model.norm.weight'), keep('output.weight', 'lm_head.weight'));
  return out;
}

/**
 * Writes `dir`'s gpt-oss checkpoint as a GGUF file at `out`, the same bytes every time. Throws
 * CheckpointError when `dir` is not a gpt-oss checkpoint, GgufExportError when llama.cpp could not
 * run it as the same model (another vocabulary, SwiGLU constants other than gpt-oss's).
 */
export function exportGguf(dir: string, out: string): void {
  const spec = loadCheckpoint(dir);
  const c = spec.config;
  if (c.swigluLimit !== LLAMA_CPP_SWIGLU.limit || c.swigluAlpha !== LLAMA_CPP_SWIGLU.alpha) {
    throw new GgufExportError(
      `${dir}: swiglu_limit ${c.swigluLimit} and swiglu_alpha ${c.swigluAlpha}; llama.cpp's gpt-oss has ${LLAMA_CPP_SWIGLU.limit} and ${LLAMA_CPP_SWIGLU.alpha} built in and GGUF cannot say otherwise`,
    );
  }
  if (c.vocabSize !== HF_VOCAB_SIZE) {
    throw new GgufExportError(`${dir}: vocab_size is ${c.vocabSize}; the GGUF carries o200k_harmony's tokenizer, which needs ${HF_VOCAB_SIZE}`);
  }
  const raw = JSON.parse(readFileSync(join(dir, CONFIG_FILE), 'utf8')) as Record<string, unknown>;
  writeGguf(out, [...ggufModelMetadata(c, raw), ...ggufTokenizerMetadata()], ggufTensors(spec));
}
