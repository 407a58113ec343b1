// Runtime properties (spec/properties.md, "Runtime"): an identical request gets an identical
// response whatever ran before it, beside it, or was cancelled in between — checked bit for bit
// (tokens, log-probabilities, the mapped OpenAI message) against the same request run alone on a
// cold runtime.
//
// Histories are built from prefix-related requests, because independent random conversations almost
// never share a prefix: truncations and extensions of one conversation (p, then p + the assistant's
// tool call + its result, as in exo #1362), branches, repeats, requests that share only their last
// user message, and raw continuations W−1, W, W+1 and 2W tokens past a prompt (W = sliding window).
import fc from 'fast-check';
import { renderChatPrompt } from '../src/harmony/chat-to-harmony.ts';
import type { ChatRequest } from '../src/wire/chat-completions.ts';
import { accumulateDeltas } from '../src/harmony/harmony-to-chat.ts';
import type { GrammarSpec, SamplingParams } from '../src/engine/runtime-api.ts';
import type { Runtime } from '../src/engine/runtime.ts';
import { chatRequest } from '../src/harness/arbitraries/chat.ts';
import { relatedConversations } from '../src/harness/properties.ts';
import { minimize } from '../src/harness/minimize.ts';
import { ChatOutputMapping } from '../src/server/chat-output.ts';
import type { PropertyDef } from './property.ts';

/** One request to the engine: a token prompt and how to sample it. */
export interface EngineRequest {
  prompt: number[];
  maxTokens: number;
  sampling: SamplingParams;
  grammar: GrammarSpec | null;
}

/** What a request got: compared bit for bit (log-probabilities as numbers, the message as JSON). */
export interface Outcome {
  tokens: number[];
  logprobs: Array<number | undefined>;
  finish: string;
  message: string;
}

/**
 * What happens in a history. `req` indexes the request pool modulo its size, so fast-check shrinks
 * the operations independently of the pool.
 */
export type Op =
  | { kind: 'send'; req: number }
  | { kind: 'burst'; reqs: number[] }
  /** Cancel after `after` tokens, then continue from what was received (as a retrying client does). */
  | { kind: 'cancel'; req: number; after: number }
  /** Send, then continue from the raw output: prompt + what the model said + more text. */
  | { kind: 'continue'; req: number };

export interface History {
  pool: EngineRequest[];
  ops: Op[];
}

const key = (r: EngineRequest): string => JSON.stringify(r);

/** A runtime and the server's output mapping over it (one per runtime, as one server has). */
export interface Served {
  rt: Runtime;
  output: ChatOutputMapping;
}

const served = (rt: Runtime): Served => ({ rt, output: new ChatOutputMapping(rt.failpoints) });

/**
 * Runs one request to the end (or cancels it after `cancelAfter` tokens) and records what it got,
 * its tokens mapped to an OpenAI message as the server maps them.
 */
export async function runRequest({ rt, output }: Served, r: EngineRequest, cancelAfter?: number): Promise<Outcome> {
  const g = rt.generate({ prompt: r.prompt, maxTokens: r.maxTokens, sampling: r.sampling, grammar: r.grammar });
  const stream = output.stream();
  const out: Outcome = { tokens: [], logprobs: [], finish: '', message: '' };
  const deltas = [];
  for await (const t of g) {
    out.tokens.push(t.token);
    out.logprobs.push(t.logprob);
    deltas.push(...stream.push(t.token));
    if (cancelAfter !== undefined && out.tokens.length >= cancelAfter) g.cancel();
  }
  deltas.push(...stream.finish());
  out.finish = g.finishReason ?? '';
  out.message = JSON.stringify(accumulateDeltas(deltas));
  return out;
}

// ── Generators ──────────────────────────────────────────────────────────────────────────────────

const sampling: fc.Arbitrary<SamplingParams> = fc.oneof(
  fc.constant<SamplingParams>({ temperature: 0 }),
  fc.nat({ max: 1000 }).map((seed): SamplingParams => ({ temperature: 1, seed, logprobs: true })),
);

