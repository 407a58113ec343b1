// The Hugging Face tokenizer files, checked with Hugging Face's own `tokenizers` library (the Rust
// implementation, through its Node binding): tokenizer.json must turn every golden's text into the
// golden's token ids and back, agree with amnesia's encoder on hard cases, and come out the same bytes
// every time; tokenizer_config.json and special_tokens_map.json must say what openai/gpt-oss's say.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer } from 'tokenizers';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { GPT_OSS_CHAT_TEMPLATE } from './hf-chat-template.ts';
import { buildTokenizerJson, HF_VOCAB_SIZE, hfSpecialTokens, hfTokenizerFiles, O200K_PAT_STR } from './hf-tokenizer.ts';
import { encodeText, isSpecialToken, specialTokenText, Tok, tokenBytes } from './tokens.ts';

/**
 * sha256 of tokenizer.json. A change to the vocabulary, the merges' derivation or the layout shows up
 * here: if it is on purpose, update the hash and bump TINY_VERSION (src/engine/make-tiny.ts), whose
 * cached folders hold this file.
 */
const TOKENIZER_JSON_SHA256 = 'f0811bb9c8fa628656fc84434b0d7e17a494b265fb8361e76a575e3d7fc68866';

const ORDINARY_TOKENS = 199998;
const goldenRoot = new URL('../../golden/', import.meta.url);

