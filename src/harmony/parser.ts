// Streaming parser for sampled harmony completions: a port of the semantics of openai/harmony
// v0.0.8's `StreamableParser` (spec/harmony.md §4). Tokens go in one at a time; completed
// messages, the message in progress and the text each token added come out.
//
// Strict mode (the default) follows upstream. Non-strict mode never throws: it recovers from the
// malformed output gpt-oss produces in the field (missing `<|message|>`, stray or doubled headers,
// empty or odd channels, a missing `<|start|>`), see the comments on each rule below.
import { TextDecoder } from 'node:util';
import { isSpecialToken, MESSAGE_STOP_TOKENS, specialTokenText, Tok, tokenBytes } from './tokens.ts';
import type { Message, Role } from './conversation.ts';

export class HarmonyParseError extends Error {
  override name = 'HarmonyParseError';
}

export type ParserState = 'ExpectStart' | 'Header' | 'Content';

export interface StreamableParserOptions {
  /** The role the prompt already opened (`<|start|>assistant`): parsing starts in the header. */
  role?: Role | null;
  /** Throw on malformed input (default true). Non-strict mode recovers instead. */
  strict?: boolean;
  /**
   * Failpoint shared-decoder: the streaming UTF-8 decoder every message is decoded with, shared by
   * every parser (one per server), so the unfinished character of one request's message is
   * completed, or flushed as U+FFFD, by another's bytes. Absent: a new decoder per message.
   */
  decoder?: TextDecoder;
}

/** What a message header says about the message. */
export interface ParsedHeader {
  role: Role;
  /** The author name; only tool messages carry one (e.g. `browser.search`). */
  name?: string;
  channel?: string;
  recipient?: string;
  contentType?: string;
}

const REPLACEMENT = '\uFFFD';
const CHANNEL_MARKER = specialTokenText(Tok.channel);
const CONSTRAIN_MARKER = specialTokenText(Tok.constrain);
const ROLES: ReadonlySet<string> = new Set<Role>(['system', 'developer', 'user', 'assistant', 'tool']);
const utf8 = new TextEncoder();

// Rust's `str::trim` and `char::is_whitespace` use Unicode White_Space (JS `\s` differs slightly);
// `split_ascii_whitespace` splits on space, \t, \n, \f and \r only.
const TRIM = /^\p{White_Space}+|\p{White_Space}+$/gu;
const CHANNEL_END = /[\p{White_Space}<]/u;
const ASCII_WHITESPACE = /[ \t\n\f\r]+/;

export class StreamableParser {
  private readonly strict: boolean;
  private readonly allTokens: number[] = [];
  private readonly done: Message[] = [];
  private readonly ends: (number | null)[] = [];
  private current: ParserState;
  /** Header state: the role known before the header is read (the prompt's role, or implied). */
  private headerRole: Role | undefined;
  private headerTokens: number[] = [];
  /** Content state: the parsed header, the text so far and the decoder holding partial bytes. */
  private header: ParsedHeader | undefined;
  private content = '';
  private decoder: TextDecoder;
  private readonly sharedDecoder: TextDecoder | undefined;
  private delta: string | undefined;

  constructor(options: StreamableParserOptions = {}) {
    this.strict = options.strict ?? true;
    this.sharedDecoder = options.decoder;
    this.decoder = this.newDecoder();
    const role = options.role ?? undefined;
    this.current = role === undefined ? 'ExpectStart' : 'Header';
    this.headerRole = role;
  }

  get state(): ParserState {
    return this.current;
  }

  /** Every token processed so far, including stop tokens. */
  get tokens(): readonly number[] {
    return this.allTokens;
  }

  /** Completed messages, in harmony serde shape. */
  get messages(): readonly Message[] {
    return this.done;
  }

  /**
   * For each completed message, the token that ended it: `<|end|>`, `<|return|>` or `<|call|>`;
   * null when `processEos()` closed it. Non-strict recovery can also end one with `<|start|>`.
   */
  get endTokens(): readonly (number | null)[] {
    return this.ends;
  }

