// o200k_harmony: the o200k_base BPE ranks plus harmony's formatting tokens.
// Text is always encoded as plain text (like harmony's `encode_ordinary`); formatting tokens are
// inserted by id, never recognised inside text. gpt-tokenizer's `allowedSpecial` only finds special
// tokens at the start of a string (spec/harmony.md §1), so we never use it.
import { encode } from 'gpt-tokenizer/encoding/o200k_harmony';
import ranks from 'gpt-tokenizer/bpeRanks/o200k_base';

export const Tok = {
  startoftext: 199998,
  endoftext: 199999,
  return: 200002,
  constrain: 200003,
  channel: 200005,
  start: 200006,
  end: 200007,
  message: 200008,
  call: 200012,
} as const;

/** Ids that end a message in the parser (harmony `stop_tokens()`). */
export const MESSAGE_STOP_TOKENS: ReadonlySet<number> = new Set([Tok.return, Tok.call, Tok.end]);
/** Ids sampling stops on: harmony's assistant-action stops, plus HF's `<|endoftext|>` eos. */
export const SAMPLING_STOP_TOKENS: ReadonlySet<number> = new Set([Tok.return, Tok.call, Tok.endoftext]);

/** Highest id harmony registers (`<|reserved_201088|>`); the model's vocab_size is 201088. */
export const MAX_TOKEN_ID = 201088;

const NAMED_SPECIALS: Record<number, string> = {
  [Tok.startoftext]: '<|startoftext|>',
  [Tok.endoftext]: '<|endoftext|>',
  [Tok.return]: '<|return|>',
  [Tok.constrain]: '<|constrain|>',
  [Tok.channel]: '<|channel|>',
  [Tok.start]: '<|start|>',
  [Tok.end]: '<|end|>',
  [Tok.message]: '<|message|>',
  [Tok.call]: '<|call|>',
};

/** Special token text → id, for the formatting tokens harmony renders. */
export const FORMATTING_TOKEN_IDS: ReadonlyMap<string, number> = new Map(
  [Tok.return, Tok.constrain, Tok.channel, Tok.start, Tok.end, Tok.message, Tok.call].map((id) => [NAMED_SPECIALS[id]!, id]),
);

export function isSpecialToken(id: number): boolean {
  return id >= Tok.startoftext && id <= MAX_TOKEN_ID;
}

/** The written-out form of a special token, as harmony decodes it (`<|reserved_N|>` for unnamed ids). */
export function specialTokenText(id: number): string {
  return NAMED_SPECIALS[id] ?? `<|reserved_${id}|>`;
}

/** Encodes text as plain text: `<|start|>` inside it stays five ordinary tokens. */
export function encodeText(text: string): number[] {
  return text.length === 0 ? [] : encode(text, { disallowedSpecial: new Set() });
}

const utf8 = new TextEncoder();
const byteCache = new Map<number, Uint8Array>();

/** The raw bytes of an ordinary token, or undefined for special or unknown ids. */
export function tokenBytes(id: number): Uint8Array | undefined {
  if (!Number.isInteger(id) || id < 0 || id >= ranks.length) return undefined;
  let bytes = byteCache.get(id);
  if (bytes === undefined) {
    const entry = ranks[id]!;
    bytes = typeof entry === 'string' ? utf8.encode(entry) : Uint8Array.from(entry);
    byteCache.set(id, bytes);
  }
  return bytes;
}

const FORMATTING_TOKEN_TEXT = new RegExp([...FORMATTING_TOKEN_IDS.keys()].map((t) => t.replace(/[|]/g, '\\|')).join('|'), 'g');

/**
 * Token ids for harmony text written out with formatting tokens (`<|start|>user<|message|>…`): every
 * formatting-token text becomes its id, the text between is encoded as plain text. For trusted text
 * only (goldens, tools): user content must go through the renderer, where such text stays text.
 */
export function encodeHarmonyText(text: string): number[] {
  const tokens: number[] = [];
  let last = 0;
  for (const match of text.matchAll(FORMATTING_TOKEN_TEXT)) {
    tokens.push(...encodeText(text.slice(last, match.index)), FORMATTING_TOKEN_IDS.get(match[0])!);
    last = match.index + match[0].length;
  }
  tokens.push(...encodeText(text.slice(last)));
  return tokens;
}
