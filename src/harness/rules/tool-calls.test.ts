import { describe, expect, test } from 'vitest';
import type { Body } from '../scenario.ts';
import { body, chatJson, chatStream, recording, violationsOf, type ChoiceSpec } from './testing.ts';
import { toolCalls } from './tool-calls.ts';

const tool = (name: string) => ({ type: 'function', function: { name, parameters: { type: 'object', properties: {} } } });
const withTools: Body = { ...body, tools: [tool('get_time'), tool('get_weather')] };
const problemsOf = (choices: ChoiceSpec[], b: Body = withTools, stream = false) =>
  violationsOf(toolCalls, recording([{ obs: stream ? chatStream(choices) : chatJson(choices), body: b, stream }])).flatMap((v) => v.problems ?? []);

describe('tool-calls', () => {
  test('a call to a function the request does not declare fails (a sticky tool), JSON or stream', () => {
    const [v] = violationsOf(toolCalls, recording([{ obs: chatJson([{ toolCalls: [{ name: 'search' }] }]), body: withTools }]));
    expect(v).toMatchObject({ rule: 'tool-calls', kind: 'tool-calls', entries: [0] });
    expect(v!.message).toBe('p1 at step 1: choices[0] calls "search", which the request does not declare (get_time, get_weather)');
    expect(problemsOf([{ toolCalls: [{ name: 'search' }] }], withTools, true)).toHaveLength(1);
    expect(problemsOf([{ toolCalls: [{ name: 'get_time' }] }])).toEqual([]);
    expect(problemsOf([{ toolCalls: [{ name: 'get_time' }] }], body)).toEqual(['choices[0] calls "get_time", but the request declares no tools']);
  });

  test('tool_choice none allows no call; a named function only that one', () => {
    expect(problemsOf([{ toolCalls: [{ name: 'get_time' }] }], { ...withTools, tool_choice: 'none' })).toEqual([
      'choices[0] has 1 tool calls under tool_choice "none"',
    ]);
    expect(problemsOf([{ content: 'no call' }], { ...withTools, tool_choice: 'none' })).toEqual([]);
    const named = { ...withTools, tool_choice: { type: 'function', function: { name: 'get_weather' } } };
    expect(problemsOf([{ toolCalls: [{ name: 'get_time' }] }], named)).toEqual([
      'choices[0] calls another function than the one tool_choice names ("get_weather")',
    ]);
    // OpenAI and vLLM finish a forced call with "stop".
    expect(problemsOf([{ toolCalls: [{ name: 'get_weather' }], finish: 'stop' }], named)).toEqual([]);
  });

  test('tool_choice required: a choice that ended on its own without a call fails; a budget or a stop string excuses it', () => {
    const required = { ...withTools, tool_choice: 'required' };
    expect(problemsOf([{ content: 'no call', finish: 'stop' }], required)).toEqual([
      'choices[0] ended (finish_reason "stop") without a tool call under tool_choice "required"',
    ]);
    expect(problemsOf([{ content: 'no c', finish: 'length' }], required)).toEqual([]);
    expect(problemsOf([{ content: 'no call', finish: 'stop' }], { ...required, stop: ',' })).toEqual([]);
    expect(problemsOf([{ toolCalls: [{ name: 'get_time' }] }], required)).toEqual([]);
  });

  test('parallel_tool_calls false allows one call', () => {
    const two = [{ toolCalls: [{ name: 'get_time' }, { name: 'get_weather' }] }];
    expect(problemsOf(two, { ...withTools, parallel_tool_calls: false })).toEqual(['choices[0] has 2 tool calls under parallel_tool_calls false']);
    expect(problemsOf(two, { ...withTools, parallel_tool_calls: true })).toEqual([]);
  });

  test('ids are unique within a choice (not across choices); type is "function"', () => {
    const sameId = [
      { name: 'get_time', id: 'call_1' },
      { name: 'get_weather', id: 'call_1' },
    ];
    expect(problemsOf([{ toolCalls: sameId }])).toEqual(['choices[0] has two tool calls with the id "call_1"']);
    expect(problemsOf([{ toolCalls: sameId }], withTools, true)).toEqual(['choices[0] has two tool calls with the id "call_1"']);
    const one = { toolCalls: [{ name: 'get_time', id: 'call_1' }] };
    expect(problemsOf([one, one], { ...withTools, n: 2 })).toEqual([]);
    expect(problemsOf([{ toolCalls: [{ name: 'get_time', type: 'tool' }] }])).toEqual(['choices[0].tool_calls[0].type is "tool", not "function"']);
  });

  test('finish_reason tool_calls needs a call', () => {
    expect(problemsOf([{ content: 'none', finish: 'tool_calls' }])).toEqual(['choices[0] has finish_reason "tool_calls" but no tool call']);
    expect(problemsOf([{ content: 'none', finish: 'stop' }])).toEqual([]);
  });
});
