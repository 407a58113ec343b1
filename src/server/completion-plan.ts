// A validated chat request → what the runtime is asked to do: the rendered prompt, the sampling of
// each choice, the token budget, stop strings and the harmony grammar (spec/api.md "Requests").
import { randomInt } from 'node:crypto';
import { renderChatPrompt, type MappingOptions } from '../harmony/chat-to-harmony.ts';
import type { ChatRequest, ChatToolChoice } from '../wire/chat-completions.ts';
import type { GrammarSpec, SamplingParams } from '../engine/runtime-api.ts';
import { ApiError, invalidRequest } from './api-error.ts';

/** Budget when the request names none: this much, or what the context has left if less. */
export const DEFAULT_MAX_TOKENS = 4096;

/**
 * Which requests the harmony grammar holds to well-formed harmony: every one, those that declare
 * tools (the tiny model: tool use must be well-formed to be useful; plain chats stay unconstrained,
 * as on a real model), or only those whose tool_choice is not auto (real checkpoints).
 */
export type GrammarMode = 'always' | 'tools' | 'tool-choice';

export interface PlanOptions {
  modelId: string;
  contextLength: number;
  grammar: GrammarMode;
  mapping: MappingOptions;
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

export function planCompletion(raw: unknown, options: PlanOptions): CompletionPlan {
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
  const prompt = renderChatPrompt(body, options.mapping).tokens;
  const grammar = grammarFor(body, options.grammar);
  const room = options.contextLength - prompt.length;
  if (room < 1) {
    throw invalidRequest(`the prompt is ${prompt.length} tokens; the context holds ${options.contextLength}`, 'messages', 'context_length_exceeded');
  }
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
  const base: SamplingParams = {
    temperature: body.temperature ?? 1,
    topP: body.top_p ?? 1,
    logprobs: body.logprobs === true,
    topLogprobs: body.top_logprobs ?? 0,
  };
  const stop = body.stop == null ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop;
  return {
    prompt,
    maxTokens: asked ?? Math.min(DEFAULT_MAX_TOKENS, room),
    sampling: Array.from({ length: n }, (_, i) => ({ ...base, seed: (seed + i) % 2 ** 53 })),
    grammar,
    stop,
    logprobs: body.logprobs === true,
    topLogprobs: body.top_logprobs ?? 0,
    stream: body.stream === true,
    includeUsage: body.stream_options?.include_usage === true,
  };
}
