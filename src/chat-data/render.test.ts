// Examples → tokens (render.ts): the prompt is what the server renders, the completion parses back
// (strictly) into the intended messages, maps to the intended OpenAI message, and is a completion
// the engine's grammar lets the model sample; exo #1362's p1 matches the golden prompt.
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { HarmonyGrammar, toolCallHeaderTokens } from '../engine/grammar.ts';
import type { ToolChoice } from '../engine/runtime-api.ts';
import { renderChatPrompt } from '../harmony/chat-to-harmony.ts';
import { completionToChat } from '../harmony/harmony-to-chat.ts';
import { parseMessagesFromCompletionTokens, StreamableParser } from '../harmony/parser.ts';
import { piecesToTokens, renderMessage } from '../harmony/render.ts';
import { encodeText, Tok } from '../harmony/tokens.ts';
import type { ChatRequest } from '../wire/chat-completions.ts';
import { exampleAt, type ChatExample } from './conversations.ts';
import { completionPieces, recipientAfterChannel, renderExample, targetMessages, trainingSequence } from './render.ts';

const OPTIONS = { seed: 1, split: 'train', exoEvery: 1000, currentDateRate: 0.1 };
const EXAMPLES: ChatExample[] = Array.from({ length: 600 }, (_, i) => exampleAt(i, OPTIONS));
const RENDERED = EXAMPLES.map(renderExample);

function grammarFor(request: ChatRequest): HarmonyGrammar {
  const tools = (request.tools ?? []).map((t) => t.function.name);
  const choice = request.tool_choice ?? 'auto';
  const toolChoice: ToolChoice = typeof choice === 'object' ? { name: choice.function.name } : choice;
  return new HarmonyGrammar({ tools, toolChoice });
}

describe('every example', () => {
  test('the prompt is renderChatPrompt of the request', () => {
    EXAMPLES.forEach((e, i) => {
      expect(RENDERED[i]!.prompt).toEqual(renderChatPrompt(e.request, e.currentDate === undefined ? {} : { currentDate: e.currentDate }).tokens);
    });
  });

  test('the completion parses strictly into the target: analysis, then the call or the final answer', () => {
    EXAMPLES.forEach((e, i) => {
      const parser = new StreamableParser({ role: 'assistant', strict: true });
      for (const token of RENDERED[i]!.completion) parser.process(token);
      parser.processEos();
      const [analysis, action, ...rest] = parser.messages;
      expect(rest).toEqual([]);
      expect(analysis).toEqual({ role: 'assistant', channel: 'analysis', content: [{ type: 'text', text: e.target.analysis }] });
      if ('call' in e.target && 'call' in e.expect) {
        expect(action).toEqual({
          role: 'assistant',
          channel: 'commentary',
          recipient: `functions.${e.expect.call.name}`,
          content_type: '<|constrain|>json',
          content: [{ type: 'text', text: e.target.call.arguments }],
        });
        expect(JSON.parse((action!.content[0] as { text: string }).text)).toEqual(e.expect.call.arguments);
        expect(parser.endTokens).toEqual([Tok.end, Tok.call]);
      } else if ('final' in e.target && 'final' in e.expect) {
        expect(action).toEqual({ role: 'assistant', channel: 'final', content: [{ type: 'text', text: e.target.final }] });
        for (const value of e.expect.final.contains) expect(e.target.final).toContain(value);
        expect(parser.endTokens).toEqual([Tok.end, Tok.return]);
      } else {
        throw new Error('target and expectation disagree');
      }
    });
  });

  test('prompt and completion together are well-formed harmony from the first token', () => {
    RENDERED.forEach(({ prompt, completion }) => {
      const messages = parseMessagesFromCompletionTokens([...prompt, ...completion], null, true);
      expect(messages.at(-1)!.role).toBe('assistant');
    });
  });

  test("the engine's grammar for the request accepts every completion token and ends with it", () => {
    EXAMPLES.forEach((e, i) => {
      const grammar = grammarFor(e.request);
      for (const token of RENDERED[i]!.completion) grammar.accept(token);
      expect(grammar.done).toBe(true);
    });
  });

  test('the server would answer with the expected OpenAI message', () => {
    EXAMPLES.forEach((e, i) => {
      const callable = e.request.tool_choice === 'none' ? [] : (e.request.tools ?? []).map((t) => t.function.name);
      const { message, finishReason } = completionToChat(RENDERED[i]!.completion, { callable });
      expect(message.reasoning).toBe(e.target.analysis);
      if ('call' in e.expect) {
        expect(finishReason).toBe('tool_calls');
        expect(message.content).toBeNull();
        expect(message.tool_calls?.map((c) => [c.function.name, JSON.parse(c.function.arguments)])).toEqual([[e.expect.call.name, e.expect.call.arguments]]);
      } else {
        expect(finishReason).toBe('stop');
        expect(message.tool_calls).toBeUndefined();
        for (const value of e.expect.final.contains) expect(message.content).toContain(value);
      }
    });
  });

  test('the loss mask covers the completion only', () => {
    const rendered = RENDERED[5]!;
    const { ids, lossMask } = trainingSequence(rendered);
    expect(ids).toEqual([...rendered.prompt, ...rendered.completion]);
    expect(lossMask.indexOf(1)).toBe(rendered.prompt.length);
    expect(lossMask.reduce((a, b) => a + b, 0)).toBe(rendered.completion.length);
  });
});

