// Failpoints: named switches that re-create real cross-request bugs inside the reference server, off
// by default, set per runtime instance (tests run several in one process) or by
// AMNESIA_FAILPOINTS=a,b. Each is documented in spec/failpoints.md: the bug, the mechanism, and how
// it shows.
//
// `Failpoints` holds one runtime's switches and the cross-request state their bugs need (a correct
// server has none), so the code they act in only calls its hooks, each marked `Failpoint NAME`.
// Where each failpoint acts:
//   kv-trim-noop, batch-variant,   the native engine (`nativeDebug()`)
//     attend-past-end
//   evict-referenced               the prefix cache (src/engine/prefix-cache.ts)
//   full-hit-no-rerun              the prefix cache, fed the last logits by the runtime
//   partial-block-skip             the prefix cache
//   shared-rng, response-memo      here (`sharedUniform()`, `memoKey()`/`recall()`/`remember()`)
//   abort-desync, cancel-leak      the runtime, when a cancel ends a request
//   topk-scratch                   the sampler (src/engine/sampler.ts)
//   grammar-cache                  the grammar (src/engine/grammar.ts)
//   parser-reuse                   the server's output mapping (src/server/chat-output.ts)
//   callable-stale                 the output mapping (src/harmony/harmony-to-chat.ts)
//   shared-decoder                 the harmony parser (src/harmony/parser.ts)
//   sticky-reasoning-effort        the chat → harmony mapping (src/harmony/chat-to-harmony.ts)
//   render-cache                   the renderer (src/harmony/render.ts)
//   sticky-sampling                the request's plan (src/server/completion-plan.ts)
//   choice-seed-counter            the completion (src/server/completion.ts)
//   stop-accumulates               the stop strings (src/server/stop-filter.ts)
//   logprob-offset                 the log-probabilities (src/server/choice-output.ts)
//   usage-carryover                the SSE writer (src/server/response.ts)
//   clock-ids                      the response ids (src/server/ids.ts)
import { TextDecoder } from 'node:util';
import { defaultSystemContent, type SystemContent } from '../harmony/conversation.ts';
import { RenderMemo } from '../harmony/render.ts';
import { Tok } from '../harmony/tokens.ts';
import { GrammarCache } from './grammar.ts';
import type { NativeDebugOptions } from './native-api.ts';
import type { TokenChoice, TokenLogprob } from './runtime-api.ts';
import { counterUniform } from './sampler.ts';

/**
 * The first failpoints: each is caught by the runtime's history property in process
 * (properties/runtime.test.ts) and by the default check over HTTP (properties/http.test.ts).
 */
export const RUNTIME_FAILPOINTS = [
  'kv-trim-noop',
  'full-hit-no-rerun',
  'shared-rng',
  'parser-reuse',
  'abort-desync',
  'evict-referenced',
  'batch-variant',
  'response-memo',
] as const;

/**
 * The mutation catalogue (spec/failpoints.md): bugs across the server, the harmony mapping, the
 * runtime and the native engine, each shown over HTTP by a few ordinary requests
 * (properties/failpoints-observable.test.ts).
 */
export const CATALOGUE_FAILPOINTS = [
  'sticky-sampling',
  'sticky-reasoning-effort',
  'stop-accumulates',
  'render-cache',
  'callable-stale',
  'shared-decoder',
  'logprob-offset',
  'usage-carryover',
  'clock-ids',
  'choice-seed-counter',
  'cancel-leak',
  'grammar-cache',
  'partial-block-skip',
  'topk-scratch',
  'attend-past-end',
] as const;

export const FAILPOINTS = [...RUNTIME_FAILPOINTS, ...CATALOGUE_FAILPOINTS] as const;

export type FailpointName = (typeof FAILPOINTS)[number];
export type RuntimeFailpointName = (typeof RUNTIME_FAILPOINTS)[number];

export class UnknownFailpointError extends Error {
  override name = 'UnknownFailpointError';
}

/** Checks failpoint names; an unknown one is an error naming the known ones. */
export function parseFailpoints(names: Iterable<string>): ReadonlySet<FailpointName> {
  const out = new Set<FailpointName>();
  for (const raw of names) {
    const name = raw.trim();
    if (name === '') continue;
    if (!(FAILPOINTS as readonly string[]).includes(name)) {
      throw new UnknownFailpointError(`unknown failpoint '${name}' (known: ${FAILPOINTS.join(', ')})`);
    }
    out.add(name as FailpointName);
  }
  return out;
}

