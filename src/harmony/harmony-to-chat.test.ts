// harmony → OpenAI chat (spec/harmony.md §5): which recipients are tool calls, and the spelling of
// `content` by tokens that log-probabilities rely on, over well-formed and malformed completions.
import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { ChatDeltaStream, accumulateDeltas, completionToChat } from './harmony-to-chat.ts';
import { encodeHarmonyText, encodeText, Tok, tokenBytes } from './tokens.ts';

/** The id of the token whose bytes are exactly `bytes` (single-byte tokens, for invalid UTF-8). */
function byteToken(byte: number): number {
  for (let id = 0; id < 2000; id++) {
    const b = tokenBytes(id);
    if (b?.length === 1 && b[0] === byte) return id;
  }
  throw new Error(`no token for byte ${byte}`);
}

const CALL = encodeHarmonyText('<|channel|>commentary to=functions.calculator <|constrain|>json<|message|>{"expression":"2+2"}<|call|>');

describe('tool calls only to callable functions', () => {
  test('without a list (harmony level) every recipient is a call', () => {
    const chat = completionToChat(CALL);
    expect(chat.message.tool_calls?.map((c) => c.function)).toEqual([{ name: 'calculator', arguments: '{"expression":"2+2"}' }]);
    expect(chat.message.content).toBeNull();
  });

  test('a declared function is a call', () => {
    expect(completionToChat(CALL, { callable: ['calculator'] }).message.tool_calls).toHaveLength(1);
  });

  test('an undeclared recipient (none declared, another name, a bare name) is its channel: the text is content', () => {
    for (const callable of [[], ['get_weather']]) {
      const chat = completionToChat(CALL, { callable });
      expect(chat.message).toEqual({ role: 'assistant', content: '{"expression":"2+2"}' });
    }
    const bare = encodeHarmonyText('<|channel|>commentary to=calculator<|message|>hi<|end|>');
    expect(completionToChat(bare, { callable: ['calculator'] }).message).toEqual({ role: 'assistant', content: 'hi' });
  });

  test('an undeclared recipient on the analysis channel is reasoning', () => {
    const tokens = encodeHarmonyText('<|channel|>analysis to=python<|message|>print(1)<|call|>');
    expect(completionToChat(tokens, { callable: [] }).message).toEqual({ role: 'assistant', content: null, reasoning: 'print(1)' });
  });

  test("a malformed header's stray words are no call either (the tiny model's `іт`)", () => {
    // Non-strict parsing reads `<|channel|>final іт json` as recipient `іт`, content type `json`.
    const tokens = encodeHarmonyText('<|channel|>final іт json<|message|>text<|return|>');
    expect(completionToChat(tokens).message.tool_calls?.[0]?.function.name).toBe('іт');
    expect(completionToChat(tokens, { callable: [] }).message).toEqual({ role: 'assistant', content: 'text' });
  });
});

/** Feeds tokens with their index as tag: the content, and the bytes each index spelled. */
function spell(tokens: readonly number[], callable?: readonly string[]) {
  const stream = new ChatDeltaStream<number>({ spelling: true, ...(callable && { callable }) });
  const deltas = [];
  const spelled: Array<{ tag: number | undefined; bytes: number[] }> = [];
  tokens.forEach((t, i) => {
    deltas.push(...stream.push(t, i));
    spelled.push(...stream.takeSpelling().map((s) => ({ tag: s.tag, bytes: [...s.bytes] })));
  });
  deltas.push(...stream.finish());
  spelled.push(...stream.takeSpelling().map((s) => ({ tag: s.tag, bytes: [...s.bytes] })));
  return { content: accumulateDeltas(deltas).content ?? '', spelled };
}

const hex = (bytes: Iterable<number>) => Buffer.from([...bytes]).toString('hex');

