// The search around the rules: shrinking moves over burst members; the time budget, which is spent
// (a pass that ran fewer scenarios than asked says so) and never leaves a scenario running; a hang
// shrunk within a bounded number of deadlines; and a failure that does not happen again on a fresh
// target, reported as flaky. Hand-made targets and a property of our own, so that only the search
// is under test.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { ChatClient } from './client.ts';
import type { Capabilities } from './probe.ts';
import type { HarnessProperty } from './properties.ts';
import { parseScenario, requestCount, type Scenario } from './scenario.ts';
import { cutAfterViolation, liftedScenarios, searchProperty, simplerBodies, simplerScenarios, type Target } from './search.ts';
import { minimize } from './minimize.ts';
import type { Recording } from './record.ts';
import type { Violation } from './violation.ts';
import type { Exchange, ExchangeResponse, Transport } from './transport.ts';

const encoder = new TextEncoder();
const never = new Promise<never>(() => {});

const caps: Capabilities = {
  stream: true,
  streamOptions: false,
  tools: false,
  toolChoice: false,
  n: false,
  seed: false,
  seedAccepted: false,
  logprobs: false,
  flush: false,
  deterministic: true,
};

const completion = (content: string) =>
  JSON.stringify({
    object: 'chat.completion',
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
  });

type Message = { role: string; content: string };

/**
 * A target answering each request with its last message's text, as `answer` decides (from that
 * text, or the whole conversation); `arrivals` records every request.
 */
function target(answer: (text: string, messages: Message[]) => Promise<string | typeof never> | string, timeoutMs = 60_000): Target & { arrivals: string[] } {
  const arrivals: string[] = [];
  const send = async (x: Exchange): Promise<ExchangeResponse> => {
    if (x.path === '/admin/cache/flush') return { status: 200, headers: {}, body: (async function* () {})() };
    const messages = (JSON.parse(x.body ?? '{}') as { messages: Message[] }).messages;
    const text = messages.at(-1)!.content;
    arrivals.push(text);
    const content = await answer(text, messages);
    return {
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: (async function* () {
        yield encoder.encode(completion(content));
      })(),
    };
  };
  const transport: Transport = { name: 'hand-made', send, sendOrigin: send };
  return { client: new ChatClient(transport, { includeUsage: false, timeoutMs }), model: 'm', caps, arrivals };
}

const req = (text: string) => ({ model: 'm', messages: [{ role: 'user', content: text }] });

/** Histories of 1–4 sends over requests whose texts are `texts`. */
const property = (texts: string[]): HarnessProperty => ({
  name: 'test-property',
  statement: 'identical requests, identical answers',
  needs: [],
  deterministic: true,
  scenarios: () =>
    fc.array(fc.nat({ max: texts.length - 1 }), { minLength: 1, maxLength: 4 }).map((is): Scenario => ({
      name: 'test-property',
      requests: Object.fromEntries(texts.map((t, i) => [`p${i + 1}`, req(t)])),
      steps: is.map((i) => ({ send: `p${i + 1}` })),
    })),
});

const ctx = { maxTokens: 8, concurrency: 4 };

