// The traffic the harness properties generate covers the contract (spec/properties.md "Request
// fields"): every request field in every property where it can matter, identical requests that
// recur, "A, A′, A" and "A with a field, A without it", bursts of every kind — and nothing the probe
// found refused or ignored.
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { REQUEST_FIELDS, ANSWER_BUDGET, byteTokenId, type FieldSupport } from './arbitraries/options.ts';
import { PROBED_VALUES, type FieldSupportMap } from './probe-fields.ts';
import type { Capabilities } from './probe.ts';
import { properties, type GenerationContext } from './properties.ts';
import { requestKey } from './record.ts';
import type { Body, Scenario, Step } from './scenario.ts';

const everything = (support: FieldSupport = 'used'): FieldSupportMap =>
  Object.fromEntries([...REQUEST_FIELDS, ...PROBED_VALUES].map((f) => [f, support])) as FieldSupportMap;

const fullCaps: Capabilities = {
  stream: true,
  streamOptions: true,
  tools: true,
  toolChoice: true,
  n: true,
  seed: true,
  seedAccepted: true,
  logprobs: true,
  flush: true,
  deterministic: true,
  nSeedOffset: true,
  fields: everything(),
};

const context = (caps: Capabilities = fullCaps): GenerationContext => ({ model: 'm', caps, maxTokens: 8, concurrency: 4 });

const sample = (name: string, ctx: GenerationContext, n = 60): Scenario[] => {
  const property = properties.find((p) => p.name === name)!;
  return fc.sample(property.scenarios(ctx), { numRuns: n, seed: 7 });
};

/** The request names a step sends, in order. */
const sent = (step: Step): string[] =>
  'send' in step
    ? [step.send]
    : 'burst' in step
      ? step.burst.map((m) => (typeof m === 'string' ? m : m.send))
      : 'cancel' in step
        ? [step.cancel]
        : 'continue' in step
          ? [step.continue]
          : 'stop' in step
            ? [step.stop]
            : [];

const bodiesSent = (s: Scenario): Body[] => s.steps.flatMap(sent).map((n) => s.requests[n]!);

/** The fields two bodies differ in. */
const difference = (a: Body, b: Body): string[] =>
  [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k])).sort();

// Where every field can matter: the properties that send ordinary traffic of any option.
const EVERY_FIELD = ['history-independence', 'cache-transparency', 'concurrency-independence', 'stream-equivalence', 'usage-coherence'];

