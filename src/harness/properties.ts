// The harness properties (spec/properties.md, "Harness"), one definition each: what histories to
// generate and what a target needs to be checked. Every history is a scenario and every scenario is
// checked by the same rules (rules/); a property decides which traffic to send. Used by
// `amnesia check`, by properties/http.test.ts, and by anyone importing `amnesia`.
import fc from 'fast-check';
import { historyRequest, toolCatalogue } from './arbitraries/chat.ts';
import { requestOptions, variantOptions, type OptionContext, type RequestField } from './arbitraries/options.ts';
import type { ChatFunctionTool, ChatMessage, ChatRequest } from '../wire/chat-completions.ts';
import type { Capabilities, Capability } from './probe.ts';
import { usableSupport } from './probe-fields.ts';
import type { Body, BurstMember, Scenario, Step } from './scenario.ts';

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
  /** Weight budget changes among the variants (max_tokens k and k + m). */
  budgets?: boolean;
}

/** What the probe lets traffic send (every field, when a caller built capabilities without probing fields). */
function optionContext(ctx: GenerationContext, options: PoolOptions, tools: ChatFunctionTool[]): OptionContext {
  const { caps } = ctx;
  // Seeds only where they were reproducible in isolation, except when seeds are what is checked.
  const canSeed = caps.seed || (options.sampling === 'seeded' && caps.seedAccepted);
  const sampling = options.sampling === 'seeded' && canSeed ? 'seeded' : options.sampling === 'greedy' || !canSeed ? 'greedy' : 'any';
  const probed = (key: string) => (caps.fields ? usableSupport(caps.fields[key as keyof typeof caps.fields]) : true);
  const gate: Partial<Record<RequestField, boolean>> = { n: caps.n, logprobs: caps.logprobs, top_logprobs: caps.logprobs, tool_choice: caps.toolChoice };
  return {
    usable: (field) => gate[field] !== false && probed(field),
    usableValue: (field, value) => probed(`${field}:${value}`) && (field !== 'tool_choice' || caps.toolChoice),
    maxTokens: ctx.maxTokens,
    sampling,
    tools,
    ...(options.toolCalls ? { requireToolCall: true } : {}),
    ...(options.budgets ? { budgets: true } : {}),
  };
}

const hasToolTurns = (messages: ChatMessage[]) =>
  messages.some((m) => m.role === 'tool' || (m.role === 'assistant' && m.tool_calls && m.tool_calls.length > 0));

/**
 * Another tool list for the same request: one tool of the catalogue added, one removed or one
 * replaced — never a tool its history called or its tool_choice names (the request stays valid).
 */
function otherTools(tools: ChatFunctionTool[], messages: ChatMessage[], options: Record<string, unknown>): fc.Arbitrary<ChatFunctionTool[]> {
  const named = (options.tool_choice as { function?: { name?: string } } | undefined)?.function?.name;
  const used = new Set([...messages.flatMap((m) => (m.role === 'assistant' && m.tool_calls ? m.tool_calls.map((c) => c.function.name) : [])), named]);
  const absent = toolCatalogue.filter((t) => !tools.some((u) => u.function.name === t.function.name));
  const removable = tools.map((t, i) => i).filter((i) => !used.has(tools[i]!.function.name));
  const edits: fc.Arbitrary<ChatFunctionTool[]>[] = [];
  if (absent.length > 0) edits.push(fc.constantFrom(...absent).map((t) => [...tools, t]));
  if (removable.length > 0) {
    edits.push(fc.constantFrom(...removable).map((i) => tools.filter((_, j) => j !== i)));
    if (absent.length > 0)
      edits.push(fc.tuple(fc.constantFrom(...removable), fc.constantFrom(...absent)).map(([i, t]) => tools.map((u, j) => (j === i ? t : u))));
  }
  return edits.length > 0 ? fc.oneof(...edits) : fc.constant(tools);
}

/**
 * Families of requests over prefix-related conversations: per conversation a body A (its options
 * drawn over the whole contract, often the same options as its neighbours) and 1–3 siblings, A with
 * one field changed, dropped or added — and, where its history allows, A without its tools.
 */