describe('simplerScenarios over burst members', () => {
  test('drops a member, sends a member the plain way or without its delay, splits the burst', () => {
    const s: Scenario = {
      name: 't',
      requests: { p1: req('a'), p2: req('b'), p3: req('c') },
      steps: [{ burst: ['p1', { send: 'p2', stream: true, cancelAfter: 2, delayMs: 30 }, { send: 'p3', delayMs: 10 }] }],
    };
    const steps = simplerScenarios(s).map((c) => JSON.stringify(c.steps));
    expect(steps).toEqual(
      expect.arrayContaining([
        // a member dropped
        JSON.stringify([
          {
            burst: [
              { send: 'p2', stream: true, cancelAfter: 2, delayMs: 30 },
              { send: 'p3', delayMs: 10 },
            ],
          },
        ]),
        JSON.stringify([{ burst: ['p1', { send: 'p3', delayMs: 10 }] }]),
        // a member sent as the step sends names
        JSON.stringify([{ burst: ['p1', { send: 'p2', stream: true, cancelAfter: 2, delayMs: 30 }, 'p3'] }]),
        // a delay removed
        JSON.stringify([{ burst: ['p1', { send: 'p2', stream: true, cancelAfter: 2 }, { send: 'p3', delayMs: 10 }] }]),
      ]),
    );
    // A cancelled member stays cancelled (its cancel bounds it): never a plain member or a send of its own.
    const uncancelled = simplerScenarios(s).some((c) =>
      c.steps.some((st) =>
        'burst' in st
          ? st.burst.some((m) => m === 'p2' || (typeof m !== 'string' && m.send === 'p2' && m.cancelAfter === undefined))
          : 'send' in st && st.send === 'p2',
      ),
    );
    expect(uncancelled).toBe(false);
    const plain: Scenario = { ...s, steps: [{ burst: ['p1', { send: 'p3', delayMs: 10 }] }] };
    // split into sends (a delay means nothing alone)
    expect(simplerScenarios(plain).map((c) => JSON.stringify(c.steps))).toContain(JSON.stringify([{ send: 'p1' }, { send: 'p3' }]));
    // Two members left, one dropped: the other is a plain send.
    const pair: Scenario = { ...s, steps: [{ burst: ['p1', { send: 'p2', stream: true, delayMs: 5 }] }] };
    expect(simplerScenarios(pair).map((c) => JSON.stringify(c.steps))).toEqual(
      expect.arrayContaining([JSON.stringify([{ send: 'p2', stream: true }]), JSON.stringify([{ send: 'p1' }])]),
    );
  });
});

describe('simplerScenarios over long histories', () => {
  test('drops runs of steps first: 64 steps shrink to the 2 that fail in few replayed requests', async () => {
    const names = Array.from({ length: 64 }, (_, i) => `p${i}`);
    const s: Scenario = { name: 't', requests: Object.fromEntries(names.map((n) => [n, req(n)])), steps: names.map((send) => ({ send })) };
    let replayed = 0;
    // Fails while p10 and p50 are both sent (a leak from one into the other).
    const fails = async (c: Scenario) => {
      replayed += requestCount(c);
      const sent = new Set(c.steps.map((st) => ('send' in st ? st.send : '')));
      return sent.has('p10') && sent.has('p50');
    };
    const shrunk = await minimize(s, simplerScenarios, fails);
    expect(shrunk.steps).toEqual([{ send: 'p10' }, { send: 'p50' }]);
    expect(Object.keys(shrunk.requests).sort()).toEqual(['p10', 'p50']);
    // One step at a time replays the history once per dropped step: 3551 requests here (568 now).
    expect(replayed).toBeLessThan(700);
  });
});

describe('simplerBodies', () => {
  test('drops all optional fields at once, then all droppable messages, then one field, one message or one tool turn with its results; the budget, temperature, seed and the last message stay', () => {
    const body = {
      model: 'm',
      max_tokens: 8,
      temperature: 0,
      seed: 3,
      logprobs: true,
      top_p: 0.5,
      messages: [
        { role: 'system', content: 's' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 'c', content: '4' },
        { role: 'user', content: 'u' },
      ],
    };
    const s: Scenario = { name: 't', requests: { p1: body }, steps: [{ send: 'p1' }] };
    const changed = simplerBodies(s).map((c) => {
      const b = c.requests.p1!;
      const gone = Object.keys(body).filter((k) => !(k in b));
      return gone.length > 0 ? gone.join() : `messages ${(b.messages as Array<{ role: string }>).map((m) => m.role).join(',')}`;
    });
    expect(changed).toEqual(['logprobs,top_p', 'messages user', 'logprobs', 'top_p', 'messages assistant,tool,user', 'messages system,user']);
  });

  test('a tool turn whose result is the last message stays; a call answered later goes only with its result', () => {
    const call = (id: string) => ({ role: 'assistant', content: null, tool_calls: [{ id, type: 'function', function: { name: 'f', arguments: '{}' } }] });
    const body = {
      model: 'm',
      messages: [
        { role: 'user', content: 'u' },
        call('a'),
        { role: 'user', content: 'v' },
        { role: 'tool', tool_call_id: 'a', content: '1' },
        call('b'),
        { role: 'tool', tool_call_id: 'b', content: '2' },
      ],
    };
    const s: Scenario = { name: 't', requests: { p1: body }, steps: [{ send: 'p1' }] };
    const roles = simplerBodies(s).map((c) => (c.requests.p1!.messages as Array<{ role: string }>).map((m) => m.role).join(','));
    expect(roles).toEqual(['assistant,tool', 'assistant,user,tool,assistant,tool', 'user,user,assistant,tool', 'user,assistant,tool,assistant,tool']);
  });
});

