import { describe, expect, test } from 'vitest';
import type { Body } from '../scenario.ts';
import { budget } from './budget.ts';
import { body, chatJson, chatStream, recording, violationsOf } from './testing.ts';

const usage = (prompt: number, completion: number, extra: Record<string, unknown> = {}) => ({
  prompt_tokens: prompt,
  completion_tokens: completion,
  total_tokens: prompt + completion,
  ...extra,
});
const problemsOf = (u: Record<string, unknown>, b: Body = body, stream = false) =>
  violationsOf(budget, recording([{ obs: (stream ? chatStream : chatJson)([{ content: 'hi' }], { usage: u }), body: b, stream }])).flatMap(
    (v) => v.problems ?? [],
  );

describe('budget', () => {
  test('completion_tokens over the budget fails, JSON or stream (max_tokens 4 in the test body)', () => {
    const [v] = violationsOf(budget, recording([{ obs: chatJson([{ content: 'hi' }], { usage: usage(10, 5) }) }]));
    expect(v).toMatchObject({ rule: 'budget', kind: 'budget', entries: [0] });
    expect(v!.message).toBe('p1 at step 1: completion_tokens 5 > max tokens 4');
    expect(problemsOf(usage(10, 5), body, true)).toEqual(['completion_tokens 5 > max tokens 4']);
    expect(problemsOf(usage(10, 4))).toEqual([]);
  });

  test("an answer that is another request's names it (an answer cache keyed too coarsely)", () => {
    const answer = chatJson([{ content: 'hi there' }], { usage: usage(10, 6) });
    const [v] = violationsOf(
      budget,
      recording([
        // Another conversation with the same last user message.
        { obs: answer, body: { ...body, messages: [{ role: 'system', content: 'be brief' }, ...(body.messages as object[])], max_tokens: 8 } },
        { obs: answer, label: 'p2' },
      ]),
    );
    expect(v).toMatchObject({ entries: [1], leakedFrom: 0, problems: ['completion_tokens 6 > max tokens 4'] });
  });

  test('n choices get n budgets; max_completion_tokens wins over max_tokens', () => {
    expect(problemsOf(usage(10, 8), { ...body, n: 2 })).toEqual([]);
    expect(problemsOf(usage(10, 9), { ...body, n: 2 })).toEqual(['completion_tokens 9 > n 2 × max tokens 4']);
    expect(problemsOf(usage(10, 3), { ...body, max_completion_tokens: 2 })).toEqual(['completion_tokens 3 > max tokens 2']);
    expect(problemsOf(usage(10, 100), { ...body, max_tokens: undefined })).toEqual([]);
  });

  test('prompt_tokens below 1, and no completion tokens for an answer with text, fail', () => {
    expect(problemsOf(usage(0, 2))).toEqual(['prompt_tokens is 0, not a count ≥ 1']);
    expect(problemsOf(usage(10, 0))).toEqual(['completion_tokens is 0, but the answer has text']);
  });

  test('cached_tokens and reasoning_tokens are parts of their totals', () => {
    expect(problemsOf(usage(10, 2, { prompt_tokens_details: { cached_tokens: 11 } }))).toEqual(['cached_tokens 11 > prompt_tokens 10']);
    expect(problemsOf(usage(10, 2, { prompt_tokens_details: { cached_tokens: 10 } }))).toEqual([]);
    expect(problemsOf(usage(10, 2, { completion_tokens_details: { reasoning_tokens: 3 } }))).toEqual(['reasoning_tokens 3 > completion_tokens 2']);
    expect(problemsOf(usage(10, 2, { completion_tokens_details: { reasoning_tokens: 2 } }))).toEqual([]);
  });

  test('skips answers without usage, errors and cancelled streams', () => {
    const over = chatJson([{ content: 'hi' }], { usage: usage(0, 50) });
    const { usage: _u, ...noUsage } = over.json as Record<string, unknown>;
    const rec = recording([{ obs: { ...over, json: noUsage } }, { obs: { ...over, status: 400 } }, { obs: { ...over, cancelled: true } }]);
    expect(violationsOf(budget, rec)).toEqual([]);
  });
});
