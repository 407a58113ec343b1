// Request options over the whole Chat Completions contract (spec/properties.md "Request fields"):
// every optional field a server may implement, with values drawn from its whole range. A body draws
// its options once; its variants change, drop or add one field, so a history can send "A, A with one
// field changed, A" and "A with a field, then A without it" — the patterns that show state kept per
// option value, or an option of one request that sticks to the next.
import fc from 'fast-check';
import type { ChatFunctionTool } from '../../wire/chat-completions.ts';

type Options = Record<string, unknown>;

/**
 * The optional request fields amnesia generates, as the probe names them. `messages`, `model`,
 * `tools` (part of the conversation) and `stream`/`stream_options` (how a request is sent) are not
 * options here.
 */
export const REQUEST_FIELDS = [
  'temperature',
  'top_p',
  'seed',
  'max_tokens',
  'max_completion_tokens',
  'n',
  'stop',
  'logprobs',
  'top_logprobs',
  'presence_penalty',
  'frequency_penalty',
  'logit_bias',
  'response_format',
  'tool_choice',
  'parallel_tool_calls',
  'reasoning_effort',
  'user',
] as const;

export type RequestField = (typeof REQUEST_FIELDS)[number];

/**
 * What the probe found a field does: `used` (its effect showed), `accepted` (answered 200; its effect
 * cannot be seen in one request), `ignored` (answered 200 without the effect the contract promises),
 * `refused` (a 4xx). Traffic uses `used` and `accepted` fields only.
 */
export type FieldSupport = 'used' | 'accepted' | 'ignored' | 'refused';

export interface OptionContext {
  /** May the field be sent? (the probe's verdict) */
  usable(field: RequestField): boolean;
  /** May a value of `response_format` / `tool_choice` be sent (`json_object`, `none`, `named`…)? */
  usableValue(field: 'response_format' | 'tool_choice', value: string): boolean;
  /** Largest budget a request asks for. */
  maxTokens: number;
  /** Sampling at temperature > 0 with a seed (the target reproduces seeded answers), greedy, or both. */
  sampling: 'greedy' | 'seeded' | 'any';
  /** The tools the body declares (tool_choice and parallel_tool_calls need some). */
  tools: ChatFunctionTool[];
  /** Ask for a tool call whenever the body has tools (`tool_choice: "required"`). */
  requireToolCall?: boolean;
  /** Weight budget changes among the variants (max_tokens k and k + m). */
  budgets?: boolean;
}

/**
 * Room for an answer: a reasoning model spends its first tokens reasoning, and a tool call takes a
 * dozen tokens or more before its arguments (13 for an empty one in harmony). With only small
 * budgets no content and no call would ever complete, and nothing that acts on them (stop strings,
 * output parsers, callable lists, grammars) would be exercised: so a request gets a budget of half
 * this to this a third of the time, half the time when it has tools, and always when it asks for a
 * call.
 */
export const ANSWER_BUDGET = 64;

/** The largest budget generated traffic asks for, with `--max-tokens` k (the deadline scales with it). */
export const largestBudget = (maxTokens: number): number => Math.max(maxTokens, ANSWER_BUDGET);

/** Strings that occur in answers of any model and language, so a stop string often cuts. */
const STOP_STRINGS = ['.', ',', '\n', ' the', 'e', ' ', '!', '?', ':', '4', 'is', '```', '<', '\n\n'];

/** Characters of 2, 3 and 4 UTF-8 bytes, from several scripts (`logit_bias` pushes their bytes). */
const SPLIT_CHARACTERS = ['é', 'Ж', 'ع', '東', 'अ', '한', '€', '👩', '𝄞'];

/**
 * The token id of byte b in a byte-level BPE vocabulary of the GPT-2 family (GPT-2, cl100k, o200k —
 * gpt-oss —, Llama 3, Qwen): the 256 single bytes come first, the printable ones (GPT-2's byte
 * encoder: 33–126, 161–172, 174–255) in order, then the rest in order. In other vocabularies the id
 * is still a valid token, only not that byte.
 */
export function byteTokenId(b: number): number {
  const printable = (x: number) => (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255);
  let id = 0;
  for (let x = 0; x < b; x++) if (printable(x) === printable(b)) id++;
  return printable(b) ? id : id + 188;
}

/** One group of fields that vary together (top_logprobs needs logprobs; seeds go with temperature). */
interface Group {
  name: string;
  /** The fields the group sets (all removed when the group is dropped). */
  fields: readonly string[];
  /** Present in every body (a budget; a sampling mode that keeps identical requests identical). */
  always?: boolean;
  /** Drawn into a body this often when not `always`. */
  frequency?: number;
  available(ctx: OptionContext): boolean;
  values(ctx: OptionContext): fc.Arbitrary<Options>;
}

const num = (min: number, max: number) =>
  fc.oneof(
    fc.constantFrom(min, max),
    fc.double({ min, max, noNaN: true }).map((x) => Math.round(x * 100) / 100),
  );