describe('spelling: every content byte is attributed to a token, in order', () => {
  test('ordinary tokens spell themselves; analysis and headers spell nothing', () => {
    const tokens = encodeHarmonyText('<|channel|>analysis<|message|>think<|end|><|start|>assistant<|channel|>final<|message|>Hello world<|return|>');
    const { content, spelled } = spell(tokens);
    expect(content).toBe('Hello world');
    const final = tokens.lastIndexOf(Tok.message);
    expect(spelled.map((s) => s.tag)).toEqual(tokens.slice(final + 1, -1).map((_, i) => final + 1 + i));
    expect(spelled.map((s) => hex(s.bytes))).toEqual(tokens.slice(final + 1, -1).map((t) => hex(tokenBytes(t)!)));
  });

  test('a character split across tokens keeps its bytes split', () => {
    const [e4, bd, a0] = [byteToken(0xe4), byteToken(0xbd), byteToken(0xa0)];
    const tokens = [...encodeHarmonyText('<|channel|>final<|message|>'), e4, bd, a0, Tok.return];
    const { content, spelled } = spell(tokens);
    expect(content).toBe('你');
    expect(spelled.map((s) => s.bytes)).toEqual([[0xe4], [0xbd], [0xa0]]);
  });

  test('invalid bytes: one U+FFFD to the token that began them', () => {
    const [e4, ff, a] = [byteToken(0xe4), byteToken(0xff), byteToken(0x41)];
    const tokens = [...encodeHarmonyText('<|channel|>final<|message|>'), e4, a, ff, e4];
    const { content, spelled } = spell(tokens);
    expect(content).toBe('\uFFFDA\uFFFD\uFFFD');
    expect(spelled.map((s) => [s.tag! - tokens.indexOf(Tok.message) - 1, hex(s.bytes)])).toEqual([
      [0, 'efbfbd'],
      [1, '41'],
      [2, 'efbfbd'],
      [3, 'efbfbd'], // flushed at the end of generation
    ]);
  });

  test('a header that never reached <|message|>: its words, joined by one space, are spelled by their tokens', () => {
    const tokens = [Tok.channel, ...encodeText('final'), ...encodeText(' hello'), ...encodeText('   world'), Tok.end];
    const { content, spelled } = spell(tokens);
    expect(content).toBe('hello world');
    expect(hex(spelled.flatMap((s) => s.bytes))).toBe(hex(Buffer.from(content)));
    expect(spelled.every((s) => s.tag !== tokens.length - 1)).toBe(true);
  });
});

// Every kind of token the tiny model samples: header words, specials, whitespace, bytes of invalid
// or split UTF-8, text with and without recipients.
const POOL: number[][] = [
  [Tok.channel],
  [Tok.message],
  [Tok.end],
  [Tok.start],
  [Tok.call],
  [Tok.return],
  [Tok.constrain],
  [200010], // a reserved special: written out as text
  ...['final', 'analysis', 'commentary', 'assistant', ' to=functions.calculator', ' to=foo', ' json', 'Hello', ' world', '  ', '\n', '你', 'é'].map((t) =>
    encodeText(t),
  ),
  ...[0xe4, 0xbd, 0xa0, 0xff, 0xc3, 0xa9, 0xf0, 0x9f].map((b) => [byteToken(b)]),
];

test.prop([fc.array(fc.nat({ max: POOL.length - 1 }), { maxLength: 40 }), fc.constantFrom(undefined, [], ['calculator'])])(
  'over random token sequences: the spelled bytes are the content, and only callable functions are called',
  (picks, callable) => {
    const tokens = picks.flatMap((i) => POOL[i]!);
    const { content, spelled } = spell(tokens, callable);
    expect(hex(spelled.flatMap((s) => s.bytes))).toBe(hex(Buffer.from(content, 'utf8')));
    for (const s of spelled) expect(s.bytes.length).toBeGreaterThan(0);
    const chat = completionToChat(tokens, callable ? { callable } : {});
    expect(chat.message.content ?? '').toBe(content);
    if (callable) for (const c of chat.message.tool_calls ?? []) expect(callable).toContain(c.function.name);
  },
);
