import { describe, expect, test } from 'vitest';
import { body, completion, recording, violationsOf } from './testing.ts';
import { usage } from './usage.ts';

describe('usage', () => {
  test('identical requests must report identical prompt_tokens, even on a nondeterministic target', () => {
    const [v] = violationsOf(usage, recording([{ obs: completion('a', { prompt: 10 }) }, { obs: completion('b', { prompt: 11 }) }]), { deterministic: false });
    expect(v).toMatchObject({ rule: 'usage', kind: 'usage', entries: [0, 1], difference: { path: 'choices[0].content' } });
    expect(v!.message).toBe(
      'p1 at step 2 reports 11 prompt_tokens; the identical request p1 at step 1 reported 10 (first difference at choices[0].content, character 0)',
    );
  });

  test('different answers with the same prompt_tokens pass on a nondeterministic target', () => {
    expect(
      violationsOf(usage, recording([{ obs: completion('a', { prompt: 10 }) }, { obs: completion('b', { prompt: 10 }) }]), { deterministic: false }),
    ).toEqual([]);
  });

  test('is left to the equality rule on a deterministic target', () => {
    const rec = recording([{ obs: completion('a', { prompt: 10 }) }, { obs: completion('a', { prompt: 11 }) }]);
    expect(violationsOf(usage, rec)).toEqual([]);
    expect(violationsOf(usage, rec, { deterministic: true })).toEqual([]);
  });
});

describe('usage: the same prompt under other sampling', () => {
  const withTemperature = { ...body, temperature: 0.7, seed: 3, max_tokens: 9, stop: ['x'], logprobs: true, n: 2, user: 'u' };

  test('requests differing only in sampling fields must report the same prompt_tokens, on any target', () => {
    const rec = recording([{ obs: completion('a', { prompt: 10 }) }, { obs: completion('b', { prompt: 12 }), body: withTemperature }]);
    for (const deterministic of [true, false]) {
      const [v] = violationsOf(usage, rec, { deterministic });
      expect(v).toMatchObject({ rule: 'usage', kind: 'usage', entries: [0, 1] });
      expect(v!.message).toMatch(/^p1 at step 2 reports 12 prompt_tokens; the request with the same prompt \(other sampling\) p1 at step 1 reported 10/);
    }
  });

  test('the same prompt_tokens pass; other messages, tools or reasoning_effort may change the prompt', () => {
    expect(violationsOf(usage, recording([{ obs: completion('a', { prompt: 10 }) }, { obs: completion('b', { prompt: 10 }), body: withTemperature }]))).toEqual(
      [],
    );
    for (const other of [
      { ...body, messages: [{ role: 'user', content: 'hello' }] },
      { ...body, tools: [] },
      { ...body, reasoning_effort: 'high' },
    ]) {
      expect(violationsOf(usage, recording([{ obs: completion('a', { prompt: 10 }) }, { obs: completion('a', { prompt: 12 }), body: other }]))).toEqual([]);
    }
  });
});
