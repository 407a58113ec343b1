// Interfaces between the engine runtime's parts: the sampler (sampler.ts), the harmony grammar
// (grammar.ts) and the scheduler/generate loop that drives both (runtime.ts).

/**
 * The tokens allowed next. 'text' is every ordinary token (ids below 199998, the first special id)
 * plus `also`; 'only' is exactly `tokens`. Never empty.
 */
export type TokenMask = { kind: 'text'; also: readonly number[] } | { kind: 'only'; tokens: readonly number[] };

/** The first special token id: ids below it are ordinary BPE tokens. */
export const FIRST_SPECIAL_TOKEN = 199_998;

export interface SamplingParams {
  /** 0 = greedy (argmax, lowest id on ties). Default 1. */
  temperature?: number;
  /** Nucleus sampling mass in (0, 1]. Default 1 (off). */
  topP?: number;
  /** Keep the k most likely tokens; 0 = off. Default 0. */
  topK?: number;
  /** Seed of the counter-based generator; unseeded requests draw a fresh one. */
  seed?: number;
  /** Return the chosen token's log-probability. */
  logprobs?: boolean;
  /** Also return the n most likely tokens' log-probabilities (0–20). */
  topLogprobs?: number;
  /**
   * Added to the logits of these token ids before anything else (temperature, top-k/p, the grammar
   * mask still applies); −100 … 100. Log-probabilities stay those of the model's own logits.
   */
  logitBias?: Readonly<Record<number, number>>;
}

export interface TokenLogprob {
  token: number;
  logprob: number;
}

/** One sampled token. Log-probabilities are log-softmax of the exact logits (no temperature, no mask). */
export interface TokenChoice {
  token: number;
  logprob?: number;
  topLogprobs?: TokenLogprob[];
}

/** `tool_choice` as the grammar understands it. */
export type ToolChoice = 'auto' | 'none' | 'required' | { name: string };

export interface GrammarSpec {
  /** Declared function names (recipients `functions.NAME`). */
  tools: readonly string[];
  toolChoice: ToolChoice;
}
