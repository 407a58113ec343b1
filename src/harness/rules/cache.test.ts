import { describe, expect, test } from 'vitest';
import { answerOf } from '../answer.ts';
import { requestKey } from '../record.ts';
import { cache } from './cache.ts';
import { body, completion, recording, violationsOf } from './testing.ts';

const cold = (content: string) => new Map([[requestKey(body), answerOf(completion(content))]]);

describe('cache', () => {
  test('fires when an answer differs from the same request alone on a cold server', () => {
    const [v] = violationsOf(cache, recording([{ obs: completion('a') }]), { baseline: cold('b') });
    expect(v).toMatchObject({ rule: 'cache', kind: 'cache', entries: [-1, 0] });
    expect(v!.expected?.choices[0]?.content).toBe('b');
    expect(v!.message).toBe(
      'p1 at step 1 answered differently from the same request alone on a cold server (prefix cache flushed) (first difference at choices[0].content, character 0)',
    );
    // A baseline on a restarted server says so (a cache no flush reaches is in question too).
    const [fresh] = violationsOf(cache, recording([{ obs: completion('a') }]), { baseline: cold('b'), baselineBy: 'restart' });
    expect(fresh).toMatchObject({ baselineBy: 'restart' });
    expect(fresh!.message).toContain('alone on a fresh server (restarted)');
  });

  test('does not fire on the cold answer, without a baseline, or on a nondeterministic target', () => {
    const rec = recording([{ obs: completion('a') }]);
    expect(violationsOf(cache, rec, { baseline: cold('a') })).toEqual([]);
    expect(violationsOf(cache, rec)).toEqual([]);
    expect(violationsOf(cache, rec, { baseline: cold('b'), deterministic: false })).toEqual([]);
  });
});
