// o200k_harmony: the o200k_base BPE ranks plus harmony's formatting tokens.
// Text is always encoded as plain text (like harmony's `encode_ordinary`); formatting tokens are
// inserted by id, never recognised inside text. The encoder is ours (bpe.ts: tiktoken's algorithm in
// O(n log n)); the ranks are gpt-tokenizer's copy of o200k_base.
import ranks from 'gpt-tokenizer/bpeRanks/o200k_base';
import { encodeOrdinary, maxTokenBytes } from './bpe.ts';

export { maxTokenBytes };

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
  const tokens: number[] = [];
  encodeOrdinary(text, tokens);
  return tokens;
}

/**
 * The token ids of rendered pieces (text encoded as plain text, each piece on its own; a number is a
 * formatting token's id), or null as soon as it is certain they are more than `limit` tokens: a text
 * of n UTF-8 bytes is at least ⌈n / maxTokenBytes()⌉ tokens, so a piece that cannot fit is never merged.
 */
export function encodePieces(pieces: readonly (string | number)[], limit = Infinity): number[] | null {
  const tokens: number[] = [];
  for (const piece of pieces) {
    if (typeof piece === 'number') {
      if (tokens.length >= limit) return null;
      tokens.push(piece);
    } else if (!encodeOrdinary(piece, tokens, limit)) {
      return null;
    }
  }
  return tokens;
}

/** A lower bound on encodePieces(pieces).length, in time linear in the pieces' length and no merging. */
export function minTokenCount(pieces: readonly (string | number)[]): number {
  let count = 0;
  for (const piece of pieces) count += typeof piece === 'number' ? 1 : Math.ceil(Buffer.byteLength(piece, 'utf8') / maxTokenBytes());
  return count;
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
    encodeOrdinary(text.slice(last, match.index), tokens);
    tokens.push(FORMATTING_TOKEN_IDS.get(match[0])!);
    last = match.index + match[0].length;
  }
  encodeOrdinary(text.slice(last), tokens);
  return tokens;
}
