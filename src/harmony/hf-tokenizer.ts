// o200k_harmony as Hugging Face tokenizer files (tokenizer.json, tokenizer_config.json,
// special_tokens_map.json), so that a checkpoint folder amnesia writes loads in other servers
// (transformers, vLLM, llama.cpp's converters, mlx-lm) and they tokenize as tiktoken's o200k_harmony,
// as amnesia's encoder does (bpe.ts). Built from the ranks the project ships
// (gpt-tokenizer's o200k_base, as bpe.ts uses them) and harmony's special tokens; nothing is downloaded.
// Harmony owns the vocabulary, so the files are built here; engine/checkpoint-folder.ts writes them.
//
// tokenizer.json is a byte-level BPE:
// - vocab: each o200k token's bytes in GPT-2's byte → character mapping, id = rank;
// - merges: one per token that BPE can build, the pair of tokens tiktoken's merge loop joins last when
//   it encodes that token's own bytes (derived here, see lastMerge). In any text, whenever tiktoken
//   builds a token it builds it by that same last merge (the merges inside a span depend only on the
//   span), so a BPE over these merges, ranked like their tokens, makes tiktoken's choices step by step;
// - ignore_merges: a pre-token that is a whole token is taken whole, as tiktoken looks a piece up first;
// - pre_tokenizer: Split on tiktoken's o200k pattern as tiktoken writes it (`(?i:'s|…)`, Rust regex
//   syntax that the tokenizers library accepts), then ByteLevel without its own regex; decoder ByteLevel;
// - added_tokens: ids 199998…201087 (the model's vocab_size is 201088), special, named as the tokenizer
//   that openai/gpt-oss publishes names them: harmony's formatting tokens, `<|endofprompt|>` at 200018
//   (o200k_base's; harmony and specialTokenText call it `<|reserved_200018|>`), `<|reserved_N|>` for
//   the rest. The published files stop at 200018; here every id the model can sample decodes.
//
// The nine tokens that start with U+FEFF (5574 = U+FEFF, 76234 = U+FEFF "//", …) are in the vocab with
// their merges like any other, so this tokenizer produces them where tiktoken does, as bpe.ts does
// (which spells out tiktoken's regex meanings where JS's differ: U+FEFF, U+0085, ſ).
//
// Deterministic (same bytes every time, the test pins a sha256); built once per process (~2 s).
import ranks from 'gpt-tokenizer/bpeRanks/o200k_base';
import { mergeParts } from './bpe.ts';
import { GPT_OSS_CHAT_TEMPLATE } from './hf-chat-template.ts';
import { specialTokenText, Tok } from './tokens.ts';

/** tiktoken's o200k `pat_str`, verbatim (bpe.ts holds the same pattern in JS syntax). */
export const O200K_PAT_STR = [
  String.raw`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?`,
  String.raw`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?`,
  String.raw`\p{N}{1,3}`,
  String.raw` ?[^\s\p{L}\p{N}]+[\r\n/]*`,
  String.raw`\s*[\r\n]+`,
  String.raw`\s+(?!\S)`,
  String.raw`\s+`,
].join('|');

/** The model's vocabulary size: o200k's 199998 ranks, then the special tokens up to 201087. */
export const HF_VOCAB_SIZE = 201088;

/** o200k_base's name for 200018, which openai/gpt-oss's tokenizer files keep. */
const ENDOFPROMPT = 200018;

/** The added (special) tokens of tokenizer.json, in id order: [id, content]. */
export function hfSpecialTokens(): [number, string][] {
  const out: [number, string][] = [];
  for (let id: number = Tok.startoftext; id < HF_VOCAB_SIZE; id++) out.push([id, id === ENDOFPROMPT ? '<|endofprompt|>' : specialTokenText(id)]);
  return out;
}

/** GPT-2's byte → character table: printable Latin-1 bytes stand for themselves, the others for U+0100…. */
function byteToChar(): string[] {
  const table: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table.push(String.fromCharCode(printable ? b : next++));
  }
  return table;
}

/** Each rank's bytes as a binary string (one char per byte). */
function rankBytes(): string[] {
  const scratch = Buffer.alloc(1024);
  return ranks.map((entry) =>
    typeof entry === 'string' ? scratch.toString('latin1', 0, scratch.write(entry, 'utf8')) : Buffer.from(entry).toString('latin1'),
  );
}

/**
 * The pair of ranks that tiktoken's merge loop joins last when it encodes `bin` (a token's bytes)
 * from single bytes: repeatedly join the adjacent pair whose bytes form the lowest-ranked token,
 * leftmost on ties. Undefined when the loop stops before one part is left: then only a whole-piece
 * lookup yields the token, and it needs no merge.
 */
