// Our o200k encoder (bpe.ts) against the two it replaces or imitates: gpt-tokenizer (what
// encodeText used before, quadratic on long pieces) and js-tiktoken (the OpenAI port), on random text
// with the runs that made the old encoder quadratic. And the bounded forms: encodePieces with a limit.
import { test as fcTest } from '@fast-check/vitest';
import fc from 'fast-check';
import { encode as gptTokenizerEncode } from 'gpt-tokenizer/encoding/o200k_harmony';
import { Tiktoken } from 'js-tiktoken/lite';
import o200k from 'js-tiktoken/ranks/o200k_base';
import { describe, expect, test } from 'vitest';
import { encodePieces, encodeText, maxTokenBytes, minTokenCount, Tok } from './tokens.ts';

const tiktoken = new Tiktoken(o200k, {});
const gptTokenizer = (text: string): number[] => gptTokenizerEncode(text, { disallowedSpecial: new Set() });

/** Units whose long runs are single pre-tokenizer pieces (or stress the pattern): the quadratic cases. */
const UNITS = [
  'a',
  'Z',
  'ab',
  'xyz',
  '7',
  '中',
  '한',
  'カ',
  '😀',
  '👍🏽',
  '👨‍👩‍👧',
  'é',
  'e\u0301',
  'ǅ',
  'ß',
  ' ',
  '\n',
  '\r\n',
  '\t',
  ' \n',
  '\u3000',
  '\u00a0',
  '!',
  '/',
  '-',
  '=',
  "'s",
  "A'",
  ' x',
  '<|start|>',
  '\u0000',
  '\ud800',
  '\udc00',
  '\ufffd',
];

const segment = fc.oneof(
  fc.tuple(fc.constantFrom(...UNITS), fc.integer({ min: 1, max: 250 })).map(([unit, n]) => unit.repeat(n)),
  fc.string({ unit: 'grapheme', maxLength: 24 }),
  fc.string({ unit: 'binary', maxLength: 24 }),
  fc.stringMatching(/^[a-zA-Z0-9 .,'\n]{0,60}$/),
);
/** Random text with adversarial runs, small enough for the quadratic encoders (at most ~2,200 chars). */
const text = fc.array(segment, { maxLength: 8 }).map((parts) => parts.join(''));

describe('encodeText is tiktoken exactly', () => {
  fcTest.prop([text], { numRuns: 200 })('same ids as js-tiktoken and (without U+FEFF) gpt-tokenizer', (s) => {
    const ours = encodeText(s);
    expect(ours).toEqual(tiktoken.encode(s));
    if (!s.includes('\ufeff')) expect(ours).toEqual(gptTokenizer(s));
  });

  test('long runs of one unit, past the short-piece path and through heap compaction', () => {
    // js-tiktoken is quadratic too: runs up to ~1,200 bytes.
    for (const unit of UNITS) {
      for (const bytes of [31, 32, 33, 200, 1200]) {
        const s = unit.repeat(Math.max(1, Math.round(bytes / Buffer.byteLength(unit))));
        expect(encodeText(s), `${JSON.stringify(unit)}, ${bytes} bytes`).toEqual(tiktoken.encode(s));
      }
    }
  });

  test('U+FEFF: tiktoken, not gpt-tokenizer 4.0.0 (whose BOM-stripping decoder never makes the nine U+FEFF tokens)', () => {
    expect(encodeText('\ufeff')).toEqual([5574]);
    expect(encodeText('\ufeff\ufeff')).toEqual([135153]);
    expect(encodeText('\ufeffusing')).toEqual([9251]);
    expect(encodeText('a\ufeff\n\n')).toEqual(tiktoken.encode('a\ufeff\n\n'));
    expect(gptTokenizer('\ufeff')).not.toEqual([5574]);
  });

  test('special-token text and lone surrogates are plain text', () => {
    expect(encodeText('')).toEqual([]);
    expect(encodeText('<|start|>')).toEqual(gptTokenizer('<|start|>'));
    expect(encodeText('<|start|>')).not.toContain(Tok.start);
    expect(encodeText('x\ud800y')).toEqual(encodeText('x\ufffdy'));
  });
});

describe('near-linear on any input', () => {
  // gpt-tokenizer takes minutes on each of these (16K chars 0.3 s, 64K 4.9 s, quadratic); ours well
  // under a second. A quadratic regression fails by the test timeout, not by a wall-clock threshold.
  const RUN = 256 * 1024;
  test.each(['a', 'Z', 'xyz', '7', '中', '😀', 'e\u0301', ' ', '\n', '!', '\u3000', "A'"])('%j repeated to 256K characters', (unit) => {
    const s = unit.repeat(Math.ceil(RUN / unit.length));
    const tokens = encodeText(s);
    expect(tokens.length).toBeGreaterThanOrEqual(minTokenCount([s]));
    // Spot-check exactness on the tail (a fresh encode of a short run of the same unit).
    expect(encodeText(unit.repeat(300))).toEqual(tiktoken.encode(unit.repeat(300)));
  });

  test('a long run without spaces, of words', () => {
    const words = ['the', 'of', 'bounded', 'work', 'per', 'request', 'tokens', 'quadratic', 'heap'];
    let s = '';
    for (let i = 0; s.length < RUN; i++) s += words[(i * 7 + (i >> 3)) % words.length];
    const tokens = encodeText(s);
    expect(tokens.length).toBeGreaterThan(RUN / 16);
    const head = s.slice(0, 3000);
    expect(encodeText(head)).toEqual(tiktoken.encode(head));
  });
});

describe('encodePieces with a limit', () => {
  const pieces = fc.array(fc.oneof(text, fc.constantFrom(Tok.start, Tok.message, Tok.end)), { maxLength: 5 });

  fcTest.prop([pieces, fc.nat({ max: 400 })], { numRuns: 200 })('null exactly when the ids are more than the limit; else the same ids', (ps, limit) => {
    const all = ps.flatMap((p) => (typeof p === 'number' ? [p] : encodeText(p)));
    expect(encodePieces(ps)).toEqual(all);
    expect(encodePieces(ps, limit)).toEqual(all.length > limit ? null : all);
    expect(minTokenCount(ps)).toBeLessThanOrEqual(all.length);
  });

  test('a piece that cannot fit is never merged (a 64 MB run gives null at once)', () => {
    expect(maxTokenBytes()).toBe(128);
    const huge = 'a'.repeat(64 * 2 ** 20);
    expect(encodePieces(['x', huge], 1000)).toBeNull();
    expect(minTokenCount([huge])).toBe((64 * 2 ** 20) / 128);
  });
});
