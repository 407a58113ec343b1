// Sampled completion tokens → OpenAI chat output (spec/harmony.md "harmony → OpenAI chat").
// Streaming is the primary form: tokens become `delta`s as they arrive, and the non-streamed
// message is the fold of those deltas, so the two cannot drift apart.
import type { TextDecoder } from 'node:util';
import type { ChatDelta, ChatResponseMessage, ChatToolCall, FinishReason } from '../wire/chat-completions.ts';
import { StreamableParser } from './parser.ts';
import { isSpecialToken, specialTokenText, Tok, tokenBytes } from './tokens.ts';
import { messageText, type Message } from './conversation.ts';

export interface ChatOutputOptions {
  /** The id of the n-th tool call of this completion (deterministic ids keep goldens stable). */
  toolCallId?: (index: number) => string;
  /**
   * The functions the request lets the model call (declared in `tools`, allowed by `tool_choice`).
   * Only a message to `functions.NAME` with NAME in this list is a tool call; a message to any
   * other recipient is shown as if it had none (spec/harmony.md §5). Absent: every recipient is a
   * call (harmony-level mapping, with no request to say what was declared).
   */
  callable?: readonly string[];
  /** Keep track of which token spelled each byte of `content` (see `takeSpelling`), for log-probabilities. */
  spelling?: boolean;
  /**
   * Failpoint callable-stale: where the callable functions are remembered across requests (one per
   * server): the first request's list is kept and every later request's ignored.
   */
  callableMemo?: { callable?: readonly string[] };
  /** Failpoint shared-decoder: the UTF-8 decoder shared by every parser (see StreamableParserOptions). */
  decoder?: TextDecoder;
}

/** Bytes of `content` and the token (its tag, as given to `push`) they are attributed to. */
export interface SpelledBytes<Tag> {
  tag: Tag | undefined;
  bytes: Uint8Array;
}

type Kind = { kind: 'content' } | { kind: 'reasoning' } | { kind: 'tool'; name: string } | { kind: 'ignored' };

const FUNCTIONS = 'functions.';

/** Where a message's text goes: analysis → reasoning, a callable recipient → a tool call, else content. */
function kindOf(role: string | undefined, channel: string | undefined, recipient: string | undefined, callable: readonly string[] | undefined): Kind {
  // The model only speaks as the assistant; a hallucinated tool or user turn is never shown.
  if (role !== undefined && role !== 'assistant') return { kind: 'ignored' };
  if (recipient !== undefined && recipient !== 'all') {
    if (callable === undefined) return { kind: 'tool', name: recipient.startsWith(FUNCTIONS) ? recipient.slice(FUNCTIONS.length) : recipient };
    const name = recipient.startsWith(FUNCTIONS) ? recipient.slice(FUNCTIONS.length) : undefined;
    if (name !== undefined && callable.includes(name)) return { kind: 'tool', name };
    // Not a function the request lets it call: the recipient is ignored, the channel decides.
  }
  return channel === 'analysis' ? { kind: 'reasoning' } : { kind: 'content' };
}

const utf8 = new TextEncoder();
const REPLACEMENT = utf8.encode('\uFFFD');

/** The bytes a token adds to message text, as the parser decodes it (special tokens written out). */
function textBytes(token: number): Uint8Array {
  return tokenBytes(token) ?? (isSpecialToken(token) ? utf8.encode(specialTokenText(token)) : REPLACEMENT);
}

function isAsciiWhitespace(byte: number | undefined): boolean {
  return byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0c || byte === 0x0d;
}

/**
 * Feeds completion tokens (the prompt ended in `<|start|>assistant`) through a non-strict harmony
 * parser and yields OpenAI deltas. One instance per request: it holds that request's parser state.
 *
 * With `spelling`, it also attributes every byte of `content` it emits to a token (`takeSpelling`),
 * so that log-probabilities can spell the content exactly: a token's own bytes where the text shows
 * them (a character split across tokens stays split), one U+FFFD to the token that began an invalid
 * byte sequence, and text the parser made up (a recovered header's words joined by spaces) to the
 * tokens whose bytes show it, the rest to the token that made the text appear.
 */
