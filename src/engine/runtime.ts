// The engine runtime: `generate(request)` is its one entry point, for the server and for the
// in-process runtime properties (properties/runtime.ts).
// Requests join a continuous-batching loop: every step feeds each decoding request one token and
// gives the rest of a per-step token budget to prefill chunks (rotating, so none starves). Between
// steps the loop admits queued requests (reusing the longest cached prefix), samples, and retires
// finished or cancelled requests, whose KV goes to the prefix cache. Nothing request-scoped
// (sampler, grammar, sequence, buffers) outlives its request. See spec/engine.md §8.
//
// The runtime deals in tokens only: mapping them to OpenAI output, and stop strings, are the
// server's (src/server/chat-output.ts, src/server/stop-filter.ts). Failpoints act through the
// `Failpoints` object (src/engine/failpoints.ts); each hook here is marked `Failpoint NAME`.
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { SAMPLING_STOP_TOKENS, Tok } from '../harmony/tokens.ts';
import { Failpoints } from './failpoints.ts';
import { HarmonyGrammar } from './grammar.ts';
import type { NativeEngine, NativeModel, NativeModelSpec, NativeStepEntry } from './native-api.ts';
import { PrefixCache, type PrefixCacheStats } from './prefix-cache.ts';
import type { GrammarSpec, SamplingParams, TokenChoice } from './runtime-api.ts';
import { Sampler } from './sampler.ts';

export interface RuntimeOptions {
  /** KV pool size in bytes (default 512 MiB). */
  kvBytes?: number;
  kvBlockSize?: number;
  slidingKv?: 'full' | 'ring';
  /** Prefix cache budget in bytes (default 128 MiB; 0 = no cache). */
  cacheBytes?: number;
  /** Prefix cache budget in tokens of this model's KV (every layer's, fp32); overrides cacheBytes. */
  cacheTokens?: number;
  /** Tokens one step may process across all requests (default 256). */
  maxStepTokens?: number;
  /** Requests generating at once (default 16); more wait in the queue. */
  maxConcurrency?: number;
  /** Requests that may wait (default 64); beyond that generate() throws GenerateError 'overloaded'. */
  maxQueue?: number;
  /** Longest prompt + max tokens (default: what the model and the KV pool allow). */
  contextLength?: number;
  threads?: number;
  /** Failpoint names (spec/failpoints.md); an unknown one throws UnknownFailpointError. */
  failpoints?: Iterable<string>;
}

export interface GenerateRequest {
  prompt: readonly number[];
  maxTokens: number;
  sampling?: SamplingParams;
  /** Harmony structural constraints; null or absent = unconstrained. */
  grammar?: GrammarSpec | null;
  /** Keep generating through stop tokens until maxTokens (benchmarks; unconstrained requests only). */
  ignoreStop?: boolean;
  signal?: AbortSignal;
}

export type GenerationFinish = 'stop' | 'length' | 'tool_calls' | 'cancelled';

/** A request the runtime refuses before anything changes (the server answers 4xx). */
export class GenerateError extends Error {
  override name = 'GenerateError';
  constructor(
    message: string,
    readonly code: 'invalid_request' | 'context_length_exceeded' | 'overloaded',
  ) {
    super(message);
  }
}

/** One request's output: an async iterator of tokens; finish reason and usage once it ends. */
export class Generation implements AsyncIterable<TokenChoice> {
  finishReason: GenerationFinish | undefined;
  readonly usage = { promptTokens: 0, cachedTokens: 0, completionTokens: 0 };
  private readonly buffered: TokenChoice[] = [];
  private ended = false;
  private failure: Error | undefined;
  /** Whoever waits for the next token or the end (the iterator, done(), or both). */
  private waiters: Array<() => void> = [];

  constructor(
    readonly seed: number,
    private readonly onCancel: () => void,
  ) {}

  /** Stops the generation at the next step boundary; its KV goes back (to the cache) untouched. */
  cancel(): void {
    this.onCancel();
  }

  /** @internal */ push(choice: TokenChoice): void {
    this.buffered.push(choice);
    this.wakeAll();
  }

