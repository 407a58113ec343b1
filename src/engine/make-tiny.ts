// A tiny random gpt-oss checkpoint in the Hugging Face root layout, for tests. Dimensions are
// chosen to expose layout bugs (notes §1.10): H 64 ≠ I 96, q width 8·16 = 128 ≠ H, GQA 8:2,
// 4 layers alternating sliding/full with a window of 8, 8 experts top-2, YaRN as in the real
// config, and the real 201088-entry vocabulary.
// The bytes come from random-checkpoint.ts and depend only on the seed.
// Bump TINY_VERSION whenever the folder's files or their bytes change (the cache directory is named
// after it). v3: the Hugging Face tokenizer files (tokenizer.json, tokenizer_config.json,
// special_tokens_map.json); the weights are v2's. v4: config.json writes float fields as floats (7.0).
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ensureCheckpoint } from './checkpoint-folder.ts';
import { writeRandomCheckpoint, type RandomCheckpointOptions } from './random-checkpoint.ts';

export { HARMONY_BOOST } from './random-checkpoint.ts';

export const TINY_VERSION = 'v4';

export type TinyCheckpointOptions = RandomCheckpointOptions;

const LAYERS = 4;

/** The tiny model's config.json, in the style (keys, values, order) of openai/gpt-oss-20b's. */
export function tinyConfigJson(): Record<string, unknown> {
  return {
    architectures: ['GptOssForCausalLM'],
    attention_bias: true,
    attention_dropout: 0.0,
    eos_token_id: 200002,
    experts_per_token: 2,
    head_dim: 16,
    hidden_act: 'silu',
    hidden_size: 64,
    initial_context_length: 4096,
    initializer_range: 0.02,
    intermediate_size: 96,
    layer_types: Array.from({ length: LAYERS }, (_, n) => (n % 2 === 0 ? 'sliding_attention' : 'full_attention')),
    max_position_embeddings: 131072,
    model_type: 'gpt_oss',
    num_attention_heads: 8,
    num_experts_per_tok: 2,
    num_hidden_layers: LAYERS,
    num_key_value_heads: 2,
    num_local_experts: 8,
    output_router_logits: false,
    pad_token_id: 199999,
    quantization_config: {
      modules_to_not_convert: ['model.layers.*.self_attn', 'model.layers.*.mlp.router', 'model.embed_tokens', 'lm_head'],
      quant_method: 'mxfp4',
    },
    rms_norm_eps: 1e-5,
    rope_scaling: {
      beta_fast: 32.0,
      beta_slow: 1.0,
      factor: 32.0,
      original_max_position_embeddings: 4096,
      rope_type: 'yarn',
      truncate: false,
    },
    rope_theta: 150000,
    router_aux_loss_coef: 0.9,
    sliding_window: 8,
    swiglu_limit: 7.0,
    tie_word_embeddings: false,
    transformers_version: '4.55.0.dev0',
    use_cache: true,
    vocab_size: 201088,
  };
}

/** Writes the tiny checkpoint into `outDir`, tokenizer files included (see writeRandomCheckpoint for the files). */
export function makeTinyCheckpoint(outDir: string, options: TinyCheckpointOptions = {}): void {
  writeRandomCheckpoint(outDir, tinyConfigJson(), options);
}

/** amnesia's cache directory: $AMNESIA_CACHE_DIR, else $XDG_CACHE_HOME/amnesia, else ~/.cache/amnesia. */
export function amnesiaCacheDir(): string {
  const own = process.env.AMNESIA_CACHE_DIR;
  if (own !== undefined && own !== '') return own;
  const xdg = process.env.XDG_CACHE_HOME;
  if (xdg !== undefined && xdg !== '') return join(xdg, 'amnesia');
  return join(homedir(), '.cache', 'amnesia');
}

/** Where ensureTinyCheckpoint keeps the tiny model: `<cache>/models/tiny-v4-seed<seed>` (`-shards2` when sharded). */
export function tinyModelDir(seed = 1, shards: 1 | 2 = 1): string {
  return join(amnesiaCacheDir(), 'models', `tiny-${TINY_VERSION}-seed${seed}${shards === 1 ? '' : `-shards${shards}`}`);
}

/** The tiny checkpoint's directory, generated on first use (safe when several processes race). */
export async function ensureTinyCheckpoint(seed = 1, shards: 1 | 2 = 1): Promise<string> {
  return ensureCheckpoint(tinyModelDir(seed, shards), (dir) => makeTinyCheckpoint(dir, { seed, shards }));
}
