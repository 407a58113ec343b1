import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { HarmonyParseError, parseHeader, parseMessagesFromCompletionTokens, StreamableParser } from './parser.ts';
import { encodeText, FORMATTING_TOKEN_IDS, Tok, tokenBytes } from './tokens.ts';
import type { Message, Role } from './conversation.ts';

// ---------------------------------------------------------------------------------------------
// Fixture plumbing
// ---------------------------------------------------------------------------------------------

interface FixtureMessage {
  role: Role;
  name?: string;
  content: string;
  channel?: string;
  recipient?: string;
  content_type?: string;
}

interface ParseCase {
  name: string;
  input_file?: string;
  parser_role: Role | null;
  strict?: boolean;
  input_tokens?: number[];
  input_text?: string;
  input_tokens_derived?: number[];
  input_tokens_description?: string;
  expected_messages?: FixtureMessage[];
  expected_messages_derived_from_code?: FixtureMessage[];
  expected_message_count?: number;
  strict_result?: string;
  non_strict_expected_messages?: FixtureMessage[];
  expected_second_message?: FixtureMessage;
  expected_after?: { last_content_delta: string | null; current_content: string };
  expected?: string;
}

const upstream = new URL('../../golden/harmony/upstream/', import.meta.url);
const fixture = JSON.parse(readFileSync(new URL('parse_cases.json', upstream), 'utf8')) as { cases: ParseCase[] };

/** A test-data file as the upstream tests read it: CRLF → LF, trailing whitespace trimmed. */
function testData(file: string): string {
  return readFileSync(new URL(`test-data/${file}`, upstream), 'utf8')
    .replaceAll('\r\n', '\n')
    .trimEnd();
}

/** Encodes text with every formatting token allowed (harmony's `encode(text, allowed_special="all")`). */
function encodeWithSpecials(text: string): number[] {
  return text.split(/(<\|[a-z_]+\|>)/).flatMap((piece) => {
    const id = FORMATTING_TOKEN_IDS.get(piece);
    return id === undefined ? encodeText(piece) : [id];
  });
}

/** A fixture message (content as a string) in harmony serde shape. */
function serde(m: FixtureMessage): Message {
  const { content, ...rest } = m;
  return { ...rest, content: [{ type: 'text', text: content }] };
}

const START_ASSISTANT_MESSAGE = encodeWithSpecials('<|start|>assistant<|message|>');
const END = [Tok.end];

/** Inputs that parse_cases.json only describes in words (`input_tokens_description`). */
const DESCRIBED_INPUTS: Record<string, number[]> = {
  'invalid utf-8 token 9552 (bytes 0x20 0xF0 0x9F) twice': [...START_ASSISTANT_MESSAGE, 9552, 9552, ...encodeWithSpecials('worked<|end|>')],
  'invalid utf-8 split across tokens': [...START_ASSISTANT_MESSAGE, 9552, ...encodeText('XY'), ...END],
  'invalid utf-8 then multibyte-safe token': [...START_ASSISTANT_MESSAGE, 9552, ...encodeText(' interesting'), ...END],
  'partial bytes flushed at EOS': [...START_ASSISTANT_MESSAGE, 9552, ...encodeText('Hi')],
  'bytes do not leak between messages': [...START_ASSISTANT_MESSAGE, 9552, 9552, ...END, ...START_ASSISTANT_MESSAGE, ...encodeText('Hi'), ...END],
  'multi-token emoji waits for completion': [...START_ASSISTANT_MESSAGE, ...encodeText('💖'), ...END],
  'invalid token id u32::MAX then EOS (Rust test)': [
    ...encodeWithSpecials('<|start|>assistant<|channel|>analysis<|message|>Practice invalid token handling.'),
    4294967295,
  ],
};

function inputTokens(c: ParseCase): number[] {
  const tokens = c.input_tokens ?? c.input_tokens_derived ?? DESCRIBED_INPUTS[c.name];
  if (tokens === undefined) throw new Error(`no input tokens for case ${c.name}`);
  return tokens;
}

