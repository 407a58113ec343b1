// The contract between the TypeScript engine and the C++ addon (native/). TypeScript validates the
// checkpoint (config, safetensors headers, names, shapes, dtypes) and hands the addon a fully
// resolved spec; the addon mmaps the files, checks every range again, and runs the model.
//
// Exactness contract: for a given engine and machine, the hidden states, logits and chosen tokens of
// a position depend only on the sequence's tokens up to that position — never on how the tokens were
// split into steps (prefill chunks, decode), on which other sequences share the step, or on the
// thread count. Every reduction runs in a fixed order per output element.

/** Model hyper-parameters, already normalised from config.json (HF names in comments). */
export interface NativeModelConfig {
  hiddenSize: number; // hidden_size
  intermediateSize: number; // intermediate_size (per expert)
  numLayers: number; // num_hidden_layers
  numHeads: number; // num_attention_heads
  numKvHeads: number; // num_key_value_heads
  headDim: number; // head_dim (not hidden_size / num_heads)
  numExperts: number; // num_local_experts
  expertsPerToken: number; // num_experts_per_tok
  vocabSize: number; // vocab_size
  slidingWindow: number; // sliding_window: keys [p - W + 1, p] on sliding layers
  /** Per layer: true = sliding-window attention (layer_types "sliding_attention"). */
  slidingLayers: boolean[];
  ropeTheta: number; // rope_theta
  ropeScalingFactor: number; // rope_scaling.factor (1 = no YaRN)
  ropeBetaFast: number; // rope_scaling.beta_fast (OpenAI rope_ntk_beta)
  ropeBetaSlow: number; // rope_scaling.beta_slow (OpenAI rope_ntk_alpha)
  initialContextLength: number; // rope_scaling.original_max_position_embeddings
  swigluLimit: number; // swiglu_limit
  swigluAlpha: number; // 1.702
  rmsNormEps: number; // rms_norm_eps
}

export type NativeDType = 'BF16' | 'F32' | 'U8';

/** One tensor: where its bytes are. `offset` is absolute in the file (8 + header length + data_offsets[0]). */
export interface NativeTensor {
  name: string;
  file: number; // index into NativeModelSpec.files
  offset: number;
  byteLength: number;
  dtype: NativeDType;
  shape: number[];
}

/**
 * Everything the addon needs to load a model. Tensor names are the Hugging Face root layout
 * (`model.embed_tokens.weight`, `model.layers.{n}.self_attn.q_proj.weight`, …,
 * `model.layers.{n}.mlp.experts.gate_up_proj_blocks`, `lm_head.weight`); see src/engine/checkpoint.ts.
 */
export interface NativeModelSpec {
  config: NativeModelConfig;
  files: string[];
  tensors: NativeTensor[];
}

export interface NativeEngineOptions {
  /** Tokens per KV block (default 16). */
  kvBlockSize?: number;
  /** Number of KV blocks in the pool; the pool is allocated up front. */
  kvBlocks: number;
  /**
   * 'full' (default): every layer keeps K/V for every position (any rollback works).
   * 'ring': sliding layers keep a ring of `slidingWindow + ringSlack` positions per sequence;
   * truncating further back than the ring still holds fails (returns false) and keeps nothing stale.
   */
  slidingKv?: 'full' | 'ring';
  /** Extra ring positions beyond the window (default kvBlockSize): how far a ring sequence can roll back. */
  ringSlack?: number;
  /** Worker threads (default: hardware concurrency). Results never depend on it. */
  threads?: number;
}

/** One entry of a step: feed `tokens` to `seq` at positions [length, length + tokens.length). */
export interface NativeStepEntry {
  seq: number;
  tokens: Int32Array;
  /**
   * Logits wanted: 'none' (default), 'last' (the last new position) or 'all' (every new position).
   * Written into `logitsOut` (length ≥ positions × vocabSize), row per position, in order, when
   * the step's promise resolves (the worker never writes into a JS buffer).
   */
  logits?: 'none' | 'last' | 'all';
  logitsOut?: Float32Array;
  /** Also return the experts chosen per new position and layer (positions × layers × k, in top-k order). */
  routing?: boolean;
}

export interface NativeStepResult {
  /** argmax of the last new position's logits (lowest id on ties): the greedy next token. */
  next: number;
  routing?: Int32Array;
}

/**
 * Debug switches for negative controls: each re-creates a real bug so the tests can show that the
 * project's properties catch it. All off by default; an omitted field leaves that switch as it is.
 * A non-boolean value throws and changes no switch.
 */