describe('request fields', () => {
  for (const name of EVERY_FIELD) {
    test(`${name} sends every request field`, () => {
      const fields = new Set(sample(name, context(), 150).flatMap((s) => bodiesSent(s).flatMap((b) => Object.keys(b))));
      for (const f of [...REQUEST_FIELDS, 'tools']) expect(fields, f).toContain(f);
    });
  }

  test('values come from the whole range (samples of each numeric field span it)', () => {
    const bodies = sample('history-independence', context(), 300).flatMap(bodiesSent);
    const values = (f: string) => bodies.map((b) => b[f]).filter((v): v is number => typeof v === 'number');
    const span = (f: string) => [Math.min(...values(f)), Math.max(...values(f))];
    expect(span('temperature')).toEqual([0, 2]);
    expect(span('presence_penalty')).toEqual([-2, 2]);
    expect(span('top_logprobs')).toEqual([0, 20]);
    expect(span('top_p')[1]).toBe(1);
    expect(span('seed')[1]).toBe(2 ** 53 - 1);
    const choices = new Set(bodies.map((b) => JSON.stringify(b.tool_choice)));
    for (const c of ['"auto"', '"none"', '"required"']) expect(choices).toContain(c);
    expect([...choices].some((c) => c?.includes('"function"'))).toBe(true);
  });

  test('budgets: up to --max-tokens, and room for an answer (half of ANSWER_BUDGET or more): a third of the time, half with tools', () => {
    const budget = (b: Body) => (b.max_tokens ?? b.max_completion_tokens) as number;
    const roomy = (bs: Body[]) => bs.filter((b) => budget(b) >= ANSWER_BUDGET / 2).length / bs.length;
    const bodies = sample('history-independence', context(), 200).flatMap(bodiesSent);
    const withTools = bodies.filter((b) => b.tools !== undefined);
    const bare = bodies.filter((b) => b.tools === undefined);
    expect(roomy(withTools)).toBeGreaterThan(0.35);
    expect(roomy(bare)).toBeGreaterThan(0.2);
    expect(roomy(bare)).toBeLessThan(roomy(withTools));
    expect(Math.max(...bodies.map(budget))).toBe(ANSWER_BUDGET);
    expect(bodies.filter((b) => budget(b) <= 8).length).toBeGreaterThan(bodies.length / 3);
    // A request that asks for a call always has room for one.
    const calls = sample('tool-call-assembly', context(), 80).flatMap(bodiesSent);
    expect(calls.filter((b) => b.tools !== undefined).every((b) => budget(b) >= ANSWER_BUDGET / 2)).toBe(true);
  });

  test('logit_bias pushes the bytes of multi-byte characters, by their byte-token ids (GPT-2 byte order)', () => {
    // The 256 bytes are ids 0–255: 33–126, 161–172, 174–255 first, then the rest in order (the server
    // tests send ids 162, 251, 109 and get back 東's bytes E6 9D B1 from the o200k vocabulary).
    const ids = Array.from({ length: 256 }, (_, b) => byteTokenId(b));
    expect(new Set(ids).size).toBe(256);
    expect([0x21, 0x7e, 0xa1, 0xac, 0xae, 0xff, 0x00, 0x20, 0x7f, 0xa0, 0xad].map(byteTokenId)).toEqual([0, 93, 94, 105, 106, 187, 188, 220, 221, 254, 255]);
    expect([0xe6, 0x9d, 0xb1].map(byteTokenId)).toEqual([162, 251, 109]);
    const byteOf = new Map(ids.map((id, b) => [id, b]));
    const biases = sample('history-independence', context(), 300)
      .flatMap(bodiesSent)
      .map((b) => b.logit_bias as Record<string, number> | undefined)
      .filter((x) => x !== undefined);
    const bytesOf = (bias: Record<string, number>) => Object.keys(bias).map((id) => byteOf.get(Number(id))!);
    // Every pushed byte of a split character is non-ASCII, and some pushes spell 3- and 4-byte characters.
    const split = biases.filter((bias) => Object.values(bias).every((v) => v >= 20) && bytesOf(bias).every((b) => b >= 0x80) && bytesOf(bias).length > 1);
    expect(split.length).toBeGreaterThan(biases.length / 5);
    expect(split.some((bias) => bytesOf(bias).includes(0xf0))).toBe(true);
    expect(split.some((bias) => bytesOf(bias).some((b) => b >= 0xe0 && b < 0xf0))).toBe(true);
  });

  test('fields the probe found refused or ignored are never sent', () => {
    const fields = {
      ...everything(),
      n: 'ignored',
      logit_bias: 'refused',
      'tool_choice:none': 'refused',
      'response_format:json_object': 'refused',
    } as FieldSupportMap;
    const bodies = EVERY_FIELD.flatMap((name) => sample(name, context({ ...fullCaps, fields }), 80).flatMap(bodiesSent));
    expect(bodies.some((b) => 'n' in b || 'logit_bias' in b)).toBe(false);
    expect(bodies.some((b) => b.tool_choice === 'none')).toBe(false);
    expect(bodies.some((b) => JSON.stringify(b.response_format)?.includes('json_object'))).toBe(false);
    expect(bodies.some((b) => b.tool_choice === 'required')).toBe(true);
  });

  test('without reproducible seeds every request is greedy', () => {
    const bodies = sample('history-independence', context({ ...fullCaps, seed: false }), 80).flatMap(bodiesSent);
    expect(bodies.every((b) => b.temperature === 0)).toBe(true);
  });
});

