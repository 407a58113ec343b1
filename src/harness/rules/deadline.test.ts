// A hang is a verdict: the deadline rule, first in precedence.
import { describe, expect, test } from 'vitest';
import { findViolations } from './index.ts';
import { deadline } from './deadline.ts';
import { completion, recording, violationsOf } from './testing.ts';

const hung = { status: 0, cancelled: false, started: 0, ended: 12_000, timedOut: true, deadlineMs: 12_000 };

describe('deadline', () => {
  test('fires on a request that got no complete answer, saying which and within how long', () => {
    const rec = recording([{ obs: completion('a') }, { obs: hung, label: 'p2' }]);
    const [v] = violationsOf(deadline, rec);
    expect(v).toMatchObject({ rule: 'deadline', kind: 'hang', entries: [1] });
    expect(v!.message).toBe('p2 at step 2 got no complete answer within 12 s (no response at all)');
  });

  test('says what came before the client gave up', () => {
    const stalled = { ...hung, status: 200, events: [{}], deadlineMs: 2500 };
    expect(violationsOf(deadline, recording([{ obs: stalled }]))[0]!.message).toBe(
      'p1 at step 1 got no complete answer within 2.5 s (HTTP 200 and 1 event, then nothing)',
    );
  });

  test('comes before every other rule, and is silent when every request was answered', () => {
    // An empty "answer" would also differ from the first one: the hang is what is reported.
    expect(findViolations(recording([{ obs: completion('a') }, { obs: hung }]))).toMatchObject({ kind: 'hang', entries: [1] });
    expect(violationsOf(deadline, recording([{ obs: completion('a') }, { obs: completion('a') }]))).toEqual([]);
  });
});
