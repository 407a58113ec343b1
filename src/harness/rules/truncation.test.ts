import { describe, expect, test } from 'vitest';
import { answerOf } from '../answer.ts';
import { body, completion, recording, violationsOf } from './testing.ts';
import { isTruncationOf, truncation } from './truncation.ts';

const long = { ...body, max_tokens: 8 };
const cut = (content: string) => completion(content, { finish: 'length' });

describe('truncation', () => {
  test('fires when the answer cut at max_tokens k is not a prefix of the answer with more', () => {
    const [v] = violationsOf(truncation, recording([{ obs: cut('ax') }, { obs: completion('abc'), body: long }]));
    expect(v).toMatchObject({ rule: 'truncation', kind: 'truncation', entries: [1, 0] });
    expect(v!.message).toBe('p1 at step 1 with max_tokens 4 is not a prefix of p1 at step 2 with 8 (first difference at choices[0].content, character 1)');
  });

  test('does not fire on a prefix, on an answer not cut by the budget, or on another request', () => {
    expect(violationsOf(truncation, recording([{ obs: cut('ab') }, { obs: completion('abc'), body: long }]))).toEqual([]);
    expect(violationsOf(truncation, recording([{ obs: completion('ax') }, { obs: completion('abc'), body: long }]))).toEqual([]);
    expect(violationsOf(truncation, recording([{ obs: cut('ax') }, { obs: completion('abc'), body: { ...long, temperature: 1 } }]))).toEqual([]);
  });

  test('compares field by field, reasoning first', () => {
    const answer = (reasoning: string, content: string) => ({
      ...answerOf(completion(content)),
      choices: [{ reasoning, content, toolCalls: [], finish: 'stop' }],
    });
    expect(isTruncationOf(answer('thi', ''), answer('think', 'ok'))).toBe(true);
    expect(isTruncationOf(answer('thi', 'o'), answer('think', 'ok'))).toBe(false); // content only after the whole reasoning
  });
});
