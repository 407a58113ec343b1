// Runs a planned chat completion on the runtime: one generation per choice, all batched together,
// as one ordered stream of events. The SSE route writes the events as they come; the JSON route
// folds them (response.ts). Cancelling the signal cancels every choice.
import type { ChatDelta, FinishReason } from '../wire/chat-completions.ts';
import type { Generation, Runtime } from '../engine/runtime.ts';
import { ChatOutputMapping } from './chat-output.ts';
import { ChoiceOutput, type LogprobEntry } from './choice-output.ts';
import type { CompletionPlan } from './completion-plan.ts';
import { randomId } from './ids.ts';

export type CompletionEvent =
  | { kind: 'delta'; index: number; delta: ChatDelta; logprobs: LogprobEntry[] | null }
  | { kind: 'finish'; index: number; reason: FinishReason | 'cancelled'; logprobs: LogprobEntry[] | null };

export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
  completion_tokens_details: { reasoning_tokens: number };
}

export interface CompletionRun {
  events: AsyncGenerator<CompletionEvent>;
  /** Totals over every choice; complete once `events` is exhausted. */
  usage(): CompletionUsage;
}

/**
 * Starts every choice (throwing GenerateError, with nothing started, if the runtime refuses one).
 * `output` is the server's output mapping (shared by its completions, so that the parser-reuse
 * failpoint carries a parser across requests); by default one of this completion's own.
 */
export function startCompletion(
  runtime: Runtime,
  plan: CompletionPlan,
  signal: AbortSignal,
  output: ChatOutputMapping = new ChatOutputMapping(runtime.failpoints),
): CompletionRun {
  const generations: Generation[] = [];
  try {
    for (const sampling of plan.sampling) {
      generations.push(runtime.generate({ prompt: plan.prompt, maxTokens: plan.maxTokens, sampling, grammar: plan.grammar, signal }));
    }
  } catch (e) {
    for (const g of generations) g.cancel();
    throw e;
  }
  // Tool-call ids are unique, as OpenAI's are: clients may key results by them across turns.
  const outputs = generations.map(() => new ChoiceOutput(output.stream({ toolCallId: () => randomId('call_') }), plan.stop, plan.logprobs));
  const choices = generations.map((g, i) => choiceEvents(g, outputs[i]!, i, plan.logprobs));
  return {
    events: choices.length === 1 ? choices[0]! : merge(choices),
    usage: () => {
      const completion = outputs.reduce((n, o) => n + o.completionTokens, 0);
      return {
        prompt_tokens: plan.prompt.length,
        completion_tokens: completion,
        total_tokens: plan.prompt.length + completion,
        prompt_tokens_details: { cached_tokens: generations[0]!.usage.cachedTokens },
        completion_tokens_details: { reasoning_tokens: outputs.reduce((n, o) => n + o.reasoningTokens, 0) },
      };
    },
  };
}

async function* choiceEvents(g: Generation, out: ChoiceOutput, index: number, withLogprobs: boolean): AsyncGenerator<CompletionEvent> {
  const lp = (entries: LogprobEntry[]) => (withLogprobs ? entries : null);
  for await (const token of g) {
    const step = out.push(token);
    if (step.deltas.length === 0 && step.logprobs.length > 0) step.deltas.push({});
    for (let i = 0; i < step.deltas.length; i++) {
      // A step's log-probabilities ride on its last delta.
      yield { kind: 'delta', index, delta: step.deltas[i]!, logprobs: i === step.deltas.length - 1 ? lp(step.logprobs) : lp([]) };
    }
    if (out.stopped) {
      g.cancel();
      break;
    }
  }
  const ended = out.stopped ? 'stop' : await g.done();
  // finish_reason tool_calls promises tool calls: a bare `<|call|>` ends the answer like a stop.
  const reason = ended === 'tool_calls' && !out.hasToolCalls ? 'stop' : ended;
  const last = out.finish();
  for (const delta of last.deltas) yield { kind: 'delta', index, delta, logprobs: lp([]) };
  yield { kind: 'finish', index, reason: reason === 'cancelled' && !out.stopped ? 'cancelled' : reason, logprobs: lp(last.logprobs) };
}

/** Interleaves several event streams in arrival order. */
async function* merge<T>(sources: AsyncGenerator<T>[]): AsyncGenerator<T> {
  const next = (i: number) => sources[i]!.next().then((r) => ({ i, r }));
  const waiting = new Map(sources.map((_, i) => [i, next(i)]));
  try {
    while (waiting.size > 0) {
      const { i, r } = await Promise.race(waiting.values());
      if (r.done) waiting.delete(i);
      else {
        waiting.set(i, next(i));
        yield r.value;
      }
    }
  } finally {
    for (const [i] of waiting) void sources[i]!.return(undefined);
  }
}