const GROUPS: Group[] = [
  {
    name: 'sampling',
    fields: ['temperature', 'top_p', 'seed'],
    always: true,
    available: () => true,
    values(ctx) {
      const topP = ctx.usable('top_p') ? fc.option(num(0.05, 1), { nil: undefined }) : fc.constant(undefined);
      const seed = fc.oneof(fc.nat({ max: 1000 }), fc.constantFrom(0, 2 ** 31 - 1, 2 ** 32 + 7, 2 ** 53 - 1));
      const greedy = fc.record({ temperature: fc.constant(0), top_p: topP, seed: fc.option(seed, { nil: undefined }) });
      const seeded = fc.record({ temperature: num(0.1, 2), top_p: topP, seed });
      const arb = ctx.sampling === 'greedy' ? greedy : ctx.sampling === 'seeded' ? seeded : fc.oneof(greedy, seeded);
      return arb.map(defined);
    },
  },
  {
    name: 'budget',
    fields: ['max_tokens', 'max_completion_tokens'],
    always: true,
    available: () => true,
    values: (ctx) => {
      const room = largestBudget(ctx.maxTokens);
      const small = fc.integer({ min: 1, max: ctx.maxTokens });
      const roomy = fc.integer({ min: Math.max(ctx.maxTokens, room / 2), max: room });
      const k =
        room <= ctx.maxTokens
          ? small
          : ctx.requireToolCall && ctx.tools.length > 0
            ? roomy
            : fc.oneof({ weight: ctx.tools.length > 0 ? 1 : 2, arbitrary: small }, { weight: 1, arbitrary: roomy });
      return fc.tuple(k, fc.boolean()).map(([k, newer]) => (newer && ctx.usable('max_completion_tokens') ? { max_completion_tokens: k } : { max_tokens: k }));
    },
  },
  { name: 'n', fields: ['n'], frequency: 0.2, available: (ctx) => ctx.usable('n'), values: () => fc.integer({ min: 2, max: 3 }).map((n) => ({ n })) },
  {
    name: 'stop',
    fields: ['stop'],
    frequency: 0.25,
    available: (ctx) => ctx.usable('stop'),
    values: () =>
      fc.oneof(fc.constantFrom(...STOP_STRINGS), fc.uniqueArray(fc.constantFrom(...STOP_STRINGS), { minLength: 1, maxLength: 4 })).map((stop) => ({ stop })),
  },
  {
    name: 'logprobs',
    fields: ['logprobs', 'top_logprobs'],
    frequency: 0.35,
    available: (ctx) => ctx.usable('logprobs'),
    values: (ctx) =>
      fc.oneof(
        { weight: 3, arbitrary: fc.constant({ logprobs: true }) },
        { weight: ctx.usable('top_logprobs') ? 3 : 0, arbitrary: fc.integer({ min: 0, max: 20 }).map((k) => ({ logprobs: true, top_logprobs: k })) },
        { weight: 1, arbitrary: fc.constant({ logprobs: false }) },
      ),
  },
  {
    name: 'presence_penalty',
    fields: ['presence_penalty'],
    frequency: 0.15,
    available: (ctx) => ctx.usable('presence_penalty'),
    values: () => num(-2, 2).map((presence_penalty) => ({ presence_penalty })),
  },
  {
    name: 'frequency_penalty',
    fields: ['frequency_penalty'],
    frequency: 0.15,
    available: (ctx) => ctx.usable('frequency_penalty'),
    values: () => num(-2, 2).map((frequency_penalty) => ({ frequency_penalty })),
  },
  {
    name: 'logit_bias',
    fields: ['logit_bias'],
    frequency: 0.2,
    available: (ctx) => ctx.usable('logit_bias'),
    values: () =>
      fc
        .oneof(
          // Any of the 256 byte tokens, pushed or banned.
          fc.dictionary(fc.nat({ max: 255 }).map(String), fc.oneof(fc.constantFrom(-100, 100), fc.integer({ min: -100, max: 100 })), {
            minKeys: 1,
            maxKeys: 3,
          }),
          // The bytes of one multi-byte character, pushed: the answer spells characters a byte per
          // token — split across tokens, the hard case of incremental decoding, stop-string
          // matching and log-prob bytes — and the bytes in another order, which are not UTF-8.
          fc
            .tuple(fc.constantFrom(...SPLIT_CHARACTERS), fc.constantFrom(100, 50, 20))
            .map(([c, bias]) => Object.fromEntries([...new TextEncoder().encode(c)].map((b) => [String(byteTokenId(b)), bias]))),
        )
        .map((logit_bias) => ({ logit_bias })),
  },
  {
    name: 'response_format',
    fields: ['response_format'],
    frequency: 0.1,
    available: (ctx) => ctx.usable('response_format'),
    values: (ctx) =>
      fc.constantFrom(...['text', 'json_object'].filter((t) => ctx.usableValue('response_format', t))).map((type) => ({ response_format: { type } })),
  },
  {
    name: 'tool_choice',
    fields: ['tool_choice'],
    frequency: 0.4,
    available: (ctx) => ctx.tools.length > 0 && ctx.usable('tool_choice'),
    values: (ctx) =>
      fc
        .oneof(
          fc.constantFrom(...['auto', 'none', 'required'].filter((c) => ctx.usableValue('tool_choice', c))),
          ...(ctx.usableValue('tool_choice', 'named')
            ? [fc.constantFrom(...ctx.tools.map((t) => t.function.name)).map((name) => ({ type: 'function', function: { name } }))]
            : []),
        )
        .map((tool_choice) => ({ tool_choice })),
  },
  {
    name: 'parallel_tool_calls',
    fields: ['parallel_tool_calls'],
    frequency: 0.2,
    available: (ctx) => ctx.tools.length > 0 && ctx.usable('parallel_tool_calls'),
    values: () => fc.boolean().map((parallel_tool_calls) => ({ parallel_tool_calls })),
  },
  {
    name: 'reasoning_effort',
    fields: ['reasoning_effort'],
    frequency: 0.3,
    available: (ctx) => ctx.usable('reasoning_effort'),
    values: () => fc.constantFrom('low', 'medium', 'high').map((reasoning_effort) => ({ reasoning_effort })),
  },
  {
    name: 'user',
    fields: ['user'],
    frequency: 0.1,
    available: (ctx) => ctx.usable('user'),
    values: () => fc.string({ minLength: 1, maxLength: 12 }).map((user) => ({ user })),
  },
];