  get currentRole(): Role | undefined {
    return this.current === 'Content' ? this.header?.role : this.current === 'Header' ? this.headerRole : undefined;
  }

  get currentChannel(): string | undefined {
    return this.current === 'Content' ? this.header?.channel : undefined;
  }

  get currentRecipient(): string | undefined {
    return this.current === 'Content' ? this.header?.recipient : undefined;
  }

  get currentContentType(): string | undefined {
    return this.current === 'Content' ? this.header?.contentType : undefined;
  }

  /** The decoded text of the message in progress (bytes of an unfinished character held back). */
  get currentContent(): string {
    return this.current === 'Content' ? this.content : '';
  }

  /** The text the last token added; undefined when it completed no character. */
  get lastContentDelta(): string | undefined {
    return this.delta;
  }

  process(token: number): void {
    this.allTokens.push(token);
    this.delta = undefined;
    switch (this.current) {
      case 'ExpectStart':
        return this.processExpectStart(token);
      case 'Header':
        return this.processHeader(token);
      case 'Content':
        return this.processContent(token);
    }
  }

  /** End of the completion (e.g. the token budget ran out): closes the message in progress, end token null. */
  processEos(): void {
    this.delta = undefined;
    if (this.current === 'Content') return this.closeMessage(null);
    if (this.current === 'Header') {
      if (this.strict) throw new HarmonyParseError('unexpected EOS while waiting for the message header to complete');
      this.recoverHeader(null, true);
      this.current = 'ExpectStart';
    }
  }

  private processExpectStart(token: number): void {
    if (token === Tok.start) return this.beginHeader(undefined);
    if (this.strict) throw new HarmonyParseError(`expected <|start|> but got token ${token}`);
    // The model skipped `<|start|>assistant`: read what follows as an assistant header, so bare
    // text becomes a message just like the bare first message of the upstream fixtures.
    this.beginHeader('assistant');
    this.processHeader(token);
  }

  private processHeader(token: number): void {
    if (token === Tok.message) {
      const text = decodeHeader(this.headerTokens, this.strict);
      return this.beginContent(parseHeader(text, this.headerRole, this.strict));
    }
    if (!this.strict) {
      if (MESSAGE_STOP_TOKENS.has(token)) {
        // A stop token before `<|message|>`: the header text is the message (upstream non-strict).
        this.recoverHeader(token, true);
        this.current = 'ExpectStart';
        return;
      }
      if (token === Tok.start) {
        // The model restarted the message: keep any text the abandoned header held, then start over.
        this.recoverHeader(token, false);
        return this.beginHeader(undefined);
      }
      if (token === Tok.channel) {
        // A second `<|channel|>` replaces the first channel section: the earlier one was stray
        // (gpt-oss-20b's leading `<|channel|>commentary`, doubled malformed headers).
        const earlier = this.headerTokens.indexOf(Tok.channel);
        if (earlier >= 0) this.headerTokens.length = earlier;
      }
    }
    // Strict mode collects stop tokens too; the header then fails to parse, as upstream.
    this.headerTokens.push(token);
  }

  private processContent(token: number): void {
    if (MESSAGE_STOP_TOKENS.has(token)) return this.closeMessage(token);
    if (token === Tok.start && !this.strict) {
      // A new message began without `<|end|>`; strict mode keeps `<|start|>` as text, as upstream.
      this.closeMessage(token);
      return this.beginHeader(undefined);
    }
    const text = this.decodeContentToken(token);
    this.content += text;
    this.delta = text === '' ? undefined : text;
  }

  /** Incremental UTF-8: the decoder holds an unfinished character and replaces invalid bytes. */
  private decodeContentToken(token: number): string {
    const bytes = tokenBytesWithSpecials(token);
    // An id outside the vocabulary decodes as one U+FFFD; pending bytes are cut off before it.
    if (bytes === undefined) return this.decoder.decode() + REPLACEMENT;
    return this.decoder.decode(bytes, { stream: true });
  }

  private beginHeader(role: Role | undefined): void {
    this.current = 'Header';
    this.headerRole = role;
    this.headerTokens = [];
  }

