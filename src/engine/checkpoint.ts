// gpt-oss checkpoints in the Hugging Face root layout (openai/gpt-oss-20b, -120b, and the tiny test
// model): config.json → NativeModelConfig, and the safetensors file(s) → a fully resolved
// NativeModelSpec (absolute file paths, absolute byte offsets, checked names, shapes and dtypes).
//
// Expected tensors (MXFP4 layout; notes §1.3), H = hidden_size, I = intermediate_size, E = experts,
// hd = head_dim, V = vocab_size:
//   model.embed_tokens.weight [V, H]      lm_head.weight [V, H]      model.norm.weight [H]
//   model.layers.{n}.input_layernorm.weight [H], post_attention_layernorm.weight [H]
//   model.layers.{n}.self_attn.q_proj.weight [heads·hd, H] + .bias [heads·hd]
//   model.layers.{n}.self_attn.{k,v}_proj.weight [kvHeads·hd, H] + .bias [kvHeads·hd]
//   model.layers.{n}.self_attn.o_proj.weight [H, heads·hd] + .bias [H], self_attn.sinks [heads]
//   model.layers.{n}.mlp.router.weight [E, H] + .bias [E]
//   model.layers.{n}.mlp.experts.gate_up_proj_blocks [E, 2I, H/32, 16] U8, _scales [E, 2I, H/32] U8,
//     gate_up_proj_bias [E, 2I], down_proj_blocks [E, H, I/32, 16] U8, _scales [E, H, I/32] U8,
//     down_proj_bias [E, H]
// Float tensors may be BF16 (the published checkpoints) or F32. Unknown extra tensors are ignored.
import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { isAbsolute, join, normalize, resolve, sep } from 'node:path';
import type { NativeDType, NativeModelConfig, NativeModelSpec, NativeTensor } from './native-api.ts';
import { CheckpointError, readSafetensorsHeader, type SafetensorsHeader } from './safetensors.ts';

export { CheckpointError } from './safetensors.ts';

export const CONFIG_FILE = 'config.json';
export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

/** MXFP4 block: 32 elements along the input dimension, 16 bytes of codes + 1 scale byte. */
export const MXFP4_BLOCK = 32;

const READ_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'it is a directory',
};

