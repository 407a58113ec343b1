// The offline checker on hand-made recordings: rules that must fire, and must not.
import { describe, expect, test } from 'vitest';
import { checkRecording } from './check.ts';
import type { Observation } from './client.ts';
import { requestKey, type Entry, type Recording } from './run.ts';

const body = { model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 };
const completion = (content: string, prompt: number): Observation => ({
  status: 200,
  cancelled: false,
  started: 0,
  ended: 1,
  json: {
    object: 'chat.completion',
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
    usage: { prompt_tokens: prompt, completion_tokens: 2, total_tokens: prompt + 2 },
  },
});
const recording = (...observations: Observation[]): Recording => ({
  scenario: { name: 't', requests: { p1: body }, steps: observations.map(() => ({ send: 'p1' })) },
  // One after another (overlapping requests would be classified as concurrency).
  entries: observations.map((obs, step): Entry => ({ step, label: 'p1', call: { body, stream: false }, key: requestKey(body), obs: { ...obs, started: 2 * step, ended: 2 * step + 1 } })),
});

describe('usage coherence', () => {
  test('identical requests must report identical prompt_tokens, even on a nondeterministic target', () => {
    const v = checkRecording(recording(completion('a', 10), completion('b', 11)), { deterministic: false });
    expect(v?.kind).toBe('usage');
  });

  test('different answers with the same prompt_tokens pass on a nondeterministic target', () => {
    expect(checkRecording(recording(completion('a', 10), completion('b', 10)), { deterministic: false })).toBeUndefined();
  });

  test('on a deterministic target, different answers are a history violation', () => {
    expect(checkRecording(recording(completion('a', 10), completion('b', 10)))?.kind).toBe('history');
  });
});
