import { describe, expect, test } from 'vitest';
import { stop } from './stop.ts';
import { body, completion, recording, streamed, violationsOf } from './testing.ts';

const withStop = { ...body, stop: 'c' };

describe('stop', () => {
  test('fires when the answer is not the stop-free answer cut before the stop string', () => {
    const [v] = violationsOf(stop, recording([{ obs: completion('abcd') }, { obs: completion('a'), body: withStop }]));
    expect(v).toMatchObject({ rule: 'stop', kind: 'stop', entries: [0, 1] });
    expect(v!.expected?.choices[0]).toMatchObject({ content: 'ab', finish: 'stop' });
    expect(v!.message).toBe('p1 at step 2: the answer is not the stop-free answer cut before "c" (first difference at choices[0].content, character 1)');
  });

  test('fires when a cut answer does not finish with stop', () => {
    const [v] = violationsOf(stop, recording([{ obs: completion('abcd') }, { obs: completion('ab', { finish: 'length' }), body: withStop }]));
    expect(v?.difference?.path).toBe('choices[0].finish');
  });

  test('does not fire on the right cut, without an earlier stop-free answer, or on a nondeterministic target', () => {
    expect(violationsOf(stop, recording([{ obs: completion('abcd') }, { obs: completion('ab'), body: withStop }]))).toEqual([]);
    expect(violationsOf(stop, recording([{ obs: completion('a'), body: withStop }, { obs: completion('abcd') }]))).toEqual([]);
    expect(violationsOf(stop, recording([{ obs: completion('abcd') }, { obs: completion('a'), body: withStop }]), { deterministic: false })).toEqual([]);
  });
});

describe('stop: never in the content', () => {
  test('content containing a stop string (string or array) fails on any target, JSON or stream', () => {
    for (const deterministic of [true, false]) {
      const [v] = violationsOf(stop, recording([{ obs: completion('abc'), body: { ...body, stop: ['x', 'b'] } }]), { deterministic });
      expect(v).toMatchObject({ rule: 'stop', kind: 'stop', entries: [0], problems: ['choices[0].content contains the stop string "b"'] });
      expect(v!.message).toBe('p1 at step 1: choices[0].content contains the stop string "b"');
    }
    expect(violationsOf(stop, recording([{ obs: streamed('abc'), body: withStop, stream: true }]))[0]?.problems).toEqual([
      'choices[0].content contains the stop string "c"',
    ]);
    expect(violationsOf(stop, recording([{ obs: completion('ab'), body: { ...body, stop: ['x', 'c'] } }]))).toEqual([]);
  });
});
