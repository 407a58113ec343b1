// The two response forms of /v1/chat/completions, both built from completion events: a
// `chat.completion` object (the fold of the events), and `chat.completion.chunk` objects for SSE.
import type { ChatDelta, ChatResponseMessage } from '../wire/chat-completions.ts';
import type { UsageTotals } from '../engine/failpoints.ts';
import { accumulateDeltas } from '../harmony/harmony-to-chat.ts';
import type { LogprobEntry } from './choice-output.ts';
import type { CompletionEvent, CompletionRun, CompletionUsage } from './completion.ts';
import { clockId, randomId } from './ids.ts';

export interface ResponseMeta {
  id: string;
  created: number;
  model: string;
  system_fingerprint: string;
}

/** A response's id, creation time and model; `clockIds` (the clock-ids failpoint) takes the id from the clock. */
export function responseMeta(model: string, systemFingerprint: string, clockIds = false): ResponseMeta {
  const id = clockIds ? clockId('chatcmpl-') : randomId('chatcmpl-'); // Failpoint clock-ids
  return { id, created: Math.floor(Date.now() / 1000), model, system_fingerprint: systemFingerprint };
}

type Finish = Extract<CompletionEvent, { kind: 'finish' }>['reason'];

export interface ChatCompletionResponse extends ResponseMeta {
  object: 'chat.completion';
  choices: Array<{ index: number; message: ChatResponseMessage; logprobs: { content: LogprobEntry[] } | null; finish_reason: Finish }>;
  usage: CompletionUsage;
}

/** Drains the events into the whole response. */
export async function collectResponse(run: CompletionRun, meta: ResponseMeta, choices: number, withLogprobs: boolean): Promise<ChatCompletionResponse> {
  const acc = Array.from({ length: choices }, () => ({ deltas: [] as ChatDelta[], logprobs: [] as LogprobEntry[], finish: 'stop' as Finish }));
  for await (const e of run.events) {
    if (e.kind === 'started') continue;
    const c = acc[e.index]!;
    if (e.kind === 'delta') c.deltas.push(e.delta);
    else c.finish = e.reason;
    if (e.logprobs) c.logprobs.push(...e.logprobs);
  }
  return {
    ...meta,
    object: 'chat.completion',
    choices: acc.map((c, index) => ({
      index,
      message: accumulateDeltas(c.deltas),
      logprobs: withLogprobs ? { content: c.logprobs } : null,
      finish_reason: c.finish,
    })),
    usage: run.usage(),
  };
}

/** One SSE chunk for an event; `withUsage` adds `usage: null` as OpenAI does under include_usage. */
export function eventChunk(meta: ResponseMeta, e: Exclude<CompletionEvent, { kind: 'started' }>, withUsage: boolean): Record<string, unknown> {
  const choice =
    e.kind === 'delta'
      ? { index: e.index, delta: e.delta, logprobs: e.logprobs === null ? null : { content: e.logprobs }, finish_reason: null }
      : { index: e.index, delta: {}, logprobs: e.logprobs === null ? null : { content: e.logprobs }, finish_reason: e.reason };
  return chunk(meta, [choice], withUsage ? null : undefined);
}

/** The opening chunk of each choice: the role. */
export function roleChunk(meta: ResponseMeta, index: number, withUsage: boolean): Record<string, unknown> {
  return chunk(meta, [{ index, delta: { role: 'assistant' }, logprobs: null, finish_reason: null }], withUsage ? null : undefined);
}

/**
 * Failpoint usage-carryover: the usage a stream's closing chunk reports when the writer keeps its
 * output counters for the server and never resets them (`totals`): completion and reasoning tokens
 * are those of every stream so far, while prompt and total tokens are the request's own, so the
 * usage no longer adds up. JSON responses report their own usage. Without `totals`, `usage`.
 */
export function streamedUsage(usage: CompletionUsage, totals?: UsageTotals): CompletionUsage {
  if (totals === undefined) return usage;
  totals.completion += usage.completion_tokens;
  totals.reasoning += usage.completion_tokens_details.reasoning_tokens;
  return { ...usage, completion_tokens: totals.completion, completion_tokens_details: { reasoning_tokens: totals.reasoning } };
}

/** The closing chunk under include_usage: no choices, the totals. */
export function usageChunk(meta: ResponseMeta, usage: CompletionUsage): Record<string, unknown> {
  return chunk(meta, [], usage);
}

function chunk(meta: ResponseMeta, choices: unknown[], usage: CompletionUsage | null | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: meta.id,
    object: 'chat.completion.chunk',
    created: meta.created,
    model: meta.model,
    system_fingerprint: meta.system_fingerprint,
    choices,
  };
  if (usage !== undefined) out.usage = usage;
  return out;
}
