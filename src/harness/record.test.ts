// Recording: burst members run concurrently, each sent its own way (streamed, cancelled, delayed);
// whether a burst achieved overlap is read from the recording; a hang ends the scenario. Hand-made
// transports; where timing matters, it is made by the transport (a barrier), not measured.
import { describe, expect, test } from 'vitest';
import { ChatClient, type Observation } from './client.ts';
import { burstOverlap, recordScenario, requestKey, type Recording } from './record.ts';
import type { Scenario } from './scenario.ts';
import type { Exchange, ExchangeResponse, Transport } from './transport.ts';

const encoder = new TextEncoder();
const never = new Promise<never>(() => {});
const bytes = async function* (parts: string[]) {
  for (const p of parts) yield encoder.encode(p);
};

const completion = (content: string) => ({
  object: 'chat.completion',
  choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
});
const chunk = (delta: object, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;

/**
 * A target whose answer is the last message's text. Requests whose text starts with `wait` answer
 * only once `barrier` of them have arrived (so they overlap, however slow the machine); `hang` never
 * answers.
 */
function target(barrier = 2): Transport & { arrivals: string[] } {
  const arrivals: string[] = [];
  let release: () => void = () => {};
  const released = new Promise<void>((r) => (release = r));
  let waiting = 0;
  const send = async (x: Exchange): Promise<ExchangeResponse> => {
    const body = JSON.parse(x.body ?? '{}') as { stream?: boolean; messages: Array<{ content: string }> };
    const text = body.messages.at(-1)!.content;
    arrivals.push(text);
    if (text === 'hang') await never;
    if (text.startsWith('wait')) {
      if (++waiting >= barrier) release();
      await released;
    }
    if (!body.stream) {
      return { status: 200, headers: { 'content-type': 'application/json' }, body: bytes([JSON.stringify(completion(text))]) };
    }
    const events = [chunk({ role: 'assistant', content: '' }), ...[...text].map((c) => chunk({ content: c })), chunk({}, 'stop'), 'data: [DONE]\n\n'];
    return { status: 200, headers: { 'content-type': 'text/event-stream' }, body: bytes(events) };
  };
  return { name: 'hand-made', arrivals, send, sendOrigin: send };
}

const req = (text: string) => ({ model: 'm', messages: [{ role: 'user', content: text }] });
const scenario = (steps: Scenario['steps'], texts: Record<string, string>): Scenario => ({
  name: 't',
  requests: Object.fromEntries(Object.entries(texts).map(([k, t]) => [k, req(t)])),
  steps,
});
const client = (t: Transport, timeoutMs = 60_000) => new ChatClient(t, { includeUsage: false, timeoutMs });

describe('recordScenario: bursts', () => {
  test('members run concurrently, each labelled by name and sent its own way', async () => {
    const rec = await recordScenario(
      client(target(3)),
      scenario([{ burst: ['a', { send: 'b', stream: true }, { send: 'c', stream: true, cancelAfter: 2 }] }], { a: 'wait a', b: 'wait b', c: 'wait cccc' }),
    );
    const byLabel = Object.fromEntries(rec.entries.map((e) => [e.label, e]));
    expect(Object.keys(byLabel).sort()).toEqual(['a', 'b', 'c']);
    expect(byLabel.a!.call.stream).toBe(false);
    expect(byLabel.b!.obs).toMatchObject({ done: true, cancelled: false });
    expect(byLabel.c!.obs).toMatchObject({ cancelled: true, done: false });
    expect(byLabel.c!.obs.events).toHaveLength(2);
    expect(rec.entries.every((e) => e.step === 0)).toBe(true);
    // They waited for each other, so each was in flight beside the others.
    expect(burstOverlap(rec)).toEqual({ sent: 1, overlapped: 1 });
  });

  test('a delayed member starts after the others', async () => {
    const t = target();
    const rec = await recordScenario(client(t), scenario([{ burst: [{ send: 'b', delayMs: 50 }, 'a'] }], { a: 'first', b: 'second' }));
    expect(t.arrivals).toEqual(['first', 'second']);
    const b = rec.entries.find((e) => e.label === 'b')!;
    const a = rec.entries.find((e) => e.label === 'a')!;
    expect(b.obs.started - a.obs.started).toBeGreaterThanOrEqual(45);
  });

  test('a hang ends the scenario after its step', async () => {
    const t = target();
    const rec = await recordScenario(client(t, 200), scenario([{ send: 'a' }, { burst: ['a', 'h'] }, { send: 'a' }], { a: 'x', h: 'hang' }));
    expect(rec.entries.map((e) => [e.step, e.label, e.obs.timedOut ?? false])).toEqual([
      [0, 'a', false],
      [1, 'a', false],
      [1, 'h', true],
    ]);
    expect(t.arrivals).toEqual(['x', 'x', 'hang']);
  });
});

describe('burstOverlap', () => {
  const obs = (started: number, ended: number): Observation => ({ status: 200, cancelled: false, started, ended });
  const rec = (steps: Scenario['steps'], times: Array<[number, number, number]>): Recording => ({
    scenario: { name: 't', requests: { p1: req('x'), p2: req('y'), p3: req('z') }, steps },
    entries: times.map(([step, started, ended], i) => ({
      step,
      label: `p${i + 1}`,
      call: { body: {}, stream: false },
      key: requestKey({}),
      obs: obs(started, ended),
    })),
  });

  test('a burst overlapped when every member was in flight beside another', () => {
    const steps: Scenario['steps'] = [{ burst: ['p1', 'p2', 'p3'] }];
    expect(
      burstOverlap(
        rec(steps, [
          [0, 0, 10],
          [0, 5, 20],
          [0, 15, 30],
        ]),
      ),
    ).toEqual({ sent: 1, overlapped: 1 });
    // p3 began after p1 and p2 had ended: not every request overlapped.
    expect(
      burstOverlap(
        rec(steps, [
          [0, 0, 10],
          [0, 5, 20],
          [0, 21, 30],
        ]),
      ),
    ).toEqual({ sent: 1, overlapped: 0 });
  });

  test('counts bursts only, one per step', () => {
    const steps: Scenario['steps'] = [{ send: 'p1' }, { burst: ['p2', 'p3'] }, { burst: ['p1', 'p2'] }];
    const times: Array<[number, number, number]> = [
      [0, 0, 1],
      [1, 2, 5],
      [1, 3, 4],
      [2, 6, 7],
      [2, 7, 8],
    ];
    expect(burstOverlap(rec(steps, times))).toEqual({ sent: 2, overlapped: 1 });
  });
});
