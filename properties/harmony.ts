// The harmony properties (spec/properties.md, "Harmony"). Each is built from the implementation it
// checks, so the same definition runs on the real code and, as a negative control, on a broken one.
import fc from 'fast-check';
import { Tiktoken } from 'js-tiktoken/lite';
import o200k from 'js-tiktoken/ranks/o200k_base';
import { isDeepStrictEqual } from 'node:util';
import type { ChatRequest, ChatResponseMessage } from '../src/wire/chat-completions.ts';
import { completionToChat } from '../src/harmony/harmony-to-chat.ts';
import { piecesToText, piecesToTokens, renderCompletionPieces, renderTrainingPieces, type Piece } from '../src/harmony/render.ts';
import { encodeText, specialTokenText, Tok, tokenBytes } from '../src/harmony/tokens.ts';
import { messageText, type Message } from '../src/harmony/conversation.ts';
import { chatRequest } from '../src/harness/arbitraries/chat.ts';
import { harmonyConversation } from './arbitraries/harmony.ts';
import { anyText, plainText } from '../src/harness/arbitraries/text.ts';
import type { PropertyDef } from './property.ts';

// ── 1. parse(render(c)) = c ─────────────────────────────────────────────────────────────────────

export interface RenderParse {
  render(messages: Message[]): number[];
  parse(tokens: number[]): Message[];
}

/** Rendering a conversation and parsing the tokens back gives the same messages. */
export function renderParseRoundTrip(impl: RenderParse): PropertyDef<Message[]> {
  return {
    arbitrary: harmonyConversation(),
    predicate(conversation) {
      const parsed = impl.parse(impl.render(conversation));
      if (!isDeepStrictEqual(parsed, conversation)) {
        throw new Error(`parsed back differently:\n${JSON.stringify(parsed)}\nexpected\n${JSON.stringify(conversation)}`);
      }
    },
  };
}

// ── 2. The streaming parser is split-invariant ──────────────────────────────────────────────────

/** What a streaming decoder reports for one assistant message: its deltas and its final text. */
export type StreamDecode = (tokens: number[]) => { deltas: string[]; content: string };

/** Token id of each single byte: every byte is a token in o200k, so any byte split is a tokenization. */
const byteToken: number[] = (() => {
  const table: number[] = [];
  for (let id = 0; table.filter((x) => x !== undefined).length < 256; id++) {
    const bytes = tokenBytes(id);
    if (bytes?.length === 1 && table[bytes[0]!] === undefined) table[bytes[0]!] = id;
  }
  return table;
})();

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Tokenize text along random byte cuts: a valid piece may be BPE-encoded, any piece byte by byte. */
const splitTokenization = (text: string): fc.Arbitrary<number[]> => {
  const bytes = new TextEncoder().encode(text);
  return fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, bytes.length - 1) }), { maxLength: bytes.length }).chain((cuts) => {
    const edges = [0, ...cuts.filter((c) => c < bytes.length).sort((a, b) => a - b), bytes.length];
    const pieces = edges.slice(1).map((end, i) => bytes.slice(edges[i], end));
    return fc.array(fc.boolean(), { minLength: pieces.length, maxLength: pieces.length }).map((useBpe) =>
      pieces.flatMap((piece, i) => {
        if (useBpe[i]) {
          try {
            return encodeText(strictUtf8.decode(piece));
          } catch {
            // Not valid UTF-8 on its own: fall through to single bytes.
          }
        }
        return [...piece].map((b) => byteToken[b]!);
      }),
    );
  });
};

const isWellFormed = (s: string): boolean => !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);

/**
 * However the text of a message is split into tokens — canonical BPE, any byte cuts, one byte per
 * token, cuts inside multi-byte characters — the message and the concatenated deltas are that text,
 * and no delta ever holds half a character or a replacement character.
 */
export function streamingSplitInvariance(decode: StreamDecode): PropertyDef<{ text: string; tokens: number[] }> {
  return {
    arbitrary: anyText(60).chain((text) => splitTokenization(text).map((tokens) => ({ text, tokens }))),
    predicate({ text, tokens }) {
      const { deltas, content } = decode(tokens);
      if (content !== text) throw new Error(`content ${JSON.stringify(content)} != ${JSON.stringify(text)}`);
      if (deltas.join('') !== text) throw new Error(`deltas ${JSON.stringify(deltas)} do not add up to the text`);
      const bad = deltas.find((d) => d.includes('\uFFFD') || !isWellFormed(d));
      if (bad !== undefined) throw new Error(`delta ${JSON.stringify(bad)} splits a character`);
    },
  };
}

