import { describe, expect, test } from 'vitest';
import { expectation } from './expectation.ts';
import { body, completion, recording, violationsOf } from './testing.ts';

const after = { ...body, messages: [{ role: 'user', content: 'hi again' }] };

describe('expectation', () => {
  test("fires when a step does not answer as the scenario's expectation says", () => {
    const rec = recording([{ obs: completion('a') }, { obs: completion('b'), body: after, label: 'p2' }], [{ equal: [1, 2] }]);
    const [v] = violationsOf(expectation, rec);
    expect(v).toMatchObject({ rule: 'expectation', kind: 'expectation', entries: [0, 1] });
    expect(v!.message).toBe('expected step 2 to answer as step 1 did (first difference at choices[0].content, character 0)');
  });

  test('does not fire when the steps agree, when a step has no answer that counts, or on a nondeterministic target', () => {
    expect(violationsOf(expectation, recording([{ obs: completion('a') }, { obs: completion('a'), body: after }], [{ equal: [1, 2] }]))).toEqual([]);
    const cancelled = { ...completion('b'), cancelled: true };
    expect(violationsOf(expectation, recording([{ obs: completion('a') }, { obs: cancelled, body: after }], [{ equal: [1, 2] }]))).toEqual([]);
    expect(
      violationsOf(expectation, recording([{ obs: completion('a') }, { obs: completion('b'), body: after }], [{ equal: [1, 2] }]), { deterministic: false }),
    ).toEqual([]);
  });
});
