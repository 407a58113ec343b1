// Sampled completion tokens → OpenAI chat output (spec/harmony.md "harmony → OpenAI chat").
// Streaming is the primary form: tokens become `delta`s as they arrive, and the non-streamed
// message is the fold of those deltas, so the two cannot drift apart.
import type { ChatDelta, ChatResponseMessage, ChatToolCall, FinishReason } from '../wire/chat-completions.ts';
import { StreamableParser } from './parser.ts';
import { Tok } from './tokens.ts';
import { messageText, type Message } from './conversation.ts';

export interface ChatOutputOptions {
  /** The id of the n-th tool call of this completion (deterministic ids keep goldens stable). */
  toolCallId?: (index: number) => string;
}

type Kind = { kind: 'content' } | { kind: 'reasoning' } | { kind: 'tool'; name: string } | { kind: 'ignored' };

/** Where a message's text goes: analysis → reasoning, a recipient → a tool call, else content. */
function kindOf(role: string | undefined, channel: string | undefined, recipient: string | undefined): Kind {
  // The model only speaks as the assistant; a hallucinated tool or user turn is never shown.
  if (role !== undefined && role !== 'assistant') return { kind: 'ignored' };
  if (recipient !== undefined && recipient !== 'all') {
    return { kind: 'tool', name: recipient.startsWith('functions.') ? recipient.slice('functions.'.length) : recipient };
  }
  return channel === 'analysis' ? { kind: 'reasoning' } : { kind: 'content' };
}

/**
 * Feeds completion tokens (the prompt ended in `<|start|>assistant`) through a non-strict harmony
 * parser and yields OpenAI deltas. One instance per request: it holds that request's parser state.
 */
export class ChatDeltaStream {
  private readonly parser = new StreamableParser({ role: 'assistant', strict: false });
  private readonly toolCallId: (index: number) => string;
  /** The message in progress: its kind once its header is known, and the text already emitted. */
  private current: Kind | undefined;
  private emitted = '';
  private toolCalls = 0;

  constructor(options: ChatOutputOptions = {}) {
    this.toolCallId = options.toolCallId ?? ((i) => `call_${i}`);
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

  push(token: number): ChatDelta[] {
    const done = this.parser.messages.length;
    this.parser.process(token);
    const deltas: ChatDelta[] = [];
    this.finishMessages(done, deltas);
    if (this.parser.state === 'Content') {
      this.startMessage(this.parser.currentRole, this.parser.currentChannel, this.parser.currentRecipient, deltas);
      const text = this.parser.lastContentDelta;
      if (text) this.emit(text, deltas);
    }
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
    return deltas;
  }

  private startMessage(role: string | undefined, channel: string | undefined, recipient: string | undefined, deltas: ChatDelta[]): void {
    if (this.current !== undefined) return;
    this.current = kindOf(role, channel, recipient);
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