// ── 3. Rendered ids = an independent tokenization of the rendered text ──────────────────────────

const specials: Record<string, number> = {};
for (let id = Tok.startoftext; id <= 201088; id++) specials[specialTokenText(id)] = id;
const independent = new Tiktoken(o200k, specials);

/** js-tiktoken with a hand-built harmony special-token map: every special written out is recognised. */
export function independentTokenize(text: string): number[] {
  return independent.encode(text, 'all');
}

/** The token ids of a render equal js-tiktoken's encoding of its text (no lookalikes in the content). */
export function tokensMatchIndependentTokenizer(toTokens: (pieces: Piece[]) => number[]): PropertyDef<Message[]> {
  return {
    arbitrary: harmonyConversation(plainText()),
    predicate(conversation) {
      const pieces = renderCompletionPieces(conversation);
      const ours = toTokens(pieces);
      const theirs = independentTokenize(piecesToText(pieces));
      if (!isDeepStrictEqual(ours, theirs)) {
        const at = ours.findIndex((t, i) => t !== theirs[i]);
        throw new Error(`token ${at} differs: ours ${ours.slice(at, at + 5)} vs independent ${theirs.slice(at, at + 5)}`);
      }
    },
  };
}

// ── 4. OpenAI → harmony → OpenAI ────────────────────────────────────────────────────────────────

type Normalized =
  | { role: 'system' | 'user'; content: string }
  | { role: 'tool'; name: string; content: string }
  | { role: 'assistant'; content: string | null; reasoning?: string; tool_calls?: Array<{ name: string; arguments: string }> };

const joinContent = (c: unknown): string => (typeof c === 'string' ? c : (c as Array<{ text: string }>).map((p) => p.text).join(''));

/** What a chat request's history must come back as: the mapping's documented normalisations applied. */
function expectedHistory(request: ChatRequest): { instructions?: string; messages: Normalized[] } {
  let instructions: string | undefined;
  const messages: Normalized[] = [];
  const callNames = new Map<string, string>();
  const lastFinal = request.messages.findLastIndex((m) => m.role === 'assistant' && !m.tool_calls?.length);
  request.messages.forEach((m, i) => {
    if (m.role === 'system' || m.role === 'developer') {
      if (instructions === undefined) instructions = joinContent(m.content);
      else messages.push({ role: 'system', content: joinContent(m.content) });
    } else if (m.role === 'user') {
      messages.push({ role: 'user', content: joinContent(m.content) });
    } else if (m.role === 'tool') {
      messages.push({ role: 'tool', name: callNames.get(m.tool_call_id!)!, content: joinContent(m.content) });
    } else if (m.role === 'assistant') {
      let content = m.content == null ? null : joinContent(m.content);
      let reasoning = m.reasoning ?? m.reasoning_content ?? m.thinking ?? undefined;
      const think = content === null ? null : /^<think>([\s\S]*?)<\/think>/.exec(content);
      if (think) [reasoning, content] = [think[1]!, content!.slice(think[0].length)];
      const calls = (m.tool_calls ?? []).map((c) => {
        callNames.set(c.id, c.function.name);
        return { name: c.function.name, arguments: c.function.arguments };
      });
      const out: Normalized = { role: 'assistant', content: calls.length > 0 && !content ? null : content };
      // Reasoning up to and including the last final turn is dropped (cookbook rule).
      if (reasoning && i > lastFinal) out.reasoning = reasoning;
      if (calls.length > 0) out.tool_calls = calls;
      messages.push(out);
    }
  });
  return instructions === undefined ? { messages } : { instructions, messages };
}

/** An assistant turn as the model would have sampled it: its messages in training form, after `<|start|>assistant`. */
function turnAsCompletion(turn: Message[]): ChatResponseMessage {
  const tokens = piecesToTokens(renderTrainingPieces(turn));
  return completionToChat(tokens.slice(2)).message; // drop `<|start|>` `assistant`
}

