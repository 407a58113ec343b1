// Deterministic random gpt-oss checkpoints in the Hugging Face root layout, for any config: the
// tiny test model (make-tiny.ts) and the benchmark's 20b-shaped model use the same generator, and
// the same loader reads them as reads the real 20b. With the real vocabulary the folder also holds
// the Hugging Face tokenizer files (checkpoint-folder.ts), so other servers load it too.
//
// Determinism: the bytes depend only on the config and the seed — never on the machine, the run or
// the sharding. Each tensor draws from its own 32-bit integer PRNG (mulberry32, seeded from the seed
// and the tensor's name); normals are sums of four 16-bit uniforms (pure integer/float arithmetic, no
// Math.log/cos), rounded to float32, then to bf16 by round-to-nearest-even on the bits.
import { expectedTensors, parseModelConfig } from './checkpoint.ts';
import { writeCheckpointFolder } from './checkpoint-folder.ts';
import type { SafetensorsWriteTensor } from './safetensors.ts';

export interface RandomCheckpointOptions {
  /** PRNG seed, an integer in [0, 2^32). Default 1. */
  seed?: number;
  /** 1: model.safetensors; 2: two shards + model.safetensors.index.json. Default 1. */
  shards?: 1 | 2;
}

/**
 * lm_head rows scaled up so a random model emits harmony structure often: ×4 for <|constrain|>
 * 200003, <|channel|> 200005, <|start|> 200006, <|end|> 200007, <|message|> 200008; ×3 for the stop
 * tokens <|return|> 200002 and <|call|> 200012, so greedy runs are not cut short too often.
 */
export const HARMONY_BOOST: Readonly<Record<number, number>> = {
  200002: 3,
  200003: 4,
  200005: 4,
  200006: 4,
  200007: 4,
  200008: 4,
  200012: 3,
};

/**
 * Random weights give every one of ~200k ordinary tokens a random logit, so a message's terminator
 * (`<|end|>`, `<|return|>`, `<|call|>`) would be sampled once in thousands of tokens and content would
 * run to the token budget. Instead every embedding carries RESIDUAL_ANCHOR on dimension 0, which the
 * residual stream keeps, and the terminators' lm_head rows read it with weight END_PULL: their logits
 * sit steadily high (the other rows' dimension-0 weights are small and random), so messages end.
 */
export const RESIDUAL_ANCHOR = 3;
export const END_PULL = 7;
export const MESSAGE_ENDS: readonly number[] = [200007, 200002, 200012];

// ---- deterministic random numbers -------------------------------------------------------------

/** 32-bit seed for one tensor: FNV-1a over the name, mixed with the checkpoint seed (murmur3 fmix32). */
function tensorSeed(seed: number, name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  h ^= Math.imul(seed >>> 0, 0x9e3779b9);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** mulberry32: a 32-bit state integer PRNG; identical on every JS engine (Math.imul, int ops only). */
class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed | 0;
  }
  nextU32(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = Math.imul(this.state ^ (this.state >>> 15), 1 | this.state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  }
}

// Sum of four independent uniform integers in [0, 65535]: mean 2·65535, variance 4·(65536² − 1)/12.
const IH_MEAN = 2 * 65535;
const IH_INV_STD = 1 / Math.sqrt((65536 * 65536 - 1) / 3); // Math.sqrt is correctly rounded (IEEE 754)

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float64 → float32 (round to nearest even) → bf16 bits (round to nearest even). Finite inputs only. */
function bf16Bits(v: number): number {
  f32[0] = v;
  const bits = u32[0]!;
  return (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
}

/** bf16 values mean + std·z, z ≈ N(0, 1) (Irwin–Hall with n = 4, bounded at ±3.46). */
function normalBf16(count: number, rng: Rng, std: number, mean = 0): Uint8Array {
  const out = new Uint16Array(count);
  const scale = std * IH_INV_STD;
  for (let i = 0; i < count; i++) {
    const a = rng.nextU32();
    const b = rng.nextU32();
    const s = (a & 0xffff) + (a >>> 16) + (b & 0xffff) + (b >>> 16);
    out[i] = bf16Bits(mean + (s - IH_MEAN) * scale);
  }
  return new Uint8Array(out.buffer);
}

function randomBytesU8(count: number, rng: Rng): Uint8Array {
  const out = new Uint8Array(count);
  let i = 0;
  for (; i + 4 <= count; i += 4) {
    const r = rng.nextU32();
    out[i] = r & 0xff;
    out[i + 1] = (r >>> 8) & 0xff;
    out[i + 2] = (r >>> 16) & 0xff;
    out[i + 3] = r >>> 24;
  }
  for (; i < count; i++) out[i] = rng.nextU32() & 0xff;
  return out;
}

/** E8M0 scales uniform in [lo, lo + 4]: values up to 6·2^(lo + 4 - 127). */
function mxfp4Scales(count: number, rng: Rng, lo: number): Uint8Array {
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) out[i] = lo + (rng.nextU32() % 5);
  return out;
}