export class ChatDeltaStream<Tag = unknown> {
  private readonly parser: StreamableParser;
  private toolCallId!: (index: number) => string;
  private callable: readonly string[] | undefined;
  private spelling = false;
  /** The message in progress: its kind once its header is known, and the text already emitted. */
  private current: Kind | undefined;
  private emitted = '';
  private toolCalls = 0;
  /**
   * Tokens whose bytes may still show up in `content`, oldest first, with what is left of their
   * bytes: those of an open header (recovery can turn its words into content), or the bytes of an
   * unfinished character of a content message.
   */
  private unspelled: Array<{ tag: Tag | undefined; rest: Uint8Array }> = [];
  private spelled: Array<SpelledBytes<Tag>> = [];
  /** The tag of the last token pushed: the one that made the text appear. */
  private lastTag: Tag | undefined;

  constructor(options: ChatOutputOptions = {}) {
    this.parser = new StreamableParser({ role: 'assistant', strict: false, ...(options.decoder && { decoder: options.decoder }) });
    this.configure(options);
  }

  /**
   * A request's own settings. Only the parser-reuse failpoint (src/server/chat-output.ts) hands one
   * stream to several requests: each brings its settings, the parser state is what carries over.
   */
  configure(options: ChatOutputOptions): void {
    this.toolCallId = options.toolCallId ?? ((i) => `call_${i}`);
    // Failpoint callable-stale: the callable list of the first request that set the memo.
    const memo = options.callableMemo;
    this.callable = memo === undefined ? options.callable : (memo.callable ??= options.callable);
    this.spelling = options.spelling ?? false;
  }

  /** The token that ended the last complete message (`<|call|>`, `<|return|>`, `<|end|>`), if any. */
  get lastEndToken(): number | null {
    return this.parser.endTokens.at(-1) ?? null;
  }

  get hasToolCalls(): boolean {
    return this.toolCalls > 0;
  }

  /** Where the text of the message in progress goes; undefined between messages. */
  get currentKind(): Kind['kind'] | undefined {
    return this.current?.kind;
  }

  /** `tag` identifies the token in `takeSpelling` (e.g. its sampling record, for its log-probability). */
  push(token: number, tag?: Tag): ChatDelta[] {
    const before = this.parser.state;
    if (this.spelling) {
      this.unspelled.push({ tag, rest: textBytes(token) });
      this.lastTag = tag;
    }
    const done = this.parser.messages.length;
    this.parser.process(token);
    const deltas: ChatDelta[] = [];
    this.finishMessages(done, deltas);
    if (this.parser.state === 'Content') {
      this.startMessage(this.parser.currentRole, this.parser.currentChannel, this.parser.currentRecipient, deltas);
      const text = this.parser.lastContentDelta;
      if (text) this.emit(text, deltas);
    }
    if (this.spelling) this.settleSpelling(before, token);
    return deltas;
  }

  /** End of generation: closes a message still open (e.g. at the token budget). */
  finish(): ChatDelta[] {
    const done = this.parser.messages.length;
    const inHeader = this.parser.state === 'Header';
    this.parser.processEos();
    const deltas: ChatDelta[] = [];
    // A header cut off by the budget never reached <|message|>: what the parser recovers from its
    // words (`to=functions.x` as text) is not a message to show.
    if (!inHeader) this.finishMessages(done, deltas);
    this.unspelled = [];
    return deltas;
  }

  /** The attribution of the `content` bytes emitted since the last call, in order (with `spelling`). */
  takeSpelling(): Array<SpelledBytes<Tag>> {
    const out = this.spelled;
    this.spelled = [];
    return out;
  }

  /** Whether some of this token's bytes may still show up in `content` (an unfinished character). */
  isSpelling(tag: Tag): boolean {
    return this.unspelled.some((u) => u.tag === tag);
  }

