import { describe, expect, test } from 'vitest';
import { envelope } from './envelope.ts';
import { completion, recording, violationsOf } from './testing.ts';

const answered = (status: number, json: unknown) => ({ status, cancelled: false, started: 0, ended: 1, json });
const ENVELOPE = { error: { message: 'bad JSON', type: 'invalid_request_error', param: null, code: null } };

describe('envelope', () => {
  test('fires when a malformed body gets a 5xx, naming the body and the problems', () => {
    const [v, ...rest] = violationsOf(envelope, recording([{ obs: answered(500, ENVELOPE), raw: '{' }]));
    expect(rest).toEqual([]);
    expect(v).toMatchObject({ rule: 'envelope', kind: 'envelope', entries: [0], problems: ['HTTP 500, not a 4xx'] });
    expect(v!.message).toBe('p1 at step 1 "{": HTTP 500, not a 4xx');
  });

  test('fires when the 4xx body is not the OpenAI error envelope', () => {
    const [v] = violationsOf(envelope, recording([{ obs: answered(400, { detail: 'bad' }), raw: '{' }]));
    expect(v?.problems?.length).toBeGreaterThan(0);
  });

  test('cuts a long body in the headline', () => {
    const [v] = violationsOf(envelope, recording([{ obs: answered(200, {}), raw: 'x'.repeat(400) }]));
    expect(v!.message).toContain(`"${'x'.repeat(300)}…"`);
  });

  test('does not fire on a 4xx envelope, nor on well-formed requests (shape covers those)', () => {
    const rec = recording([{ obs: answered(400, ENVELOPE), raw: '{' }, { obs: answered(500, ENVELOPE) }, { obs: completion('a') }]);
    expect(violationsOf(envelope, rec)).toEqual([]);
  });
});