describe('searchProperty', () => {
  test('without a budget, runs are a count; a pass that ran them all is not flagged', async () => {
    const t = target((text) => text);
    const r = await searchProperty(t, property(['a', 'b']), { runs: 7, seed: 1 }, ctx);
    expect(r).toMatchObject({ status: 'passed', scenarios: 7, asked: 7 });
    expect(r.budgetSpent).toBeUndefined();
  });

  test('with a budget, it generates until the budget is spent, and no scenario is left running', async () => {
    const t = target(async (text) => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      return text;
    });
    const r = await searchProperty(t, property(['a', 'b']), { runs: 1_000_000, asked: 25, seed: 1, timeBudgetMs: 300 }, ctx);
    expect(r).toMatchObject({ status: 'passed', budgetSpent: true, asked: 25 });
    expect(r.scenarios).toBeGreaterThan(0);
    expect(r.scenarios).toBeLessThan(1_000_000);
    const sent = t.arrivals.length;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(t.arrivals.length, 'a request was sent after the search returned').toBe(sent);
  });

  test('a failure found within the budget is shrunk to the end, past the budget', async () => {
    // A history leak (a request after a different one answers "leak"), each answer 150 ms late: the
    // stored example alone (4 requests) outlasts the 300 ms budget.
    let last = '';
    const t = target(async (text) => {
      await new Promise((resolve) => setTimeout(resolve, 150));
      const out = last !== '' && last !== text ? 'leak' : text;
      last = text;
      return out;
    });
    t.reset = async () => {
      last = '';
    };
    const example: Scenario = { name: 'e', requests: { p1: req('a'), p2: req('b') }, steps: [{ send: 'p1' }, { send: 'p1' }, { send: 'p2' }, { send: 'p2' }] };
    const r = await searchProperty(t, property(['a', 'b']), { runs: 1_000_000, seed: 1, timeBudgetMs: 300, examples: [example] }, ctx);
    expect(r.status).toBe('failed');
    expect(r.flaky).toBeUndefined();
    expect(r.failure!.scenario.steps).toEqual([{ send: 'p1' }, { send: 'p2' }, { send: 'p2' }]);
    expect(r.ms).toBeGreaterThan(300);
  });

  test('a hang fails the property with a shrunk scenario, shrinking within a few deadlines', async () => {
    const t = target((text) => (text === 'hang' ? never : text), 100);
    const r = await searchProperty(t, property(['a', 'b', 'hang']), { runs: 50, seed: 1, hangShrinkRuns: 2 }, ctx);
    expect(r.status).toBe('failed');
    expect(r.flaky).toBeUndefined();
    expect(r.failure!.violation.kind).toBe('hang');
    expect(r.failure!.scenario.steps).toEqual([{ send: 'p3' }]);
    expect(r.failure!.scenario.requests.p3).toEqual(req('hang'));
    // The search's hang, at most 2 while shrinking, and the replay of the shrunk scenario.
    expect(t.arrivals.filter((a) => a === 'hang').length).toBeLessThanOrEqual(4);
  });

  test('a hang is cut after the request that hung, then shrunk a step at a time: few deadlines, however long the history', async () => {
    // KV a cancel never gives back, as it were: once "a" has run, "hang" gets no answer.
    let leaked = false;
    let hangs = 0;
    const t = target((text) => {
      if (text === 'a') leaked = true;
      if (text !== 'hang' || !leaked) return text;
      hangs++;
      return never;
    }, 100);
    t.reset = async () => {
      leaked = false;
    };
    const long: HarnessProperty = {
      ...property([]),
      scenarios: () =>
        fc.constant<Scenario>({
          name: 'test-property',
          requests: { p1: req('b'), p2: req('a'), p3: req('hang'), p4: req('c') },
          steps: [{ send: 'p1' }, { send: 'p2' }, { send: 'p1' }, { send: 'p3' }, { send: 'p4' }, { send: 'p1' }, { send: 'p4' }, { send: 'p2' }],
        }),
    };
    const r = await searchProperty(t, long, { runs: 1, seed: 1, hangShrinkRuns: 3 }, ctx);
    expect(r.status).toBe('failed');
    expect(r.failure!.violation.kind).toBe('hang');
    expect(r.failure!.scenario.steps).toEqual([{ send: 'p2' }, { send: 'p3' }]);
    // The search's hang, one for the cut, one for each of the two steps dropped before it, the replay.
    expect(hangs).toBe(5);
  });

  test('the cold baseline runs on a fresh server where the target restarts: a cache no flush reaches shows', async () => {
    // A prompt memo keyed too coarsely, as it were: the first request's answer for every later one.
    let memo: string | undefined;
    const t = target((text) => (memo ??= text), 1000);
    t.caps = { ...caps, flush: true };
    const cold: HarnessProperty = { ...property(['a', 'b']), coldBaseline: true };
    // Flushing leaves the memo: every cold run repeats the history's mistake, and nothing shows.
    t.reset = async () => void (await t.client.flush());
    t.resetBy = 'flush';
    expect((await searchProperty(t, cold, { runs: 30, seed: 1 }, ctx)).status).toBe('passed');
    // A restart clears it: the second request differs from itself on a fresh server.
    t.reset = async () => {
      memo = undefined;
    };
    t.resetBy = 'restart';
    const r = await searchProperty(t, cold, { runs: 30, seed: 1 }, ctx);
    expect(r.status).toBe('failed');
    expect(r.failure!.violation).toMatchObject({ kind: 'cache', baselineBy: 'restart' });
    expect(r.failure!.scenario.steps).toHaveLength(2);
  });

  test('a request alone on a fresh server costs one restart per search, not one per scenario', async () => {
    const t = target((text) => text, 1000);
    t.caps = { ...caps, flush: true };
    let restarts = 0;
    t.reset = async () => void restarts++;
    t.resetBy = 'restart';
    const r = await searchProperty(t, { ...property(['a', 'b']), coldBaseline: true }, { runs: 20, seed: 1 }, ctx);
    expect(r.status).toBe('passed');
    // One before each history, and one for each of the two requests' cold runs.
    expect(restarts).toBe(20 + 2);
  });

  test('a failure that does not happen again on a fresh target is flaky: both runs kept, no minimal scenario', async () => {
    // Wrong the first time a request is ever seen, right from then on.
    const seen = new Set<string>();
    const t = target((text) => {
      const first = !seen.has(text);
      seen.add(text);
      return first ? text.toUpperCase() : text;
    });
    const r = await searchProperty(t, property(['a', 'b']), { runs: 50, seed: 1 }, ctx);
    expect(r).toMatchObject({ status: 'failed', flaky: true });
    const f = r.failure!;
    expect(f.violation.kind).toBe('history');
    expect(f.recording.scenario.steps).toEqual(f.scenario.steps);
    expect(f.replay, 'the passing replay').toBeDefined();
    expect(f.replay!.entries.every((e) => !e.obs.timedOut)).toBe(true);
  });

  test('a race that misses the first replay and shows on the second reproduces: not flaky, and says so', async () => {
    // A history leak on every run but the first replay of the shrunk scenario (a race lost once).
    let replay = 0;
    let last = '';
    const t = target((text) => {
      const out = last !== '' && last !== text && replay !== 1 ? 'leak' : text;
      last = text;
      return out;
    });
    t.reset = async () => {
      last = '';
    };
    const onProgress = (e: { phase: string }) => void (e.phase === 'reproducing' && replay++);
    const r = await searchProperty(t, property(['a', 'b']), { runs: 50, seed: 1, onProgress }, ctx);
    expect(r.status).toBe('failed');
    expect(r.flaky).toBeUndefined();
    expect(r.failure!.reproducedOnReplay).toBe(2);
  });

  test('a deterministic failure reproduces: the shrunk scenario, its replay as evidence', async () => {
    // Answers "b" to a request after a different one: a history leak, every time.
    let last = '';
    const t = target((text) => {
      const out = last !== '' && last !== text ? 'leak' : text;
      last = text;
      return out;
    });
    t.reset = async () => {
      last = '';
    };
    const r = await searchProperty(t, property(['a', 'b']), { runs: 50, seed: 1 }, ctx);
    expect(r.status).toBe('failed');
    expect(r.flaky).toBeUndefined();
    expect(r.failure!.replay).toBeUndefined();
    expect(r.failure!.reproducedOnReplay).toBeUndefined();
    expect(r.failure!.scenario.steps.length).toBeLessThanOrEqual(3);
  });
});