export function lastMerge(bin: string, byBytes: ReadonlyMap<string, number>): [number, number] | undefined {
  // Two parts left: they are what the last merge joins (bin is a token, so the pair has a rank).
  const starts = mergeParts(bin, byBytes, 2);
  if (starts.length !== 3) return undefined;
  return [byBytes.get(bin.slice(0, starts[1]))!, byBytes.get(bin.slice(starts[1]))!];
}

/** The merges of tokenizer.json as [left rank, right rank], in the order of the tokens they make. */
export function deriveMerges(): [number, number][] {
  const bins = rankBytes();
  const byBytes = new Map<string, number>();
  bins.forEach((bin, rank) => byBytes.set(bin, rank));
  const merges: [number, number][] = [];
  for (const bin of bins) {
    if (bin.length < 2) continue;
    const pair = lastMerge(bin, byBytes);
    if (pair !== undefined) merges.push(pair);
  }
  return merges;
}

const json = (value: unknown): string => JSON.stringify(value);

function addedTokenFields(content: string): Record<string, unknown> {
  return { content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true };
}

/** Each rank's name in tokenizer.json's vocab: its bytes in GPT-2's byte → character mapping (engine/export-gguf.ts uses them too). */
export function hfVocabNames(): string[] {
  const chars = byteToChar();
  return rankBytes().map((bin) => {
    let s = '';
    for (let i = 0; i < bin.length; i++) s += chars[bin.charCodeAt(i)]!;
    return s;
  });
}

/** tokenizer.json's text. `merges` is for tests (a derivation to compare); by default the derived one. */
export function buildTokenizerJson(merges: readonly (readonly [number, number])[] = deriveMerges()): string {
  const names = hfVocabNames();
  // The two large parts are written by hand, one entry a line: JSON.stringify would reorder the
  // vocab's integer-like keys ("0", "12") ahead of the others.
  const vocab = `{\n${names.map((name, rank) => `      ${json(name)}: ${rank}`).join(',\n')}\n    }`;
  const mergeLines = `[\n${merges.map(([a, b]) => `      [${json(names[a])}, ${json(names[b])}]`).join(',\n')}\n    ]`;
  const added = `[\n${hfSpecialTokens()
    .map(([id, content]) => `    ${json({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })}`)
    .join(',\n')}\n  ]`;
  const document = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: '\u0000added',
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: O200K_PAT_STR }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: true,
      vocab: '\u0000vocab',
      merges: '\u0000merges',
    },
  };
  return `${JSON.stringify(document, null, 2)
    .replace(json('\u0000added'), () => added)
    .replace(json('\u0000vocab'), () => vocab)
    .replace(json('\u0000merges'), () => mergeLines)}\n`;
}

export const BOS_TOKEN = specialTokenText(Tok.startoftext);
export const EOS_TOKEN = specialTokenText(Tok.return);
export const PAD_TOKEN = specialTokenText(Tok.endoftext);

/** transformers' "no limit" (int(1e30) as it writes it), which openai/gpt-oss's tokenizer_config.json carries. */
const MODEL_MAX_LENGTH = '1000000000000000019884624838656';

/** tokenizer_config.json's text: openai/gpt-oss's keys (sorted), with the chat template and every added token. */
export function buildTokenizerConfigJson(): string {
  const config = {
    added_tokens_decoder: Object.fromEntries(hfSpecialTokens().map(([id, content]) => [String(id), addedTokenFields(content)])),
    bos_token: BOS_TOKEN,
    chat_template: GPT_OSS_CHAT_TEMPLATE,
    clean_up_tokenization_spaces: false,
    eos_token: EOS_TOKEN,
    extra_special_tokens: {},
    model_input_names: ['input_ids', 'attention_mask'],
    model_max_length: '\u0000max',
    pad_token: PAD_TOKEN,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
  return `${JSON.stringify(config, null, 2).replace(json('\u0000max'), MODEL_MAX_LENGTH)}\n`;
}

/** special_tokens_map.json's text. */
export function buildSpecialTokensMapJson(): string {
  return `${JSON.stringify({ bos_token: BOS_TOKEN, eos_token: EOS_TOKEN, pad_token: PAD_TOKEN }, null, 2)}\n`;
}

let files: Readonly<Record<string, string>> | undefined;

/** The three files by name, built on first use and then kept (they never change within a process). */
export function hfTokenizerFiles(): Readonly<Record<string, string>> {
  files ??= Object.freeze({
    'tokenizer.json': buildTokenizerJson(),
    'tokenizer_config.json': buildTokenizerConfigJson(),
    'special_tokens_map.json': buildSpecialTokensMapJson(),
  });
  return files;
}