/** The failpoints named by AMNESIA_FAILPOINTS (comma-separated). */
export function failpointsFromEnv(env: NodeJS.ProcessEnv = process.env): ReadonlySet<FailpointName> {
  return parseFailpoints((env.AMNESIA_FAILPOINTS ?? '').split(','));
}

/** `user` as an ordinary o200k token: the role in a user message's header `<|start|>user<|message|>`. */
export const USER_ROLE_TOKEN = 1428;

/** The one stream every request samples from under shared-rng. */
const SHARED_RNG_SEED = 0x5eed;

/** sticky-sampling: the sampling defaults a request's omitted fields are read from. */
export interface SamplingDefaults {
  temperature: number;
  topP: number;
  logprobs: boolean;
  topLogprobs: number;
}

/** usage-carryover: the output counters the SSE writer adds every stream's usage to. */
export interface UsageTotals {
  completion: number;
  reasoning: number;
}

/** One runtime's failpoints (created from the failpoint list) and the state their bugs carry across requests. */
export class Failpoints implements Iterable<FailpointName> {
  readonly names: ReadonlySet<FailpointName>;
  /** shared-rng: draws taken so far from the shared stream, by every request together. */
  private sharedDraws = 0;
  /** response-memo: earlier answers by their prompt's last user message. */
  private readonly answers = new Map<string, TokenChoice[]>();
  // The catalogue's state (each created on first use, only under its failpoint).
  private samplingDefaults: SamplingDefaults | undefined;
  private systemContent: SystemContent | undefined;
  private stops: string[] | undefined;
  private renderMemo: RenderMemo | undefined;
  private callable: { callable?: readonly string[] } | undefined;
  private decoder: TextDecoder | undefined;
  private cursor: { sent: number } | undefined;
  private usage: UsageTotals | undefined;
  private readonly inflight = new Map<string, unknown>();
  private choiceSeeds = 0;
  private leaked = 0;
  private grammars: GrammarCache | undefined;
  private topScratch: TokenLogprob[] | undefined;

  /** Throws UnknownFailpointError for an unknown name. */
  constructor(names: Iterable<string> = []) {
    this.names = parseFailpoints(names);
  }

  has(name: FailpointName): boolean {
    return this.names.has(name);
  }

  [Symbol.iterator](): Iterator<FailpointName> {
    return this.names[Symbol.iterator]();
  }

  /** kv-trim-noop, batch-variant and attend-past-end: the native engine's debug switches. */
  nativeDebug(): NativeDebugOptions {
    return {
      batchVariantReduction: this.has('batch-variant'),
      kvTrimNoop: this.has('kv-trim-noop'),
      attendPastEnd: this.has('attend-past-end'),
    };
  }

  /**
   * shared-rng: a uniform source for one request's sampler that draws from one counter shared by
   * every request, instead of `counterUniform(seed, position)`. Undefined (the sampler's own) when off.
   */
  sharedUniform(): ((position: number) => number) | undefined {
    if (!this.has('shared-rng')) return undefined;
    return () => counterUniform(SHARED_RNG_SEED, this.sharedDraws++);
  }

  /**
   * response-memo: the key a prompt's answer is remembered under (the tokens of its last user
   * message); undefined when off or the prompt has no user message.
   */
  memoKey(prompt: readonly number[]): string | undefined {
    return this.has('response-memo') ? lastUserMessageKey(prompt) : undefined;
  }

  /** response-memo: the tokens of an earlier answer remembered under `key`. */
  recall(key: string): readonly TokenChoice[] | undefined {
    return this.answers.get(key);
  }

  /** response-memo: remembers a completed answer's tokens under `key`. */
  remember(key: string, tokens: TokenChoice[]): void {
    this.answers.set(key, tokens);
  }

  /** sticky-sampling: the one defaults object every request's given sampling fields are written into. */
  stickySampling(): SamplingDefaults | undefined {
    if (!this.has('sticky-sampling')) return undefined;
    return (this.samplingDefaults ??= { temperature: 1, topP: 1, logprobs: false, topLogprobs: 0 });
  }

