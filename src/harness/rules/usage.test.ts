import { describe, expect, test } from 'vitest';
import { completion, recording, violationsOf } from './testing.ts';
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