describe('tool-call header', () => {
  test("the recipient moves after the channel: the grammar's header, the same message to the parser", () => {
    const call = targetMessages({ analysis: 'x', call: { name: 'get_weather', arguments: '{"city":"Oslo"}' } })[1]!;
    const roleFirst = renderMessage(call, true).slice(2); // after `<|start|>assistant`
    const channelFirst = recipientAfterChannel(roleFirst);
    expect(piecesToTokens(channelFirst)).toEqual([...toolCallHeaderTokens('get_weather'), ...encodeText('{"city":"Oslo"}'), Tok.call]);
    expect(parseMessagesFromCompletionTokens(piecesToTokens(channelFirst), 'assistant')).toEqual(
      parseMessagesFromCompletionTokens(piecesToTokens(roleFirst), 'assistant'),
    );
  });

  test('history calls in the prompt stay role-first, as the renderer writes them', () => {
    const p2 = RENDERED[1]!.prompt;
    const roleFirst = encodeText(' to=functions.calculator');
    const at = p2.findIndex((_, i) => roleFirst.every((t, j) => p2[i + j] === t));
    expect(p2[at - 1]).toBe(encodeText('assistant').at(-1));
    expect(p2[at + roleFirst.length]).toBe(Tok.channel);
  });
});

describe('exo #1362', () => {
  const golden = (name: string) => JSON.parse(readFileSync(new URL(`../../golden/chat/${name}/prompt.tokens.json`, import.meta.url), 'utf8')) as number[];

  test('p1 and p2 prompts equal the goldens (rendered with the goldens’ date)', () => {
    for (const [index, name] of [
      [0, 'exo-1362-p1'],
      [1, 'exo-1362-p2'],
    ] as const) {
      const example = { ...EXAMPLES[index]!, currentDate: '2025-06-28' };
      expect(renderExample(example).prompt).toEqual(golden(name));
    }
  });

  test('p1 → the calculator call with {"expression":"2+2"}; p2 → a final answer with 4', () => {
    const p1 = completionPieces(EXAMPLES[0]!);
    expect(piecesToTokens(p1).slice(-(toolCallHeaderTokens('calculator').length + encodeText('{"expression":"2+2"}').length + 1))).toEqual([
      ...toolCallHeaderTokens('calculator'),
      ...encodeText('{"expression":"2+2"}'),
      Tok.call,
    ]);
    const p2 = completionToChat(RENDERED[1]!.completion, { callable: ['calculator'] }).message;
    expect(p2.tool_calls).toBeUndefined();
    expect(p2.content).toBe('2+2 is 4.');
  });
});

describe('stale repeats (exo #1362: a prefix cache whose trim did nothing)', () => {
  const options = { ...OPTIONS, repeatRate: 0.25 };
  const stale = Array.from({ length: 200 }, (_, i) => exampleAt(i, options)).filter((e) => e.kind === 'stale_repeat');

  test('the prompt is the answered conversation without its stop token, then a stray `assistant`; the answer comes again', () => {
    expect(stale.length).toBeGreaterThan(20);
    expect(exampleAt(2, options).request).toEqual(exampleAt(1, options).request); // exo's p2, made stale
    for (const e of stale) {
      const fresh = renderExample({ ...e, kind: 'tool_call' });
      const { prompt, completion } = renderExample(e);
      expect(completion).toEqual(fresh.completion);
      expect(prompt).toEqual([...fresh.prompt, ...fresh.completion.slice(0, -1), ...encodeText('assistant')]);
      expect(encodeText('assistant')).toHaveLength(1);
      expect([Tok.call, Tok.return]).toContain(completion.at(-1));
    }
  });

  test('only where asked for: the other examples are the same as without repeats', () => {
    for (let i = 3; i < 200; i++) {
      const plain = exampleAt(i, OPTIONS);
      const maybeStale = exampleAt(i, options);
      expect({ ...maybeStale, kind: plain.kind }).toEqual(plain);
    }
  });
});
