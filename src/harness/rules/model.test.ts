import { describe, expect, test } from 'vitest';
import type { Observation } from '../client.ts';
import { model } from './model.ts';
import { body, chatJson, chatStream, recording, violationsOf } from './testing.ts';

const named = (name: string, stream = false) => (stream ? chatStream : chatJson)([{ content: 'hi' }], { model: name });

describe('model', () => {
  test('an answer naming another model than the earlier answers fails', () => {
    const [v] = violationsOf(model, recording([{ obs: named('m-1') }, { obs: named('m-2') }]));
    expect(v).toMatchObject({ rule: 'model', kind: 'model', entries: [0, 1] });
    expect(v!.message).toBe('p1 at step 2: answered by model "m-2"; p1 at step 1 was answered by "m-1"');
    expect(violationsOf(model, recording([{ obs: named('m-1') }, { obs: named('m-1', true), stream: true }]))).toEqual([]);
  });

  test('a stream whose chunks name two models fails', () => {
    const obs = named('m-1', true);
    const events = [...obs.events!];
    events[1] = { ...(events[1] as object), model: 'm-2' };
    const [v] = violationsOf(model, recording([{ obs: { ...obs, events } as Observation, stream: true }]));
    expect(v?.problems).toEqual(['its chunks name the models "m-1" and "m-2"']);
  });

  test('requests naming other models may get other models; errors and answers without a model are skipped', () => {
    expect(violationsOf(model, recording([{ obs: named('m-1') }, { obs: named('other'), body: { ...body, model: 'other' } }]))).toEqual([]);
    expect(violationsOf(model, recording([{ obs: named('m-1') }, { obs: { ...named('m-2'), status: 500 } }, { obs: chatJson([{ content: 'hi' }]) }]))).toEqual(
      [],
    );
  });
});