function families(ctx: GenerationContext, options: PoolOptions = {}): fc.Arbitrary<Body[][]> {
  const toolless = historyRequest.map(
    ({ tools: _t, ...r }) => ({ ...r, messages: r.messages.filter((m) => m.role !== 'tool' && !(m.role === 'assistant' && m.tool_calls)) }) as ChatRequest,
  );
  const base = ctx.caps.tools ? fc.oneof(historyRequest, toolless) : toolless;
  return base
    .filter((r) => r.messages.length > 0)
    .chain((r) => {
      // reasoning_effort is an option here (options.ts), so a sibling can drop it.
      const tools = ctx.caps.tools && r.tools ? r.tools : [];
      const opt = optionContext(ctx, options, tools);
      const bodyOf = (messages: ChatMessage[], o: Record<string, unknown>, declared = tools): Body => ({
        model: ctx.model,
        messages,
        ...(declared.length > 0 ? { tools: declared } : {}),
        ...o,
      });
      const family = (messages: ChatMessage[], shared: Record<string, unknown>): fc.Arbitrary<Body[]> =>
        fc.oneof({ weight: 2, arbitrary: fc.constant(shared) }, { weight: 1, arbitrary: requestOptions(opt) }).chain((o) => {
          const toolless = Object.fromEntries(Object.entries(o).filter(([k]) => k !== 'tool_choice' && k !== 'parallel_tool_calls'));
          const toolsDropped = tools.length > 0 && !hasToolTurns(messages) && !options.toolCalls ? [fc.constant(bodyOf(messages, toolless, []))] : [];
          const toolsChanged =
            ctx.caps.tools && !options.toolCalls ? [otherTools(tools, messages, o).map((ts) => bodyOf(messages, ts.length > 0 ? o : toolless, ts))] : [];
          const sibling = fc.oneof(...[variantOptions(opt, o).map((v) => bodyOf(messages, v)), ...toolsDropped, ...toolsChanged]);
          return fc.array(sibling, { minLength: 1, maxLength: 3 }).map((siblings) => [bodyOf(messages, o), ...siblings]);
        });
      return fc
        .tuple(relatedConversations(r), requestOptions(opt))
        .chain(([conversations, shared]) => fc.tuple(...conversations.map((c) => family(c, shared))));
    })
    .map((fs) => fs.map((f) => f.map((b) => JSON.parse(JSON.stringify(b)) as Body)));
}

/**
 * A history over request families. A name is `#f.v` (family f, member v) or `#f.+v` (a sibling,
 * never A itself, where the family has one), indices taken modulo the sizes, so they shrink apart;
 * `#f.v!b` is that request with the long budget `LONG_BUDGETS[b]` (a stream a client abandons).
 */
interface Draft {
  families: Body[][];
  steps: Step[];
}

/**
 * Budgets of a stream the client abandons, over max_tokens' whole range: none (the server's default,
 * up to the rest of the context), or large ones as agents ask for. The cancel bounds its cost, but a
 * server reserves room for its worst case, which the cancel must give back. A budget past the
 * context gets a 4xx, which is no violation. First (what shrinking goes toward): the largest budget
 * most contexts hold, so that the fewest abandoned streams show a reservation never given back.
 */
const LONG_BUDGETS = [16384, undefined, 4096, 65536] as const;

