// The harness properties (spec/properties.md, "Harness"), one definition each: what histories to
// generate and what a target needs to be checked. Every history is a scenario and every scenario is
// checked by the same rules (rules/); a property decides which traffic to send. Used by
// `amnesia check`, by properties/http.test.ts, and by anyone importing `amnesia`.
import fc from 'fast-check';
import { chatRequest } from './arbitraries/chat.ts';
import type { ChatMessage, ChatRequest } from '../wire/chat-completions.ts';
import type { Capabilities, Capability } from './probe.ts';
import type { Body, Scenario, Step } from './scenario.ts';

export interface GenerationContext {
  model: string;
  caps: Capabilities;
  /** Largest max_tokens a generated request asks for. */
  maxTokens: number;
  /** Largest burst of concurrent requests. */
  concurrency: number;
}

export interface HarnessProperty {
  name: string;
  /** One line: what must hold. */
  statement: string;
  /** What the target must support; otherwise the property is skipped (and reported). */
  needs: Capability[];
  /** Needs answers to be a function of the request (temperature 0 or a seed). */
  deterministic: boolean;
  /** Check each history against the same requests alone on a cold (flushed) server. */
  coldBaseline?: boolean;
  scenarios(ctx: GenerationContext): fc.Arbitrary<Scenario>;
}

// ── Request pools: prefix-related conversations ──────────────────────────────────────────────────

/** A pool of requests and the steps over it; steps index the pool modulo its size, so they shrink apart. */
interface Draft {
  pool: Body[];
  steps: Step[];
}

const idx = fc.nat({ max: 15 });
const name = (i: number) => `#${i}`;

/**
 * Conversations that share prefixes with `base`: itself, an extension (exo #1362 p1 → p2), a branch of
 * its last turn, the same turn under another system message, a turn long enough to cross a sliding
 * window, truncations. Also used by the runtime property (properties/runtime.ts).
 */
export function relatedConversations(base: ChatRequest, options: { longTurn: boolean } = { longTurn: true }): fc.Arbitrary<ChatMessage[][]> {
  const tools = base.tools ?? [];
  const extension: ChatMessage[] = tools.length
    ? [
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'call_1', type: 'function', function: { name: tools[0]!.function.name, arguments: '{"expression":"2+2"}' } }],
        },
        { role: 'tool', tool_call_id: 'call_1', content: '4' },
      ]
    : [
        { role: 'assistant', content: 'Four.' },
        { role: 'user', content: 'And 3+3?' },
      ];
  return fc
    .tuple(fc.array(fc.integer({ min: 1, max: base.messages.length }), { maxLength: 2 }), fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 }))
    .map(([cuts, branch, context]) => {
      const last = base.messages.at(-1)!;
      const branched: ChatMessage[] = [...base.messages.slice(0, -1), last.role === 'user' ? { role: 'user', content: `${branch}?` } : last];
      // A turn long enough to cross a sliding window (128 tokens on gpt-oss) after the prefix.
      const long: ChatMessage[] = [...base.messages, { role: 'user', content: `Summarise: ${'the quick brown fox jumps over the lazy dog '.repeat(16)}` }];
      return [
        base.messages,
        [...base.messages, ...extension],
        branched,
        [{ role: 'system', content: `Context ${context}` }, ...base.messages],
        ...(options.longTurn ? [long] : []),
        ...cuts.map((c) => base.messages.slice(0, c)),
      ];
    });
}

interface PoolOptions {
  /** Sampling: greedy, seeded, or either. */
  sampling?: 'greedy' | 'seeded' | 'any';
  /** Ask for a tool call (tool_choice required) where the target supports it. */
  toolCalls?: boolean;
  /** Same requests at max_tokens k and k + m. */
  budgets?: boolean;
}