describe('lifting derived requests into named ones', () => {
  /** A recording of `scenario` in which each step sent these bodies (a compound step two: the first, the derived). */
  const recorded = (scenario: Scenario, sent: Array<Array<Record<string, unknown>>>) =>
    ({ scenario, entries: sent.flatMap((bodies, step) => bodies.map((body) => ({ step, call: { body, stream: false }, obs: {} }))) }) as unknown as Recording;

  test('a continue, cancel or stop step becomes plain sends, its derived request named as the run built it', () => {
    const s: Scenario = {
      name: 't',
      requests: { p1: req('a'), p2: req('b'), p3: req('c'), p1c: req('taken') },
      steps: [
        { continue: 'p1', stream: true },
        { cancel: 'p2', after: 3 },
        { stop: 'p3', from: 0, length: 2, stream: true },
        { continue: 'p2' },
        { send: 'p3' },
      ],
    };
    const p1c = { model: 'm', messages: [...req('a').messages, { role: 'assistant', content: 'A' }, { role: 'user', content: 'Go on.' }] };
    const p2c = { model: 'm', messages: [...req('b').messages, { role: 'assistant', content: 'B' }, { role: 'user', content: 'Go on.' }] };
    const p3s = { ...req('c'), stop: 'C!' };
    // The continue of p2 (step 4) got an error: it sent no derived request, and stays.
    const rec = recorded(s, [[req('a'), p1c], [req('b'), p2c], [req('c'), p3s], [req('b')], [req('c')]]);
    const [all, ...one] = liftedScenarios(s, rec);
    // All at once first, then one step at a time.
    expect(one).toHaveLength(3);
    expect(all!.steps).toEqual([
      { send: 'p1', stream: true },
      // p1c is taken by another body: the next free name.
      { send: 'p1c2', stream: true },
      // The cancelled stream stays: a one-member burst, abandoned after its events, nothing continuing it.
      { burst: [{ send: 'p2', stream: true, cancelAfter: 3 }] },
      { send: 'p2c' },
      // The stop step's first request is JSON, its second as the step streams.
      { send: 'p3' },
      { send: 'p3s', stream: true },
      { continue: 'p2' },
      { send: 'p3' },
    ]);
    expect(all!.requests).toEqual({ ...s.requests, p1c2: p1c, p2c, p3s });
    expect(one.map((c) => Object.keys(c.requests).filter((k) => !(k in s.requests)))).toEqual([['p1c2'], ['p2c'], ['p3s']]);
    // Valid as a bug report (`amnesia replay` loads it), and as many requests as before.
    for (const c of [all!, ...one]) {
      expect(() => parseScenario(JSON.parse(JSON.stringify(c)))).not.toThrow();
      expect(requestCount(c)).toBe(requestCount(s));
    }
    // A body the scenario already names keeps its name.
    const again = liftedScenarios({ ...s, requests: { ...s.requests, p1c: p1c } }, rec)[1]!;
    expect(again.steps.slice(0, 2)).toEqual([
      { send: 'p1', stream: true },
      { send: 'p1c', stream: true },
    ]);
    expect(Object.keys(again.requests)).toEqual(Object.keys(s.requests));
  });

  test('the lifted cancel is simplified no further than dropping it: it stays cancelled', () => {
    const s: Scenario = {
      name: 't',
      requests: { p1: req('a'), p1c: req('b') },
      steps: [{ burst: [{ send: 'p1', stream: true, cancelAfter: 2 }] }, { send: 'p1c' }],
    };
    expect(simplerScenarios(s).map((c) => c.steps)).toEqual([[{ send: 'p1c' }], [{ burst: [{ send: 'p1', stream: true, cancelAfter: 2 }] }]]);
  });

  /** A property whose only history is `scenario`. */
  const only = (scenario: Scenario): HarnessProperty => ({ ...property([]), scenarios: () => fc.constant(scenario) });
  const continuedTwice: Scenario = { name: 'test-property', requests: { p1: req('a') }, steps: [{ continue: 'p1' }, { continue: 'p1' }] };

  test('a failure the derived request’s bytes alone cause shrinks to plain sends of a named request, then that request’s body shrinks', async () => {
    // Wrong (never the same twice) whenever the conversation holds an assistant turn.
    let wrong = 0;
    const t = target((text, messages) => (messages.some((m) => m.role === 'assistant') ? `wrong ${++wrong}` : text));
    const r = await searchProperty(t, only(continuedTwice), { runs: 1, seed: 1 }, ctx);
    expect(r.status).toBe('failed');
    expect(r.flaky).toBeUndefined();
    const { scenario } = r.failure!;
    expect(scenario.steps.some((st) => 'continue' in st || 'cancel' in st || 'stop' in st)).toBe(false);
    // p1 itself is not needed once its continuation is a request of its own, nor the user turn before the answer.
    expect(scenario.steps).toEqual([{ send: 'p1c' }, { send: 'p1c' }]);
    expect(scenario.requests).toEqual({
      p1c: {
        model: 'm',
        messages: [
          { role: 'assistant', content: 'a' },
          { role: 'user', content: 'Go on.' },
        ],
      },
    });
    expect(r.failure!.shrinkStopped).toBeUndefined();
  });

  test('a failure that needs the request derived at run time is not lifted: the lifted candidate passes, the compound step stays', async () => {
    // Each history answers with its own mark, and the continuation of this history's own answer goes
    // wrong (a prefix-cache hit, as it were); a conversation carrying another history's answer is fine.
    let history = 0;
    let wrong = 0;
    let stale = 0;
    const t = target((text, messages) => {
      const assistant = messages.find((m) => m.role === 'assistant');
      if (assistant === undefined) return `${text} #${history}`;
      if (assistant.content === `a #${history}`) return `wrong ${++wrong}`;
      stale++;
      return text;
    });
    t.reset = async () => void history++;
    const r = await searchProperty(t, only(continuedTwice), { runs: 1, seed: 1 }, ctx);
    expect(r.status).toBe('failed');
    expect(r.flaky).toBeUndefined();
    // The lifted candidate ran (its continuation carried an earlier history's answer) and passed.
    expect(stale).toBeGreaterThan(0);
    expect(r.failure!.scenario.steps).toEqual(continuedTwice.steps);
    expect(Object.keys(r.failure!.scenario.requests)).toEqual(['p1']);
  });
});

describe('cutAfterViolation', () => {
  const scenario: Scenario = { name: 's', requests: { p1: req('a'), p2: req('b'), p3: req('c') }, steps: [{ send: 'p1' }, { send: 'p2' }, { send: 'p3' }] };
  const rec = { scenario, entries: [0, 1, 2].map((step) => ({ step })) } as unknown as Recording;
  const v = (entries: number[]) => ({ entries }) as Violation;

  test('drops the steps after the last one the violation names, and the requests only they sent', () => {
    expect(cutAfterViolation(scenario, rec, v([-1, 1]))).toEqual({
      ...scenario,
      requests: { p1: req('a'), p2: req('b') },
      steps: [{ send: 'p1' }, { send: 'p2' }],
    });
    expect(cutAfterViolation(scenario, rec, v([0]))!.steps).toEqual([{ send: 'p1' }]);
  });

  test('nothing to cut: the violation names the last step, or no step', () => {
    expect(cutAfterViolation(scenario, rec, v([0, 2]))).toBeUndefined();
    expect(cutAfterViolation(scenario, rec, v([-1]))).toBeUndefined();
  });
});
