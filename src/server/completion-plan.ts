// A validated chat request → what the runtime is asked to do: the rendered prompt, the sampling of
// each choice, the token budget, stop strings and the harmony grammar (spec/api.md "Requests").
import { randomInt } from 'node:crypto';
import { chatToHarmony, type MappingOptions } from '../harmony/chat-to-harmony.ts';
import { renderCompletionPieces, type Piece } from '../harmony/render.ts';
import { encodePieces, minTokenCount } from '../harmony/tokens.ts';
import type { ChatRequest, ChatToolChoice } from '../wire/chat-completions.ts';
import type { Failpoints, SamplingDefaults } from '../engine/failpoints.ts';
import type { GrammarSpec, SamplingParams } from '../engine/runtime-api.ts';
import { ApiError, invalidRequest } from './api-error.ts';
import { sharedTokenizePool, type TokenizePool } from './tokenize-pool.ts';

export { TokenizingStopped } from './tokenize-pool.ts';

/** Budget when the request names none: this much, or what the context has left if less. */
export const DEFAULT_MAX_TOKENS = 4096;

/**
 * A prompt with at least this many characters of text is tokenized in a worker thread
 * (tokenize-pool.ts), one with fewer on the event loop. Measured (node 20, one core): 16K characters
 * take 2 ms to encode as English, 6–7 ms as a run without spaces or of CJK, so the event loop is never
 * held longer; a worker adds well under a millisecond once started (starting one: about 0.5 s, on
 * the first large prompt).
 */
export const OFF_LOOP_MIN_CHARS = 16 * 1024;

/**
 * Which requests the harmony grammar holds to well-formed harmony: every one, those that declare
 * tools (the tiny model: tool use must be well-formed to be useful; plain chats stay unconstrained,
 * as on a real model), or only those whose tool_choice is not auto (real checkpoints).
 */
export type GrammarMode = 'always' | 'tools' | 'tool-choice';

export interface PlanOptions {
  modelId: string;
  contextLength: number;
  /** The model's vocabulary: logit_bias keys must be ids below it. */
  vocabSize: number;
  grammar: GrammarMode;
  mapping: MappingOptions;
  /** The runtime's failpoints that act while planning (sticky-sampling, sticky-reasoning-effort, render-cache). */
  failpoints?: Pick<Failpoints, 'stickySampling' | 'sharedSystemContent' | 'sharedRenderMemo'>;
}

export interface CompletionPlan {
  prompt: number[];
  maxTokens: number;
  /** One entry per choice (`n`): choice i samples with seed + i. */
  sampling: SamplingParams[];
  grammar: GrammarSpec | null;
  stop: string[];
  logprobs: boolean;
  topLogprobs: number;
  stream: boolean;
  includeUsage: boolean;
}

/** The fields of a body that passed request-schema.ts (so their types are known). */
interface Body extends ChatRequest {
  temperature?: number | null;
  top_p?: number | null;
  seed?: number | null;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  stop?: string | string[] | null;
  n?: number | null;
  logprobs?: boolean | null;
  top_logprobs?: number | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
  logit_bias?: Record<string, number> | null;
}

function grammarFor(body: Body, mode: GrammarMode): GrammarSpec | null {
  const tools = (body.tools ?? []).map((t) => t.function.name);
  const choice: ChatToolChoice = body.tool_choice ?? 'auto';
  if (typeof choice === 'object') {
    if (!tools.includes(choice.function.name)) {
      throw invalidRequest(`tool_choice names '${choice.function.name}', which is not a function in tools`, 'tool_choice.function.name', 'unknown_function');
    }
    return { tools, toolChoice: { name: choice.function.name } };
  }
  if (choice === 'required' && tools.length === 0) throw invalidRequest(`tool_choice 'required' needs at least one tool`, 'tool_choice');
  // Without the grammar the model may do as it likes; tool_choice other than auto needs it.
  const wanted = choice !== 'auto' || mode === 'always' || (mode === 'tools' && tools.length > 0);
  if (!wanted) return null;
  return { tools, toolChoice: choice };
}

/** A request checked and rendered, before its prompt is tokenized. */
interface RenderedRequest {
  body: Body;
  pieces: Piece[];
  grammar: GrammarSpec | null;
}

const promptTooLong = (what: string, options: PlanOptions): ApiError =>
  invalidRequest(`the prompt is ${what} tokens; the context holds ${options.contextLength}`, 'messages', 'context_length_exceeded');

function renderRequest(raw: unknown, options: PlanOptions): RenderedRequest {
  const body = raw as Body;
  if (body.model != null && body.model !== options.modelId) {
    throw new ApiError(
      404,
      `the model '${body.model}' does not exist; this server serves '${options.modelId}'`,
      'invalid_request_error',
      'model',
      'model_not_found',
    );
  }
  const sharedSystem = options.failpoints?.sharedSystemContent(); // Failpoint sticky-reasoning-effort
  const conversation = chatToHarmony(body, sharedSystem ? { ...options.mapping, sharedSystem } : options.mapping);
  // Failpoint render-cache: the prompt of an earlier request with the same turns.
  const memo = options.failpoints?.sharedRenderMemo();
  const pieces = memo ? memo.completionPieces(conversation, 'assistant') : renderCompletionPieces(conversation, 'assistant');
  const grammar = grammarFor(body, options.grammar);
  // Before any merging: a text of n UTF-8 bytes is at least ⌈n / 128⌉ tokens.
  const least = minTokenCount(pieces);
  if (least >= options.contextLength) throw promptTooLong(`at least ${least}`, options);
  return { body, pieces, grammar };
}