/** The history a harmony conversation says, read back through the output mapping. */
function historyFromHarmony(conversation: Message[]): { instructions?: string; messages: Normalized[] } {
  const result: { instructions?: string; messages: Normalized[] } = { messages: [] };
  let i = 1; // [0] is the system message
  const dev = conversation[1]?.role === 'developer' ? conversation[1].content[0] : undefined;
  if (dev?.type === 'developer_content') {
    if (dev.instructions != null) result.instructions = dev.instructions;
    i = 2;
  }
  while (i < conversation.length) {
    const m = conversation[i]!;
    if (m.role === 'assistant') {
      // An assistant turn runs until a non-assistant message or through its `final`.
      let end = i + 1;
      while (conversation[end]?.role === 'assistant' && conversation[end - 1]!.channel !== 'final') end++;
      const back = turnAsCompletion(conversation.slice(i, end));
      const out: Normalized = { role: 'assistant', content: back.content };
      if (back.reasoning !== undefined) out.reasoning = back.reasoning;
      if (back.tool_calls) out.tool_calls = back.tool_calls.map((c) => ({ name: c.function.name, arguments: c.function.arguments }));
      result.messages.push(out);
      i = end;
      continue;
    }
    const content = m.content[0]!;
    if (m.role === 'developer' && content.type === 'developer_content') result.messages.push({ role: 'system', content: content.instructions ?? '' });
    else if (m.role === 'tool') result.messages.push({ role: 'tool', name: m.name!.replace(/^functions\./, ''), content: messageText(m) });
    else result.messages.push({ role: 'user', content: messageText(m) });
    i++;
  }
  return result;
}

/**
 * A chat request mapped to harmony, rendered, and read back the way a server reads sampled output,
 * says the same history: same instructions, texts, reasoning (where kept), tool names and arguments.
 */
export function chatRoundTrip(toHarmony: (request: ChatRequest) => Message[]): PropertyDef<ChatRequest> {
  return {
    arbitrary: chatRequest,
    predicate(request) {
      const back = historyFromHarmony(toHarmony(request));
      const expected = expectedHistory(request);
      if (!isDeepStrictEqual(back, expected)) {
        throw new Error(`round trip differs:\n${JSON.stringify(back)}\nexpected\n${JSON.stringify(expected)}`);
      }
    },
  };
}

// ── 5. Rendering is a pure function ─────────────────────────────────────────────────────────────

export type PromptRenderer = (request: ChatRequest) => number[];

/** A client session: a request and earlier truncations of it, with other tool orders or effort. */
const session: fc.Arbitrary<ChatRequest[]> = chatRequest.chain((request) =>
  fc
    .array(
      fc.record({
        reverseTools: fc.boolean(),
        effort: fc.constantFrom('low' as const, 'medium' as const, 'high' as const),
        cut: fc.option(fc.nat(), { nil: undefined }),
      }),
      { maxLength: 5 },
    )
    .map((variants) => [
      request,
      ...variants.map(({ reverseTools, effort, cut }): ChatRequest => {
        const messages = cut === undefined ? request.messages : request.messages.slice(0, 1 + (cut % request.messages.length));
        const v: ChatRequest = { ...request, reasoning_effort: effort, messages };
        if (reverseTools && request.tools) v.tools = [...request.tools].reverse();
        return v;
      }),
    ]),
);

/**
 * Each request of a session renders to the same tokens in one long-lived renderer (forwards, then
 * backwards) as in a freshly loaded one, and rendering never changes a request. `load` must give a
 * renderer with no state from earlier use (the tests re-import the module graph).
 */
export function renderingIsPure(load: () => Promise<PromptRenderer>): PropertyDef<ChatRequest[]> {
  return {
    arbitrary: session,
    async predicate(requests) {
      const snapshot = structuredClone(requests);
      const fresh: number[][] = [];
      for (const r of requests) fresh.push((await load())(r));
      const shared = await load();
      const forwards = requests.map((r) => shared(r));
      const backwards = [...requests]
        .reverse()
        .map((r) => shared(r))
        .reverse();
      for (const [i, tokens] of fresh.entries()) {
        if (!isDeepStrictEqual(forwards[i], tokens) || !isDeepStrictEqual(backwards[i], tokens)) {
          throw new Error(`request ${i} rendered differently depending on what was rendered before it`);
        }
      }
      if (!isDeepStrictEqual(requests, snapshot)) throw new Error('rendering changed the request');
    },
  };
}
