// The client's deadline: a request with no complete answer by then is recorded (a hang is a verdict),
// whatever the transport does with the abort signal; the probe's client throws instead. Hand-made
// transports: one that answers at once, one that never answers (and ignores the signal), one that
// sends headers and an event and then nothing. The deadlines (200 ms) are far from both behaviours
// (at once, never), so no verdict here depends on how busy the machine is.
import { describe, expect, test } from 'vitest';
import { ChatClient, DeadlineError } from './client.ts';
import { callDeadline } from './check-target.ts';
import type { ExchangeResponse, Transport } from './transport.ts';

const encoder = new TextEncoder();
const body = { model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 };
const completion = { object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }] };
const chunk = (delta: object) =>
  `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`;

const never = new Promise<never>(() => {});

/** A transport whose every exchange is `respond`'s. */
const transport = (respond: () => Promise<ExchangeResponse>): Transport => ({ name: 'hand-made', send: respond, sendOrigin: respond });

const answersAtOnce = transport(async () => ({
  status: 200,
  headers: { 'content-type': 'application/json' },
  body: (async function* () {
    yield encoder.encode(JSON.stringify(completion));
  })(),
}));

/** Never answers, and ignores the abort signal: the deadline must not rely on it. */
const neverAnswers = transport(() => never);

/** Headers and the role chunk, then nothing, ever. */
const stallsMidStream = transport(async () => ({
  status: 200,
  headers: { 'content-type': 'text/event-stream' },
  body: (async function* () {
    yield encoder.encode(chunk({ role: 'assistant', content: '' }));
    await never;
  })(),
}));

const client = (t: Transport, onTimeout?: 'record' | 'throw') => new ChatClient(t, { includeUsage: true, timeoutMs: 200, ...(onTimeout ? { onTimeout } : {}) });

describe('ChatClient deadlines', () => {
  test('an answer within the deadline is not a timeout', async () => {
    const obs = await client(answersAtOnce).chat({ body, stream: false });
    expect(obs).toMatchObject({ status: 200, json: completion, cancelled: false });
    expect(obs.timedOut).toBeUndefined();
  });

  test('no response at all: recorded as status 0, timed out, with the deadline', async () => {
    const c = client(neverAnswers);
    const obs = await c.chat({ body, stream: false });
    expect(obs).toMatchObject({ status: 0, timedOut: true, deadlineMs: 200, cancelled: false });
    expect(obs.ended - obs.started).toBeGreaterThanOrEqual(190);
    expect(c.timeouts).toBe(1);
    expect(await c.raw('{')).toMatchObject({ status: 0, timedOut: true });
  });

  test('a stream that stops midway: what came is kept', async () => {
    const obs = await client(stallsMidStream).chat({ body, stream: true });
    expect(obs).toMatchObject({ status: 200, timedOut: true, done: false, cancelled: false });
    expect(obs.events).toHaveLength(1);
  });

  test('a stream the client abandons, which began and then kept tokens back: left at the deadline, not a hang', async () => {
    // A server that hides tokens between events (a harmony header, unstreamed reasoning) looks like this.
    const c = client(stallsMidStream);
    const obs = await c.chat({ body, stream: true, cancelAfter: 2 });
    expect(obs).toMatchObject({ status: 200, cancelled: true, leftAtDeadline: true, deadlineMs: 200, done: false });
    expect(obs.timedOut).toBeUndefined();
    expect(obs.events).toHaveLength(1);
    expect(c.timeouts).toBe(0);
  });

  test('a stream the client abandons that sent nothing by the deadline is a hang', async () => {
    const c = client(neverAnswers);
    const obs = await c.chat({ body, stream: true, cancelAfter: 2 });
    expect(obs).toMatchObject({ status: 0, timedOut: true, cancelled: false });
    expect(obs.leftAtDeadline).toBeUndefined();
    expect(c.timeouts).toBe(1);
  });

  test("a call's own deadline, where one is given per call (its budget, its burst)", async () => {
    const c = new ChatClient(neverAnswers, { includeUsage: true, timeoutMs: 5_000, deadlineOf: (call) => 100 * (call.burst ?? 1) });
    expect(await c.chat({ body, stream: false, burst: 2 })).toMatchObject({ timedOut: true, deadlineMs: 200 });
  });

  test('per call: the deadline grows with the budget and the burst; an abandoned stream waits for its events (and is left at the deadline if they do not come)', () => {
    const slowest = 200;
    const call = (b: Record<string, unknown>, more: object = {}) => callDeadline(slowest, { body: { ...body, ...b }, stream: true, ...more });
    expect(call({ max_tokens: 8 })).toBe(10_000); // the floor
    expect(call({ max_tokens: 64 })).toBe(20 * slowest * 8);
    expect(call({ max_tokens: 64 }, { burst: 4 })).toBe(20 * slowest * 8 * 4);
    expect(call({ max_completion_tokens: 32, max_tokens: 64 })).toBe(20 * slowest * 4);
    // No budget: 256 tokens assumed; abandoned after 2 events, only those.
    expect(call({ max_tokens: undefined })).toBe(20 * slowest * 32);
    expect(call({ max_tokens: 16384 }, { cancelAfter: 2 })).toBe(10_000);
  });

  test('the probe throws instead, and so do the flush and the model list', async () => {
    await expect(client(neverAnswers, 'throw').chat({ body, stream: false })).rejects.toBeInstanceOf(DeadlineError);
    await expect(client(neverAnswers).flush()).rejects.toThrow(/cache flush got no answer within 200 ms/);
    await expect(client(neverAnswers).models()).rejects.toBeInstanceOf(DeadlineError);
  });
});

describe('ChatClient cancels', () => {
  test('goes away after exactly `cancelAfter` events, however many came in one read', async () => {
    // The whole stream in one chunk, [DONE] included, as a fast server on a socket delivers it.
    const all = [chunk({ role: 'assistant', content: '' }), chunk({ content: 'a' }), chunk({ content: 'b' }), 'data: [DONE]\n\n'].join('');
    const oneRead = transport(async () => ({
      status: 200,
      headers: { 'content-type': 'text/event-stream' },
      body: (async function* () {
        yield encoder.encode(all);
      })(),
    }));
    const obs = await client(oneRead).chat({ body, stream: true, cancelAfter: 2 });
    expect(obs).toMatchObject({ cancelled: true, done: false });
    expect(obs.events).toHaveLength(2);
  });
});