function pool(ctx: GenerationContext, options: PoolOptions = {}): fc.Arbitrary<Body[]> {
  // Seeds only where they were reproducible in isolation, except when seeds are what is checked.
  const canSeed = ctx.caps.seed || (options.sampling === 'seeded' && ctx.caps.seedAccepted);
  const mode = options.sampling === 'seeded' && canSeed ? 'seeded' : options.sampling === 'greedy' || !canSeed ? 'greedy' : 'any';
  const sampling = fc.oneof(
    ...(mode !== 'seeded' ? [fc.constant<Body>({ temperature: 0 })] : []),
    ...(mode !== 'greedy' ? [fc.nat({ max: 1000 }).map((seed): Body => ({ temperature: 1, seed }))] : []),
  );
  const extras = fc.record({
    logprobs: ctx.caps.logprobs ? fc.boolean() : fc.constant(false),
    maxTokens: fc.integer({ min: 1, max: ctx.maxTokens }),
  });
  const toolless = chatRequest.map(
    ({ tools: _t, ...r }) => ({ ...r, messages: r.messages.filter((m) => m.role !== 'tool' && !(m.role === 'assistant' && m.tool_calls)) }) as ChatRequest,
  );
  const base = ctx.caps.tools ? fc.oneof(chatRequest, toolless) : toolless;
  return base
    .filter((r) => r.messages.length > 0)
    .chain((r) =>
      fc.tuple(relatedConversations(r), sampling, extras).chain(([conversations, sampled, { logprobs, maxTokens }]) => {
        const bodies = conversations.map((messages): Body => {
          const body: Body = { model: ctx.model, messages, max_tokens: maxTokens, ...sampled };
          if (r.tools && r.tools.length > 0 && ctx.caps.tools) body.tools = r.tools;
          if (options.toolCalls && body.tools && ctx.caps.toolChoice) body.tool_choice = 'required';
          if (logprobs) body.logprobs = true;
          return body;
        });
        // Per request, sometimes other sampling or a bigger budget (k vs k + m).
        const variants = bodies.map((b) =>
          fc.oneof(
            { weight: 3, arbitrary: fc.constant(b) },
            { weight: options.budgets ? 4 : 1, arbitrary: fc.integer({ min: 1, max: 8 }).map((m) => ({ ...b, max_tokens: (b.max_tokens as number) + m })) },
            { weight: 1, arbitrary: sampling.map((s) => ({ ...b, temperature: undefined, seed: undefined, ...s })) },
          ),
        );
        return fc.tuple(...variants).map((bs) => bs.map((b) => JSON.parse(JSON.stringify(b)) as Body));
      }),
    );
}

/** The scenario of a draft: only the requests its steps use, named p1, p2, … in order of first use. */
export function draftToScenario(property: string, draft: Draft): Scenario {
  const names = new Map<number, string>();
  const nameOf = (ref: string) => {
    const i = Number(ref.slice(1)) % draft.pool.length;
    if (!names.has(i)) names.set(i, `p${names.size + 1}`);
    return names.get(i)!;
  };
  const steps: Step[] = draft.steps.map((s) => {
    if ('send' in s) return { ...s, send: nameOf(s.send) };
    if ('burst' in s) return { ...s, burst: s.burst.map(nameOf) };
    if ('cancel' in s) return { ...s, cancel: nameOf(s.cancel) };
    if ('continue' in s) return { ...s, continue: nameOf(s.continue) };
    if ('stop' in s) return { ...s, stop: nameOf(s.stop) };
    return s;
  });
  const requests = Object.fromEntries([...names].map(([i, n]) => [n, draft.pool[i]!]));
  return { name: property, requests, steps };
}

const scenarios = (property: string, poolArb: fc.Arbitrary<Body[]>, step: fc.Arbitrary<Step>, max = 6): fc.Arbitrary<Scenario> =>
  fc.record({ pool: poolArb, steps: fc.array(step, { minLength: 1, maxLength: max }) }).map((d) => draftToScenario(property, d));

const send = (stream: fc.Arbitrary<boolean>) => fc.tuple(idx, stream).map(([i, s]): Step => (s ? { send: name(i), stream: true } : { send: name(i) }));

// ── The properties ───────────────────────────────────────────────────────────────────────────────

export const historyIndependence: HarnessProperty = {
  name: 'history-independence',
  statement: 'an identical request gets an identical answer whatever ran before it',
  needs: [],
  deterministic: true,
  scenarios: (ctx) =>
    fc.boolean().chain((stream) => {
      const s = fc.constant(stream && ctx.caps.stream);
      return scenarios(
        'history-independence',
        pool(ctx),
        fc.oneof(
          { weight: 4, arbitrary: send(s) },
          { weight: 1, arbitrary: fc.tuple(idx, s).map(([i, st]): Step => ({ continue: name(i), ...(st ? { stream: true } : {}) })) },
        ),
      );
    }),
};

