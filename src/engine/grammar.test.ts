import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { completionToChat } from '../harmony/harmony-to-chat.ts';
import { StreamableParser } from '../harmony/parser.ts';
import { encodeText, Tok } from '../harmony/tokens.ts';
import { messageText } from '../harmony/conversation.ts';
import { channelHeaderTokens, HarmonyGrammar, toolCallHeaderTokens } from './grammar.ts';
import { FIRST_SPECIAL_TOKEN, type GrammarSpec, type TokenMask, type ToolChoice } from './runtime-api.ts';

// Names that share token prefixes: ` to=functions.get` is a prefix of the get_* paths, and
// `get_weather` of `get_weather_v2`.
const NAMES = ['get_weather', 'get_time', 'get_weather_v2', 'get', 'search-docs'];
const MAX_STEPS = 200;

/** What the walk needs of a grammar (the class under test, or a deliberately broken variant). */
interface Grammar {
  allowed(): TokenMask;
  accept(token: number): void;
  readonly done: boolean;
}

interface Step {
  pick: number;
  text: number;
  stop: number;
}

const specArb: fc.Arbitrary<GrammarSpec> = fc.shuffledSubarray(NAMES).chain((tools) => {
  const choices: fc.Arbitrary<ToolChoice>[] = [fc.constant('auto'), fc.constant('none')];
  if (tools.length > 0)
    choices.push(
      fc.constant('required'),
      fc.constantFrom(...tools).map((name) => ({ name })),
    );
  return fc.record({ tools: fc.constant(tools), toolChoice: fc.oneof(...choices) });
});

const stepsArb: fc.Arbitrary<Step[]> = fc.array(
  fc.record({
    pick: fc.nat(),
    text: fc.integer({ min: 0, max: FIRST_SPECIAL_TOKEN - 1 }),
    stop: fc.double({ min: 0, max: 1, noNaN: true }),
  }),
  { minLength: MAX_STEPS, maxLength: MAX_STEPS },
);

/** A token budget: usually the full MAX_STEPS, sometimes shorter, so unfinished prefixes are checked too. */
const budgetArb = fc.oneof(fc.constant(MAX_STEPS), fc.integer({ min: 1, max: MAX_STEPS }));

/** Drives a grammar with random choices until done or MAX_STEPS tokens. */
function walk(grammar: Grammar, steps: readonly Step[], budget = MAX_STEPS): number[] {
  const tokens: number[] = [];
  for (const step of steps.slice(0, budget)) {
    if (grammar.done) break;
    const mask = grammar.allowed();
    let token: number;
    if (mask.kind === 'only') {
      expect(mask.tokens.length).toBeGreaterThan(0);
      token = mask.tokens[step.pick % mask.tokens.length]!;
    } else {
      // Terminate content with probability 1/4, else an ordinary token.
      token = step.stop < 0.25 && mask.also.length > 0 ? mask.also[step.pick % mask.also.length]! : step.text;
    }
    grammar.accept(token);
    tokens.push(token);
  }
  return tokens;
}

/** The last message's header tokens: after the last `<|start|>assistant` (or from the start) through `<|message|>`. */
function lastHeader(tokens: readonly number[]): number[] {
  const start = tokens.lastIndexOf(Tok.start);
  const from = start < 0 ? 0 : start + 2;
  return tokens.slice(from, tokens.indexOf(Tok.message, from) + 1);
}

const callsAllowed = (spec: GrammarSpec): boolean => spec.toolChoice !== 'none' && spec.tools.length > 0;
const callRequired = (spec: GrammarSpec): boolean => spec.toolChoice === 'required' || typeof spec.toolChoice === 'object';