/** The grammar for a chat request's tools, or none (unconstrained sampling must be covered too). */
const grammarFor = (req: ChatRequest): fc.Arbitrary<GrammarSpec | null> =>
  fc.oneof(fc.constant(null), fc.constant<GrammarSpec>({ tools: (req.tools ?? []).map((t) => t.function.name), toolChoice: 'auto' }));

/** A pool of prefix-related requests and a history over it. `window` is the model's sliding window. */
export function historyArbitrary(window: number): fc.Arbitrary<History> {
  const pool = chatRequest.chain((base) =>
    // No long turn: the raw continuations below cross the window, with shorter prompts.
    fc
      .tuple(relatedConversations(base, { longTurn: false }), grammarFor(base), sampling, fc.constantFrom(1, 4, 8))
      .chain(([conversations, grammar, sampled, maxTokens]) => {
        const prompts = conversations.map((messages) => renderChatPrompt({ ...base, messages }).tokens);
        // Raw continuations crossing the sliding window: W−1, W, W+1 and 2W tokens past the first prompt.
        const crossings = [window - 1, window, window + 1, 2 * window].map((k) => [...prompts[0]!, ...Array.from({ length: k }, (_, i) => 1000 + i)]);
        const requests = [...prompts, ...crossings].map((prompt): EngineRequest => ({ prompt, maxTokens, sampling: sampled, grammar }));
        // Per request, sometimes other sampling or another max_tokens (k vs k + m).
        return fc
          .tuple(
            ...requests.map((r) =>
              fc.oneof(
                { weight: 3, arbitrary: fc.constant(r) },
                sampling.map((s) => ({ ...r, sampling: s })),
                fc.constant({ ...r, maxTokens: r.maxTokens + 4 }),
              ),
            ),
          )
          .map((rs) => rs as EngineRequest[]);
      }),
  );
  const idx = fc.nat({ max: 15 });
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 5, arbitrary: idx.map((req): Op => ({ kind: 'send', req })) },
    { weight: 2, arbitrary: fc.array(idx, { minLength: 2, maxLength: 4 }).map((reqs): Op => ({ kind: 'burst', reqs })) },
    { weight: 1, arbitrary: fc.tuple(idx, fc.integer({ min: 1, max: 3 })).map(([req, after]): Op => ({ kind: 'cancel', req, after })) },
    { weight: 1, arbitrary: idx.map((req): Op => ({ kind: 'continue', req })) },
  );
  return fc.record({ pool, ops: fc.array(op, { minLength: 1, maxLength: 6 }) });
}

// ── The property ────────────────────────────────────────────────────────────────────────────────

export interface RuntimeUnderTest {
  /** A fresh runtime for one history (the one under test, failpoints included). */
  create(history: History): Runtime;
  /** Cold, cache-off reference outcomes, memoised by request. */
  baseline(r: EngineRequest): Promise<Outcome>;
  window: number;
}

/** How many requests a history sends (a burst counts each of its requests). */
export const requestCount = (h: History): number => h.ops.reduce((n, op) => n + (op.kind === 'burst' ? op.reqs.length : op.kind === 'send' ? 1 : 2), 0);

/**
 * History independence, cache transparency, concurrency independence and no trace of cancelled
 * requests, in one property: every request that runs to its end gets exactly what it gets alone on a
 * cold runtime, and for the same prompt and sampling, max_tokens = k gives a prefix of k + m.
 */