/** Feeds tokens one by one, recording lastContentDelta and currentContent after each. */
function stream(tokens: readonly number[], options: ConstructorParameters<typeof StreamableParser>[0] = {}) {
  const parser = new StreamableParser(options);
  const deltas: (string | undefined)[] = [];
  const contents: string[] = [];
  for (const token of tokens) {
    parser.process(token);
    deltas.push(parser.lastContentDelta);
    contents.push(parser.currentContent);
  }
  return { parser, deltas, contents };
}

const parse = (text: string, role: Role | null = 'assistant', strict = true) => parseMessagesFromCompletionTokens(encodeWithSpecials(text), role, strict);

const msg = (role: Role, text: string, extra: Omit<Message, 'role' | 'content'> = {}): Message => ({
  role,
  content: [{ type: 'text', text }],
  ...extra,
});

// ---------------------------------------------------------------------------------------------
// Upstream fixtures
// ---------------------------------------------------------------------------------------------

describe('parse_cases.json', () => {
  test('every case has input tokens', () => {
    for (const c of fixture.cases) expect(inputTokens(c).length, c.name).toBeGreaterThan(0);
    expect(fixture.cases).toHaveLength(19);
  });

  test.each(fixture.cases.filter((c) => c.input_text !== undefined).map((c) => [c.name, c] as const))(
    'text input encodes to input_tokens_derived: %s',
    (_, c) => {
      expect(encodeWithSpecials(c.input_text!)).toEqual(c.input_tokens_derived);
    },
  );

  const withMessages = fixture.cases.filter((c) => c.expected_messages ?? c.expected_messages_derived_from_code);
  test.each(withMessages.map((c) => [c.name, c] as const))('%s', (_, c) => {
    const expected = (c.expected_messages ?? c.expected_messages_derived_from_code)!.map(serde);
    const messages = parseMessagesFromCompletionTokens(inputTokens(c), c.parser_role, c.strict ?? true);
    expect(messages).toStrictEqual(expected);
    if (c.expected_message_count !== undefined) expect(messages).toHaveLength(c.expected_message_count);
  });

  const strictErrors = fixture.cases.filter((c) => c.strict_result !== undefined);
  test.each(strictErrors.map((c) => [c.name, c] as const))('strict error and non-strict recovery: %s', (_, c) => {
    const tokens = inputTokens(c);
    expect(c.strict_result).toMatch(/^error/);
    expect(() => parseMessagesFromCompletionTokens(tokens, c.parser_role, true)).toThrow(HarmonyParseError);
    const detail = c.strict_result!.replace(/^error:?\s*/, '');
    if (detail !== '') expect(() => parseMessagesFromCompletionTokens(tokens, c.parser_role, true)).toThrow(detail);
    expect(parseMessagesFromCompletionTokens(tokens, c.parser_role, false)).toStrictEqual(c.non_strict_expected_messages!.map(serde));
  });

  test('bytes do not leak between messages', () => {
    const c = fixture.cases.find((x) => x.name === 'bytes do not leak between messages')!;
    const messages = parseMessagesFromCompletionTokens(inputTokens(c), c.parser_role);
    expect(messages).toHaveLength(2);
    expect(messages[0]).toStrictEqual(msg('assistant', ' \ufffd \ufffd'));
    expect(messages[1]).toStrictEqual(serde(c.expected_second_message!));
  });

  test('partial bytes flushed at EOS', () => {
    const c = fixture.cases.find((x) => x.name === 'partial bytes flushed at EOS')!;
    const { parser, deltas } = stream(inputTokens(c), { role: c.parser_role });
    // 9552 is " " + two bytes of a 4-byte character: the space shows, the bytes wait.
    expect(deltas.slice(-2)).toEqual([' ', '\ufffdHi']);
    expect(parser.currentContent).toBe(' \ufffdHi');
    parser.processEos();
    expect(parser.messages).toStrictEqual(c.expected_messages!.map(serde));
    expect(parser.lastContentDelta ?? null).toBe(c.expected_after!.last_content_delta);
    expect(parser.currentContent).toBe(c.expected_after!.current_content);
    expect(parser.endTokens).toEqual([null]);
  });

  test('multi-token emoji waits for completion', () => {
    const emoji = encodeText('💖');
    expect(emoji.length).toBeGreaterThanOrEqual(2);
    const parser = new StreamableParser();
    for (const token of START_ASSISTANT_MESSAGE) parser.process(token);
    parser.process(emoji[0]!);
    expect(parser.lastContentDelta).toBeUndefined();
    expect(parser.currentContent).toBe('');
    parser.process(emoji[1]!);
    expect(parser.lastContentDelta).toBe('💖');
    expect(parser.currentContent).toBe('💖');
    parser.process(Tok.end);
    expect(parser.lastContentDelta).toBeUndefined();
    expect(parser.messages).toStrictEqual([msg('assistant', '💖')]);
  });

  test('an unknown token id decodes as U+FFFD and decoding goes on after it', () => {
    const { parser, deltas } = stream([...START_ASSISTANT_MESSAGE, ...encodeText('a'), 4294967295, ...encodeText('b')]);
    expect(deltas.slice(-2)).toEqual(['\ufffd', 'b']);
    parser.processEos();
    expect(parser.messages).toStrictEqual([msg('assistant', 'a\ufffdb')]);
  });

  test('an unknown token id cuts off a pending character', () => {
    // 31446 is the first three bytes of 💖 and 244 its last byte: they must not join across the bad id.
    const tokens = [...START_ASSISTANT_MESSAGE, 31446, 4294967295, 244, Tok.end];
    expect(parseMessagesFromCompletionTokens(tokens)).toStrictEqual([msg('assistant', '\ufffd\ufffd\ufffd')]);
  });
});

