import { describe, expect, test } from 'vitest';
import { answerOf } from '../answer.ts';
import type { Body } from '../scenario.ts';
import { equality } from './equality.ts';
import { logprobs } from './logprobs.ts';
import { body, chatJson, chatStream, lp, recording, violationsOf, type ChoiceSpec } from './testing.ts';

const asked: Body = { ...body, logprobs: true };
/** The problems the rule finds in one JSON response to `b`. */
const problemsOf = (choice: ChoiceSpec, b = asked) =>
  violationsOf(logprobs, recording([{ obs: chatJson([choice]), body: b }])).flatMap((v) => v.problems ?? []);

describe('logprobs: present iff asked', () => {
  test('entries for a request that did not ask for them fail (a sticky option)', () => {
    const [v] = violationsOf(logprobs, recording([{ obs: chatJson([{ content: 'hi', logprobs: [lp('hi')] }]) }]));
    expect(v).toMatchObject({ rule: 'logprobs', kind: 'logprobs', entries: [0] });
    expect(v!.message).toBe('p1 at step 1: choices[0] has 1 log-prob entries, but the request did not ask for logprobs');
    expect(problemsOf({ content: 'hi' }, body)).toEqual([]);
  });

  test('content without entries fails when asked, except at top_logprobs 0 (llama.cpp) or after a stop string', () => {
    expect(problemsOf({ content: 'hi' })).toEqual(['choices[0] has content but no log-prob entries']);
    expect(problemsOf({ content: '' })).toEqual([]);
    expect(problemsOf({ content: 'hi' }, { ...asked, top_logprobs: 0 })).toEqual([]);
    expect(problemsOf({ content: 'h', finish: 'stop' }, { ...asked, stop: 'i' })).toEqual([]);
  });
});

describe('logprobs: values', () => {
  test('a logprob above 0 or not a number fails; a tiny float error passes', () => {
    expect(problemsOf({ content: 'hi', logprobs: [lp('hi', 0.5)] })).toEqual(['choices[0] log-prob entry 0 has logprob 0.5 > 0']);
    expect(problemsOf({ content: 'hi', logprobs: [{ ...lp('hi'), logprob: null }] })).toEqual(['choices[0] log-prob entry 0 has logprob null, not a number']);
    expect(problemsOf({ content: 'hi', logprobs: [lp('hi', 1e-7)] })).toEqual([]);
    expect(
      problemsOf({
        content: 'hi',
        logprobs: [
          lp('hi', -0.5, [
            ['hi', -0.5],
            ['ho', 0.2],
          ]),
        ],
      }),
    ).toEqual(['choices[0] log-prob entry 0: top_logprobs[1] has logprob 0.2 > 0']);
  });

  test('top_logprobs: at most max(asked, 1), at least 1 when asked, unbounded when not asked (llama.cpp sends 20)', () => {
    const three = lp('hi', -0.1, [
      ['hi', -0.1],
      ['ho', -2],
      ['ha', -3],
    ]);
    expect(problemsOf({ content: 'hi', logprobs: [three] }, { ...asked, top_logprobs: 2 })).toEqual([
      'choices[0] log-prob entry 0 has 3 top_logprobs (2 asked)',
    ]);
    expect(problemsOf({ content: 'hi', logprobs: [lp('hi')] }, { ...asked, top_logprobs: 2 })).toEqual([
      'choices[0] log-prob entry 0 has no top_logprobs (2 asked)',
    ]);
    expect(problemsOf({ content: 'hi', logprobs: [three] }, { ...asked, top_logprobs: 3 })).toEqual([]);
    expect(problemsOf({ content: 'hi', logprobs: [three] })).toEqual([]);
  });

  test('the same alternative twice fails (vLLM #36660), except at a floor value where tokens tie', () => {
    const twice = lp('hi', -0.1, [
      ['hi', -0.1],
      ['hi', -0.1],
    ]);
    expect(problemsOf({ content: 'hi', logprobs: [twice] })).toEqual(['choices[0] log-prob entry 0: top_logprobs lists "hi" twice']);
    const floor = lp('hi', -0.1, [
      ['hi', -0.1],
      ['', -9999],
      ['', -9999],
    ]);
    expect(problemsOf({ content: 'hi', logprobs: [floor] })).toEqual([]);
  });

  test('alternatives are the most likely: one below the sampled token needs the sampled token listed', () => {
    // The sampled token (-0.5) is left out, yet -2 is listed: not the most likely tokens.
    const wrong = lp('hi', -0.5, [
      ['ho', -0.1],
      ['ha', -2],
    ]);
    expect(problemsOf({ content: 'hi', logprobs: [wrong] })).toEqual([
      'choices[0] log-prob entry 0: top_logprobs lists a token at -2, less likely than the sampled token (-0.5), which it leaves out',
    ]);
    // Sampled token first, then the top k (vLLM): unordered, but right.
    const vllm = lp('hi', -0.5, [
      ['hi', -0.5],
      ['ho', -0.1],
      ['ha', -2],
    ]);
    expect(problemsOf({ content: 'hi', logprobs: [vllm] })).toEqual([]);
    // A sampled token outside the top k (temperature > 0): every listed one is more likely.
    const sampled = lp('hi', -5, [
      ['ho', -0.1],
      ['ha', -2],
    ]);
    expect(problemsOf({ content: 'hi', logprobs: [sampled] })).toEqual([]);
  });
});