  private beginContent(header: ParsedHeader): void {
    this.current = 'Content';
    this.header = header;
    this.headerRole = undefined;
    this.headerTokens = [];
    this.content = '';
    this.decoder = this.newDecoder();
  }

  /** A decoder for the next message: a new one, or under shared-decoder the shared one. */
  private newDecoder(): TextDecoder {
    return this.sharedDecoder ?? newDecoder(); // Failpoint shared-decoder
  }

  private closeMessage(endToken: number | null): void {
    // Flushing turns held-back bytes into U+FFFD, so they never leak into the next message.
    const text = this.content + this.decoder.decode();
    this.pushMessage(this.header!, text, endToken);
    this.current = 'ExpectStart';
    this.header = undefined;
    this.content = '';
  }

  /** Non-strict: turns an unfinished header into a message, its leftover text the content. */
  private recoverHeader(endToken: number | null, keepEmpty: boolean): void {
    if (this.headerTokens.length === 0) return;
    const { header, content } = recoverHeaderText(decodeHeader(this.headerTokens, false), this.headerRole);
    if (content !== '' || keepEmpty) this.pushMessage(header, content, endToken);
  }

  private pushMessage(header: ParsedHeader, text: string, endToken: number | null): void {
    this.done.push(toMessage(header, text));
    this.ends.push(endToken);
  }
}

/** Feeds every token, then `processEos()`. A trailing stop token may be included or left out. */
export function parseMessagesFromCompletionTokens(tokens: Iterable<number>, role?: Role | null, strict = true): Message[] {
  const parser = new StreamableParser({ role: role ?? null, strict });
  for (const token of tokens) parser.process(token);
  parser.processEos();
  return [...parser.messages];
}

/**
 * Parses header text (special tokens written out), e.g. `assistant to=functions.f<|channel|>commentary <|constrain|>json`.
 * `role` is the role known in advance; without it the first word is the role.
 */
export function parseHeader(text: string, role: Role | undefined, strict = true): ParsedHeader {
  const { header, parts } = splitHeader(text, role, strict);
  if (!strict) mergeDetachedConstrain(parts);
  const last = parts.pop();
  if (last === undefined) return header;
  if (last.startsWith('to=')) {
    header.recipient = last.slice(3);
  } else if (parts.length === 0 && !last.startsWith(CONSTRAIN_MARKER) && strict) {
    // Upstream reads a single bare word as the recipient. Non-strict mode reads it as the content
    // type: the renderer always writes `to=`, and gpt-oss writes `<|channel|>final json` (harmony#56).
    header.recipient = last;
  } else {
    // A lone `<|constrain|>json` is a content type too (upstream PR #144, after v0.0.8).
    header.contentType = last;
    const recipient = parts.pop();
    if (recipient !== undefined) header.recipient = recipient.startsWith('to=') ? recipient.slice(3) : recipient;
  }
  if (parts.length > 0 && strict) {
    throw new HarmonyParseError(`unexpected tokens remaining in message header: ${JSON.stringify(parts)}`);
  }
  // Non-strict mode drops leftover words: they carry no metadata it could trust.
  return header;
}

/** Non-strict recovery of a header that never reached `<|message|>`: its words are the content. */
function recoverHeaderText(text: string, role: Role | undefined): { header: ParsedHeader; content: string } {
  const { header, parts } = splitHeader(text, role, false);
  return { header, content: parts.join(' ') };
}

/** Cuts the channel out, then splits the rest into words and takes the role off the front. */
function splitHeader(text: string, knownRole: Role | undefined, strict: boolean): { header: ParsedHeader; parts: string[] } {
  const { channel, rest } = extractChannel(text, strict);
  let remaining = rest.replace(TRIM, '');
  // `to=f<|constrain|>json` must split into two words.
  if (remaining.includes(CONSTRAIN_MARKER)) remaining = remaining.replaceAll(CONSTRAIN_MARKER, ` ${CONSTRAIN_MARKER}`).replace(TRIM, '');
  const parts = remaining.split(ASCII_WHITESPACE).filter((part) => part !== '');
  const header: ParsedHeader = { ...takeRole(parts, knownRole, strict) };
  if (channel !== undefined) header.channel = channel;
  if (parts[0] === header.role) parts.shift();
  return { header, parts };
}