function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    throw new CheckpointError(`${file}: cannot read: ${READ_ERRORS[code] ?? (e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(`${file}: not valid JSON: ${(e as Error).message}`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** YaRN correction range in rotary dims (OpenAI `_compute_concentration_and_inv_freq`, truncate false). */
export function yarnBounds(
  headDim: number,
  ropeTheta: number,
  initialContextLength: number,
  betaFast: number,
  betaSlow: number,
): { low: number; high: number } {
  const dHalf = headDim / 2;
  const low = (dHalf * Math.log(initialContextLength / (betaFast * 2 * Math.PI))) / Math.log(ropeTheta);
  const high = (dHalf * Math.log(initialContextLength / (betaSlow * 2 * Math.PI))) / Math.log(ropeTheta);
  return { low, high };
}

/**
 * Normalises a parsed Hugging Face gpt-oss config.json. `file` only labels error messages.
 * Accepts `rope_scaling` or transformers-v5 `rope_parameters` (with rope_theta inside),
 * `num_local_experts` or `num_experts`, `num_experts_per_tok` or `experts_per_token`, and
 * `layer_types` (absent: even layers sliding). Defaults: swiglu_alpha 1.702, rms_norm_eps 1e-5.
 */
export function parseModelConfig(json: unknown, file = CONFIG_FILE): NativeModelConfig {
  const bad = (msg: string): never => {
    throw new CheckpointError(`${file}: ${msg}`);
  };
  if (!isObject(json)) bad('expected a JSON object');
  const cfg = json as Record<string, unknown>;
  const show = (v: unknown): string => JSON.stringify(v) ?? String(v);

  // Looks a field up under the first of its names present; `where` prefixes nested names.
  const pick = (obj: Record<string, unknown>, names: string[], where = ''): { key: string; value: unknown } | undefined => {
    for (const n of names) if (obj[n] !== undefined && obj[n] !== null) return { key: where + n, value: obj[n] };
    return undefined;
  };
  const describe = (names: string[], where = ''): string => names.map((n) => `"${where}${n}"`).join(' or ');
  const posInt = (obj: Record<string, unknown>, names: string[], where = ''): number => {
    const f = pick(obj, names, where);
    if (f === undefined) return bad(`missing field ${describe(names, where)}`);
    if (typeof f.value !== 'number' || !Number.isSafeInteger(f.value) || f.value <= 0) {
      return bad(`field "${f.key}" must be a positive integer, got ${show(f.value)}`);
    }
    return f.value;
  };
  const posNum = (obj: Record<string, unknown>, names: string[], where = '', fallback?: number): number => {
    const f = pick(obj, names, where);
    if (f === undefined) {
      if (fallback !== undefined) return fallback;
      return bad(`missing field ${describe(names, where)}`);
    }
    if (typeof f.value !== 'number' || !Number.isFinite(f.value) || f.value <= 0) {
      return bad(`field "${f.key}" must be a positive number, got ${show(f.value)}`);
    }
    return f.value;
  };

  const hiddenSize = posInt(cfg, ['hidden_size']);
  const intermediateSize = posInt(cfg, ['intermediate_size']);
  const numLayers = posInt(cfg, ['num_hidden_layers']);
  const numHeads = posInt(cfg, ['num_attention_heads']);
  const numKvHeads = posInt(cfg, ['num_key_value_heads']);
  const headDim = posInt(cfg, ['head_dim']);
  const numExperts = posInt(cfg, ['num_local_experts', 'num_experts']);
  const expertsPerToken = posInt(cfg, ['num_experts_per_tok', 'experts_per_token']);
  const vocabSize = posInt(cfg, ['vocab_size']);
  const slidingWindow = posInt(cfg, ['sliding_window']);
  const swigluLimit = posNum(cfg, ['swiglu_limit']);
  const swigluAlpha = posNum(cfg, ['swiglu_alpha'], '', 1.702);
  const rmsNormEps = posNum(cfg, ['rms_norm_eps'], '', 1e-5);

  for (const [field, v] of [
    ['hidden_size', hiddenSize],
    ['intermediate_size', intermediateSize],
  ] as const) {
    if (v % MXFP4_BLOCK !== 0) bad(`field "${field}" must be a multiple of ${MXFP4_BLOCK} (MXFP4 blocks), got ${v}`);
  }
  if (numHeads % numKvHeads !== 0) {
    bad(`field "num_attention_heads" (${numHeads}) must be a multiple of "num_key_value_heads" (${numKvHeads})`);
  }
  if (headDim % 2 !== 0) bad(`field "head_dim" must be even (rotary halves), got ${headDim}`);
  if (expertsPerToken > numExperts) {
    bad(`experts per token (${expertsPerToken}) exceeds the number of experts (${numExperts})`);
  }
  if (cfg.tie_word_embeddings === true) bad('field "tie_word_embeddings" is true; gpt-oss has a separate lm_head');
  if (cfg.quantization_config !== undefined && cfg.quantization_config !== null) {
    const q = cfg.quantization_config;
    const method = isObject(q) ? q.quant_method : undefined;
    if (method !== 'mxfp4') {
      bad(`field "quantization_config.quant_method" must be "mxfp4" (the only supported expert layout), got ${show(method)}`);
    }
  }

  // layer_types, or the gpt-oss default: even layers sliding, odd layers full.
  let slidingLayers: boolean[];
  if (cfg.layer_types === undefined || cfg.layer_types === null) {
    slidingLayers = Array.from({ length: numLayers }, (_, n) => n % 2 === 0);
  } else {
    const lt = cfg.layer_types;
    if (!Array.isArray(lt) || lt.length !== numLayers) {
      return bad(`field "layer_types" must be a list of num_hidden_layers (${numLayers}) entries, got ${show(lt)}`);
    }
    slidingLayers = lt.map((t, n) => {
      if (t === 'sliding_attention') return true;
      if (t === 'full_attention') return false;
      return bad(`field "layer_types[${n}]" must be "sliding_attention" or "full_attention", got ${show(t)}`);
    });
  }

  // RoPE: rope_scaling (transformers v4) or rope_parameters (v5, holds rope_theta too).
  const scalingKey = cfg.rope_scaling !== undefined && cfg.rope_scaling !== null ? 'rope_scaling' : 'rope_parameters';
  const scaling = cfg[scalingKey];
  if (scaling !== undefined && scaling !== null && !isObject(scaling)) {
    bad(`field "${scalingKey}" must be an object, got ${show(scaling)}`);
  }
  const rope = (scaling ?? {}) as Record<string, unknown>;
  const where = `${scalingKey}.`;
  const ropeTheta =
    pick(cfg, ['rope_theta']) !== undefined || pick(rope, ['rope_theta']) === undefined ? posNum(cfg, ['rope_theta']) : posNum(rope, ['rope_theta'], where);
  if (ropeTheta <= 1) bad(`field "rope_theta" must be greater than 1, got ${ropeTheta}`);

  const ropeTypeField = pick(rope, ['rope_type', 'type']);
  if (ropeTypeField === undefined && Object.keys(rope).some((k) => k !== 'rope_theta')) {
    bad(`missing field "${where}rope_type"`);
  }
  const ropeType = ropeTypeField?.value ?? 'default';
  let ropeScalingFactor = 1;
  let ropeBetaFast = 32;
  let ropeBetaSlow = 1;
  let initialContextLength =
    typeof cfg.initial_context_length === 'number' && Number.isSafeInteger(cfg.initial_context_length) && cfg.initial_context_length > 0
      ? cfg.initial_context_length
      : 4096;
  if (ropeType === 'yarn') {
    ropeScalingFactor = posNum(rope, ['factor'], where);
    if (ropeScalingFactor < 1) bad(`field "${where}factor" must be at least 1, got ${ropeScalingFactor}`);
    ropeBetaFast = posNum(rope, ['beta_fast'], where);
    ropeBetaSlow = posNum(rope, ['beta_slow'], where);
    initialContextLength =
      pick(rope, ['original_max_position_embeddings']) !== undefined || pick(cfg, ['initial_context_length']) === undefined
        ? posInt(rope, ['original_max_position_embeddings'], where)
        : posInt(cfg, ['initial_context_length']);
    if (rope.truncate === true) {
      bad(`field "${where}truncate" is true (integer-rounded YaRN bounds); gpt-oss uses false and only that is supported`);
    }
    if (rope.truncate !== undefined && typeof rope.truncate !== 'boolean') {
      bad(`field "${where}truncate" must be a boolean, got ${show(rope.truncate)}`);
    }
  } else if (ropeType !== 'default') {
    bad(`field "${where}rope_type" must be "yarn" or "default", got ${show(ropeType)}`);
  }
  if (ropeScalingFactor > 1) {
    const { low, high } = yarnBounds(headDim, ropeTheta, initialContextLength, ropeBetaFast, ropeBetaSlow);
    const dHalf = headDim / 2;
    if (!(low > 0 && low < high && high < dHalf - 1)) {
      bad(
        `YaRN needs 0 < low < high < head_dim/2 - 1, got low ${low.toFixed(4)}, high ${high.toFixed(4)}, ` +
          `head_dim/2 - 1 = ${dHalf - 1} (from head_dim ${headDim}, rope_theta ${ropeTheta}, ` +
          `${where}original_max_position_embeddings ${initialContextLength}, beta_fast ${ropeBetaFast}, beta_slow ${ropeBetaSlow})`,
      );
    }
  }

  return {
    hiddenSize,
    intermediateSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    numExperts,
    expertsPerToken,
    vocabSize,
    slidingWindow,
    slidingLayers,
    ropeTheta,
    ropeScalingFactor,
    ropeBetaFast,
    ropeBetaSlow,
    initialContextLength,
    swigluLimit,
    swigluAlpha,
    rmsNormEps,
  };
}

/** Reads and normalises `<dir>/config.json`. */
export function readModelConfig(dir: string): NativeModelConfig {
  const file = join(dir, CONFIG_FILE);
  return parseModelConfig(readJsonFile(file), file);
}

/** One dimension of an expected shape: its value and the config fields it comes from. */
export interface ExpectedDim {
  value: number;
  from: string;
}

export interface ExpectedTensor {
  name: string;
  shape: ExpectedDim[];
  dtypes: NativeDType[];
}

const FLOAT: NativeDType[] = ['BF16', 'F32'];
const BYTES: NativeDType[] = ['U8'];

/** The tensors a gpt-oss checkpoint must hold for `config`, in canonical order. */
export function expectedTensors(c: NativeModelConfig): ExpectedTensor[] {
  const H: ExpectedDim = { value: c.hiddenSize, from: 'hidden_size' };
  const V: ExpectedDim = { value: c.vocabSize, from: 'vocab_size' };
  const E: ExpectedDim = { value: c.numExperts, from: 'num_local_experts' };
  const Q: ExpectedDim = { value: c.numHeads * c.headDim, from: 'num_attention_heads·head_dim' };
  const KV: ExpectedDim = { value: c.numKvHeads * c.headDim, from: 'num_key_value_heads·head_dim' };
  const heads: ExpectedDim = { value: c.numHeads, from: 'num_attention_heads' };
  const I2: ExpectedDim = { value: 2 * c.intermediateSize, from: '2·intermediate_size' };
  const Hb: ExpectedDim = { value: c.hiddenSize / MXFP4_BLOCK, from: 'hidden_size/32' };
  const Ib: ExpectedDim = { value: c.intermediateSize / MXFP4_BLOCK, from: 'intermediate_size/32' };
  const B16: ExpectedDim = { value: 16, from: '16 bytes per MXFP4 block' };
  const t = (name: string, shape: ExpectedDim[], dtypes = FLOAT): ExpectedTensor => ({ name, shape, dtypes });

  const out: ExpectedTensor[] = [t('model.embed_tokens.weight', [V, H])];
  for (let n = 0; n < c.numLayers; n++) {
    const p = `model.layers.${n}`;
    out.push(
      t(`${p}.input_layernorm.weight`, [H]),
      t(`${p}.self_attn.q_proj.weight`, [Q, H]),
      t(`${p}.self_attn.q_proj.bias`, [Q]),
      t(`${p}.self_attn.k_proj.weight`, [KV, H]),
      t(`${p}.self_attn.k_proj.bias`, [KV]),
      t(`${p}.self_attn.v_proj.weight`, [KV, H]),
      t(`${p}.self_attn.v_proj.bias`, [KV]),
      t(`${p}.self_attn.o_proj.weight`, [H, Q]),
      t(`${p}.self_attn.o_proj.bias`, [H]),
      t(`${p}.self_attn.sinks`, [heads]),
      t(`${p}.post_attention_layernorm.weight`, [H]),
      t(`${p}.mlp.router.weight`, [E, H]),
      t(`${p}.mlp.router.bias`, [E]),
      t(`${p}.mlp.experts.gate_up_proj_blocks`, [E, I2, Hb, B16], BYTES),
      t(`${p}.mlp.experts.gate_up_proj_scales`, [E, I2, Hb], BYTES),
      t(`${p}.mlp.experts.gate_up_proj_bias`, [E, I2]),
      t(`${p}.mlp.experts.down_proj_blocks`, [E, H, Ib, B16], BYTES),
      t(`${p}.mlp.experts.down_proj_scales`, [E, H, Ib], BYTES),
      t(`${p}.mlp.experts.down_proj_bias`, [E, H]),
    );
  }
  out.push(t('model.norm.weight', [H]), t('lm_head.weight', [V, H]));
  return out;
}

function missingHint(name: string, available: ReadonlySet<string>): string {
  const m = /^(.*\.mlp\.experts\.(?:gate_up|down)_proj)_(?:blocks|scales)$/.exec(name);
  if (m !== null && available.has(m[1]!)) {
    return ` (found ${m[1]}: a dequantized bf16 checkpoint; only the MXFP4 layout is supported)`;
  }
  return '';
}

/** Resolves a shard name from the index to a path inside `dir`, or undefined if it escapes it. */
function shardPath(dir: string, name: string): string | undefined {
  if (name === '' || isAbsolute(name)) return undefined;
  const norm = normalize(name);
  if (norm === '..' || norm.startsWith(`..${sep}`)) return undefined;
  return resolve(dir, norm);
}

/**
 * Loads a gpt-oss checkpoint directory in the Hugging Face root layout: config.json plus either
 * `model.safetensors` or the shards listed in `model.safetensors.index.json`. Reads only headers.
 * Every expected tensor is checked for presence, shape and dtype; throws CheckpointError naming the
 * file and tensor otherwise. Returned files are absolute; offsets are absolute byte positions.
 */
export function loadCheckpoint(dir: string): NativeModelSpec {
  const absDir = resolve(dir);
  const config = readModelConfig(absDir);
  const expected = expectedTensors(config);

  // tensor name → the header of the file that holds it
  const lookup = new Map<string, SafetensorsHeader>();
  const available = new Set<string>();
  const single = join(absDir, SINGLE_FILE);
  const index = join(absDir, INDEX_FILE);
  let missing: (name: string) => never;

  if (existsSync(single)) {
    const header = readSafetensorsHeader(single);
    for (const name of header.tensors.keys()) {
      lookup.set(name, header);
      available.add(name);
    }
    missing = (name) => {
      throw new CheckpointError(`${single}: missing tensor ${name}${missingHint(name, available)}`);
    };
  } else if (existsSync(index)) {
    const json = readJsonFile(index);
    if (!isObject(json) || !isObject(json.weight_map)) {
      throw new CheckpointError(`${index}: missing field "weight_map" (an object of tensor name → shard file)`);
    }
    const weightMap = json.weight_map;
    const byShard = new Map<string, string[]>();
    for (const [name, shard] of Object.entries(weightMap)) {
      if (typeof shard !== 'string') {
        throw new CheckpointError(`${index}: weight_map entry for ${name} must be a file name, got ${JSON.stringify(shard)}`);
      }
      available.add(name);
      const list = byShard.get(shard);
      if (list === undefined) byShard.set(shard, [name]);
      else list.push(name);
    }
    const headers = new Map<string, SafetensorsHeader>();
    for (const shard of [...byShard.keys()].sort()) {
      const names = byShard.get(shard)!;
      const path = shardPath(absDir, shard);
      if (path === undefined) {
        throw new CheckpointError(`${index}: shard ${JSON.stringify(shard)} (for ${names[0]}) is not a file inside ${absDir}`);
      }
      if (!existsSync(path)) {
        throw new CheckpointError(
          `${index}: shard ${shard} does not exist (named for ${names.length} tensor${names.length === 1 ? '' : 's'}, e.g. ${names[0]}; looked for ${path})`,
        );
      }
      headers.set(shard, readSafetensorsHeader(path));
    }
    for (const [name, shard] of Object.entries(weightMap) as [string, string][]) {
      const header = headers.get(shard)!;
      if (header.tensors.has(name)) lookup.set(name, header);
    }
    missing = (name) => {
      const shard = weightMap[name];
      if (typeof shard === 'string') {
        throw new CheckpointError(`${index}: weight_map puts tensor ${name} in ${shard}, but ${headers.get(shard)!.file} has no tensor ${name}`);
      }
      throw new CheckpointError(`${index}: missing tensor ${name} (no weight_map entry)${missingHint(name, available)}`);
    };
  } else {
    throw new CheckpointError(`${absDir}: no ${SINGLE_FILE} or ${INDEX_FILE}`);
  }

  const files: string[] = [];
  const fileIndex = new Map<string, number>();
  const tensors: NativeTensor[] = expected.map((exp) => {
    const header = lookup.get(exp.name);
    if (header === undefined) return missing(exp.name);
    const info = header.tensors.get(exp.name)!;
    if (!(exp.dtypes as string[]).includes(info.dtype)) {
      throw new CheckpointError(`${header.file}: tensor ${exp.name} has dtype ${info.dtype}, expected ${exp.dtypes.join(' or ')}`);
    }
    const want = exp.shape.map((d) => d.value);
    if (info.shape.length !== want.length || info.shape.some((d, i) => d !== want[i])) {
      throw new CheckpointError(
        `${header.file}: tensor ${exp.name} has shape [${info.shape.join(', ')}], expected [${want.join(', ')}] = [${exp.shape.map((d) => d.from).join(', ')}]`,
      );
    }
    let fi = fileIndex.get(header.file);
    if (fi === undefined) {
      fi = files.length;
      files.push(header.file);
      fileIndex.set(header.file, fi);
    }
    return { name: exp.name, file: fi, offset: info.offset, byteLength: info.byteLength, dtype: info.dtype as NativeDType, shape: info.shape };
  });
  return { config, files, tensors };
}

/** The raw bytes of one tensor of a loaded checkpoint (read from its file, not mmapped). */
export function readTensorBytes(spec: NativeModelSpec, name: string): Buffer {
  const t = spec.tensors.find((x) => x.name === name);
  if (t === undefined) throw new CheckpointError(`no tensor ${name} in the checkpoint`);
  const buf = Buffer.alloc(t.byteLength);
  const fd = openSync(spec.files[t.file]!, 'r');
  try {
    readSync(fd, buf, 0, t.byteLength, t.offset);
  } finally {
    closeSync(fd);
  }
  return buf;
}