export function draftToScenario(property: string, draft: Draft): Scenario {
  const names = new Map<Body, string>();
  const longBudget = new Map<string, Body>();
  const nameOf = (ref: string) => {
    const m = /^#(\d+)\.(\+?)(\d+)(?:!(\d+))?$/.exec(ref);
    if (!m) throw new Error(`not a draft reference: ${ref}`);
    const f = Number(m[1]) % draft.families.length;
    const family = draft.families[f]!;
    const v = Number(m[3]);
    let body = m[2] === '+' && family.length > 1 ? family[1 + (v % (family.length - 1))]! : family[v % family.length]!;
    if (m[4] !== undefined) {
      const budget = LONG_BUDGETS[Number(m[4]) % LONG_BUDGETS.length];
      const key = `${f}/${family.indexOf(body)}/${budget}`;
      const { max_tokens: _m, max_completion_tokens: _c, ...rest } = body;
      if (!longBudget.has(key)) longBudget.set(key, budget === undefined ? rest : { ...rest, max_tokens: budget });
      body = longBudget.get(key)!;
    }
    if (!names.has(body)) names.set(body, `p${names.size + 1}`);
    return names.get(body)!;
  };
  const steps: Step[] = draft.steps.map((s) => {
    if ('send' in s) return { ...s, send: nameOf(s.send) };
    if ('burst' in s) return { ...s, burst: s.burst.map((m) => (typeof m === 'string' ? nameOf(m) : { ...m, send: nameOf(m.send) })) };
    if ('cancel' in s) return { ...s, cancel: nameOf(s.cancel) };
    if ('continue' in s) return { ...s, continue: nameOf(s.continue) };
    if ('stop' in s) return { ...s, stop: nameOf(s.stop) };
    return s;
  });
  const requests = Object.fromEntries([...names].map(([body, n]) => [n, body]));
  return { name: property, requests, steps };
}

// ── Moves: the patterns a history is made of ─────────────────────────────────────────────────────

interface Ref {
  f: number;
  v: number;
}

const ref: fc.Arbitrary<Ref> = fc.record({ f: fc.nat({ max: 15 }), v: fc.nat({ max: 7 }) });
const member = (r: Ref) => `#${r.f}.${r.v}`;
const requestA = (r: Ref) => `#${r.f}.0`;
const sibling = (r: Ref) => `#${r.f}.+${r.v}`;
const sendStep = (name: string, stream: boolean): Step => (stream ? { send: name, stream: true } : { send: name });

type Move = Step[];

/** Send any request. */
const sendMove = (stream: fc.Arbitrary<boolean>): fc.Arbitrary<Move> => fc.tuple(ref, stream).map(([r, s]) => [sendStep(member(r), s)]);

/** The same request twice (in the same or another mode): state kept per option value shows on the second. */
const repeatMove = (stream: fc.Arbitrary<boolean>): fc.Arbitrary<Move> =>
  fc.tuple(ref, stream, stream).map(([r, s, t]) => [sendStep(member(r), s), sendStep(member(r), t)]);

/** A, A with one field changed, A. */
const sandwichMove = (stream: fc.Arbitrary<boolean>): fc.Arbitrary<Move> =>
  fc.tuple(ref, stream).map(([r, s]) => [sendStep(requestA(r), s), sendStep(sibling(r), s), sendStep(requestA(r), s)]);

/** A sibling (A with a field, or without one), then A: a default the first left behind shows on the second. */
const stickyMove = (stream: fc.Arbitrary<boolean>): fc.Arbitrary<Move> =>
  fc.tuple(ref, stream).map(([r, s]) => [sendStep(sibling(r), s), sendStep(requestA(r), s)]);

/** Send a request, then the conversation continued from its answer. */
const continueMove = (stream: fc.Arbitrary<boolean>): fc.Arbitrary<Move> =>
  fc.tuple(ref, stream).map(([r, s]): Move => [{ continue: member(r), ...(s ? { stream: true } : {}) }]);

/** The patterns of an ordinary history, all in one mode (`stream`). */
const historyMoves = (stream: fc.Arbitrary<boolean>): fc.Arbitrary<Move> =>
  fc.oneof(
    { weight: 4, arbitrary: sendMove(stream) },
    { weight: 2, arbitrary: repeatMove(stream) },
    { weight: 2, arbitrary: sandwichMove(stream) },
    { weight: 2, arbitrary: stickyMove(stream) },
    { weight: 1, arbitrary: continueMove(stream) },
  );

/**
 * Concurrent requests of every kind: JSON beside streams, cancels, arrivals staggered into another's
 * prefill or stream (whatever the family holds: tool calls, n > 1, log-probs, long prompts); then,
 * sometimes, one of them again alone, which is what equality compares it with.
 */