  private startMessage(role: string | undefined, channel: string | undefined, recipient: string | undefined, deltas: ChatDelta[]): void {
    if (this.current !== undefined) return;
    this.current = kindOf(role, channel, recipient, this.callable);
    this.emitted = '';
    switch (this.current.kind) {
      case 'tool': {
        const index = this.toolCalls++;
        deltas.push({
          tool_calls: [{ index, id: this.toolCallId(index), type: 'function', function: { name: this.current.name, arguments: '' } }],
        });
        break;
      }
      // An empty delta announces the message, so an empty answer folds to "" rather than null.
      case 'content':
        deltas.push({ content: '' });
        break;
      case 'reasoning':
        deltas.push({ reasoning: '' });
        break;
      case 'ignored':
        break;
    }
  }

  private finishMessages(from: number, deltas: ChatDelta[]): void {
    const { messages, endTokens } = this.parser;
    for (let i = from; i < messages.length; i++) this.finishMessage(messages[i]!, endTokens[i] ?? null, deltas);
  }

  /** A completed message: announce it if its header was never seen, then emit what is left of its text. */
  private finishMessage(message: Message, endToken: number | null, deltas: ChatDelta[]): void {
    const text = messageText(message);
    // A header cut off by the end of generation, with no text, was never a message to show.
    if (this.current === undefined && text === '' && endToken === null) return;
    this.startMessage(message.role, message.channel, message.recipient, deltas);
    // Recovered malformed headers can produce content the stream never saw token by token.
    if (text.startsWith(this.emitted) && text.length > this.emitted.length) this.emit(text.slice(this.emitted.length), deltas);
    this.current = undefined;
    this.emitted = '';
  }

  private emit(text: string, deltas: ChatDelta[]): void {
    const current = this.current!;
    this.emitted += text;
    switch (current.kind) {
      case 'content':
        deltas.push({ content: text });
        if (this.spelling) this.spell(text);
        break;
      case 'reasoning':
        deltas.push({ reasoning: text });
        break;
      case 'tool':
        deltas.push({ tool_calls: [{ index: this.toolCalls - 1, function: { arguments: text } }] });
        break;
      case 'ignored':
        break;
    }
  }

  /** Attributes the bytes of emitted content to the unspelled tokens, oldest first. */
  private spell(text: string): void {
    const target = utf8.encode(text);
    const queue = this.unspelled;
    const give = (tag: Tag | undefined, bytes: Uint8Array) => {
      if (bytes.length > 0) this.spelled.push({ tag, bytes });
    };
    let p = 0;
    while (p < target.length && queue.length > 0) {
      const head = queue[0]!;
      const n = commonPrefix(target, p, head.rest);
      if (n === head.rest.length) {
        // The text shows the token's bytes.
        give(head.tag, head.rest);
        p += n;
        queue.shift();
        continue;
      }
      give(head.tag, head.rest.subarray(0, n));
      p += n;
      head.rest = head.rest.subarray(n);
      // The text ends inside the token: the rest of it (an unfinished character) comes later.
      if (p === target.length) break;
      if (startsWith(target, p, REPLACEMENT)) {
        // Invalid bytes, decoded as one U+FFFD per maximal invalid subpart (WHATWG, as the parser).
        give(head.tag, REPLACEMENT);
        p += REPLACEMENT.length;
        this.dropUnspelled(invalidRun(queue));
      } else if (isAsciiWhitespace(head.rest[0])) {
        // Recovered header words are joined by one space, whatever whitespace separated them.
        let run = 1;
        while (isAsciiWhitespace(head.rest[run])) run++;
        if (target[p] === 0x20) {
          give(head.tag, target.subarray(p, p + 1));
          p++;
        }
        head.rest = head.rest.subarray(run);
        if (head.rest.length === 0) queue.shift();
      } else {
        // A token the text does not show (a recovered header's channel, role or content type).
        queue.shift();
      }
    }
    if (p < target.length) give(this.lastTag, target.subarray(p));
  }

  /** Drops `count` bytes from the front of the unspelled tokens. */
  private dropUnspelled(count: number): void {
    const queue = this.unspelled;
    while (count > 0 && queue.length > 0) {
      const head = queue[0]!;
      if (head.rest.length > count) {
        head.rest = head.rest.subarray(count);
        return;
      }
      count -= head.rest.length;
      queue.shift();
    }
  }