describe('logprobs: the entries spell the content', () => {
  test('bytes spelling other text fail; exact, and a character split across entries, pass', () => {
    expect(problemsOf({ content: 'hello', logprobs: [lp('he'), lp('lp')] })).toEqual([
      'choices[0]: the log-prob entries spell "help", not the content "hello"',
    ]);
    expect(problemsOf({ content: 'hello', logprobs: [lp('he'), lp('llo')] })).toEqual([]);
    const split = [
      { ...lp('\uFFFD'), bytes: [0xf0, 0x9f] },
      { ...lp('\uFFFD'), bytes: [0x98, 0x80] },
    ];
    expect(problemsOf({ content: '😀', logprobs: split })).toEqual([]);
    expect(problemsOf({ content: '😁', logprobs: split })).toHaveLength(1);
  });

  test('a stream is checked over its folded entries', () => {
    const rec = (entries: unknown[]) => recording([{ obs: chatStream([{ content: 'hello', logprobs: entries }]), body: asked, stream: true }]);
    expect(violationsOf(logprobs, rec([lp('he'), lp('llo')]))).toEqual([]);
    expect(violationsOf(logprobs, rec([lp('he'), lp('ll')]))[0]?.problems).toEqual(['choices[0]: the log-prob entries spell "hell", not the content "hello"']);
  });

  test('without bytes the tokens are compared, unless a token shows U+FFFD (its bytes are unknown)', () => {
    const noBytes = (token: string) => ({ token, logprob: -1, top_logprobs: [] });
    expect(problemsOf({ content: 'hello', logprobs: [noBytes('he'), noBytes('lo')] })).toEqual([
      'choices[0]: the log-prob entries spell "helo", not the content "hello"',
    ]);
    expect(problemsOf({ content: 'hello', logprobs: [noBytes('hel'), noBytes('lo')] })).toEqual([]);
    expect(problemsOf({ content: '😀', logprobs: [noBytes('\uFFFD'), noBytes('\uFFFD')] })).toEqual([]);
    expect(problemsOf({ content: 'hello', logprobs: [lp('token_id:71'), lp('token_id:9')] })).toEqual([]);
  });

  test('entries before the content pass with reasoning, tool calls or markup tokens (vLLM, SGLang #25055), not otherwise', () => {
    const lead = [lp('think'), lp('hi')];
    expect(problemsOf({ content: 'hi', logprobs: lead })).toEqual(['choices[0]: the log-prob entries spell "thinkhi", not the content "hi"']);
    expect(problemsOf({ content: 'hi', reasoning: 'think', logprobs: lead })).toEqual([]);
    expect(problemsOf({ content: 'hi', logprobs: [lp('final'), lp('<|message|>'), lp('hi')] })).toEqual([]);
  });

  test('entries after the content pass when they are markup, the stop string, or tool calls; not otherwise', () => {
    expect(problemsOf({ content: 'hi', logprobs: [lp('hi'), lp('<|eot_id|>')] })).toEqual([]);
    expect(problemsOf({ content: 'hi', logprobs: [lp('hi'), lp(' there')] })).toEqual([
      'choices[0]: the log-prob entries spell "hi there", not the content "hi"',
    ]);
    // vLLM keeps the tokens of the stop string (and the rest of the last one).
    expect(problemsOf({ content: 'hi', finish: 'stop', logprobs: [lp('hi'), lp(' there')] }, { ...asked, stop: [' th'] })).toEqual([]);
    expect(
      problemsOf(
        { content: 'hi', toolCalls: [{ name: 'f' }], logprobs: [lp('hi'), lp('{"a":1}')] },
        { ...asked, tools: [{ type: 'function', function: { name: 'f' } }] },
      ),
    ).toEqual([]);
  });

  test('entries short of the content pass only when a stop string ended it (llama.cpp trims by count)', () => {
    expect(problemsOf({ content: 'hello', finish: 'stop', logprobs: [lp('hel')] }, { ...asked, stop: 'p' })).toEqual([]);
    expect(problemsOf({ content: 'hello', finish: 'stop', logprobs: [lp('hel')] })).toEqual([
      'choices[0]: the log-prob entries spell "hel", not the content "hello"',
    ]);
  });

  test('skips errors, cancelled streams and malformed bodies', () => {
    const bad = chatJson([{ content: 'hi', logprobs: [lp('no')] }]);
    const rec = recording([{ obs: { ...bad, status: 400 } }, { obs: { ...bad, cancelled: true } }, { obs: bad, raw: '{' }]);
    expect(violationsOf(logprobs, rec)).toEqual([]);
  });
});

describe('the answer fold compares bytes and top_logprobs', () => {
  test('identical requests whose alternatives differ fail equality; entries without them fold as before', () => {
    const a = chatJson([{ content: 'hi', logprobs: [lp('hi', -0.1, [['hi', -0.1]])] }]);
    const b = chatJson([{ content: 'hi', logprobs: [lp('hi', -0.1, [['ho', -0.1]])] }]);
    const [v] = violationsOf(equality, recording([{ obs: a }, { obs: b }]));
    expect(v?.difference?.path).toBe('choices[0].logprobs[0].top_logprobs[0].token');
    expect(violationsOf(equality, recording([{ obs: a }, { obs: a }]))).toEqual([]);
    const plain = chatJson([{ content: 'hi', logprobs: [{ token: 'hi', logprob: -0.1 }] }]);
    expect(answerOf(plain).choices[0]!.logprobs).toEqual([{ token: 'hi', logprob: -0.1 }]);
    expect(answerOf(a).choices[0]!.logprobs).toEqual([{ token: 'hi', logprob: -0.1, bytes: [104, 105], top_logprobs: [{ token: 'hi', logprob: -0.1 }] }]);
  });
});