/** The text after `<|channel|>` up to whitespace or `<`; the marker and value are cut out. */
function extractChannel(text: string, strict: boolean): { channel: string | undefined; rest: string } {
  const at = text.indexOf(CHANNEL_MARKER);
  if (at < 0) return { channel: undefined, rest: text };
  const after = text.slice(at + CHANNEL_MARKER.length);
  const end = after.search(CHANNEL_END);
  const value = end < 0 ? after : after.slice(0, end);
  const rest = text.slice(0, at) + after.slice(value.length);
  if (value !== '') return { channel: value, rest };
  if (strict) throw new HarmonyParseError('channel marker present but no channel value found in header');
  return { channel: undefined, rest };
}

/**
 * The known role, else the first word: a role name, or (followed by more words or `to=`) the name
 * of a tool author such as `browser.search to=assistant`. Non-strict mode falls back to assistant.
 */
function takeRole(parts: string[], knownRole: Role | undefined, strict: boolean): { role: Role; name?: string } {
  if (knownRole !== undefined) return { role: knownRole };
  const first = parts[0];
  if (first === undefined) {
    if (strict) throw new HarmonyParseError('message header did not contain a role');
    return { role: 'assistant' };
  }
  if (isRole(first)) return first === 'tool' ? { role: 'tool', name: first } : { role: first };
  if (parts.length > 1 || first.startsWith('to=')) {
    parts.shift();
    return { role: 'tool', name: first };
  }
  if (strict) throw new HarmonyParseError(`unknown role in message header: ${first}`);
  return { role: 'assistant' };
}

/** Non-strict: `<|constrain|> json` (the docs' spelling) is one content type, `<|constrain|>json`. */
function mergeDetachedConstrain(parts: string[]): void {
  const at = parts.indexOf(CONSTRAIN_MARKER);
  const next = parts[at + 1];
  if (at >= 0 && next !== undefined) parts.splice(at, 2, CONSTRAIN_MARKER + next);
}

function isRole(word: string): word is Role {
  return ROLES.has(word);
}

/** Decodes header tokens with special tokens written out; strict mode rejects bad bytes and ids. */
function decodeHeader(tokens: readonly number[], strict: boolean): string {
  const chunks: Uint8Array[] = [];
  for (const token of tokens) {
    const bytes = tokenBytesWithSpecials(token);
    if (bytes === undefined && strict) throw new HarmonyParseError(`could not decode message header: unknown token ${token}`);
    chunks.push(bytes ?? utf8.encode(REPLACEMENT));
  }
  try {
    return new TextDecoder('utf-8', { fatal: strict, ignoreBOM: true }).decode(concatBytes(chunks));
  } catch {
    throw new HarmonyParseError('could not decode message header: invalid UTF-8');
  }
}

/** Raw bytes of an ordinary token, the written-out text of a special one, undefined if unknown. */
function tokenBytesWithSpecials(token: number): Uint8Array | undefined {
  return tokenBytes(token) ?? (isSpecialToken(token) ? utf8.encode(specialTokenText(token)) : undefined);
}

function concatBytes(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/**
 * WHATWG's UTF-8 decoder replaces invalid bytes exactly like Rust's `from_utf8_lossy` (one U+FFFD
 * per maximal invalid subpart). `ignoreBOM` keeps a leading U+FEFF, as Rust does.
 */
function newDecoder(): TextDecoder {
  return new TextDecoder('utf-8', { ignoreBOM: true });
}

function toMessage(header: ParsedHeader, text: string): Message {
  return {
    role: header.role,
    ...(header.name !== undefined && { name: header.name }),
    content: [{ type: 'text', text }],
    ...(header.channel !== undefined && { channel: header.channel }),
    ...(header.recipient !== undefined && { recipient: header.recipient }),
    ...(header.contentType !== undefined && { content_type: header.contentType }),
  };
}