  /** sticky-reasoning-effort: the one system message every request's mapping fills in. */
  sharedSystemContent(): SystemContent | undefined {
    if (!this.has('sticky-reasoning-effort')) return undefined;
    return (this.systemContent ??= defaultSystemContent());
  }

  /** stop-accumulates: the server-wide stop list every request's stop strings are added to. */
  sharedStops(): string[] | undefined {
    if (!this.has('stop-accumulates')) return undefined;
    return (this.stops ??= []);
  }

  /** render-cache: rendered prompts by the conversation's turns alone. */
  sharedRenderMemo(): RenderMemo | undefined {
    if (!this.has('render-cache')) return undefined;
    return (this.renderMemo ??= new RenderMemo());
  }

  /** callable-stale: the callable functions, remembered from the first request that named them. */
  callableMemo(): { callable?: readonly string[] } | undefined {
    if (!this.has('callable-stale')) return undefined;
    return (this.callable ??= {});
  }

  /** shared-decoder: the one streaming UTF-8 decoder every parser's messages decode with. */
  sharedDecoder(): TextDecoder | undefined {
    if (!this.has('shared-decoder')) return undefined;
    return (this.decoder ??= new TextDecoder('utf-8', { ignoreBOM: true }));
  }

  /** logprob-offset: how many log-probability entries have been sent, counted across requests. */
  logprobCursor(): { sent: number } | undefined {
    if (!this.has('logprob-offset')) return undefined;
    return (this.cursor ??= { sent: 0 });
  }

  /** usage-carryover: the totals every stream's usage is added to, never reset. */
  usageTotals(): UsageTotals | undefined {
    if (!this.has('usage-carryover')) return undefined;
    return (this.usage ??= { completion: 0, reasoning: 0 });
  }

  /**
   * clock-ids: the in-flight work registered under `id` — an earlier request's still running with
   * the same id, else `work`, now registered. Identity when off.
   */
  joinInflight<T>(id: string, work: T): T {
    if (!this.has('clock-ids')) return work;
    if (this.inflight.has(id)) return this.inflight.get(id) as T;
    this.inflight.set(id, work);
    return work;
  }

  /** clock-ids: `work` is done; its id may be registered again. */
  leaveInflight(id: string, work: unknown): void {
    if (this.inflight.get(id) === work) this.inflight.delete(id);
  }

  /** choice-seed-counter: the seed of choice `index` — after the first, offset by a server-wide counter. */
  choiceSeed(seed: number, index: number): number {
    if (!this.has('choice-seed-counter') || index === 0) return seed;
    const first = seed >= index ? seed - index : seed; // the plan gives choice i the seed seed₀ + i
    return (first + ++this.choiceSeeds) % 2 ** 53;
  }

  /** cancel-leak: KV blocks reserved by cancelled requests and never given back. */
  get leakedBlocks(): number {
    return this.leaked;
  }

  /** cancel-leak: a cancelled request's reservation is forgotten instead of returned. */
  leakReservation(blocks: number): void {
    if (this.has('cancel-leak')) this.leaked += blocks;
  }

  /** grammar-cache: compiled grammars by their declared tools alone. */
  grammarCache(): GrammarCache | undefined {
    if (!this.has('grammar-cache')) return undefined;
    return (this.grammars ??= new GrammarCache());
  }

  /** topk-scratch: the one array every sampler writes its top log-probabilities into and hands out. */
  topLogprobScratch(): TokenLogprob[] | undefined {
    if (!this.has('topk-scratch')) return undefined;
    return (this.topScratch ??= []);
  }
}

/** The tokens of the prompt's last user message, joined (the response-memo failpoint's key). */
function lastUserMessageKey(prompt: readonly number[]): string | undefined {
  for (let i = prompt.length - 3; i >= 0; i--) {
    if (prompt[i] === Tok.start && prompt[i + 1] === USER_ROLE_TOKEN && prompt[i + 2] === Tok.message) {
      const end = prompt.indexOf(Tok.end, i + 3);
      return prompt.slice(i + 3, end < 0 ? undefined : end).join(',');
    }
  }
  return undefined;
}