/** Checks one random walk; throws on any violation. */
function checkWalk(make: (spec: GrammarSpec) => Grammar, spec: GrammarSpec, steps: readonly Step[], budget: number): void {
  const grammar = make(spec);
  const tokens = walk(grammar, steps, budget);

  // Every prefix the grammar allows parses strictly (a message may be unfinished).
  const parser = new StreamableParser({ role: 'assistant' });
  for (const token of tokens) parser.process(token);
  const messages = parser.messages;
  messages.forEach((message, i) => {
    expect(message.role).toBe('assistant');
    expect(['analysis', 'commentary', 'final']).toContain(message.channel);
    const end = parser.endTokens[i];
    if (message.recipient !== undefined) {
      expect(message.recipient.startsWith('functions.')).toBe(true);
      const name = message.recipient.slice('functions.'.length);
      expect(spec.tools).toContain(name);
      if (typeof spec.toolChoice === 'object') expect(name).toBe(spec.toolChoice.name);
      expect(message.channel).toBe('commentary');
      expect(message.content_type).toBe('<|constrain|>json');
      expect(end).toBe(Tok.call);
    } else if (message.channel === 'final') {
      expect(end).toBe(Tok.return);
      expect(callRequired(spec)).toBe(false);
    } else {
      if (message.channel === 'commentary') expect(callsAllowed(spec)).toBe(true);
      expect(end).toBe(Tok.end);
    }
    // Only the last message may end the completion.
    if (i < messages.length - 1) expect(end).toBe(Tok.end);
  });
  if (!grammar.done) {
    expect(tokens.length).toBe(budget);
    // Cut off by the budget, the completion still maps without error (finish_reason length).
    expect(completionToChat(tokens).finishReason).toBe('length');
    return;
  }

  expect(parser.state).toBe('ExpectStart');
  const last = messages.at(-1)!;
  const chat = completionToChat(tokens);
  if (chat.finishReason === 'tool_calls') {
    expect(callsAllowed(spec)).toBe(true);
    const calls = chat.message.tool_calls ?? [];
    expect(calls).toHaveLength(1);
    const name = calls[0]!.function.name;
    expect(spec.tools).toContain(name);
    if (typeof spec.toolChoice === 'object') expect(name).toBe(spec.toolChoice.name);
    expect(calls[0]!.function.arguments).toBe(messageText(last));
    // The call header is exactly the canonical tokenization, right after the last `<|start|>assistant`.
    expect(lastHeader(tokens)).toEqual(toolCallHeaderTokens(name));
  } else {
    expect(chat.finishReason).toBe('stop');
    expect(callRequired(spec)).toBe(false);
    expect(chat.message.tool_calls).toBeUndefined();
    expect(chat.message.content).not.toBeNull();
    expect(last.channel).toBe('final');
    expect(last.recipient).toBeUndefined();
    expect(lastHeader(tokens)).toEqual(channelHeaderTokens('final'));
  }
  // The mapping is clean: reasoning is exactly the analysis text.
  const analysis = messages.filter((m) => m.channel === 'analysis').map(messageText);
  expect(chat.message.reasoning).toBe(analysis.length === 0 ? undefined : analysis.join(''));
}

const walkProperty = (make: (spec: GrammarSpec) => Grammar) =>
  fc.property(specArb, stepsArb, budgetArb, (spec, steps, budget) => checkWalk(make, spec, steps, budget));

describe('HarmonyGrammar random walks', () => {
  test('every walk stays well-formed harmony that parses strictly and maps cleanly', () => {
    fc.assert(
      walkProperty((spec) => new HarmonyGrammar(spec)),
      { numRuns: 300 },
    );
  });

  test('walks reach every kind of ending', () => {
    // Guards the property against vacuity: the random walks do finish, in calls and in finals.
    const endings = new Set<string>();
    fc.assert(
      fc.property(specArb, stepsArb, budgetArb, (spec, steps, budget) => {
        const grammar = new HarmonyGrammar(spec);
        const tokens = walk(grammar, steps, budget);
        endings.add(grammar.done ? (tokens.at(-1) === Tok.call ? 'call' : 'return') : 'budget');
      }),
      { numRuns: 200 },
    );
    expect([...endings].sort()).toEqual(['budget', 'call', 'return']);
  });
});

describe('HarmonyGrammar negative controls: the property can fail', () => {
  test('a grammar that allows <|return|> after a tool-call header is caught', () => {
    class ReturnAfterCall extends HarmonyGrammar {
      private ended = false;
      private inCall(): boolean {
        if (super.done) return false;
        const mask = super.allowed();
        return mask.kind === 'text' && mask.also.includes(Tok.call);
      }
      override allowed(): TokenMask {
        const mask = super.allowed();
        return this.inCall() && mask.kind === 'text' ? { kind: 'text', also: [...mask.also, Tok.return] } : mask;
      }
      override accept(token: number): void {
        if (token === Tok.return && this.inCall()) this.ended = true;
        else super.accept(token);
      }
      override get done(): boolean {
        return this.ended || super.done;
      }
    }
    const result = fc.check(
      walkProperty((spec) => new ReturnAfterCall(spec)),
      { numRuns: 300 },
    );
    expect(result.failed).toBe(true);
    // Caught where it is wrong: the call message ended with <|return|>, not <|call|>.
    expect(String(result.errorInstance)).toMatch(`expected ${Tok.return} to be ${Tok.call}`);
  });

  test('a grammar that allows an undeclared recipient is caught', () => {
    class UndeclaredRecipient extends HarmonyGrammar {
      constructor(spec: GrammarSpec) {
        super({ ...spec, tools: [...spec.tools, 'undeclared_tool'] });
      }
    }
    const result = fc.check(
      walkProperty((spec) => new UndeclaredRecipient(spec)),
      { numRuns: 300 },
    );
    expect(result.failed).toBe(true);
    expect(String(result.errorInstance)).toMatch("to include 'undeclared_tool'");
  });
});

