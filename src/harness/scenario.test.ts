// The scenario format: burst members (a name, or how that request is sent), checked with clear
// errors; old scenarios (names only) stay valid.
import { describe, expect, test } from 'vitest';
import { describeStep, memberOf, parseScenario, requestCount, ScenarioError, type Scenario } from './scenario.ts';

const requests = { p1: { messages: [] }, p2: { messages: [] }, p3: { messages: [] } };
const withBurst = (burst: unknown, stream?: boolean): unknown => ({ name: 't', requests, steps: [{ burst, ...(stream !== undefined ? { stream } : {}) }] });

describe('burst members', () => {
  test('names alone, as before, and members with their own way of being sent', () => {
    expect(() => parseScenario(withBurst(['p1', 'p2']))).not.toThrow();
    const s = parseScenario(
      withBurst(['p1', { send: 'p2', stream: true, cancelAfter: 2 }, { send: 'p3', delayMs: 40 }, { send: 'p1', stream: false, delayMs: 0 }]),
    );
    expect(requestCount(s)).toBe(4);
    const step = s.steps[0]!;
    expect(describeStep(step)).toBe('send p1, p2 (stream, cancelled after 2 events), p3 (40 ms later), p1 at once');
    expect(describeStep({ burst: ['p1', { send: 'p2', stream: false }], stream: true })).toBe('send p1, p2 (JSON) at once (streams)');
  });

  test('a member takes the step’s stream unless it says otherwise', () => {
    expect(memberOf('p1', { stream: true })).toEqual({ name: 'p1', stream: true });
    expect(memberOf({ send: 'p1', stream: false, delayMs: 5 }, { stream: true })).toEqual({ name: 'p1', stream: false, delayMs: 5 });
    expect(memberOf({ send: 'p1', cancelAfter: 3 }, {})).toEqual({ name: 'p1', stream: false, cancelAfter: 3 });
    // A cancel inherits the stream of the step: valid.
    expect(() => parseScenario(withBurst([{ send: 'p1', cancelAfter: 1 }, 'p2'], true))).not.toThrow();
  });

  test.each([
    [['p1'], 'steps[0].burst must list at least two requests'],
    [['p1', 'nope'], "steps[0].burst[1] names 'nope', which is not in requests"],
    [['p1', { send: 'nope' }], "steps[0].burst[1].send names 'nope', which is not in requests"],
    [['p1', 7], 'steps[0].burst[1] must be a request name or {"send": name, "stream"?, "cancelAfter"?, "delayMs"?}'],
    [['p1', { send: 'p2', cancel_after: 2 }], "steps[0].burst[1] has the unknown field 'cancel_after' (known: send, stream, cancelAfter, delayMs)"],
    [['p1', { send: 'p2', stream: 'yes' }], 'steps[0].burst[1].stream must be true or false'],
    [['p1', { send: 'p2', cancelAfter: 2 }], 'steps[0].burst[1].cancelAfter needs a stream (the events are counted): add "stream": true'],
    [['p1', { send: 'p2', stream: true, cancelAfter: 0 }], 'steps[0].burst[1].cancelAfter must be an integer ≥ 1'],
    [['p1', { send: 'p2', delayMs: 1001 }], 'steps[0].burst[1].delayMs must be an integer from 0 to 1000'],
    [['p1', { send: 'p2', delayMs: 2.5 }], 'steps[0].burst[1].delayMs must be an integer from 0 to 1000'],
  ])('%j is refused: %s', (burst, message) => {
    expect(() => parseScenario(withBurst(burst), 'x.json')).toThrow(new ScenarioError(`x.json: ${message}`));
  });

  test('the stored scenarios are still valid', async () => {
    const { builtinScenarios } = await import('./check-target.ts');
    const stored: Scenario[] = builtinScenarios();
    expect(stored.length).toBeGreaterThan(0);
  });
});

describe('scenarios of malformed bodies', () => {
  test('raw steps alone, with no named requests, make a scenario (the error-envelope bug report replays)', () => {
    const s = parseScenario({ name: 'error-envelope', requests: {}, steps: [{ raw: '{"messages":""}' }] });
    expect(requestCount(s)).toBe(1);
    expect(() => parseScenario({ name: 'x', requests: [], steps: [{ raw: '{' }] })).toThrow(ScenarioError);
  });
});