describe('test-data parser inputs', () => {
  const caseFor = (file: string) => fixture.cases.find((c) => c.input_file === file)!;

  test('test_simple_reasoning_response.txt', () => {
    const tokens = testData('test_simple_reasoning_response.txt').split(/\s+/).map(Number);
    expect(tokens).toEqual(caseFor('test_simple_reasoning_response.txt').input_tokens);
    expect(parseMessagesFromCompletionTokens(tokens, 'assistant')).toStrictEqual([
      msg('assistant', 'User asks: "What is 2 + 2?" Simple arithmetic. Provide answer.', { channel: 'analysis' }),
      msg('assistant', '2 + 2 = 4.', { channel: 'final' }),
    ]);
  });

  test('test_simple_tool_call.txt', () => {
    const tokens = testData('test_simple_tool_call.txt').split(/\s+/).map(Number);
    expect(tokens).toEqual(caseFor('test_simple_tool_call.txt').input_tokens);
    expect(parseMessagesFromCompletionTokens(tokens, 'assistant')).toStrictEqual([
      msg('assistant', 'User asks: "What is the weather in Tokyo?" We need to use lookup_weather tool.', { channel: 'analysis' }),
      msg('assistant', '{"location": "Tokyo"}', { channel: 'analysis', recipient: 'lookup_weather', content_type: 'code' }),
    ]);
  });

  test('test_streamable_parser.txt: three messages without EOS', () => {
    const text = testData('test_streamable_parser.txt');
    const c = caseFor('test_streamable_parser.txt');
    expect(text).toBe(c.input_text);
    const { parser } = stream(encodeWithSpecials(text), { role: 'assistant' });
    expect(parser.messages).toHaveLength(3);
    expect(parser.messages).toStrictEqual(c.expected_messages_derived_from_code!.map(serde));
    expect(parser.endTokens).toEqual([Tok.end, Tok.call, Tok.end]);
    expect(parser.state).toBe('ExpectStart');
  });

  test('test_tool_response_parsing.txt: role-less tool message', () => {
    const text = testData('test_tool_response_parsing.txt');
    expect(text).toBe(caseFor('test_tool_response_parsing.txt').input_text);
    expect(parse(text, null)).toStrictEqual([
      msg('tool', '{"result": "https://openai.com/"}', { name: 'browser.search', channel: 'commentary', recipient: 'assistant' }),
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// Parser behaviour
// ---------------------------------------------------------------------------------------------

describe('§12 example: sampled tool call', () => {
  const sampled = [
    200005, 35644, 200008, 23483, 316, 2421, 717, 170154, 13, 200007, 200006, 173781, 200005, 12606, 815, 316, 28, 44580, 775, 170154, 220, 200003, 4108,
    200008, 10848, 7693, 7534, 72782, 18583, 200012,
  ];

  test('parses into analysis plus a constrained commentary call', () => {
    expect(parseMessagesFromCompletionTokens(sampled, 'assistant')).toStrictEqual([
      msg('assistant', 'Need to call get_weather.', { channel: 'analysis' }),
      msg('assistant', '{"location":"Paris"}', {
        channel: 'commentary',
        recipient: 'functions.get_weather',
        content_type: '<|constrain|>json',
      }),
    ]);
  });

  test('streaming getters and end tokens', () => {
    const parser = new StreamableParser({ role: 'assistant' });
    expect(parser.state).toBe('Header');
    expect(parser.currentRole).toBe('assistant');
    const seen: string[] = [];
    for (const token of sampled) {
      parser.process(token);
      if (parser.state === 'Content' && parser.currentRecipient !== undefined) {
        seen.push(`${parser.currentChannel}|${parser.currentRecipient}|${parser.currentContentType}|${parser.currentContent}`);
      }
    }
    expect(seen[0]).toBe('commentary|functions.get_weather|<|constrain|>json|');
    expect(seen.at(-1)).toBe('commentary|functions.get_weather|<|constrain|>json|{"location":"Paris"}');
    expect(parser.endTokens).toEqual([Tok.end, Tok.call]);
    expect(parser.tokens).toEqual(sampled);
    expect(parser.state).toBe('ExpectStart');
    expect(parser.currentRole).toBeUndefined();
    expect(parser.currentContent).toBe('');
    parser.processEos();
    expect(parser.messages).toHaveLength(2);
  });
});

describe('endTokens', () => {
  test('records <|return|>, <|call|>, <|end|> and null for EOS', () => {
    const parser = new StreamableParser({ role: 'assistant' });
    const text =
      '<|channel|>analysis<|message|>a<|return|>' +
      '<|start|>assistant to=functions.f<|channel|>commentary json<|message|>{}<|call|>' +
      '<|start|>assistant<|channel|>commentary<|message|>b<|end|>' +
      '<|start|>assistant<|channel|>final<|message|>cut off';
    for (const token of encodeWithSpecials(text)) parser.process(token);
    expect(parser.endTokens).toEqual([Tok.return, Tok.call, Tok.end]);
    expect(parser.currentContent).toBe('cut off');
    parser.processEos();
    expect(parser.endTokens).toEqual([Tok.return, Tok.call, Tok.end, null]);
    expect(parser.messages.map((m) => m.channel)).toEqual(['analysis', 'commentary', 'commentary', 'final']);
    expect(parser.messages[1]).toStrictEqual(msg('assistant', '{}', { channel: 'commentary', recipient: 'functions.f', content_type: 'json' }));
  });

  test('a message recovered from an unfinished header keeps its stop token', () => {
    const parser = new StreamableParser({ role: 'assistant', strict: false });
    for (const token of encodeWithSpecials('<|channel|>commentary Hello<|end|>')) parser.process(token);
    expect(parser.endTokens).toEqual([Tok.end]);
  });
});

describe('content decoding', () => {
  test('a special token inside content is written out as text', () => {
    const tokens = [...START_ASSISTANT_MESSAGE, ...encodeText('a'), Tok.channel, Tok.message, Tok.start, 200018, Tok.end];
    expect(parseMessagesFromCompletionTokens(tokens)).toStrictEqual([msg('assistant', 'a<|channel|><|message|><|start|><|reserved_200018|>')]);
  });

  test('literal special-token text in content stays text', () => {
    const tokens = [...START_ASSISTANT_MESSAGE, ...encodeText('<|end|> not a stop'), Tok.end];
    expect(parseMessagesFromCompletionTokens(tokens)).toStrictEqual([msg('assistant', '<|end|> not a stop')]);
  });

  test('a byte-order mark is kept', () => {
    const tokens = [...START_ASSISTANT_MESSAGE, ...encodeText('\ufeffx'), Tok.end];
    expect(parseMessagesFromCompletionTokens(tokens)).toStrictEqual([msg('assistant', '\ufeffx')]);
  });

  test('tricky UTF-8 text streams intact', () => {
    const text = 'Hello Müller, Γειά σου, Привет, שלום, مرحبا, नमस्ते, こんにちは, 안녕하세요, 你好. naïve vs naïve. 😊👋🏾👨‍👩‍👧‍👦🇺🇸.';
    const { parser, deltas } = stream([...START_ASSISTANT_MESSAGE, ...encodeText(text), Tok.end]);
    expect(deltas.filter((d) => d !== undefined).join('')).toBe(text);
    expect(parser.messages).toStrictEqual([msg('assistant', text)]);
  });

  // Tokens whose bytes are a single byte, for every byte value: enough to build any byte string.
  const byteToken = new Map<number, number>();
  for (let id = 0; byteToken.size < 256 && id < 200_000; id++) {
    const bytes = tokenBytes(id)!;
    if (bytes.length === 1 && !byteToken.has(bytes[0]!)) byteToken.set(bytes[0]!, id);
  }

  test('deltas add up to the message, which is the lossy decoding of all its bytes', () => {
    expect(byteToken.size).toBe(256);
    const anyToken = fc.oneof(
      fc.integer({ min: 0, max: 255 }).map((b) => byteToken.get(b)!),
      fc.constantFrom(9552, 31446, 244, 132990),
      fc.integer({ min: 0, max: 199_997 }),
    );
    fc.assert(
      fc.property(fc.array(anyToken, { maxLength: 40 }), (content) => {
        const { parser, deltas } = stream([...START_ASSISTANT_MESSAGE, ...content]);
        const streamed = deltas.filter((d) => d !== undefined).join('');
        expect(parser.currentContent).toBe(streamed);
        parser.processEos();
        const bytes = Uint8Array.from(content.flatMap((id) => [...tokenBytes(id)!]));
        const text = new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes);
        expect(parser.messages).toStrictEqual([msg('assistant', text)]);
        expect(text.startsWith(streamed)).toBe(true);
      }),
    );
  });
});

describe('header parsing', () => {
  test.each([
    ['<|channel|>final', { role: 'assistant', channel: 'final' }],
    [
      'assistant to=functions.f<|channel|>commentary <|constrain|>json',
      { role: 'assistant', channel: 'commentary', recipient: 'functions.f', contentType: '<|constrain|>json' },
    ],
    [
      '<|channel|>commentary to=functions.f<|constrain|>json',
      { role: 'assistant', channel: 'commentary', recipient: 'functions.f', contentType: '<|constrain|>json' },
    ],
    ['to=python<|channel|>analysis code', { role: 'assistant', channel: 'analysis', recipient: 'python', contentType: 'code' }],
    ['<|channel|>analysis to=browser.search', { role: 'assistant', channel: 'analysis', recipient: 'browser.search' }],
    // Upstream: a single bare word is the recipient.
    ['<|channel|>final json', { role: 'assistant', channel: 'final', recipient: 'json' }],
    // After v0.0.8 (harmony PR #144): a lone constrained type is a content type, not a recipient.
    ['<|channel|>final <|constrain|>json', { role: 'assistant', channel: 'final', contentType: '<|constrain|>json' }],
    ['<|channel|>commentary?', { role: 'assistant', channel: 'commentary?' }],
    ['<|channel|>analysis\u00a0\tto=x', { role: 'assistant', channel: 'analysis', recipient: 'x' }],
  ])('with role assistant: %s', (text, expected) => {
    expect(parseHeader(text, 'assistant')).toStrictEqual(expected);
  });

  test.each([
    ['assistant<|channel|>final', { role: 'assistant', channel: 'final' }],
    ['user', { role: 'user' }],
    ['browser.search to=assistant<|channel|>commentary', { role: 'tool', name: 'browser.search', channel: 'commentary', recipient: 'assistant' }],
    ['functions.get_weather to=assistant', { role: 'tool', name: 'functions.get_weather', recipient: 'assistant' }],
  ])('role from the header: %s', (text, expected) => {
    expect(parseHeader(text, undefined)).toStrictEqual(expected);
  });

  test.each([
    ['<|channel|>', undefined, 'channel marker present but no channel value'],
    ['', undefined, 'did not contain a role'],
    ['stranger', undefined, 'unknown role'],
    ['a b c<|channel|>final', 'assistant', 'unexpected tokens remaining in message header: ["a"]'],
  ] as const)('strict error: %j', (text, role, error) => {
    expect(() => parseHeader(text, role)).toThrow(error);
  });

  test('strict process errors', () => {
    const parser = new StreamableParser();
    expect(() => parser.process(17)).toThrow(new HarmonyParseError('expected <|start|> but got token 17'));
    const header = new StreamableParser({ role: 'assistant' });
    header.process(Tok.channel);
    expect(() => header.processEos()).toThrow(HarmonyParseError);
    expect(() => parse('<|channel|><|message|>x<|end|>')).toThrow('no channel value');
    expect(() => parseMessagesFromCompletionTokens([Tok.start, 4294967295, Tok.message])).toThrow('unknown token 4294967295');
    expect(() => parseMessagesFromCompletionTokens([Tok.start, 9552, Tok.message])).toThrow('invalid UTF-8');
  });

  test('EOS right after a stop token is fine', () => {
    expect(parse('<|channel|>final<|message|>ok<|return|>')).toStrictEqual([msg('assistant', 'ok', { channel: 'final' })]);
    expect(parseMessagesFromCompletionTokens([], null)).toEqual([]);
  });
});

describe('non-strict recovery of model quirks', () => {
  const lenient = (text: string) => parse(text, 'assistant', false);

  test('`<|channel|>final json` (harmony#56): json is the content type', () => {
    expect(lenient('<|channel|>final json<|message|>{"a":1}<|return|>')).toStrictEqual([
      msg('assistant', '{"a":1}', { channel: 'final', content_type: 'json' }),
    ]);
  });

  test('`<|constrain|> json` with a space is one content type', () => {
    expect(lenient('<|channel|>commentary to=functions.f <|constrain|> json<|message|>{}<|call|>')).toStrictEqual([
      msg('assistant', '{}', { channel: 'commentary', recipient: 'functions.f', content_type: '<|constrain|>json' }),
    ]);
    expect(() => parse('<|channel|>commentary to=functions.f <|constrain|> json<|message|>{}<|call|>')).toThrow('remaining');
  });

  test('a stray leading `<|channel|>commentary` is dropped', () => {
    expect(lenient('<|channel|>commentary<|channel|>analysis<|message|>think<|end|>')).toStrictEqual([msg('assistant', 'think', { channel: 'analysis' })]);
    expect(lenient('<|channel|>commentary<|start|>assistant<|channel|>analysis<|message|>think<|end|>')).toStrictEqual([
      msg('assistant', 'think', { channel: 'analysis' }),
    ]);
  });

  test('malformed channels (llama.cpp #27720) do not throw', () => {
    const text =
      '<|channel|>commentary to=assistant<|channel|>commentary?<|end|>' +
      '<|start|>assistant<|channel|>analysis<|message|>ok<|end|>' +
      '<|start|>assistant<|channel|>??<|message|>hi<|end|>';
    expect(lenient(text)).toStrictEqual([
      msg('assistant', '', { channel: 'commentary?' }),
      msg('assistant', 'ok', { channel: 'analysis' }),
      msg('assistant', 'hi', { channel: '??' }),
    ]);
    expect(lenient('<|channel|><|message|>x<|end|>')).toStrictEqual([msg('assistant', 'x')]);
  });

  test('a missing <|message|> in a later message is recovered too', () => {
    expect(lenient('<|channel|>analysis<|message|>a<|end|><|start|>assistant<|channel|>final Hello there<|return|>')).toStrictEqual([
      msg('assistant', 'a', { channel: 'analysis' }),
      msg('assistant', 'Hello there', { channel: 'final' }),
    ]);
  });

  test('leftover header words are dropped', () => {
    expect(lenient('<|channel|>commentary x to=functions.f json<|message|>{}<|call|>')).toStrictEqual([
      msg('assistant', '{}', { channel: 'commentary', recipient: 'functions.f', content_type: 'json' }),
    ]);
  });

  test('a missing <|start|> reads the next header as an assistant header', () => {
    const text = '<|channel|>analysis<|message|>a<|end|><|channel|>final<|message|>b<|return|>';
    expect(() => parse(text)).toThrow(`expected <|start|> but got token ${Tok.channel}`);
    expect(lenient(text)).toStrictEqual([msg('assistant', 'a', { channel: 'analysis' }), msg('assistant', 'b', { channel: 'final' })]);
  });

  test('<|start|> inside content ends the message in non-strict mode only', () => {
    const text = '<|channel|>analysis<|message|>a<|start|>assistant<|channel|>final<|message|>b<|return|>';
    expect(parse(text)).toStrictEqual([msg('assistant', 'a<|start|>assistant<|channel|>final<|message|>b', { channel: 'analysis' })]);
    const parser = new StreamableParser({ role: 'assistant', strict: false });
    for (const token of encodeWithSpecials(text)) parser.process(token);
    expect(parser.messages).toStrictEqual([msg('assistant', 'a', { channel: 'analysis' }), msg('assistant', 'b', { channel: 'final' })]);
    expect(parser.endTokens).toEqual([Tok.start, Tok.return]);
  });

  test('EOS inside a header recovers the header', () => {
    const parser = new StreamableParser({ role: 'assistant', strict: false });
    for (const token of encodeWithSpecials('<|channel|>final Partial answer')) parser.process(token);
    parser.processEos();
    expect(parser.messages).toStrictEqual([msg('assistant', 'Partial answer', { channel: 'final' })]);
    expect(parser.endTokens).toEqual([null]);
    const empty = new StreamableParser({ role: 'assistant', strict: false });
    empty.processEos();
    expect(empty.messages).toEqual([]);
  });

  test('never throws, and every message has an end token', () => {
    const vocabulary = [
      Tok.start,
      Tok.end,
      Tok.return,
      Tok.call,
      Tok.message,
      Tok.channel,
      Tok.constrain,
      Tok.endoftext,
      200018,
      4294967295,
      9552,
      173781,
      35644,
      17196,
      12606,
      815,
      316,
      28,
      44580,
      4108,
      220,
      40,
      2804,
      17360,
      1428,
    ];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...vocabulary), { maxLength: 60 }), fc.constantFrom<Role | null>('assistant', null), (tokens, role) => {
        const parser = new StreamableParser({ role, strict: false });
        for (const token of tokens) parser.process(token);
        parser.processEos();
        expect(parser.endTokens).toHaveLength(parser.messages.length);
        expect(parser.state).toBe('ExpectStart');
      }),
    );
  });
});