/** The longest prompt the context holds (one token is left to generate). */
const promptLimit = (options: PlanOptions): number => options.contextLength - 1;

/** Plans on the event loop, whatever the prompt's size. */
export function planCompletion(raw: unknown, options: PlanOptions): CompletionPlan {
  const rendered = renderRequest(raw, options);
  return plan(rendered, encodePieces(rendered.pieces, promptLimit(options)), options);
}

/**
 * Plans with a large prompt's tokenizing in a worker thread (OFF_LOOP_MIN_CHARS), so the event loop
 * stays free. Rejects with TokenizingStopped once the pool is stopped (shutdown).
 */
export async function planCompletionOffLoop(raw: unknown, options: PlanOptions, pool: TokenizePool = sharedTokenizePool()): Promise<CompletionPlan> {
  const rendered = renderRequest(raw, options);
  let chars = 0;
  for (const piece of rendered.pieces) if (typeof piece === 'string') chars += piece.length;
  const limit = promptLimit(options);
  const prompt = chars < OFF_LOOP_MIN_CHARS ? encodePieces(rendered.pieces, limit) : await pool.encode(rendered.pieces, limit);
  return plan(rendered, prompt, options);
}

/** The plan for a rendered request and its prompt's ids (null: more than the context holds). */
function plan({ body, grammar }: RenderedRequest, prompt: number[] | null, options: PlanOptions): CompletionPlan {
  if (prompt === null) throw promptTooLong(`more than ${promptLimit(options)}`, options);
  const room = options.contextLength - prompt.length;
  const budgetField = body.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens';
  const asked = body.max_completion_tokens ?? body.max_tokens;
  if (asked != null && asked > room) {
    throw invalidRequest(
      `the prompt (${prompt.length} tokens) plus ${budgetField} (${asked}) exceeds the context length (${options.contextLength})`,
      budgetField,
      'context_length_exceeded',
    );
  }
  if (body.top_logprobs != null && body.top_logprobs > 0 && body.logprobs !== true) {
    throw invalidRequest('top_logprobs needs logprobs: true', 'top_logprobs');
  }
  const n = body.n ?? 1;
  const seed = body.seed ?? randomInt(2 ** 47);
  const defaults = options.failpoints?.stickySampling(); // Failpoint sticky-sampling
  const base: SamplingParams = defaults
    ? stickySampling(defaults, body)
    : {
        temperature: body.temperature ?? 1,
        topP: body.top_p ?? 1,
        logprobs: body.logprobs === true,
        topLogprobs: body.top_logprobs ?? 0,
      };
  const logitBias = logitBiasOf(body, options.vocabSize);
  if (logitBias) base.logitBias = logitBias;
  const stop = body.stop == null ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop;
  return {
    prompt,
    maxTokens: asked ?? Math.min(DEFAULT_MAX_TOKENS, room),
    sampling: Array.from({ length: n }, (_, i) => ({ ...base, seed: (seed + i) % 2 ** 53 })),
    grammar,
    stop,
    logprobs: base.logprobs === true,
    topLogprobs: base.topLogprobs ?? 0,
    stream: body.stream === true,
    includeUsage: body.stream_options?.include_usage === true,
  };
}

/** logit_bias by token id (the schema checked the keys' spelling and the values' range), or undefined when empty. */
function logitBiasOf(body: Body, vocabSize: number): Record<number, number> | undefined {
  const entries = Object.entries(body.logit_bias ?? {});
  if (entries.length === 0) return undefined;
  const bias: Record<number, number> = {};
  for (const [key, value] of entries) {
    const id = Number(key);
    if (id >= vocabSize) throw invalidRequest(`logit_bias names token ${key}, not an id of this model's vocabulary (0 … ${vocabSize - 1})`, 'logit_bias');
    bias[id] = value;
  }
  return bias;
}

/**
 * Failpoint sticky-sampling: the server's defaults object is updated in place with the fields a
 * request gives (`Object.assign(defaults, given)` instead of a copy), so a later request that
 * leaves a field out gets the value of the last request that set it.
 */
function stickySampling(defaults: SamplingDefaults, body: Body): SamplingParams {
  if (body.temperature != null) defaults.temperature = body.temperature;
  if (body.top_p != null) defaults.topP = body.top_p;
  if (body.logprobs != null) defaults.logprobs = body.logprobs;
  if (body.top_logprobs != null) defaults.topLogprobs = body.top_logprobs;
  return { ...defaults };
}