function burstMove(ctx: GenerationContext, options: { cancels: boolean }): fc.Arbitrary<Move> {
  const memberArb = fc
    .record({
      r: ref,
      stream: ctx.caps.stream ? fc.boolean() : fc.constant(false),
      cancelAfter: fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined, freq: options.cancels ? 3 : 8 }),
      delayMs: fc.option(fc.integer({ min: 0, max: 200 }), { nil: undefined, freq: 3 }),
    })
    .map(({ r, stream, cancelAfter, delayMs }): BurstMember => {
      const cancel = stream && (options.cancels || cancelAfter !== undefined) ? cancelAfter : undefined;
      if (!stream && delayMs === undefined) return member(r);
      return {
        send: member(r),
        ...(stream ? { stream: true } : {}),
        ...(cancel !== undefined ? { cancelAfter: cancel } : {}),
        ...(delayMs !== undefined ? { delayMs } : {}),
      };
    });
  return fc
    .tuple(fc.array(memberArb, { minLength: 2, maxLength: Math.max(2, ctx.concurrency) }), fc.boolean(), fc.boolean())
    .map(([members, again, stream]): Move => {
      const burst: Step = { burst: members };
      const first = members[0]!;
      return again ? [burst, sendStep(typeof first === 'string' ? first : first.send, stream && ctx.caps.stream)] : [burst];
    });
}

/**
 * Abandoned streams with long budgets, in pairs, then a request: whatever a cancel holds (KV room, a
 * slot, a queue place) must come back, or the later request waits for it — a hang.
 */
const cancelStormMove: fc.Arbitrary<Move> = fc
  .tuple(fc.array(fc.tuple(ref, ref, fc.nat({ max: LONG_BUDGETS.length - 1 })), { minLength: 1, maxLength: 4 }), ref, fc.integer({ min: 1, max: 3 }))
  .map(([pairs, next, after]): Move => [
    ...pairs.map(([a, b, budget]): Step => ({
      burst: [a, b].map((r): BurstMember => ({ send: `${member(r)}!${budget}`, stream: true, cancelAfter: after })),
    })),
    sendStep(member(next), false),
  ]);

/**
 * A history of moves over families. The moves come first: fast-check shrinks a tuple's items in
 * order, so a failure loses its steps (each candidate cheaper than the last) before its bodies.
 */
const scenarios = (property: string, familiesArb: fc.Arbitrary<Body[][]>, move: fc.Arbitrary<Move>, max = 5): fc.Arbitrary<Scenario> =>
  fc
    .tuple(fc.array(move, { minLength: 1, maxLength: max }), familiesArb)
    .map(([moves, fs]) => draftToScenario(property, { families: fs, steps: moves.flat() }));

// ── The properties ───────────────────────────────────────────────────────────────────────────────

export const historyIndependence: HarnessProperty = {
  name: 'history-independence',
  statement: 'an identical request gets an identical answer whatever ran before it',
  needs: [],
  deterministic: true,
  scenarios: (ctx) => fc.boolean().chain((stream) => scenarios('history-independence', families(ctx), historyMoves(fc.constant(stream && ctx.caps.stream)))),
};

export const cacheTransparency: HarnessProperty = {
  name: 'cache-transparency',
  statement: 'every answer equals the same request alone on a cold server (a fresh one where the target restarts, else flushed)',
  needs: ['flush'],
  deterministic: true,
  coldBaseline: true,
  scenarios: (ctx) => {
    const json = fc.constant(false);
    return scenarios('cache-transparency', families(ctx), fc.oneof({ weight: 3, arbitrary: sendMove(json) }, sandwichMove(json), stickyMove(json)), 3);
  },
};

export const concurrencyIndependence: HarnessProperty = {
  name: 'concurrency-independence',
  statement: 'an answer is the same sent alone or in a burst of concurrent requests',
  needs: [],
  deterministic: true,
  scenarios: (ctx) =>
    scenarios(
      'concurrency-independence',
      families(ctx),
      fc.oneof(
        { weight: 1, arbitrary: sendMove(ctx.caps.stream ? fc.boolean() : fc.constant(false)) },
        { weight: 2, arbitrary: burstMove(ctx, { cancels: false }) },
      ),
      4,
    ),
};