export const cacheTransparency: HarnessProperty = {
  name: 'cache-transparency',
  statement: 'every answer equals the same request alone on a cold server (prefix cache flushed)',
  needs: ['flush'],
  deterministic: true,
  coldBaseline: true,
  scenarios: (ctx) => scenarios('cache-transparency', pool(ctx), send(fc.constant(false)), 4),
};

export const concurrencyIndependence: HarnessProperty = {
  name: 'concurrency-independence',
  statement: 'an answer is the same sent alone or in a burst of concurrent requests',
  needs: [],
  deterministic: true,
  scenarios: (ctx) =>
    scenarios(
      'concurrency-independence',
      pool(ctx),
      fc.oneof(
        send(fc.constant(false)),
        fc.array(idx, { minLength: 2, maxLength: Math.max(2, ctx.concurrency) }).map((is): Step => ({ burst: is.map(name) })),
      ),
    ),
};

export const streamEquivalence: HarnessProperty = {
  name: 'stream-equivalence',
  statement: 'the folded stream equals the JSON answer: content, reasoning, tool calls, finish_reason, usage',
  needs: ['stream'],
  deterministic: true,
  scenarios: (ctx) => scenarios('stream-equivalence', pool(ctx), send(fc.boolean())),
};

export const cancelNoTrace: HarnessProperty = {
  name: 'cancel-no-trace',
  statement: 'a stream cancelled midway leaves no trace: later answers are unchanged, continuing from a partial answer is exact',
  needs: ['stream'],
  deterministic: true,
  // The continuation is a new request: only a cold run of it (or a repeat) shows it is wrong.
  coldBaseline: true,
  scenarios: (ctx) =>
    scenarios(
      'cancel-no-trace',
      pool(ctx),
      fc.oneof(
        send(fc.constant(false)),
        // Event 2 is the first delta after the role chunk: going away right when the answer starts is
        // the cancel whose partial answer a continuation re-renders token for token.
        fc.tuple(idx, fc.oneof(fc.constant(2), fc.integer({ min: 1, max: 6 }))).map(([i, after]): Step => ({ cancel: name(i), after })),
      ),
    ),
};

export const truncationConsistency: HarnessProperty = {
  name: 'truncation-consistency',
  statement: 'with max_tokens k the answer is a prefix of the answer with k + m',
  needs: [],
  deterministic: true,
  scenarios: (ctx) => scenarios('truncation-consistency', pool(ctx, { budgets: true }), send(fc.constant(false))),
};

export const stopSemantics: HarnessProperty = {
  name: 'stop-semantics',
  statement: 'a stop string ends the answer just before its first occurrence, streamed or not, and never shows',
  needs: [],
  deterministic: true,
  scenarios: (ctx) =>
    scenarios(
      'stop-semantics',
      pool(ctx, { sampling: 'greedy' }),
      fc
        .record({ i: idx, from: fc.nat({ max: 12 }), length: fc.integer({ min: 1, max: 3 }), stream: ctx.caps.stream ? fc.boolean() : fc.constant(false) })
        .map(({ i, from, length, stream }): Step => ({ stop: name(i), from, length, ...(stream ? { stream: true } : {}) })),
      3,
    ),
};

export const toolCallAssembly: HarnessProperty = {
  name: 'tool-call-assembly',
  statement: 'streamed tool calls are indexed from 0, open with id, type and name, and fold to the JSON answer',
  needs: ['stream', 'tools'],
  deterministic: true,
  scenarios: (ctx) => scenarios('tool-call-assembly', pool(ctx, { toolCalls: true }), send(fc.boolean()), 4),
};

export const usageCoherence: HarnessProperty = {
  name: 'usage-coherence',
  statement: 'usage adds up, and identical requests report identical prompt_tokens, streamed or not',
  needs: [],
  deterministic: false,
  scenarios: (ctx) => scenarios('usage-coherence', pool(ctx), send(ctx.caps.stream && ctx.caps.streamOptions ? fc.boolean() : fc.constant(false)), 4),
};

