import { describe, expect, test } from 'vitest';
import { body, completion, recording, streamed, violationsOf } from './testing.ts';
import { shape } from './shape.ts';

describe('shape', () => {
  test('fires on an answer that breaks the contract, with the answer as evidence', () => {
    const [v, ...rest] = violationsOf(shape, recording([{ obs: completion('a') }, { obs: completion('b', { finish: null }) }]));
    expect(rest).toEqual([]);
    expect(v).toMatchObject({ rule: 'shape', kind: 'shape', entries: [1], problems: ['choices[0].finish_reason is null'] });
    expect(v!.actual?.choices[0]?.content).toBe('b');
    expect(v!.message).toBe('p1 at step 2: choices[0].finish_reason is null');
  });

  test('fires on a 5xx for a well-formed request', () => {
    const [v] = violationsOf(
      shape,
      recording([{ obs: { status: 503, cancelled: false, started: 0, ended: 1, json: { error: { message: 'busy', type: 't', param: null, code: null } } } }]),
    );
    expect(v?.problems).toEqual(['HTTP 503 for a well-formed request']);
  });

  test('counts the choices asked for with n', () => {
    const [v] = violationsOf(shape, recording([{ obs: completion('a'), body: { ...body, n: 2 } }]));
    expect(v?.problems).toEqual(['1 choices for n = 2']);
  });

  test('does not fire on well-formed JSON and streams, nor on malformed bodies (envelope covers those)', () => {
    const rec = recording([
      { obs: completion('a') },
      { obs: streamed('a'), stream: true },
      { obs: { status: 500, cancelled: false, started: 0, ended: 1 }, raw: '{' },
    ]);
    expect(violationsOf(shape, rec)).toEqual([]);
  });
});
