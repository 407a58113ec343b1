// Violation classes from the evidence, and what each --compare mode fails on.
import { describe, expect, test } from 'vitest';
import { classify, CONFIDENT_MARGIN, fails, largestDrift } from './classify.ts';
import { answerOf } from './answer.ts';
import { equality } from './rules/equality.ts';
import { body, chatJson, completion, lp, recording, violationsOf, type ChoiceSpec } from './rules/testing.ts';

const answer = (choices: ChoiceSpec[], usage?: Record<string, unknown>) => answerOf(chatJson(choices, usage ? { usage } : {}));
const other = (content: string) => ({ ...body, messages: [{ role: 'user', content }] });

describe('classify', () => {
  test('the same tokens, other log-probs: numeric drift, with the largest Δ over tokens and alternatives', () => {
    const expected = answer([
      {
        content: 'ab',
        logprobs: [
          lp('a', -0.1, [
            ['a', -0.1],
            ['b', -2],
          ]),
          lp('b', -0.2),
        ],
      },
    ]);
    const actual = answer([
      {
        content: 'ab',
        logprobs: [
          lp('a', -0.11, [
            ['a', -0.11],
            ['b', -2.5],
          ]),
          lp('b', -0.2),
        ],
      },
    ]);
    const c = classify({ expected, actual });
    expect(c.class).toBe('numeric-drift');
    expect(c.drift).toBeCloseTo(0.5, 9);
    expect(largestDrift(expected, expected)).toBe(0);
  });

  test("other tokens: divergence, with the expected run's margin where they part (a near-tie shows)", () => {
    const expected = answer([
      {
        content: 'ab',
        logprobs: [
          lp('a', -0.1),
          lp('b', -0.69, [
            ['b', -0.69],
            ['c', -0.7],
          ]),
        ],
      },
    ]);
    const actual = answer([{ content: 'ac', logprobs: [lp('a', -0.1), lp('c', -0.69)] }]);
    const c = classify({ expected, actual });
    expect(c.class).toBe('divergence');
    expect(c.margin).toMatchObject({ choice: 0, position: 1, expected: 'b', actual: 'c' });
    expect(c.margin!.atLeast).toBeUndefined();
    expect(c.margin!.gap).toBeCloseTo(0.01, 9);
    // The other run's token is not among the alternatives: the gap to the least likely is a lower bound.
    const far = classify({ expected, actual: answer([{ content: 'ad', logprobs: [lp('a', -0.1), lp('d', -3)] }]) });
    expect(far.margin).toMatchObject({ actual: 'd', atLeast: true });
    expect(far.margin!.gap).toBeCloseTo(0.01, 9);
    // Without log-probs: divergence, no margin.
    expect(classify({ expected: answer([{ content: 'a' }]), actual: answer([{ content: 'b' }]) })).toEqual({ class: 'divergence' });
  });

  test("another request's answer: a content leak, whatever the rule", () => {
    expect(classify({ expected: answer([{ content: 'a' }]), actual: answer([{ content: 'b' }]), leakedFrom: 1 }).class).toBe('content-leak');
    expect(classify({ actual: answer([{ content: 'b' }]), leakedFrom: 0 }).class).toBe('content-leak');
  });

  test('contract: an answer against the contract alone, and identical tokens and log-probs with other usage', () => {
    expect(classify({ actual: answer([{ content: 'a' }]) }).class).toBe('contract');
    const a = answer([{ content: 'a' }], { prompt_tokens: 10, completion_tokens: 2, total_tokens: 12 });
    const b = answer([{ content: 'a' }], { prompt_tokens: 10, completion_tokens: 3, total_tokens: 13 });
    expect(classify({ expected: a, actual: b }).class).toBe('contract');
  });

  test('--compare: exact fails on every class, tokens tolerates drift, text also a divergence not known to be confident', () => {
    const classes = ['content-leak', 'contract', 'divergence', 'numeric-drift'] as const;
    expect(classes.map((c) => fails({ class: c }, 'exact'))).toEqual([true, true, true, true]);
    expect(classes.map((c) => fails({ class: c }, 'tokens'))).toEqual([true, true, true, false]);
    expect(classes.map((c) => fails({ class: c }, 'text'))).toEqual([true, true, false, false]);
    const margin = (gap: number) => ({ choice: 0, position: 0, expected: 'a', actual: 'b', gap });
    expect(fails({ class: 'divergence', margin: margin(0.01) }, 'text')).toBe(false);
    expect(fails({ class: 'divergence', margin: margin(CONFIDENT_MARGIN) }, 'text')).toBe(true);
  });
});

describe('content leaks in the recording', () => {
  const long = 'the weather in Paris is 21 degrees';
  test("a request in another conversation whose content shows up inside the wrong answer: the leak's source", () => {
    const rec = recording([
      { obs: completion('hello there') },
      { obs: completion(long), body: other('weather?'), label: 'p2' },
      { obs: completion(`hello ${long}`) },
    ]);
    const [v] = violationsOf(equality, rec);
    expect(v).toMatchObject({ entries: [0, 2], leakedFrom: 1, class: 'content-leak' });
  });

  test('not from the same conversation (another budget says the same), nor text the expected answer or the request itself has', () => {
    const sameConversation = { ...body, max_tokens: 99 };
    const rec = recording([
      { obs: completion('hello there') },
      { obs: completion(long), body: sameConversation, label: 'p2' },
      { obs: completion(`hello ${long}`) },
    ]);
    expect(violationsOf(equality, rec)[0]).toMatchObject({ class: 'divergence' });
    const inExpected = recording([
      { obs: completion(`x ${long}`) },
      { obs: completion(long), body: other('weather?'), label: 'p2' },
      { obs: completion(`y ${long}`) },
    ]);
    expect(violationsOf(equality, inExpected)[0]).toMatchObject({ class: 'divergence' });
    const asked = { ...body, messages: [{ role: 'user', content: `say: ${long}` }] };
    const own = recording([
      { obs: completion('a'), body: asked },
      { obs: completion(long), body: other('weather?'), label: 'p2' },
      { obs: completion(long + '!'), body: asked },
    ]);
    expect(violationsOf(equality, own)[0]).toMatchObject({ class: 'divergence' });
  });
});
