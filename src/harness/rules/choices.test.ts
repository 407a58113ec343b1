import { describe, expect, test } from 'vitest';
import { choices } from './choices.ts';
import { body, chatJson, recording, violationsOf } from './testing.ts';

const greedy = { ...body, temperature: 0 };
const greedyN = { ...greedy, n: 3 };
const seeded = (seed: number, n?: number) => ({ ...body, temperature: 1, seed, ...(n ? { n } : {}) });
const answer = (...contents: string[]) => chatJson(contents.map((content) => ({ content })));

describe('choices', () => {
  test('greedy n > 1: a choice unlike choice 0 fails, even without the request alone', () => {
    const [v] = violationsOf(choices, recording([{ obs: answer('a', 'a', 'b'), body: greedyN }]));
    expect(v).toMatchObject({ rule: 'choices', kind: 'choices', entries: [0, 0], difference: { path: 'choices[2].content' } });
    expect(v!.message).toBe('p1 at step 1 (n = 3, temperature 0): choice 2 differs from choice 0 (first difference at choices[2].content, character 0)');
    expect(violationsOf(choices, recording([{ obs: answer('a', 'a', 'a'), body: greedyN }]))).toEqual([]);
  });

  test('greedy n > 1: every choice equals the same request with one choice (n absent or 1)', () => {
    const [v] = violationsOf(
      choices,
      recording([
        { obs: answer('a'), body: greedy },
        { obs: answer('b', 'b', 'b'), body: greedyN },
      ]),
    );
    expect(v).toMatchObject({ entries: [0, 1], difference: { path: 'choices[0].content' } });
    expect(v!.message).toMatch(/^p1 at step 2 \(n = 3, temperature 0\): choice 0 differs from the same request with one choice, p1 at step 1/);
    expect(
      violationsOf(
        choices,
        recording([
          { obs: answer('b', 'b', 'b'), body: greedyN },
          { obs: answer('b'), body: { ...greedy, n: 1 } },
        ]),
      ),
    ).toEqual([]);
  });

  test('finish_reason and log-probs count too', () => {
    const finishes = chatJson([
      { content: 'a', finish: 'stop' },
      { content: 'a', finish: 'length' },
    ]);
    expect(violationsOf(choices, recording([{ obs: finishes, body: { ...greedy, n: 2 } }]))[0]?.difference?.path).toBe('choices[1].finish');
  });

  test('seeded n > 1 with nSeedOffset: choice i equals the request with seed + i and one choice', () => {
    const rec = recording([
      { obs: answer('x'), body: seeded(7) },
      { obs: answer('y'), body: seeded(8) },
      { obs: answer('x', 'z'), body: seeded(7, 2) },
    ]);
    const [v] = violationsOf(choices, rec, { nSeedOffset: true });
    expect(v).toMatchObject({ entries: [1, 2], difference: { path: 'choices[1].content' } });
    expect(v!.message).toMatch(/choice 1 differs from the same request with seed 8 and one choice, p1 at step 2/);
    expect(violationsOf(choices, rec)).toEqual([]);
    const right = recording([
      { obs: answer('x'), body: seeded(7) },
      { obs: answer('y'), body: seeded(8) },
      { obs: answer('x', 'y'), body: seeded(7, 2) },
    ]);
    expect(violationsOf(choices, right, { nSeedOffset: true })).toEqual([]);
  });

  test('is not checked on a nondeterministic target, nor for sampled requests without nSeedOffset', () => {
    expect(violationsOf(choices, recording([{ obs: answer('a', 'b', 'c'), body: greedyN }]), { deterministic: false })).toEqual([]);
    expect(violationsOf(choices, recording([{ obs: answer('a', 'b'), body: seeded(1, 2) }]))).toEqual([]);
  });
});