describe('patterns', () => {
  const histories = sample('history-independence', context(), 400);

  test('identical requests recur', () => {
    const repeats = histories.filter((s) => {
      const keys = bodiesSent(s).map(requestKey);
      return new Set(keys).size < keys.length;
    });
    expect(repeats.length).toBeGreaterThan(histories.length / 3);
  });

  test('A, A with one field changed, A — and A with a field, then A without it', () => {
    let sandwiches = 0;
    let sticky = 0;
    const changed = new Set<string>();
    const dropped = new Set<string>();
    for (const s of histories) {
      const bodies = bodiesSent(s);
      for (let i = 0; i + 2 < bodies.length; i++) {
        const d = difference(bodies[i]!, bodies[i + 1]!);
        // One field, or one group of fields that go together (logprobs + top_logprobs, a budget's name).
        if (requestKey(bodies[i]!) === requestKey(bodies[i + 2]!) && d.length >= 1 && d.length <= 3) {
          sandwiches++;
          for (const k of d) changed.add(k);
        }
      }
      for (let i = 0; i + 1 < bodies.length; i++) {
        const [a, b] = [bodies[i]!, bodies[i + 1]!];
        const d = difference(a, b);
        if (d.length >= 1 && d.every((k) => k in a && !(k in b))) {
          sticky++;
          for (const k of d) dropped.add(k);
        }
      }
    }
    expect(sandwiches).toBeGreaterThan(20);
    expect(sticky).toBeGreaterThan(20);
    for (const f of ['n', 'stop', 'logprobs', 'max_tokens', 'seed', 'tool_choice', 'reasoning_effort']) expect(changed, f).toContain(f);
    for (const f of ['n', 'stop', 'logprobs', 'tool_choice', 'reasoning_effort', 'tools']) expect(dropped, f).toContain(f);
  });

  test('a request with n > 1 and its choices alone (one choice, seed + i when seeded) in one history', () => {
    let pairs = 0;
    let offset = 0;
    for (const s of histories) {
      const bodies = bodiesSent(s);
      for (const a of bodies.filter((b) => typeof b.n === 'number' && b.n > 1)) {
        const { n, ...rest } = a;
        for (const b of bodies) {
          if (b.n !== undefined) continue;
          const d = difference(rest, b);
          const i = typeof b.seed === 'number' && typeof a.seed === 'number' ? b.seed - a.seed : 0;
          if (d.length === 0 || (d.length === 1 && d[0] === 'seed' && a.temperature !== 0 && i > 0 && i < (n as number))) {
            pairs++;
            if (i > 0) offset++;
          }
        }
      }
    }
    expect(pairs).toBeGreaterThan(30);
    expect(offset).toBeGreaterThan(2);
  });

  test('the same request with other tools: one added, removed or replaced', () => {
    const names = (b: Body) => ((b.tools as Array<{ function: { name: string } }> | undefined) ?? []).map((t) => t.function.name).sort();
    const edits = { added: 0, removed: 0, replaced: 0 };
    for (const s of histories) {
      const bodies = bodiesSent(s);
      for (let i = 0; i + 1 < bodies.length; i++) {
        const [a, b] = [names(bodies[i]!), names(bodies[i + 1]!)];
        if (JSON.stringify(difference(bodies[i]!, bodies[i + 1]!)) !== '["tools"]' || a.length === 0 || b.length === 0) continue;
        if (b.length > a.length) edits.added++;
        else if (b.length < a.length) edits.removed++;
        else edits.replaced++;
      }
    }
    expect(edits.added).toBeGreaterThan(5);
    expect(edits.removed).toBeGreaterThan(5);
    expect(edits.replaced).toBeGreaterThan(5);
  });
});

describe('bursts', () => {
  test('mix JSON and streams, cancels, staggered arrivals, n, log-probs and tool calls', () => {
    const scenarios = [...sample('concurrency-independence', context(), 150), ...sample('cancel-no-trace', context(), 150)];
    const bursts = scenarios.flatMap((s) => s.steps.filter((st) => 'burst' in st).map((st) => ({ s, st: st as Extract<Step, { burst: unknown }> })));
    const members = bursts.flatMap(({ s, st }) => st.burst.map((m) => ({ m, body: s.requests[typeof m === 'string' ? m : m.send]! })));
    const mixed = bursts.filter(({ st }) => new Set(st.burst.map((m) => typeof m !== 'string' && m.stream === true)).size === 2);
    expect(mixed.length).toBeGreaterThan(20);
    expect(members.some(({ m }) => typeof m !== 'string' && m.cancelAfter !== undefined)).toBe(true);
    expect(members.some(({ m }) => typeof m !== 'string' && m.delayMs !== undefined && m.delayMs > 0)).toBe(true);
    expect(members.some(({ body }) => typeof body.n === 'number' && body.n > 1)).toBe(true);
    expect(members.some(({ body }) => body.logprobs === true)).toBe(true);
    expect(members.some(({ body }) => body.tool_choice === 'required')).toBe(true);
    // A long prompt (a prefill over the sliding window) beside others.
    expect(members.some(({ body }) => JSON.stringify(body.messages).includes('Summarise:'))).toBe(true);
  });

  test('cancel storms: abandoned streams with long budgets (none, or up to past the context), then a request', () => {
    const scenarios = sample('cancel-no-trace', context(), 150);
    const longCancels = scenarios.flatMap((s) =>
      s.steps.flatMap((st) =>
        'burst' in st ? st.burst.filter((m) => typeof m !== 'string' && m.cancelAfter !== undefined).map((m) => s.requests[(m as { send: string }).send]!) : [],
      ),
    );
    expect(longCancels.some((b) => b.max_tokens === undefined && b.max_completion_tokens === undefined)).toBe(true);
    for (const k of [4096, 16384, 65536]) expect(longCancels.some((b) => b.max_tokens === k)).toBe(true);
    // Never answered in full: a long budget is only ever sent as a stream the client abandons.
    for (const s of scenarios) {
      const long = Object.entries(s.requests).filter(
        ([, b]) => ((b.max_tokens as number | undefined) ?? 0) > ANSWER_BUDGET || (b.max_tokens === undefined && b.max_completion_tokens === undefined),
      );
      for (const [name] of long) {
        for (const st of s.steps) {
          if ('burst' in st) expect(st.burst.every((m) => (typeof m === 'string' ? m !== name : m.send !== name || m.cancelAfter !== undefined))).toBe(true);
          else expect(sent(st)).not.toContain(name);
        }
      }
    }
  });
});