  /** @internal */ end(reason: GenerationFinish, error?: Error): void {
    this.finishReason = reason;
    this.failure = error;
    this.ended = true;
    this.wakeAll();
  }

  private wakeAll(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  private next(): Promise<void> {
    return new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  async *[Symbol.asyncIterator](): AsyncIterator<TokenChoice> {
    for (;;) {
      if (this.buffered.length > 0) {
        yield this.buffered.shift()!;
        continue;
      }
      if (this.ended) {
        if (this.failure) throw this.failure;
        return;
      }
      await this.next();
    }
  }

  /** Resolves with the finish reason once the generation has ended (also after a cancel). */
  async done(): Promise<GenerationFinish> {
    while (!this.ended) await this.next();
    return this.finishReason!;
  }

  /** Every token, once the generation has ended. */
  async tokens(): Promise<TokenChoice[]> {
    const out: TokenChoice[] = [];
    for await (const t of this) out.push(t);
    return out;
  }
}

interface Request {
  prompt: readonly number[];
  maxTokens: number;
  sampler: Sampler;
  grammar: HarmonyGrammar | undefined;
  ignoreStop: boolean;
  out: Generation;
  /** Tokens in the KV: prompt, then generated tokens as they are fed back. */
  tokens: number[];
  /** Tokens to feed next: the rest of the prompt, then the last sampled token. */
  pending: number[];
  seq: number;
  generated: number;
  logits: Float32Array;
  cancelled: boolean;
  /** Worst-case KV blocks this request may hold. */
  blocks: number;
  /** Failpoint response-memo: the answer so far, to remember under its key; undefined when off. */
  memo: { key: string; tokens: TokenChoice[] } | undefined;
}

export class Runtime {
  readonly engine: NativeEngine;
  /** The failpoints this runtime was created with, and their cross-request state. */
  readonly failpoints: Failpoints;
  readonly contextLength: number;
  private readonly cache: PrefixCache;
  private readonly options: Required<Pick<RuntimeOptions, 'maxStepTokens' | 'maxConcurrency' | 'maxQueue'>>;
  private readonly blockSize: number;
  readonly vocabSize: number;
  private readonly queue: Request[] = [];
  private readonly active: Request[] = [];
  private running: Promise<void> | undefined;
  private rotation = 0;
  private closed = false;
  /**
   * Failpoint cancel-leak: the loop stopped with requests queued that only a finishing request
   * could admit; nothing runs until a new request, a cancel or close kicks it again.
   */
  private parked = false;

  constructor(model: NativeModel, spec: NativeModelSpec, options: RuntimeOptions = {}) {
    const c = model.config;
    this.failpoints = new Failpoints(options.failpoints ?? []);
    this.blockSize = options.kvBlockSize ?? 16;
    this.vocabSize = c.vocabSize;
    const slidingKv = options.slidingKv ?? 'full';
    const perToken = c.numLayers * 2 * c.numKvHeads * c.headDim * 4;
    const kvBlocks = Math.max(1, Math.floor((options.kvBytes ?? 512 * 2 ** 20) / (perToken * this.blockSize)));
    this.engine = model.createEngine({ kvBlocks, kvBlockSize: this.blockSize, slidingKv, ...(options.threads ? { threads: options.threads } : {}) });
    // Failpoints kv-trim-noop, batch-variant: native switches.
    this.engine.setDebug(this.failpoints.nativeDebug());
    const kv = this.engine.kvStats();
    const ringLayers = slidingKv === 'ring' ? c.slidingLayers.filter(Boolean).length : 0;
    this.cache = new PrefixCache(this.engine, {
      fingerprint: fingerprint(spec, slidingKv, this.blockSize),
      budgetBytes: options.cacheTokens !== undefined ? options.cacheTokens * perToken : (options.cacheBytes ?? 128 * 2 ** 20),
      blockSize: this.blockSize,
      blockBytes: kv.blockBytes,
      entryBytes: ringLayers * (c.slidingWindow + this.blockSize) * 2 * c.numKvHeads * c.headDim * 4,
      failpoints: this.failpoints.names,
    });
    this.contextLength = Math.min(options.contextLength ?? Infinity, kv.blocksTotal * this.blockSize - this.blockSize, 131072);
    this.options = { maxStepTokens: options.maxStepTokens ?? 256, maxConcurrency: options.maxConcurrency ?? 16, maxQueue: options.maxQueue ?? 64 };
  }

  /**
   * Starts generating after `prompt`. Throws GenerateError, with nothing changed, for an empty
   * prompt, a token id outside the vocabulary, max tokens < 1, a prompt + max tokens longer than the
   * context, an impossible grammar, or a full queue.
   */
  generate(request: GenerateRequest): Generation {
    if (this.closed) throw new GenerateError('the runtime is closed', 'invalid_request');
    const { prompt, maxTokens } = request;
    if (prompt.length === 0) throw new GenerateError('the prompt is empty', 'invalid_request');
    const bad = prompt.find((t) => !Number.isInteger(t) || t < 0 || t >= this.vocabSize);
    if (bad !== undefined) throw new GenerateError(`token id ${bad} is outside the vocabulary [0, ${this.vocabSize})`, 'invalid_request');
    if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new GenerateError(`max tokens must be an integer ≥ 1, got ${maxTokens}`, 'invalid_request');
    if (prompt.length + maxTokens > this.contextLength) {
      throw new GenerateError(
        `the prompt (${prompt.length} tokens) plus max tokens (${maxTokens}) exceeds the context length (${this.contextLength})`,
        'context_length_exceeded',
      );
    }
    if (request.ignoreStop && request.grammar) throw new GenerateError('ignoreStop needs an unconstrained request (no grammar)', 'invalid_request');
    let grammar: HarmonyGrammar | undefined;
    let sampler: Sampler;
    try {
      // Failpoint grammar-cache: the compiled grammar of an earlier request with the same tools.
      const grammars = this.failpoints.grammarCache();
      grammar = request.grammar ? (grammars?.compile(request.grammar) ?? new HarmonyGrammar(request.grammar)) : undefined;
      // Failpoint shared-rng: one random stream for every request.
      const uniform = this.failpoints.sharedUniform();
      // Failpoint topk-scratch: one array every request's top log-probabilities are written into.
      const topLogprobsInto = this.failpoints.topLogprobScratch();
      sampler = new Sampler(request.sampling ?? {}, { ...(uniform && { uniform }), ...(topLogprobsInto && { topLogprobsInto }) });
    } catch (e) {
      throw new GenerateError((e as Error).message, 'invalid_request');
    }
    if (this.queue.length >= this.options.maxQueue && this.active.length >= this.options.maxConcurrency) {
      throw new GenerateError(`overloaded: ${this.active.length} requests running and ${this.queue.length} waiting`, 'overloaded');
    }

    const memoKey = this.failpoints.memoKey(prompt); // Failpoint response-memo
    const r: Request = {
      prompt,
      maxTokens,
      sampler,
      grammar,
      ignoreStop: request.ignoreStop ?? false,
      out: undefined as unknown as Generation,
      tokens: [],
      pending: [],
      seq: -1,
      generated: 0,
      logits: new Float32Array(this.vocabSize),
      cancelled: false,
      blocks: Math.ceil((prompt.length + maxTokens) / this.blockSize) + 1,
      memo: memoKey === undefined ? undefined : { key: memoKey, tokens: [] },
    };
    r.out = new Generation(sampler.seed, () => {
      r.cancelled = true;
      this.kick();
    });
    r.out.usage.promptTokens = prompt.length;
    request.signal?.addEventListener('abort', () => r.out.cancel(), { once: true });
    if (request.signal?.aborted) r.cancelled = true;

    // Failpoint response-memo: the answer of an earlier request with the same last user message.
    const memoized = r.memo !== undefined ? this.failpoints.recall(r.memo.key) : undefined;
    if (memoized !== undefined) {
      for (const t of memoized) r.out.push(t);
      r.out.usage.completionTokens = memoized.length;
      r.out.end('stop');
      return r.out;
    }
    this.queue.push(r);
    this.kick();
    return r.out;
  }

  cacheStats(): PrefixCacheStats {
    return this.cache.stats();
  }

  /** Empties the prefix cache (between steps), e.g. for a cold baseline. */
  async flushCache(): Promise<void> {
    await this.running;
    this.cache.flush();
  }

  get queueDepth(): number {
    return this.queue.length;
  }

  get activeRequests(): number {
    return this.active.length;
  }

  /** Cancels everything, waits for the loop, and releases the engine. */
  async close(): Promise<void> {
    this.closed = true;
    for (const r of [...this.queue, ...this.active]) r.cancelled = true;
    this.kick();
    await this.running;
    this.cache.flush();
    this.engine.close();
  }

  private kick(): void {
    this.parked = false;
    this.running ??= this.loop().finally(() => {
      this.running = undefined;
      if (this.active.length > 0 || (this.queue.length > 0 && !this.parked)) this.kick();
    });
  }

  private async loop(): Promise<void> {
    while (this.queue.length > 0 || this.active.length > 0) {
      this.retireCancelled();
      this.admit();
      const plan = this.plan();
      if (plan.length === 0) return; // nothing admitted and nothing running
      try {
        await this.engine.step(plan.map((p) => p.entry));
      } catch (e) {
        for (const p of plan) this.finish(p.r, 'stop', e as Error);
        continue;
      }
      for (const p of plan) this.advance(p.r, p.entry.tokens.length);
    }
  }

  private retireCancelled(): void {
    for (const r of [...this.queue]) {
      if (r.cancelled) {
        this.queue.splice(this.queue.indexOf(r), 1);
        r.out.end('cancelled');
      }
    }
    for (const r of [...this.active]) if (r.cancelled) this.finish(r, 'cancelled');
  }

  /** Admits queued requests while there is room and KV for their worst case (evicting cache entries). */
  private admit(): void {
    while (this.queue.length > 0 && this.active.length < this.options.maxConcurrency) {
      const r = this.queue[0]!;
      const { blocksTotal } = this.engine.kvStats();
      if (r.blocks > blocksTotal) {
        this.queue.shift();
        r.out.end('stop', new GenerateError(`the request needs ${r.blocks} KV blocks; the pool has ${blocksTotal}`, 'context_length_exceeded'));
        continue;
      }
      if (!this.reserve(r.blocks)) {
        if (this.active.length > 0) return; // wait for running requests to finish
        // Failpoint cancel-leak: the leaked reservations look held, so the request waits for them.
        if (this.failpoints.leakedBlocks > 0) {
          this.parked = true;
          return;
        }
        this.queue.shift();
        r.out.end('stop', new GenerateError(`the KV pool has no room for ${r.blocks} blocks`, 'overloaded'));
        continue;
      }
      this.queue.shift();
      const hit = this.cache.acquire(r.prompt);
      r.seq = hit.seq;
      r.tokens = r.prompt.slice(0, hit.reused);
      r.pending = r.prompt.slice(hit.reused);
      r.out.usage.cachedTokens = hit.reused;
      this.active.push(r);
      if (hit.logits !== undefined) {
        r.logits.set(hit.logits);
        this.sample(r);
      }
    }
  }

  /** Whether `blocks` more can be held, evicting cache entries if needed. */
  private reserve(blocks: number): boolean {
    // Failpoint cancel-leak: reservations of cancelled requests that were never given back.
    const held = () => this.failpoints.leakedBlocks + this.active.reduce((n, r) => n + r.blocks - Math.ceil(r.tokens.length / this.blockSize), 0);
    for (let budget = this.cache.stats().bytes; ;) {
      if (this.engine.kvStats().blocksFree - held() >= blocks) return true;
      if (budget === 0) return false;
      budget = Math.floor(budget / 2);
      this.cache.evictToBudget(budget);
    }
  }

  /** This step's entries: every decoding request's token, then prefill chunks within the budget. */
  private plan(): Array<{ r: Request; entry: NativeStepEntry }> {
    const plan: Array<{ r: Request; entry: NativeStepEntry }> = [];
    let budget = this.options.maxStepTokens;
    const entry = (r: Request, n: number): NativeStepEntry => {
      const tokens = Int32Array.from(r.pending.slice(0, n));
      return n === r.pending.length ? { seq: r.seq, tokens, logits: 'last', logitsOut: r.logits } : { seq: r.seq, tokens };
    };
    const decoding = this.active.filter((r) => r.pending.length === 1 && r.tokens.length >= r.prompt.length);
    for (const r of decoding) {
      plan.push({ r, entry: entry(r, 1) });
      budget--;
    }
    const prefilling = this.active.filter((r) => r.pending.length > 0 && !decoding.includes(r));
    this.rotation = (this.rotation + 1) % Math.max(1, prefilling.length);
    for (let i = 0; i < prefilling.length; i++) {
      const r = prefilling[(i + this.rotation) % prefilling.length]!;
      // Always at least one prefill token per step, so a prefill progresses even under heavy decode.
      const n = Math.min(r.pending.length, Math.max(budget, i === 0 ? 1 : 0));
      if (n <= 0) break;
      plan.push({ r, entry: entry(r, n) });
      budget -= n;
    }
    return plan;
  }

  /** After a step: `fed` tokens of r's pending went into its KV; sample when its input is exhausted. */
  private advance(r: Request, fed: number): void {
    r.tokens.push(...r.pending.splice(0, fed));
    if (r.pending.length === 0 && !r.cancelled) this.sample(r);
  }

  private sample(r: Request): void {
    const choice = r.sampler.sample(r.logits, r.tokens.length, r.grammar?.allowed());
    r.grammar?.accept(choice.token);
    r.generated++;
    r.out.usage.completionTokens = r.generated;
    r.memo?.tokens.push(choice); // Failpoint response-memo
    r.out.push(choice);
    if (!r.ignoreStop && (SAMPLING_STOP_TOKENS.has(choice.token) || r.grammar?.done)) {
      return this.finish(r, choice.token === Tok.call ? 'tool_calls' : 'stop');
    }
    if (r.generated >= r.maxTokens) return this.finish(r, 'length');
    r.pending = [choice.token];
  }

  /** Ends a request: its KV goes to the prefix cache (which owns it from then on). */
  private finish(r: Request, reason: GenerationFinish, error?: Error): void {
    const i = this.active.indexOf(r);
    if (i >= 0) this.active.splice(i, 1);
    if (r.seq >= 0) {
      let kvLength = this.engine.sequenceLength(r.seq);
      // Failpoint cancel-leak: a cancelled request's reservation is forgotten, not given back.
      if (reason === 'cancelled') this.failpoints.leakReservation(r.blocks);
      if (reason === 'cancelled' && this.failpoints.has('abort-desync') && kvLength > r.prompt.length) {
        // Failpoint abort-desync (mlx-lm #405): the aborted step's KV is dropped, but the token list
        // keeps its token, so the cache's token list runs one ahead of its KV.
        this.engine.truncateSequence(r.seq, --kvLength);
      }
      // Failpoint full-hit-no-rerun: the cache keeps the last logits, to sample a full hit from.
      const lastLogits = this.failpoints.has('full-hit-no-rerun') ? r.logits.slice() : undefined;
      if (error === undefined) this.cache.insert(r.tokens, r.seq, kvLength, lastLogits);
      else this.engine.freeSequence(r.seq);
      r.seq = -1;
    }
    // Failpoint response-memo: a completed answer is remembered under its last user message.
    if (r.memo !== undefined && reason !== 'cancelled' && error === undefined) this.failpoints.remember(r.memo.key, r.memo.tokens);
    r.out.end(reason, error);
  }
}

/** The model, its files and the KV layout: cached KV is only valid for exactly these. */
function fingerprint(spec: NativeModelSpec, slidingKv: string, blockSize: number): string {
  const files = spec.files.map((f) => {
    const s = statSync(f);
    return [f, s.size, s.mtimeMs];
  });
  return createHash('sha256')
    .update(JSON.stringify({ config: spec.config, files, slidingKv, blockSize }))
    .digest('hex');
}
