// The entry point: the rules in order, and only the first violation.
import { describe, expect, test } from 'vitest';
import { findViolations, RULES } from './index.ts';
import type { Observation } from '../client.ts';
import { problemKey } from '../violation.ts';
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

  test('passes over the problems a check already reported (known), and compares what is left', () => {
    const error = (status: number): Observation => ({
      ...completion(''),
      status,
      json: { error: { message: 'output does not parse', type: 'server_error', code: status } },
    });
    const problems = ['HTTP 500 for a well-formed request', 'error.param is missing'];
    const known = new Set(problems.map(problemKey));
    const same = recording([{ obs: error(500) }, { obs: error(500) }]);
    expect(findViolations(same)).toMatchObject({ rule: 'shape', problems });
    expect(findViolations(same, { known })).toBeUndefined();
    // One problem known, one not: the violation keeps the other.
    expect(findViolations(same, { known: new Set([problemKey(problems[0]!)]) })).toMatchObject({ rule: 'shape', problems: [problems[1]] });
    // A known 500 is still an answer: the same request answered 200 and then 500 depends on what ran before.
    expect(findViolations(recording([{ obs: completion('a') }, { obs: error(500) }]), { known })).toMatchObject({ kind: 'history', entries: [0, 1] });
    // Known problems of another status (HTTP N) are the same problem.
    expect(findViolations(recording([{ obs: error(502) }]), { known })).toBeUndefined();
  });

  test('finds nothing in a clean recording', () => {
    expect(findViolations(recording([{ obs: completion('a') }, { obs: completion('a') }]))).toBeUndefined();
  });
});