// ---- tensors ----------------------------------------------------------------------------------

/** The bytes of one tensor. Standard deviations keep activations O(1) at any size. */
function tensorBytes(name: string, shape: number[], seed: number): Uint8Array {
  const rng = new Rng(tensorSeed(seed, name));
  const count = shape.reduce((a, b) => a * b, 1);
  const fanIn = shape[shape.length - 1]!;
  const suffix = name.replace(/^model\.layers\.\d+\./, '');
  switch (suffix) {
    case 'model.embed_tokens.weight': {
      const data = normalBf16(count, rng, 1);
      // A constant along dimension 0 of every embedding: the residual stream carries it to the end.
      const bf = new Uint16Array(data.buffer);
      for (let j = 0; j < count; j += fanIn) bf[j] = bf16Bits(RESIDUAL_ANCHOR);
      return data;
    }
    case 'lm_head.weight': {
      const data = normalBf16(count, rng, 1 / Math.sqrt(fanIn));
      const bf = new Uint16Array(data.buffer);
      const f = new Float32Array(1);
      const u = new Uint32Array(f.buffer);
      for (const [tok, boost] of Object.entries(HARMONY_BOOST)) {
        const row = Number(tok);
        if (row >= shape[0]!) continue;
        for (let j = row * fanIn; j < (row + 1) * fanIn; j++) {
          u[0] = bf[j]! << 16;
          bf[j] = bf16Bits(f[0]! * boost);
        }
      }
      // Message terminators read that constant: a steady high logit, so messages end within tens of tokens.
      for (const row of MESSAGE_ENDS) if (row < shape[0]!) bf[row * fanIn] = bf16Bits(END_PULL);
      return data;
    }
    case 'model.norm.weight':
    case 'input_layernorm.weight':
    case 'post_attention_layernorm.weight':
      return normalBf16(count, rng, 0.1, 1);
    case 'self_attn.q_proj.weight':
    case 'self_attn.k_proj.weight':
    case 'self_attn.v_proj.weight':
    case 'self_attn.o_proj.weight':
    case 'mlp.router.weight':
      return normalBf16(count, rng, 1 / Math.sqrt(fanIn));
    case 'self_attn.q_proj.bias':
    case 'self_attn.k_proj.bias':
    case 'self_attn.v_proj.bias':
    case 'self_attn.o_proj.bias':
    case 'mlp.router.bias':
    case 'mlp.experts.gate_up_proj_bias':
    case 'mlp.experts.down_proj_bias':
      return normalBf16(count, rng, 0.1);
    case 'self_attn.sinks':
      return normalBf16(count, rng, 1);
    case 'mlp.experts.gate_up_proj_blocks':
    case 'mlp.experts.down_proj_blocks':
      return randomBytesU8(count, rng);
    // gate_up: 120..124 (weights rms ≈ 0.19, so |h| passes swiglu_limit 7 in ~1 of 5 expert rows);
    // down: 118..122, a quarter of the energy, so the MoE output stays comparable to attention's.
    case 'mlp.experts.gate_up_proj_scales':
      return mxfp4Scales(count, rng, 120);
    case 'mlp.experts.down_proj_scales':
      return mxfp4Scales(count, rng, 118);
    default:
      throw new Error(`random checkpoint: no generator for ${name}`);
  }
}

/**
 * Writes a random checkpoint for `configJson` into `outDir` (the files: writeCheckpointFolder).
 * The tensors' bytes depend only on the config and the seed, not on `shards`.
 */
export function writeRandomCheckpoint(outDir: string, configJson: Record<string, unknown>, options: RandomCheckpointOptions = {}): void {
  const seed = options.seed ?? 1;
  const shards = options.shards ?? 1;
  if (!Number.isSafeInteger(seed) || seed < 0 || seed > 0xffffffff)
    throw new RangeError(`random checkpoint: seed must be an integer in [0, 2^32), got ${seed}`);
  if (shards !== 1 && shards !== 2) throw new RangeError(`random checkpoint: shards must be 1 or 2, got ${String(shards)}`);
  const config = parseModelConfig(configJson, 'config.json');
  const tensors: SafetensorsWriteTensor[] = expectedTensors(config).map((t) => {
    const shape = t.shape.map((d) => d.value);
    return { name: t.name, dtype: t.dtypes[0]!, shape, data: () => tensorBytes(t.name, shape, seed) };
  });
  writeCheckpointFolder(outDir, configJson, tensors, shards);
}