  /** After a token: which tokens may still show up in content. */
  private settleSpelling(before: string, token: number): void {
    const after = this.parser.state;
    // `<|start|>` ends what came before and is no text; a finished message leaves nothing open; a
    // header that reached `<|message|>` was a header; reasoning, tool and ignored text is no content.
    const dropAll = token === Tok.start || after === 'ExpectStart' || (after === 'Content' && (before !== 'Content' || this.current?.kind !== 'content'));
    if (dropAll) this.unspelled = [];
  }
}

function commonPrefix(target: Uint8Array, at: number, bytes: Uint8Array): number {
  const max = Math.min(bytes.length, target.length - at);
  let n = 0;
  while (n < max && target[at + n] === bytes[n]) n++;
  return n;
}

function startsWith(target: Uint8Array, at: number, prefix: Uint8Array): boolean {
  return commonPrefix(target, at, prefix) === prefix.length;
}

/**
 * The length of the maximal invalid UTF-8 subpart at the front of the tokens' bytes (WHATWG: a lead
 * byte and the continuation bytes that could still complete it; at least 1).
 */
function invalidRun(queue: ReadonlyArray<{ rest: Uint8Array }>): number {
  const at = (i: number): number | undefined => {
    for (const { rest } of queue) {
      if (i < rest.length) return rest[i];
      i -= rest.length;
    }
    return undefined;
  };
  const lead = at(0);
  if (lead === undefined) return 0;
  let need: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) need = 1;
  else if (lead >= 0xe0 && lead <= 0xef) {
    need = 2;
    if (lead === 0xe0) lo = 0xa0;
    if (lead === 0xed) hi = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    need = 3;
    if (lead === 0xf0) lo = 0x90;
    if (lead === 0xf4) hi = 0x8f;
  } else return 1;
  let n = 1;
  for (; need > 0; need--, n++) {
    const b = at(n);
    if (b === undefined || b < lo || b > hi) break;
    lo = 0x80;
    hi = 0xbf;
  }
  return n;
}

/** The non-streamed message: the fold of the streamed deltas. */
export function accumulateDeltas(deltas: readonly ChatDelta[]): ChatResponseMessage {
  let content: string | null = null;
  let reasoning: string | undefined;
  const calls: ChatToolCall[] = [];
  for (const d of deltas) {
    if (d.content !== undefined) content = (content ?? '') + d.content;
    if (d.reasoning !== undefined) reasoning = (reasoning ?? '') + d.reasoning;
    for (const tc of d.tool_calls ?? []) {
      const call = (calls[tc.index] ??= { id: '', type: 'function', function: { name: '', arguments: '' } });
      if (tc.id !== undefined) call.id = tc.id;
      if (tc.function.name !== undefined) call.function.name = tc.function.name;
      call.function.arguments += tc.function.arguments;
    }
  }
  const message: ChatResponseMessage = { role: 'assistant', content };
  if (reasoning !== undefined) message.reasoning = reasoning;
  if (calls.length > 0) message.tool_calls = calls;
  return message;
}

/** Why generation ended: `<|call|>` → tool_calls, `<|return|>`/`<|endoftext|>`/a stop string → stop, budget → length. */
export function finishReason(end: { token: number } | 'length' | 'stop-string'): FinishReason {
  if (end === 'length') return 'length';
  if (end === 'stop-string') return 'stop';
  return end.token === Tok.call ? 'tool_calls' : 'stop';
}

export interface ChatCompletion {
  deltas: ChatDelta[];
  message: ChatResponseMessage;
  finishReason: FinishReason;
}

/**
 * A whole completion. `tokens` are what was sampled, including the stop token if one was sampled;
 * without one, generation hit the budget (`length`).
 */
export function completionToChat(tokens: readonly number[], options: ChatOutputOptions = {}): ChatCompletion {
  const stream = new ChatDeltaStream(options);
  const deltas: ChatDelta[] = [];
  for (const t of tokens) deltas.push(...stream.push(t));
  deltas.push(...stream.finish());
  const last = tokens.at(-1);
  const stopped = last === Tok.call || last === Tok.return || last === Tok.endoftext;
  return { deltas, message: accumulateDeltas(deltas), finishReason: finishReason(stopped ? { token: last } : 'length') };
}