function defined(o: Options): Options {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

const groupsFor = (ctx: OptionContext) => GROUPS.filter((g) => g.available(ctx));

/** A body's options: the sampling mode and budget always, each other field now and then. */
export function requestOptions(ctx: OptionContext): fc.Arbitrary<Options> {
  const parts = groupsFor(ctx).map((g) =>
    g.always
      ? g.values(ctx)
      : fc.oneof(
          { weight: Math.round(100 * (1 - g.frequency!)), arbitrary: fc.constant({}) },
          { weight: Math.round(100 * g.frequency!), arbitrary: g.values(ctx) },
        ),
  );
  return fc.tuple(...parts).map((os) => {
    const options = Object.assign({}, ...os) as Options;
    if (ctx.requireToolCall && ctx.tools.length > 0 && ctx.usableValue('tool_choice', 'required')) options.tool_choice = 'required';
    return options;
  });
}

/**
 * One field of `options` changed, dropped or added: the sibling of a request in "A, A′, A" and
 * "A with a field, A without it". Budgets and sampling are changed, never dropped (a request keeps
 * its bounded work and its determinism). A request with n > 1 also has its choices alone.
 */
export function variantOptions(ctx: OptionContext, options: Options): fc.Arbitrary<Options> {
  const groups = groupsFor(ctx).filter((g) => !(ctx.requireToolCall && g.name === 'tool_choice'));
  const present = (g: Group) => g.fields.some((f) => f in options);
  const without = (g: Group) => Object.fromEntries(Object.entries(options).filter(([k]) => !g.fields.includes(k)));
  const moves: Array<{ weight: number; arbitrary: fc.Arbitrary<Options> }> = groups.map((g) => ({
    weight: g.name === 'budget' && ctx.budgets ? 8 : 1,
    arbitrary: fc.oneof(
      // Changed (or added): a new value of the group.
      g.name === 'budget' && ctx.budgets
        ? fc.integer({ min: 1, max: 8 }).map((m) => ({ ...without(g), ...bigger(options, m) }))
        : g.values(ctx).map((v) => ({ ...without(g), ...v })),
      // Dropped, where it was there and may go.
      ...(present(g) && !g.always ? [fc.constant(without(g))] : []),
    ),
  }));
  const n = typeof options.n === 'number' ? options.n : 1;
  if (n > 1) moves.push({ weight: 3, arbitrary: fc.nat({ max: n - 1 }).map((i) => choiceAlone(options, i)) });
  return fc.oneof(...moves);
}

/**
 * Choice i of `options` (n > 1) asked alone: one choice, and a seed moved by i. A greedy request's
 * choices must all equal it; a seeded one's choice i must where the target seeds choice i with
 * seed + i (the probe's nSeedOffset): the reference the choices rule compares with.
 */
function choiceAlone(options: Options, i: number): Options {
  const { n: _n, ...rest } = options;
  const seeded = typeof rest.seed === 'number' && rest.temperature !== 0 && rest.seed + i <= Number.MAX_SAFE_INTEGER;
  return seeded ? { ...rest, seed: (rest.seed as number) + i } : rest;
}

/** The budget of `options` plus m, under the same field name. */
function bigger(options: Options, m: number): Options {
  if (typeof options.max_completion_tokens === 'number') return { max_completion_tokens: options.max_completion_tokens + m };
  return { max_tokens: (typeof options.max_tokens === 'number' ? options.max_tokens : 1) + m };
}
