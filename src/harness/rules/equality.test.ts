import { describe, expect, test } from 'vitest';
import { equality } from './equality.ts';
import { body, chatJson, completion, recording, streamed, violationsOf } from './testing.ts';

const other = { ...body, messages: [{ role: 'user', content: 'bye' }] };

describe('equality', () => {
  test('on a deterministic target, different answers are a history violation', () => {
    const [v, ...rest] = violationsOf(equality, recording([{ obs: completion('a') }, { obs: completion('b') }]));
    expect(rest).toEqual([]);
    expect(v).toMatchObject({ rule: 'equality', kind: 'history', entries: [0, 1], difference: { path: 'choices[0].content', position: 0 } });
    expect(v!.message).toBe(
      'p1 at step 2 answered differently from the identical request p1 at step 1: the answer depends on what ran before (first difference at choices[0].content, character 0)',
    );
  });

  test('classes a stream against JSON as stream, and a run beside others as concurrency', () => {
    const [s] = violationsOf(equality, recording([{ obs: completion('a') }, { obs: streamed('b'), stream: true }]));
    expect(s?.kind).toBe('stream');
    expect(s!.message).toMatch(/^p1 at step 2 \(stream\) answered differently from the identical JSON request p1 at step 1 /);
    const [c] = violationsOf(
      equality,
      recording([{ obs: completion('a') }, { obs: completion('b'), at: [2, 5] }, { obs: completion('x'), body: other, label: 'p2', at: [3, 4] }]),
    );
    expect(c?.kind).toBe('concurrency');
  });

  test('the expected side is the one that reproduces: alone rather than in a burst, cold rather than on a cache hit', () => {
    // The first p1 ran beside p2, the second alone: the lone one is expected.
    const [burst] = violationsOf(
      equality,
      recording([
        { obs: completion('b'), at: [0, 5] },
        { obs: completion('x'), body: other, label: 'p2', at: [1, 4] },
        { obs: completion('a'), at: [6, 7] },
      ]),
    );
    expect(burst).toMatchObject({ kind: 'concurrency', entries: [2, 0] });
    expect(burst!.expected!.choices[0]!.content).toBe('a');
    // The first p1 reused cached tokens, the second did not: the cold one is expected.
    const usage = (cached: number) => ({ prompt_tokens: 10, completion_tokens: 2, total_tokens: 12, prompt_tokens_details: { cached_tokens: cached } });
    const [hit] = violationsOf(
      equality,
      recording([{ obs: chatJson([{ content: 'b' }], { usage: usage(8) }) }, { obs: chatJson([{ content: 'a' }], { usage: usage(0) }) }]),
    );
    expect(hit).toMatchObject({ kind: 'history', entries: [1, 0] });
  });

  test('names the earlier request whose answer the wrong answer repeats', () => {
    const [v] = violationsOf(equality, recording([{ obs: completion('a') }, { obs: completion('b'), body: other, label: 'p2' }, { obs: completion('b') }]));
    expect(v).toMatchObject({ entries: [0, 2], leakedFrom: 1 });
  });

  test('does not fire on identical answers, on answers that do not count, or on a nondeterministic target', () => {
    const busy = { status: 429, cancelled: false, started: 0, ended: 1, json: { error: { message: 'busy', type: 't', param: null, code: null } } };
    expect(
      violationsOf(
        equality,
        recording([{ obs: completion('a') }, { obs: streamed('a'), stream: true }, { obs: busy }, { obs: { ...completion('b'), cancelled: true } }]),
      ),
    ).toEqual([]);
    expect(violationsOf(equality, recording([{ obs: completion('a') }, { obs: completion('b') }]), { deterministic: false })).toEqual([]);
  });
});