const scratch = mkdtempSync(join(tmpdir(), 'amnesia-hf-tokenizer-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let files: Readonly<Record<string, string>>;
/** tokenizer.json as written, loaded by the `tokenizers` library. */
let hf: Tokenizer;
/** The same file without its added tokens: special-token text stays text (for the lookalike goldens). */
let hfOrdinary: Tokenizer;

beforeAll(() => {
  files = hfTokenizerFiles();
  for (const [name, text] of Object.entries(files)) writeFileSync(join(scratch, name), text);
  hf = Tokenizer.fromFile(join(scratch, 'tokenizer.json'));
  hfOrdinary = Tokenizer.fromString(JSON.stringify({ ...(JSON.parse(files['tokenizer.json']!) as object), added_tokens: [] }));
}, 120_000);

async function encode(text: string, tokenizer = hf): Promise<number[]> {
  return (await tokenizer.encode(text, null, { addSpecialTokens: false })).getIds();
}

const decode = (ids: number[]): Promise<string> => hf.decode(ids, false);

/** amnesia's decoding: each token's bytes (a special token's name), then UTF-8 with U+FFFD for bad bytes. */
function decodeOurs(ids: readonly number[]): string {
  return Buffer.concat(ids.map((id) => (isSpecialToken(id) ? Buffer.from(specialTokenText(id)) : tokenBytes(id)!))).toString('utf8');
}

const SPECIAL_IDS = new Map(hfSpecialTokens().map(([id, name]) => [name, id]));
const SPECIAL_TEXT = new RegExp([...SPECIAL_IDS.keys()].map((name) => name.replace(/[|]/g, '\\|')).join('|'), 'g');
const HAS_SPECIAL_TEXT = new RegExp(SPECIAL_TEXT.source);

/** amnesia's encoder with every special token's text recognised (tiktoken's `allowed_special="all"`). */
function encodeAllSpecial(text: string): number[] {
  const ids: number[] = [];
  let last = 0;
  for (const m of text.matchAll(SPECIAL_TEXT)) {
    ids.push(...encodeText(text.slice(last, m.index)), SPECIAL_IDS.get(m[0])!);
    last = m.index + m[0].length;
  }
  return [...ids, ...encodeText(text.slice(last))];
}

/** The runs of ordinary tokens between special tokens. */
function ordinaryRuns(ids: readonly number[]): number[][] {
  const runs: number[][] = [[]];
  for (const id of ids) {
    if (isSpecialToken(id)) runs.push([]);
    else runs[runs.length - 1]!.push(id);
  }
  return runs.filter((run) => run.length > 0);
}

// ---- the goldens ------------------------------------------------------------------------------

interface Golden {
  name: string;
  text: string;
  ids: number[];
}

const readJson = <T>(url: URL): T => JSON.parse(readFileSync(url, 'utf8')) as T;

/** Every golden that holds a rendered text and its token ids. */
function goldens(): Golden[] {
  const out: Golden[] = [];
  const render = readJson<{ cases: { name: string; expected_text: string; expected_tokens_derived: number[] }[] }>(
    new URL('harmony/upstream/render_cases.json', goldenRoot),
  );
  for (const c of render.cases) out.push({ name: `harmony/render: ${c.name}`, text: c.expected_text, ids: c.expected_tokens_derived });
  const parse = readJson<{ cases: { name: string; input_text?: string; input_tokens_derived?: number[] }[] }>(
    new URL('harmony/upstream/parse_cases.json', goldenRoot),
  );
  for (const c of parse.cases) if (c.input_text !== undefined) out.push({ name: `harmony/parse: ${c.name}`, text: c.input_text, ids: c.input_tokens_derived! });
  const folders = (kind: string) =>
    readdirSync(new URL(`${kind}/`, goldenRoot), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
  for (const name of folders('chat')) {
    const dir = new URL(`chat/${name}/`, goldenRoot);
    if (!existsSync(new URL('prompt.txt', dir))) continue; // an error case: no prompt
    out.push({ name: `chat/${name}`, text: readFileSync(new URL('prompt.txt', dir), 'utf8'), ids: readJson(new URL('prompt.tokens.json', dir)) });
  }
  for (const name of folders('completions')) {
    const dir = new URL(`completions/${name}/`, goldenRoot);
    // One trailing newline is the file's, not the completion's (golden/goldens.ts).
    const text = readFileSync(new URL('completion.txt', dir), 'utf8').replace(/\n$/, '');
    out.push({ name: `completions/${name}`, text, ids: readJson(new URL('completion.tokens.json', dir)) });
  }
  return out;
}

/**
 * Goldens whose ids hold special-token text as ordinary tokens (the text alone cannot say so, and a
 * tokenizer that recognises special tokens in text makes them special). chat/special-token-lookalikes
 * is about exactly that. completions/endoftext-stop's completion.txt spells `<|endoftext|>`, which
 * encodeHarmonyText (golden/goldens.ts) keeps as text: its tokens have no 199999.
 */
const SPELLED_SPECIALS = ['chat/special-token-lookalikes', 'completions/endoftext-stop'];

describe('tokenizer.json against every golden', () => {
  const cases = goldens();

  test('the goldens are there', () => {
    expect(cases.length).toBeGreaterThanOrEqual(70);
  });

  test.each(cases.map((c) => [c.name, c] as const))('%s', async (_, c) => {
    expect(await decode(c.ids)).toBe(c.text);
    const spelled = ordinaryRuns(c.ids).some((run) => HAS_SPECIAL_TEXT.test(decodeOurs(run)));
    if (!spelled) {
      expect(SPELLED_SPECIALS).not.toContain(c.name);
      expect(await encode(c.text)).toEqual(c.ids);
      return;
    }
    expect(SPELLED_SPECIALS).toContain(c.name);
    // The text with special tokens recognised, as tiktoken encodes it with every special allowed…
    expect(await encode(c.text)).toEqual(encodeAllSpecial(c.text));
    // …and the golden's ordinary runs, with special-token text left as text.
    for (const run of ordinaryRuns(c.ids)) expect(await encode(decodeOurs(run), hfOrdinary)).toEqual(run);
  });
});

// ---- hard cases -------------------------------------------------------------------------------

const HARD_CASES: [string, string][] = [
  ['a long run without spaces', 'x'.repeat(3000)],
  ['a long mixed run', 'aB3_-'.repeat(400)],
  ['base64', Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7919) % 256)).toString('base64')],
  ['a long word', 'Pneumonoultramicroscopicsilicovolcanoconiosis'.repeat(20)],
  ['CJK', '日本語のテキストを分割する。中文测试，한국어 텍스트입니다。'],
  ['CJK without punctuation', '東京都千代田区丸の内一丁目'.repeat(10)],
  ['emoji', '👨‍👩‍👧‍👦 family 🇫🇷🇯🇵 flags 👍🏽 tone 💖🎉✨ done'],
  ['emoji run', '😀😃😄😁😆😅😂🤣🥲☺️😊😇🙂🙃😉'],
  ['numbers', '0 1 12 123 1234 12345 1234567890 3.14159 -2.5e-10 1,000,000 ٣٤٥ ⅔ ²'],
  ['contractions', "I'm you're he's we've they'd it'll can't DON'T WE'LL She'S 'tis y'all rock'n'roll"],
  ['apostrophes without words', "'s 's' ''s ' ’s"],
  ['newlines and whitespace runs', 'a\n\nb\n\n\n\nc   d\t\te \r\n\r\n  f\n   \n  g   \n\n'],
  ['whitespace only', ' \t \n\n  \r\n   '],
  ['trailing spaces', 'end   '],
  ['leading spaces', '    start'],
  ['non-ASCII spaces', 'a\u00a0b\u2003c\u3000d\u2028e\u2029f'],
  ['a lone U+FEFF', '\uFEFF'],
  ['U+FEFF before a word', '\uFEFFhello world'],
  ['U+FEFF inside words', 'a\uFEFFb hello\uFEFF!'],
  ['U+FEFF after a space', 'x \uFEFF'],
  ['combining marks', 'e\u0301 a\u0308 Zalgo: Z\u0351\u0352\u0353a\u0354\u0355'],
  ['code', 'function f(x) {\n  return x.map((y) => y * 2); // ok\n}\n\tif (a != b) { print("hi\\n"); }'],
  ['JSON', '{"location": "Tokyo", "n": [1, 2.5, null], "s": "<|start|>"}'],
  ['mixed scripts', 'Ελληνικά русский עברית العربية हिन्दी ไทย'],
  ['special-token text', '<|start|>user<|message|>hi<|end|><|reserved_200018|>'],
  ['control characters', '\u0000\u0001\u0007\u001b[31mred\u001b[0m\u007f'],
];