/** Malformed bodies: broken JSON, wrong types, out-of-range values, unknown roles, dangling tool ids. */
const malformed = (model: string): fc.Arbitrary<string> => {
  const valid = { model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 };
  const mutation = fc.oneof(
    fc.constantFrom('{', '[]', 'null', '"messages"', '{"messages": [', ''),
    fc
      .jsonValue({ maxDepth: 2 })
      .filter((v) => typeof v !== 'object' || v === null || Array.isArray(v) || !('messages' in v))
      .map((v) => JSON.stringify(v)),
    fc
      .record({
        field: fc.constantFrom('messages', 'max_tokens', 'temperature', 'n', 'top_p', 'stop', 'tools', 'tool_choice', 'stream', 'logprobs', 'model'),
        value: fc.oneof(
          fc.constantFrom(
            -1,
            0,
            10_000_000,
            3.5,
            'x',
            true,
            [],
            {},
            [1, 2],
            [{ role: 'robot', content: 'hi' }],
            [{ role: 'tool', tool_call_id: 'nope', content: '1' }],
            [{ role: 'user' }],
          ),
          fc.string({ maxLength: 4 }),
        ),
      })
      .filter(
        ({ field, value }) =>
          !(field === 'stream' && typeof value === 'boolean') && !(field === 'temperature' && value === 0) && !(field === 'model' && value === model),
      )
      .map(({ field, value }) => JSON.stringify({ ...valid, [field]: value })),
  );
  return mutation.filter((text) => {
    // Keep only bodies that are wrong: a value the API accepts would (rightly) get a 200.
    try {
      const v = JSON.parse(text) as Record<string, unknown>;
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return true;
      const acceptable = (k: string, x: unknown) =>
        (k === 'max_tokens' && Number.isInteger(x) && (x as number) >= 1 && (x as number) <= 64) ||
        (k === 'temperature' && typeof x === 'number' && x >= 0 && x <= 2) ||
        (k === 'top_p' && typeof x === 'number' && x > 0 && x <= 1) ||
        (k === 'n' && Number.isInteger(x) && (x as number) >= 1 && (x as number) <= 8) ||
        (k === 'stop' && typeof x === 'string' && x !== '') ||
        (k === 'stop' && Array.isArray(x) && x.length <= 4 && x.every((s) => typeof s === 'string' && s !== '')) ||
        (k === 'tools' && Array.isArray(x) && x.length === 0) ||
        (k === 'logprobs' && typeof x === 'boolean');
      return !Object.entries(v).every(([k, x]) =>
        k === 'model' || k === 'messages' ? JSON.stringify(x) === JSON.stringify((valid as Record<string, unknown>)[k]) : acceptable(k, x),
      );
    } catch {
      return true;
    }
  });
};

export const errorEnvelope: HarnessProperty = {
  name: 'error-envelope',
  statement: 'a malformed request gets a 4xx with the OpenAI error envelope, and changes no later answer',
  needs: [],
  deterministic: true,
  scenarios: (ctx) =>
    fc
      .tuple(pool(ctx), fc.array(malformed(ctx.model), { minLength: 1, maxLength: 4 }), idx)
      .map(([p, bodies, i]) =>
        draftToScenario('error-envelope', { pool: p, steps: [{ send: name(i) }, ...bodies.map((raw): Step => ({ raw })), { send: name(i) }] }),
      ),
};

export const seededReproducibility: HarnessProperty = {
  name: 'seeded-reproducibility',
  statement: 'a seeded request at temperature > 0 gets the same answer every time',
  needs: ['seedAccepted'],
  deterministic: true,
  scenarios: (ctx) => scenarios('seeded-reproducibility', pool(ctx, { sampling: 'seeded' }), send(fc.constant(false))),
};

export const properties: HarnessProperty[] = [
  historyIndependence,
  cacheTransparency,
  concurrencyIndependence,
  streamEquivalence,
  cancelNoTrace,
  truncationConsistency,
  stopSemantics,
  toolCallAssembly,
  usageCoherence,
  errorEnvelope,
  seededReproducibility,
];
