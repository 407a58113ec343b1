// The harmony properties on the real implementation, and each one's negative control: the same
// property run on a broken implementation (a bug real servers shipped) must fail.
import { test } from '@fast-check/vitest';
import { encode as gptTokenizerEncode } from 'gpt-tokenizer/encoding/o200k_harmony';
import { describe, expect, vi } from 'vitest';
import { chatToHarmony, renderChatPrompt } from '../src/harmony/chat-to-harmony.ts';
import { parseMessagesFromCompletionTokens, StreamableParser } from '../src/harmony/parser.ts';
import { piecesToText, piecesToTokens, renderConversationPieces } from '../src/harmony/render.ts';
import { encodeHarmonyText, Tok, tokenBytes } from '../src/harmony/tokens.ts';
import type { ChatRequest } from '../src/wire/chat-completions.ts';
import { failureOf, type PropertyDef } from './property.ts';
import {
  chatRoundTrip,
  renderingIsPure,
  renderParseRoundTrip,
  streamingSplitInvariance,
  tokensMatchIndependentTokenizer,
  type StreamDecode,
} from './harmony.ts';

/** Runs a property that must fail; returns the failure so the test can say what was found. */
async function mustFail<T>(def: PropertyDef<T>): Promise<string> {
  const failure = await failureOf(def);
  expect(failure, 'the property did not catch the broken implementation').toBeDefined();
  return failure!.message;
}

const FINAL_HEADER = encodeHarmonyText('<|channel|>final<|message|>');

const realDecode: StreamDecode = (contentTokens) => {
  const parser = new StreamableParser({ role: 'assistant' });
  const deltas: string[] = [];
  for (const t of [...FINAL_HEADER, ...contentTokens, Tok.return]) {
    parser.process(t);
    if (parser.lastContentDelta !== undefined) deltas.push(parser.lastContentDelta);
  }
  return { deltas, content: parser.messages.map((m) => (m.content[0]?.type === 'text' ? m.content[0].text : '')).join('') };
};

const renderParse = renderParseRoundTrip({
  render: (c) => piecesToTokens(renderConversationPieces(c)),
  parse: (tokens) => parseMessagesFromCompletionTokens(tokens, null),
});
const splitInvariance = streamingSplitInvariance(realDecode);
const independentTokens = tokensMatchIndependentTokenizer(piecesToTokens);
const roundTrip = chatRoundTrip((r) => chatToHarmony(r));
/** The renderer from a freshly loaded module graph: no state from anything rendered before. */
async function freshRenderer() {
  vi.resetModules();
  const { renderChatPrompt: render } = await import('../src/harmony/chat-to-harmony.ts');
  return (r: ChatRequest) => render(r).tokens;
}
const purity = renderingIsPure(freshRenderer);

describe('harmony properties', () => {
  test.prop([renderParse.arbitrary])('parse(render(c)) recovers c', (c) => renderParse.predicate(c));
  test.prop([splitInvariance.arbitrary])('the streaming parser gives the same messages for every split of the token stream', (v) =>
    splitInvariance.predicate(v),
  );
  test.prop([independentTokens.arbitrary])('rendered token ids equal an independent tokenization of the rendered text', (c) => independentTokens.predicate(c));
  test.prop([roundTrip.arbitrary])('OpenAI → harmony → OpenAI round trip for random chat requests with tools', (r) => roundTrip.predicate(r));
  test.prop([purity.arbitrary])('rendering is deterministic and independent of anything rendered before', (s) => purity.predicate(s));
});

describe('negative controls: each property catches a real bug', () => {
  test('render/parse round trip catches special-token injection (text encoded with specials allowed)', async () => {
    const failure = mustFail(
      renderParseRoundTrip({
        render: (c) => encodeHarmonyText(piecesToText(renderConversationPieces(c))),
        parse: (tokens) => {
          try {
            return parseMessagesFromCompletionTokens(tokens, null);
          } catch (e) {
            throw new Error(`parse failed: ${(e as Error).message}`, { cause: e });
          }
        },
      }),
    );
    expect(await failure).toMatch(/parse/);
  });

  test('split invariance catches a decoder that decodes each token on its own', async () => {
    const perToken: StreamDecode = (tokens) => {
      const deltas = tokens.map((t) => new TextDecoder().decode(tokenBytes(t))).filter((d) => d !== '');
      return { deltas, content: deltas.join('') };
    };
    expect(await mustFail(streamingSplitInvariance(perToken))).toMatch(/splits a character|content|deltas/);
  });

  test('independent tokenization catches gpt-tokenizer allowedSpecial (specials found only at the start)', async () => {
    const whole = (pieces: Parameters<typeof piecesToTokens>[0]) => gptTokenizerEncode(piecesToText(pieces), { allowedSpecial: 'all' });
    expect(await mustFail(tokensMatchIndependentTokenizer(whole))).toMatch(/differs/);
  });

  test("round trip catches re-encoded tool arguments (the template servers' double-encoding family)", async () => {
    const reencoding = (r: ChatRequest) =>
      chatToHarmony(r).map((m) =>
        m.recipient?.startsWith('functions.') && m.content[0]?.type === 'text'
          ? { ...m, content: [{ type: 'text' as const, text: JSON.stringify(JSON.parse(m.content[0].text)) }] }
          : m,
      );
    expect(await mustFail(chatRoundTrip(reencoding))).toMatch(/round trip differs/);
  });

  test('round trip catches dropped parallel tool calls (the HF template keeps only the first)', async () => {
    const firstCallOnly = (r: ChatRequest) =>
      chatToHarmony(r).filter((m, i, all) => !(m.recipient && all[i - 1]?.recipient && all[i - 1]?.role === 'assistant'));
    expect(await mustFail(chatRoundTrip(firstCallOnly))).toMatch(/round trip differs/);
  });

  test('purity catches a render cache keyed by the messages alone (tools and effort ignored)', async () => {
    const memoRenderer = async () => {
      const cache = new Map<string, number[]>();
      return (r: ChatRequest) => {
        const key = JSON.stringify(r.messages);
        if (!cache.has(key)) cache.set(key, renderChatPrompt(r).tokens);
        return cache.get(key)!;
      };
    };
    expect(await mustFail(renderingIsPure(memoRenderer))).toMatch(/rendered differently/);
  });
});
