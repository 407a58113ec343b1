// Runs a planned chat completion on the runtime: one generation per choice, all batched together,
// as one ordered stream of events. The SSE route writes the events as they come; the JSON route
// folds them (response.ts). Cancelling the signal cancels every choice.
import type { ChatDelta, FinishReason } from '../wire/chat-completions.ts';
import type { Generation, GenerationFinish, Runtime } from '../engine/runtime.ts';
import { ChatOutputMapping } from './chat-output.ts';
import { ChoiceOutput, type LogprobEntry, type SharedOutputState } from './choice-output.ts';
import type { CompletionPlan } from './completion-plan.ts';
import { randomId } from './ids.ts';

export type CompletionEvent =
  /** A choice's first token is sampled: the response has begun, though it may not show yet (a header, a held-back character). */
  | { kind: 'started'; index: number }
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
 * The functions a request lets the model call: those declared in `tools`, none under
 * `tool_choice: "none"`, only the named one under a named `tool_choice` (as the grammar allows).
 * A sampled message to anything else is not a tool call (spec/harmony.md §5).
 */
export function callableFunctions(request: unknown): string[] {
  const body = (typeof request === 'object' && request !== null ? request : {}) as { tools?: unknown; tool_choice?: unknown };
  const declared = Array.isArray(body.tools)
    ? body.tools.map((t: { function?: { name?: unknown } } | null) => t?.function?.name).filter((n): n is string => typeof n === 'string')
    : [];
  return callableOf(declared, body.tool_choice ?? 'auto');
}

function callableOf(declared: readonly string[], choice: unknown): string[] {
  if (choice === 'none') return [];
  if (typeof choice === 'object' && choice !== null) {
    const name = (choice as { name?: unknown; function?: { name?: unknown } }).function?.name ?? (choice as { name?: unknown }).name;
    return typeof name === 'string' && declared.includes(name) ? [name] : [];
  }
  return [...declared];
}

/**
 * Starts every choice (throwing GenerateError, with nothing started, if the runtime refuses one).
 * `output` is the server's output mapping (shared by its completions, so that the parser-reuse
 * failpoint carries a parser across requests); by default one of this completion's own.
 * `callable` are the functions the request lets the model call (`callableFunctions(body)`); without
 * it, those the plan's grammar allows, and without a grammar every recipient counts as a call (the
 * plan does not say what was declared).
 */
export function startCompletion(
  runtime: Runtime,
  plan: CompletionPlan,
  signal: AbortSignal,
  output: ChatOutputMapping = new ChatOutputMapping(runtime.failpoints),
  callable: readonly string[] | undefined = plan.grammar ? callableOf(plan.grammar.tools, plan.grammar.toolChoice) : undefined,
): CompletionRun {
  const { failpoints } = runtime;
  const generations: Generation[] = [];
  try {
    for (const [i, planned] of plan.sampling.entries()) {
      // Failpoint choice-seed-counter: choices after the first take their seed from a server-wide counter.
      const sampling = planned.seed === undefined ? planned : { ...planned, seed: failpoints.choiceSeed(planned.seed, i) };
      generations.push(runtime.generate({ prompt: plan.prompt, maxTokens: plan.maxTokens, sampling, grammar: plan.grammar }));
    }
  } catch (e) {
    for (const g of generations) g.cancel();
    throw e;
  }
  // One abort listener for the request, however many choices (n listeners would trip Node's leak
  // warning at 11); removed once the events are drained or abandoned.
  const cancelAll = () => {
    for (const g of generations) g.cancel();
  };
  if (signal.aborted) cancelAll();
  else signal.addEventListener('abort', cancelAll, { once: true });
  const shared: SharedOutputState = {
    stops: failpoints.sharedStops(), // Failpoint stop-accumulates
    logprobCursor: failpoints.logprobCursor(), // Failpoint logprob-offset
  };
  // Tool-call ids are unique, as OpenAI's are: clients may key results by them across turns.
  const outputs = generations.map(
    () => new ChoiceOutput(output.stream({ toolCallId: () => randomId('call_'), callable, spelling: plan.logprobs }), plan.stop, plan.logprobs, shared),
  );
  const choices = generations.map((g, i) => choiceEvents(g, outputs[i]!, i, plan.logprobs));
  return {
    events: finallyDo(choices.length === 1 ? choices[0]! : merge(choices), () => signal.removeEventListener('abort', cancelAll)),
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
  let started = false;
  for await (const token of g) {
    if (!started) {
      started = true;
      yield { kind: 'started', index };
    }
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
  const last = out.finish();
  for (const delta of last.deltas) yield { kind: 'delta', index, delta, logprobs: lp([]) };
  yield { kind: 'finish', index, reason: finishReason(ended, out), logprobs: lp(last.logprobs) };
}

/**
 * `tool_calls` exactly when the choice has tool calls, whatever ended it (`<|call|>`, another stop
 * token, a stop string, the budget); otherwise a bare `<|call|>` ends the answer like a stop.
 */
function finishReason(ended: GenerationFinish, out: ChoiceOutput): FinishReason | 'cancelled' {
  if (ended === 'cancelled') return 'cancelled';
  if (out.hasToolCalls) return 'tool_calls';
  return ended === 'tool_calls' ? 'stop' : ended;
}

/** Runs `cleanup` once the events are drained, or abandoned (`return()`). */
async function* finallyDo<T>(events: AsyncGenerator<T>, cleanup: () => void): AsyncGenerator<T> {
  try {
    yield* events;
  } finally {
    cleanup();
  }
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