/** Feeds tokens, returning the mask seen before each. */
function drive(grammar: HarmonyGrammar, tokens: readonly number[]): TokenMask[] {
  return tokens.map((token) => {
    const mask = grammar.allowed();
    grammar.accept(token);
    return mask;
  });
}

const only = (...tokens: number[]): TokenMask => ({ kind: 'only', tokens });

describe('HarmonyGrammar', () => {
  const weather: GrammarSpec = { tools: ['get_weather', 'get_weather_v2', 'get_time'], toolChoice: 'auto' };

  test('the canonical tool-call header is forced token by token', () => {
    const expected = [
      Tok.channel,
      ...encodeText('commentary'),
      ...encodeText(' to=functions.get_weather'),
      ...encodeText(' '),
      Tok.constrain,
      ...encodeText('json'),
      Tok.message,
    ];
    expect(toolCallHeaderTokens('get_weather')).toEqual(expected);
    expect(expected).toEqual([200005, 12606, 815, 316, 28, 44580, 775, 170154, 220, 200003, 4108, 200008]);

    const grammar = new HarmonyGrammar(weather);
    const masks = drive(grammar, expected);
    expect(masks[0]).toEqual(only(Tok.channel));
    expect(masks[1]).toEqual(only(12606, 17196, 35644)); // `comment`, `final`, `analysis`, sorted
    expect(masks[2]).toEqual(only(815)); // 'ary' completes 'commentary'
    expect(masks[3]).toEqual(only(316, Tok.message)); // ` to` (a call) or `<|message|>` (a preamble)
    expect(masks[4]).toEqual(only(28));
    expect(masks[5]).toEqual(only(44580));
    expect(masks[6]).toEqual(only(775)); // `.get`, shared by all three names
    expect(masks[7]).toEqual(only(...[170154, 6425].sort((a, b) => a - b))); // `_weather` | `_time`
    expect(masks[8]).toEqual(only(220, 5390)); // the header goes on with ` `, or `_v` of get_weather_v2
    expect(masks[9]).toEqual(only(Tok.constrain));
    expect(masks[10]).toEqual(only(4108));
    expect(masks[11]).toEqual(only(Tok.message));
    expect(grammar.allowed()).toEqual({ kind: 'text', also: [Tok.call] });
    expect(grammar.state).toBe('content call functions.get_weather → <|call|>');

    drive(grammar, [...encodeText('{"city":"Paris"}'), Tok.call]);
    expect(grammar.done).toBe(true);
    expect(() => grammar.allowed()).toThrow(/done/);
    expect(() => grammar.accept(Tok.call)).toThrow(/not allowed/);
  });

  test('a random walk that calls get_weather produces exactly the canonical header', () => {
    // Pick walks among all the allowed paths; those ending in a get_weather call carry the header.
    const header = toolCallHeaderTokens('get_weather');
    let seen = 0;
    fc.assert(
      fc.property(stepsArb, (steps) => {
        const grammar = new HarmonyGrammar({ tools: ['get_weather_v2', 'get_weather'], toolChoice: { name: 'get_weather' } });
        const tokens = walk(grammar, steps);
        if (!grammar.done) return;
        seen++;
        expect(lastHeader(tokens)).toEqual(header);
        expect(tokens.at(-1)).toBe(Tok.call);
      }),
      { numRuns: 100 },
    );
    expect(seen).toBeGreaterThan(10);
  });

  test('content masks allow ordinary tokens and exactly one terminator', () => {
    const grammar = new HarmonyGrammar({ tools: [], toolChoice: 'auto' });
    drive(grammar, channelHeaderTokens('analysis'));
    expect(grammar.allowed()).toEqual({ kind: 'text', also: [Tok.end] });
    drive(grammar, [0, 27, 5236, FIRST_SPECIAL_TOKEN - 1]);
    for (const bad of [FIRST_SPECIAL_TOKEN, Tok.endoftext, Tok.return, Tok.call, Tok.start, Tok.channel, -1, 1.5, 201_000]) {
      expect(() => grammar.accept(bad)).toThrow(/not allowed/);
    }
    drive(grammar, [Tok.end]);
    expect(grammar.allowed()).toEqual(only(Tok.start));
    drive(grammar, [Tok.start]);
    expect(grammar.allowed()).toEqual(only(173781));
    drive(grammar, [173781]);
    expect(grammar.state).toBe('header ""');
    drive(grammar, [...channelHeaderTokens('final'), 9906, Tok.return]);
    expect(grammar.done).toBe(true);
  });

  test('accept() throws on a disallowed token and leaves the state unchanged', () => {
    const grammar = new HarmonyGrammar(weather);
    drive(grammar, [Tok.channel, ...encodeText('commentary')]);
    const before = { mask: grammar.allowed(), state: grammar.state };
    expect(() => grammar.accept(Tok.constrain)).toThrow(
      /token 200003 \(<\|constrain\|>\) is not allowed by the harmony grammar in state header "<\|channel\|>commentary"/,
    );
    expect(() => grammar.accept(Tok.return)).toThrow(/not allowed/);
    expect(grammar.allowed()).toBe(before.mask);
    expect(grammar.state).toBe(before.state);
    expect(grammar.done).toBe(false);
    // And it goes on from where it was.
    drive(grammar, [Tok.message, 9906, Tok.end]);
    expect(grammar.allowed()).toEqual(only(Tok.start));
  });

  test('masks are shared frozen arrays', () => {
    const grammar = new HarmonyGrammar(weather);
    const first = grammar.allowed();
    expect(grammar.allowed()).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    if (first.kind === 'only') expect(Object.isFrozen(first.tokens)).toBe(true);
    drive(grammar, channelHeaderTokens('analysis'));
    const text = grammar.allowed();
    expect(Object.isFrozen(text)).toBe(true);
    if (text.kind === 'text') expect(Object.isFrozen(text.also)).toBe(true);
    const other = new HarmonyGrammar({ tools: [], toolChoice: 'none' });
    drive(other, channelHeaderTokens('analysis'));
    expect(other.allowed()).toBe(text);
  });

  test("tool_choice 'none' and 'auto' without tools allow analysis and final only", () => {
    for (const spec of [
      { tools: ['get_weather'], toolChoice: 'none' },
      { tools: [], toolChoice: 'auto' },
    ] satisfies GrammarSpec[]) {
      const grammar = new HarmonyGrammar(spec);
      drive(grammar, [Tok.channel]);
      expect(grammar.allowed()).toEqual(only(...[35644, 17196].sort((a, b) => a - b)));
    }
  });

  test("'required' and named choices forbid final but allow a preamble", () => {
    for (const toolChoice of ['required', { name: 'get_time' }] satisfies ToolChoice[]) {
      const grammar = new HarmonyGrammar({ ...weather, toolChoice });
      drive(grammar, [Tok.channel]);
      expect(grammar.allowed()).toEqual(only(...[35644, 12606].sort((a, b) => a - b)));
      drive(grammar, encodeText('commentary'));
      expect(grammar.allowed()).toEqual(only(316, Tok.message));
    }
    const named = new HarmonyGrammar({ ...weather, toolChoice: { name: 'get_time' } });
    drive(named, [Tok.channel, ...encodeText('commentary'), ...encodeText(' to=functions.get')]);
    expect(named.allowed()).toEqual(only(6425)); // only `_time`
  });

  test('impossible specs throw', () => {
    expect(() => new HarmonyGrammar({ tools: ['get_weather'], toolChoice: { name: 'x' } })).toThrow("tool_choice names 'x', which is not a declared tool");
    expect(() => HarmonyGrammar.validate({ tools: [], toolChoice: { name: 'x' } })).toThrow("tool_choice names 'x', which is not a declared tool");
    expect(() => new HarmonyGrammar({ tools: [], toolChoice: 'required' })).toThrow(/'required'.*tools/);
    expect(() => HarmonyGrammar.validate({ tools: [], toolChoice: 'required' })).toThrow(Error);
    expect(() => HarmonyGrammar.validate({ tools: ['bad name'], toolChoice: 'auto' })).toThrow(/not a valid function name/);
    expect(() => HarmonyGrammar.validate({ tools: ['a'], toolChoice: 'sometimes' as ToolChoice })).toThrow(/unknown tool_choice/);
    expect(() => HarmonyGrammar.validate({ tools: ['a'], toolChoice: 'required' })).not.toThrow();
    expect(() => HarmonyGrammar.validate({ tools: [], toolChoice: 'none' })).not.toThrow();
  });
});
