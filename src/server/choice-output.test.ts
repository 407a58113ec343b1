// One choice's output: stop strings, tool calls and log-probabilities together. The log-probability
// entries spell the content byte for byte, whatever cut it, and never run ahead of the text sent.
import { fc, test } from '@fast-check/vitest';
import { expect } from 'vitest';
import { accumulateDeltas, ChatDeltaStream } from '../harmony/harmony-to-chat.ts';
import { encodeHarmonyText, encodeText, Tok, tokenBytes } from '../harmony/tokens.ts';
import type { ChatDelta } from '../wire/chat-completions.ts';
import { ChoiceOutput, type LogprobEntry, type SampledToken } from './choice-output.ts';

function run(tokens: readonly number[], stop: string[], callable?: string[]) {
  const out = new ChoiceOutput(new ChatDeltaStream<SampledToken>({ spelling: true, ...(callable && { callable }) }), stop, true);
  const deltas: ChatDelta[] = [];
  const entries: LogprobEntry[] = [];
  const take = (step: { deltas: ChatDelta[]; logprobs: LogprobEntry[] }) => {
    deltas.push(...step.deltas);
    entries.push(...step.logprobs);
    const content = Buffer.from(accumulateDeltas(deltas).content ?? '', 'utf8');
    const spelled = Buffer.from(entries.flatMap((e) => e.bytes));
    expect(content.subarray(0, spelled.length).equals(spelled), 'log-probs ahead of the content').toBe(true);
  };
  for (const [i, token] of tokens.entries()) {
    take(out.push({ token, logprob: -i, topLogprobs: [{ token, logprob: -i }] }));
    if (out.stopped) break;
  }
  take(out.finish());
  return { message: accumulateDeltas(deltas), entries, out };
}

const spells = (entries: LogprobEntry[]) => Buffer.from(entries.flatMap((e) => e.bytes)).toString('utf8');

test('a token cut by a stop string keeps the bytes the answer shows', () => {
  const tokens = [...encodeHarmonyText('<|channel|>final<|message|>'), ...encodeText('Hello world'), Tok.return];
  const { message, entries } = run(tokens, ['lo w']);
  expect(message.content).toBe('Hel');
  expect(spells(entries)).toBe('Hel');
  expect(entries).toHaveLength(1);
  expect(entries[0]).toMatchObject({ token: 'Hel', bytes: [...Buffer.from('Hel')], logprob: -3 });
  // Its alternatives are whole tokens, as sampled.
  expect(entries[0]!.top_logprobs[0]!.bytes).toEqual([...tokenBytes(tokens[3]!)!]);
});

test('a stop string in the first token: empty answer, no entries', () => {
  const tokens = [...encodeHarmonyText('<|channel|>final<|message|>'), ...encodeText('Hello'), Tok.return];
  const { message, entries } = run(tokens, ['H']);
  expect(message.content).toBe('');
  expect(entries).toEqual([]);
});

test('a bare <|call|>, or a call to an undeclared function, is no tool call', () => {
  const call = encodeHarmonyText('<|channel|>commentary to=functions.f<|message|>{}<|call|>');
  expect(run(call, [], []).out.hasToolCalls).toBe(false);
  expect(run(call, [], ['f']).out.hasToolCalls).toBe(true);
  expect(run(encodeHarmonyText('<|channel|>final<|message|>x<|call|>'), []).out.hasToolCalls).toBe(false);
});

const words = ['Hello', ' world', ' wor', 'ld', '你好', ' é', '\n', '  ', 'final', ' to=foo', ' json'];
const POOL: number[][] = [[Tok.channel], [Tok.message], [Tok.end], [Tok.start], [Tok.return], ...words.map((w) => encodeText(w))];

test.prop([
  fc.array(fc.nat({ max: POOL.length - 1 }), { maxLength: 30 }),
  fc.array(fc.constantFrom('l', 'o w', 'wor', ' ', '好', 'é', 'ld\n', 'Hello'), { maxLength: 3 }),
])('over random completions and stop strings, the entries spell the content', (picks, stop) => {
  const tokens = [...encodeHarmonyText('<|channel|>final<|message|>'), ...picks.flatMap((i) => POOL[i]!)];
  const { message, entries } = run(tokens, stop);
  const content = message.content ?? '';
  expect(spells(entries)).toBe(content);
  expect(entries.length > 0).toBe(content !== '');
  for (const s of stop) expect(content.includes(s)).toBe(false);
});