export interface NativeDebugOptions {
  /** Make matmul reductions depend on the number of tokens in the step (vLLM #5898's bug class). */
  batchVariantReduction?: boolean;
  /**
   * exo #1362 ("KV trim that silently does nothing"): `truncateSequence(seq, length)` validates its
   * arguments, then returns true but keeps everything — the length, the block table and the K/V
   * (the stale tail stays, so the next tokens are appended after it, at the old positions). In ring
   * mode too, even where the honest answer is false: exactly exo's mechanism, where the rotating
   * cache's trim did nothing. Shows up as logits that differ from a recomputation after rollback.
   */
  kvTrimNoop?: boolean;
  /**
   * "Eviction frees a block still referenced": `freeSequence(seq)` returns every block of the
   * sequence to the free pool whatever its reference count, so a block a fork still uses (shared
   * via `forkSequence`) can be handed out to another sequence and overwritten while the fork's block
   * table still points at it. Only K/V contents go stale/wrong; nothing outside the pool is touched
   * and nothing crashes: reference counts keep counting the remaining holders, and a per-block free
   * bit keeps each block in the free list at most once (when the fork is freed later, a block that
   * is already free is not inserted again), so `kvStats().blocksFree` counts such blocks as free
   * while they are still referenced, and returns to `blocksTotal` once every sequence is freed.
   */
  freeSharedBlocks?: boolean;
  /**
   * "Attention reads past the end of the sequence": the last token of each entry of a step also
   * attends to the next position of its last KV block (full-attention block layers, when that
   * position lies inside the block), a slot nobody wrote for this sequence: whatever an earlier
   * request, or the cached sequence a fork copied the block from, left there. The pool is zeroed
   * when the switch goes on, so a fresh engine reads zeros and never NaN; results then depend on
   * what ran before (vLLM #47305's class: freed blocks are never re-zeroed).
   */
  attendPastEnd?: boolean;
}

export interface NativeKvStats {
  blockSize: number;
  blocksTotal: number;
  blocksFree: number;
  /** Bytes of one block: K and V of every layer the blocks hold (in ring mode only the full layers). */
  blockBytes: number;
}

/** The addon's exports (native/build/Release/amnesia_native.node). */
export interface NativeAddon {
  /** Which kernel set the CPU selected at load: 'avx512', 'avx2' or 'scalar'. */
  simd(): string;
  /**
   * Read bandwidth of this machine (best of `repetitions` passes over a `bytes` buffer, `threads`
   * readers, the kernels' widest loads): the roofline the benchmark compares decode against.
   * Blocks the calling thread.
   */
  memoryBandwidth(bytes: number, threads: number, repetitions: number): { bytesPerSecond: number; bytes: number; threads: number; checksum: number };
  NativeModel: new (spec: NativeModelSpec) => NativeModel;
}

export interface NativeModel {
  readonly config: NativeModelConfig;
  createEngine(options: NativeEngineOptions): NativeEngine;
  /** Releases the mmaps once no engine uses them. */
  close(): void;
}

/**
 * One engine: a KV pool, its sequences and a thread pool. One step at a time: while a step is in
 * flight, `step`, `forkSequence`, `truncateSequence` and `freeSequence` reject/throw "engine busy"
 * (the scheduler awaits each step); `createSequence`, `sequenceLength` and `kvStats` still work.
 */
export interface NativeEngine {
  /** A new empty sequence. */
  createSequence(): number;
  /** A new sequence sharing the first `length` positions of `seq` (full blocks shared, the rest copied). */
  forkSequence(seq: number, length: number): number;
  /**
   * Drops positions ≥ length (equal: a no-op returning true; longer than the sequence: throws).
   * false, and nothing changed, when ring mode cannot roll back that far (after a long run a ring
   * sequence can roll back by up to ringSlack + 1 positions).
   */
  truncateSequence(seq: number, length: number): boolean;
  sequenceLength(seq: number): number;
  /** Releases the sequence's blocks (shared blocks when their last user goes). */
  freeSequence(seq: number): void;
  /**
   * One forward pass over a batch, off the JS thread. Rejects (and changes nothing) on a bad entry:
   * unknown sequence, a sequence twice in one step, empty tokens, a token id outside [0, vocab),
   * a too-small logitsOut, or not enough free KV blocks for the whole step.
   */
  step(entries: NativeStepEntry[]): Promise<NativeStepResult[]>;
  kvStats(): NativeKvStats;
  setDebug(options: NativeDebugOptions): void;
  /** Frees the KV pool; the engine is unusable afterwards. */
  close(): void;
}