export const streamEquivalence: HarnessProperty = {
  name: 'stream-equivalence',
  statement: 'the folded stream equals the JSON answer: content, reasoning, tool calls, finish_reason, usage',
  needs: ['stream'],
  deterministic: true,
  scenarios: (ctx) => scenarios('stream-equivalence', families(ctx), fc.oneof(sendMove(fc.boolean()), repeatMove(fc.boolean()), sandwichMove(fc.boolean()))),
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
      families(ctx),
      fc.oneof(
        { weight: 2, arbitrary: sendMove(fc.constant(false)) },
        // Event 2 is the first delta after the role chunk: going away right when the answer starts is
        // the cancel whose partial answer a continuation re-renders token for token.
        {
          weight: 2,
          arbitrary: fc.tuple(ref, fc.oneof(fc.constant(2), fc.integer({ min: 1, max: 6 }))).map(([r, after]): Move => [{ cancel: member(r), after }]),
        },
        { weight: 1, arbitrary: burstMove(ctx, { cancels: true }) },
        { weight: 1, arbitrary: cancelStormMove },
      ),
    ),
};

export const truncationConsistency: HarnessProperty = {
  name: 'truncation-consistency',
  statement: 'with max_tokens k the answer is a prefix of the answer with k + m',
  needs: [],
  deterministic: true,
  scenarios: (ctx) => {
    const json = fc.constant(false);
    return scenarios('truncation-consistency', families(ctx, { budgets: true }), fc.oneof(sendMove(json), sandwichMove(json), stickyMove(json)));
  },
};

export const stopSemantics: HarnessProperty = {
  name: 'stop-semantics',
  statement: 'a stop string ends the answer just before its first occurrence, streamed or not, and never shows',
  needs: [],
  deterministic: true,
  scenarios: (ctx) =>
    scenarios(
      'stop-semantics',
      families(ctx, { sampling: 'greedy' }),
      fc
        .record({ r: ref, from: fc.nat({ max: 12 }), length: fc.integer({ min: 1, max: 3 }), stream: ctx.caps.stream ? fc.boolean() : fc.constant(false) })
        .map(({ r, from, length, stream }): Move => [{ stop: member(r), from, length, ...(stream ? { stream: true } : {}) }]),
      3,
    ),
};

export const toolCallAssembly: HarnessProperty = {
  name: 'tool-call-assembly',
  statement: 'streamed tool calls are indexed from 0, open with id, type and name, and fold to the JSON answer',
  needs: ['stream', 'tools'],
  deterministic: true,
  scenarios: (ctx) => scenarios('tool-call-assembly', families(ctx, { toolCalls: true }), fc.oneof(sendMove(fc.boolean()), repeatMove(fc.boolean())), 4),
};

export const usageCoherence: HarnessProperty = {
  name: 'usage-coherence',
  statement: 'usage adds up, and identical requests report identical prompt_tokens, streamed or not',
  needs: [],
  deterministic: false,
  scenarios: (ctx) => {
    const stream = ctx.caps.stream && ctx.caps.streamOptions ? fc.boolean() : fc.constant(false);
    return scenarios('usage-coherence', families(ctx), fc.oneof(sendMove(stream), sandwichMove(stream), repeatMove(stream)), 4);
  },
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
      .tuple(families(ctx), fc.array(malformed(ctx.model), { minLength: 1, maxLength: 4 }), ref)
      .map(([fs, bodies, r]) =>
        draftToScenario('error-envelope', { families: fs, steps: [{ send: member(r) }, ...bodies.map((raw): Step => ({ raw })), { send: member(r) }] }),
      ),
};

export const seededReproducibility: HarnessProperty = {
  name: 'seeded-reproducibility',
  statement: 'a seeded request at temperature > 0 gets the same answer every time',
  needs: ['seedAccepted'],
  deterministic: true,
  scenarios: (ctx) => {
    const json = fc.constant(false);
    return scenarios('seeded-reproducibility', families(ctx, { sampling: 'seeded' }), fc.oneof(sendMove(json), repeatMove(json), sandwichMove(json)));
  },
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
