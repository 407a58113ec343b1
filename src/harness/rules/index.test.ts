// The entry point: the rules in order, and only the first violation.
import { describe, expect, test } from 'vitest';
import { findViolations, RULES } from './index.ts';
import { completion, recording } from './testing.ts';

describe('findViolations', () => {
  test('applies the rules in this order', () => {
    expect(RULES.map((r) => r.name)).toEqual([
      'deadline',
      'envelope',
      'shape',
      'usage',
      'equality',
      'expectation',
      'cache',
      'truncation',
      'stop',
      'logprobs',
      'tool-calls',
      'budget',
      'choices',
      'model',
    ]);
  });

  test('reports the first violation of the first rule that has one', () => {
    // A history violation at steps 1-2, and a shape violation later at step 3: shape comes first.
    const rec = recording([{ obs: completion('a') }, { obs: completion('b') }, { obs: completion('a', { finish: null }) }]);
    expect(findViolations(rec)).toMatchObject({ rule: 'shape', entries: [2] });
    expect(findViolations(recording([{ obs: completion('a') }, { obs: completion('b') }, { obs: completion('c') }]))).toMatchObject({
      kind: 'history',
      entries: [0, 1],
    });
  });

  test('finds nothing in a clean recording', () => {
    expect(findViolations(recording([{ obs: completion('a') }, { obs: completion('a') }]))).toBeUndefined();
  });
});
