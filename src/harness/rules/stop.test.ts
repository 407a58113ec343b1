import { describe, expect, test } from 'vitest';
import { stop } from './stop.ts';
import { body, completion, recording, violationsOf } from './testing.ts';

const withStop = { ...body, stop: 'c' };

describe('stop', () => {
  test('fires when the answer is not the stop-free answer cut before the stop string', () => {
    const [v] = violationsOf(stop, recording([{ obs: completion('abcd') }, { obs: completion('abc'), body: withStop }]));
    expect(v).toMatchObject({ rule: 'stop', kind: 'stop', entries: [0, 1] });
    expect(v!.expected?.choices[0]).toMatchObject({ content: 'ab', finish: 'stop' });
    expect(v!.message).toBe('p1 at step 2: the answer is not the stop-free answer cut before "c" (first difference at choices[0].content, character 2)');
  });

  test('fires when a cut answer does not finish with stop', () => {
    const [v] = violationsOf(stop, recording([{ obs: completion('abcd') }, { obs: completion('ab', { finish: 'length' }), body: withStop }]));
    expect(v?.difference?.path).toBe('choices[0].finish');
  });

  test('does not fire on the right cut, without an earlier stop-free answer, or on a nondeterministic target', () => {
    expect(violationsOf(stop, recording([{ obs: completion('abcd') }, { obs: completion('ab'), body: withStop }]))).toEqual([]);
    expect(violationsOf(stop, recording([{ obs: completion('abc'), body: withStop }, { obs: completion('abcd') }]))).toEqual([]);
    expect(violationsOf(stop, recording([{ obs: completion('abcd') }, { obs: completion('abc'), body: withStop }]), { deterministic: false })).toEqual([]);
  });
});
