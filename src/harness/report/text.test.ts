// The plain-text renderings every reporter shares, on the fixture (exo #1362 in miniature).
import { describe, expect, it } from 'vitest';
import type { Recording } from '../record.ts';
import { describeViolation, failureText, violationMessage } from './text.ts';
import { failed, recording, violation } from './testing.ts';

it('the fixture is a history violation whose wrong answer leaked from p2', () => {
  expect(violation.kind).toBe('history');
  expect(violation.entries).toEqual([0, 2]);
  expect(violation.leakedFrom).toBe(1);
  expect(violation.difference).toMatchObject({ path: 'choices[0].content', position: 15 });
});

describe('describeViolation', () => {
  it('says what was expected, what came back, and where the wrong answer comes from', () => {
    expect(describeViolation(recording, violation)).toBe(
      [
        'content leak — history: p1 at step 3 answered differently from the identical request p1 at step 1: the answer depends on what ran before (first difference at choices[0].content, character 15)',
        '  expected: content: "The answer is 4."; finish_reason: stop',
        '            usage: 5 prompt + 3 completion = 8 tokens',
        '  actual:   content: "The answer is 4, as the tool said."; finish_reason: stop',
        '            usage: 5 prompt + 3 completion = 8 tokens',
        '  the wrong answer is the answer of p2 at step 2',
      ].join('\n'),
    );
  });

  it('renders from the data, not from the stored message', () => {
    expect(violationMessage(recording, violation)).toBe(violation.message);
    const renamed: Recording = { ...recording, entries: recording.entries.map((e) => ({ ...e, label: `${e.label}'` })) };
    expect(violationMessage(renamed, { ...violation, message: 'stale' })).toMatch(
      /^p1' at step 3 answered differently from the identical request p1' at step 1/,
    );
    expect(violationMessage(recording, { ...violation, rule: 'no such rule', message: 'made by hand' })).toBe('made by hand');
  });
});

describe('failureText', () => {
  it('adds the steps and the replay data', () => {
    expect(failureText(failed)).toBe(
      `${describeViolation(recording, violation)}\n\nsteps:\n  1. send p1\n  2. send p2 (stream)\n  3. send p1\n  4. send p1 (stream)\n\nfast-check seed 42, path "3:0:1"`,
    );
    expect(failureText({ ...failed, failure: undefined })).toBe('history-independence failed');
  });
});