describe('tokenizer.json against amnesia’s encoder', () => {
  test.each(HARD_CASES)('%s', async (_, text) => {
    const ours = encodeAllSpecial(text);
    expect(await encode(text)).toEqual(ours);
    expect(await decode(ours)).toBe(text);
  });

  test('random strings over a mixed alphabet', async () => {
    const alphabet = [
      ...'abcXYZéßÆ日本中한ñ',
      ...'0123456789٣',
      ...` \t\n\r\u00a0\u3000`,
      ...`'’"!?.,;:-_/\\()[]{}<>|@#$%^&*+=~\``,
      '😀',
      '👍🏽',
      '\u0301',
      '\u200d',
      // Where JS's regex meanings differ from tiktoken's (bpe.ts spells tiktoken's out).
      '\ufeff',
      '\u0085',
      '\u017f',
      '\u2028',
    ];
    // A fixed LCG: the same strings every run.
    let state = 12345;
    const next = (n: number) => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0), state % n);
    for (let i = 0; i < 2000; i++) {
      const text = Array.from({ length: 1 + next(40) }, () => alphabet[next(alphabet.length)]).join('');
      expect(await encode(text), JSON.stringify(text)).toEqual(encodeText(text));
    }
  });

  test('the nine tokens that start with U+FEFF: each is its own text’s encoding', async () => {
    const bom = [...Array(ORDINARY_TOKENS).keys()].filter((id) => {
      const b = tokenBytes(id)!;
      return b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf;
    });
    expect(bom).toEqual([5574, 9251, 42295, 44173, 61992, 67837, 76234, 110862, 135153]);
    const differ: number[] = [];
    for (const id of bom) {
      const text = decodeOurs([id]);
      expect(await encode(text), JSON.stringify(text)).toEqual([id]);
      if (JSON.stringify(encodeText(text)) !== JSON.stringify([id])) differ.push(id);
    }
    // U+FEFF "//" and U+FEFF "#" are one piece to tiktoken's pattern, and to bpe.ts's (next test).
    expect(differ).toEqual([]);
  });

  test('where JS regex meanings differ from tiktoken’s, bpe.ts and tokenizer.json both follow tiktoken', async () => {
    // JS's \s holds U+FEFF and not U+0085; Rust's (Unicode White_Space) the other way round. And
    // (?i:'s) folds ſ (U+017F) to s. bpe.ts spells tiktoken's meanings out (its O200K_PATTERN).
    const pieces = (text: string) =>
      hf
        .getPreTokenizer()!
        .preTokenizeString(text)
        .map(([piece]) => piece);
    expect(pieces('\uFEFF//')).toHaveLength(1);
    expect(await encode('\uFEFF//')).toEqual([76234]);
    expect(encodeText('\uFEFF//')).toEqual([76234]);
    expect(pieces('\uFEFF\uFEFF!')).toHaveLength(1);
    expect(await encode('\uFEFF\uFEFF!')).toEqual([135153, 0]);
    expect(encodeText('\uFEFF\uFEFF!')).toEqual([135153, 0]);
    expect(pieces('a \u0085b')).toHaveLength(3);
    expect(await encode('a \u0085b')).toEqual(encodeText('a \u0085b'));
    expect(pieces("it'\u017F")).toHaveLength(1);
    expect(await encode("it'\u017F")).toEqual(encodeText("it'\u017F")); // other pieces, the same ids
  });

  test('every ordinary token decodes to its bytes, invalid UTF-8 alone included', async () => {
    const ids = [...Array(ORDINARY_TOKENS).keys()];
    const decoded = await hf.decodeBatch(
      ids.map((id) => [id]),
      false,
    );
    const wrong = ids.filter((id) => decoded[id] !== Buffer.from(tokenBytes(id)!).toString('utf8'));
    expect(wrong).toEqual([]);
    // 9552 is bytes 20 F0 9F: alone, a space and U+FFFD; a character split across tokens comes back whole.
    expect(await decode([9552])).toBe(' \uFFFD');
    const heart = encodeText('💖');
    expect(heart.length).toBeGreaterThanOrEqual(2);
    expect(await decode(heart)).toBe('💖');
    expect(await decode([...encodeText('a'), ...heart, ...encodeText('b')])).toBe('a💖b');
  });

  test('the vocabulary: 199998 byte-level tokens, then the 1090 special tokens up to 201087', async () => {
    expect(hf.getVocabSize(false)).toBe(ORDINARY_TOKENS);
    expect(hf.getVocabSize(true)).toBe(HF_VOCAB_SIZE);
    const specials = hfSpecialTokens();
    expect(specials).toHaveLength(HF_VOCAB_SIZE - ORDINARY_TOKENS);
    for (const [id, name] of specials) {
      expect(hf.idToToken(id)).toBe(name);
      // harmony's names, but for 200018, which openai/gpt-oss's files call <|endofprompt|>.
      expect(name).toBe(id === 200018 ? '<|endofprompt|>' : specialTokenText(id));
    }
    expect(specials.slice(0, 15).map(([, name]) => name)).toEqual([
      '<|startoftext|>',
      '<|endoftext|>',
      '<|reserved_200000|>',
      '<|reserved_200001|>',
      '<|return|>',
      '<|constrain|>',
      '<|reserved_200004|>',
      '<|channel|>',
      '<|start|>',
      '<|end|>',
      '<|message|>',
      '<|reserved_200009|>',
      '<|reserved_200010|>',
      '<|reserved_200011|>',
      '<|call|>',
    ]);
    expect(specials.at(-1)).toEqual([201087, '<|reserved_201087|>']);
    const all = specials.map(([, name]) => name).join('');
    expect(await encode(all)).toEqual(specials.map(([id]) => id));
    expect(await decode(specials.map(([id]) => id))).toBe(all);
    // No bos/eos is added, whatever the caller asks.
    expect((await hf.encode('hi', null, { addSpecialTokens: true })).getIds()).toEqual(encodeText('hi'));
  });

  test('the merges: one per multi-byte token, each making a token, in the tokens’ order', () => {
    const doc = JSON.parse(files['tokenizer.json']!) as {
      model: { vocab: Record<string, number>; merges: [string, string][]; ignore_merges: boolean };
      pre_tokenizer: { pretokenizers: { pattern?: { Regex: string } }[] };
    };
    const { vocab, merges } = doc.model;
    expect(Object.keys(vocab)).toHaveLength(ORDINARY_TOKENS);
    // Every token longer than a byte can be built by merges (none needs the whole-piece lookup alone).
    expect(merges).toHaveLength(ORDINARY_TOKENS - 256);
    const made = merges.map(([a, b]) => vocab[a + b]);
    expect(made.every((id, i) => id !== undefined && (i === 0 || id > made[i - 1]!))).toBe(true);
    expect(doc.model.ignore_merges).toBe(true);
    expect(doc.pre_tokenizer.pretokenizers[0]!.pattern!.Regex).toBe(O200K_PAT_STR);
  });
});