export function historyIndependence(t: RuntimeUnderTest): PropertyDef<History> {
  return {
    arbitrary: historyArbitrary(t.window),
    async predicate(history) {
      const { pool, ops } = history;
      const rt = t.create(history);
      const server = served(rt);
      const seen: Array<{ r: EngineRequest; got: Outcome; step: number }> = [];
      const check = async (r: EngineRequest, got: Outcome, step: number) => {
        const want = await t.baseline(r);
        if (JSON.stringify(got) !== JSON.stringify(want)) {
          throw new Error(
            `step ${step}: a request (${r.prompt.length}-token prompt) answered\n  ${JSON.stringify(got.tokens)}\nbut alone on a cold runtime\n  ${JSON.stringify(want.tokens)}\n${got.message} vs ${want.message}`,
          );
        }
        seen.push({ r, got, step });
      };
      const at = (i: number) => pool[i % pool.length]!;
      /** The request a client sends to continue after `said` (raw tokens): more text appended. */
      const continuation = (r: EngineRequest, said: number[]): EngineRequest => ({ ...r, prompt: [...r.prompt, ...said, 2000, 2001] });
      try {
        for (const [step, op] of ops.entries()) {
          if (op.kind === 'send') await check(at(op.req), await runRequest(server, at(op.req)), step);
          else if (op.kind === 'burst') {
            const got = await Promise.all(op.reqs.map((i) => runRequest(server, at(i))));
            for (const [j, i] of op.reqs.entries()) await check(at(i), got[j]!, step);
          } else if (op.kind === 'cancel') {
            const partial = await runRequest(server, at(op.req), op.after);
            const next = continuation(at(op.req), partial.tokens);
            await check(next, await runRequest(server, next), step);
          } else {
            const first = await runRequest(server, at(op.req));
            await check(at(op.req), first, step);
            const next = continuation(at(op.req), first.tokens);
            await check(next, await runRequest(server, next), step);
          }
        }
      } finally {
        await rt.close();
      }
      // max_tokens = k is a prefix of k + m for the same prompt and sampling.
      for (const a of seen) {
        for (const b of seen) {
          const same = key({ ...a.r, maxTokens: 0 }) === key({ ...b.r, maxTokens: 0 });
          if (same && a.r.maxTokens < b.r.maxTokens && a.got.finish === 'length') {
            const prefix = b.got.tokens.slice(0, a.got.tokens.length);
            if (JSON.stringify(prefix) !== JSON.stringify(a.got.tokens)) throw new Error(`max_tokens ${a.r.maxTokens} is not a prefix of ${b.r.maxTokens}`);
          }
        }
      }
    },
  };
}

/** A baseline memo: each distinct request run once, alone, on a cold cache-off runtime. */
export function memoBaseline(create: () => Runtime): (r: EngineRequest) => Promise<Outcome> {
  const memo = new Map<string, Promise<Outcome>>();
  let server: Served | undefined;
  return (r) => {
    const k = key(r);
    if (!memo.has(k)) memo.set(k, runRequest((server ??= served(create())), r));
    return memo.get(k)!;
  };
}

/** Simpler histories one step away from `h`: fewer operations, fewer burst members, plain sends. */
function simplerHistories(h: History): History[] {
  const out: History[] = [];
  const withOps = (ops: Op[]): History => ({ pool: h.pool, ops });
  h.ops.forEach((op, i) => {
    const replace = (...by: Op[]) => out.push(withOps([...h.ops.slice(0, i), ...by, ...h.ops.slice(i + 1)]));
    replace(); // drop it
    if (op.kind === 'burst') {
      op.reqs.forEach((_, j) => {
        const rest = op.reqs.filter((__, k) => k !== j);
        replace(rest.length === 1 ? { kind: 'send', req: rest[0]! } : { kind: 'burst', reqs: rest });
      });
      replace(...op.reqs.map((req): Op => ({ kind: 'send', req })));
    }
    if (op.kind === 'cancel' || op.kind === 'continue') replace({ kind: 'send', req: op.req });
  });
  return out.filter((c) => requestCount(c) < requestCount(h) || c.ops.length < h.ops.length);
}

/** Delta debugging of a failing history (src/harness/minimize.ts) with the moves above. */
export const minimizeHistory = (h: History, fails: (h: History) => Promise<boolean>): Promise<History> => minimize(h, simplerHistories, fails);