// ---- the other files and determinism ----------------------------------------------------------

describe('tokenizer_config.json and special_tokens_map.json', () => {
  test('openai/gpt-oss’s fields, the chat template byte for byte, every special token', () => {
    const text = files['tokenizer_config.json']!;
    const config = JSON.parse(text) as Record<string, unknown> & { added_tokens_decoder: Record<string, Record<string, unknown>> };
    expect(config).toMatchObject({
      bos_token: '<|startoftext|>',
      eos_token: '<|return|>',
      pad_token: '<|endoftext|>',
      tokenizer_class: 'PreTrainedTokenizerFast',
      clean_up_tokenization_spaces: false,
      model_input_names: ['input_ids', 'attention_mask'],
    });
    // transformers' int(1e30), written as an integer (JSON.stringify would write 1e+30, a float to Python).
    expect(text).toContain('"model_max_length": 1000000000000000019884624838656,');
    expect(config.chat_template).toBe(GPT_OSS_CHAT_TEMPLATE);
    // The published template's bytes (llama.cpp's models/templates/openai-gpt-oss-120b.jinja).
    expect(createHash('sha256').update(GPT_OSS_CHAT_TEMPLATE).digest('hex')).toBe('df2349807f46a21e3e0914ab3b1d959f6256a0f9c63d42cb67cace0ea587fada');
    const added = JSON.parse(files['tokenizer.json']!) as { added_tokens: { id: number; content: string; special: boolean }[] };
    expect(Object.keys(config.added_tokens_decoder)).toEqual(added.added_tokens.map((t) => String(t.id)));
    for (const t of added.added_tokens) {
      expect(t.special).toBe(true);
      expect(config.added_tokens_decoder[String(t.id)]).toEqual({
        content: t.content,
        lstrip: false,
        normalized: false,
        rstrip: false,
        single_word: false,
        special: true,
      });
    }
    expect(JSON.parse(files['special_tokens_map.json']!)).toEqual({ bos_token: '<|startoftext|>', eos_token: '<|return|>', pad_token: '<|endoftext|>' });
    expect([Tok.startoftext, Tok.return, Tok.endoftext].map((id) => hf.idToToken(id))).toEqual(['<|startoftext|>', '<|return|>', '<|endoftext|>']);
  });
});

describe('determinism', () => {
  test('two builds give the same bytes, and the pinned hash', () => {
    const again = buildTokenizerJson();
    expect(again === files['tokenizer.json']).toBe(true);
    expect(createHash('sha256').update(again).digest('hex')).toBe(TOKENIZER_JSON_SHA256);
  });
});
