import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { completionToChat } from '../harmony/harmony-to-chat.ts';
import { encodeHarmonyText, encodeText } from '../harmony/tokens.ts';
import { loadCheckpoint } from './checkpoint.ts';
import { Failpoints, UnknownFailpointError, USER_ROLE_TOKEN } from './failpoints.ts';
import { ensureTinyCheckpoint } from './make-tiny.ts';
import type { NativeModel, NativeModelSpec } from './native-api.ts';
import { loadNativeAddon } from './native-addon.ts';
import type { GrammarSpec, SamplingParams } from './runtime-api.ts';
import { GenerateError, Runtime, type RuntimeOptions } from './runtime.ts';

const promptOf = (c: string) => JSON.parse(readFileSync(new URL(`../../golden/chat/${c}/prompt.tokens.json`, import.meta.url), 'utf8')) as number[];
const P1 = promptOf('exo-1362-p1');
const P2 = promptOf('exo-1362-p2');
const CALCULATOR: GrammarSpec = { tools: ['calculator'], toolChoice: 'auto' };
const SEEDED: SamplingParams = { temperature: 1, seed: 1362, logprobs: true };

let spec: NativeModelSpec;
let model: NativeModel;
const runtimes: Runtime[] = [];

beforeAll(async () => {
  spec = loadCheckpoint(await ensureTinyCheckpoint(1));
  model = new (loadNativeAddon().NativeModel)(spec);
});

afterAll(async () => {
  for (const r of runtimes) await r.close();
  model?.close();
});

function runtime(options: RuntimeOptions = {}): Runtime {
  const r = new Runtime(model, spec, { kvBytes: 16 * 2 ** 20, ...options });
  runtimes.push(r);
  return r;
}

async function run(rt: Runtime, prompt: number[], sampling = SEEDED, maxTokens = 24, grammar: GrammarSpec | null = CALCULATOR) {
  const g = rt.generate({ prompt, maxTokens, sampling, grammar });
  const tokens = await g.tokens();
  return { tokens: tokens.map((t) => t.token), logprobs: tokens.map((t) => t.logprob), finish: g.finishReason, usage: { ...g.usage } };
}

describe('generate', () => {
  test('produces well-formed harmony that maps to a tool call or a final answer', async () => {
    const rt = runtime();
    const out = await run(rt, P1, SEEDED, 64);
    const chat = completionToChat(out.tokens);
    expect(chat.finishReason).toBe(out.finish);
    if (chat.finishReason === 'tool_calls') expect(chat.message.tool_calls?.[0]?.function.name).toBe('calculator');
    expect(out.usage.promptTokens).toBe(P1.length);
    expect(out.usage.completionTokens).toBe(out.tokens.length);
  });

  test('an identical request gets an identical answer, the second time from the cache', async () => {
    const rt = runtime();
    const first = await run(rt, P1);
    const second = await run(rt, P1);
    expect(second.tokens).toEqual(first.tokens);
    expect(second.logprobs).toEqual(first.logprobs);
    expect(second.usage.cachedTokens).toBe(P1.length - 1);
    expect(rt.cacheStats().hits).toBe(1);
  });

  test('cache on ≡ cache off, bit for bit', async () => {
    const on = runtime();
    const off = runtime({ cacheBytes: 0 });
    for (const p of [P1, P2, P1]) {
      const [a, b] = [await run(on, p), await run(off, p)];
      expect(a.tokens).toEqual(b.tokens);
      expect(a.logprobs).toEqual(b.logprobs);
    }
    expect(on.cacheStats().hits).toBe(2);
    expect(off.cacheStats().entries).toBe(0);
  });

  test('cacheTokens: a budget of that many tokens of KV, every layer in fp32, whatever cacheBytes says', () => {
    const c = model.config;
    const perToken = c.numLayers * 2 * c.numKvHeads * c.headDim * 4;
    expect(runtime({ cacheTokens: 256, cacheBytes: 1 }).cacheStats().budgetBytes).toBe(256 * perToken);
    expect(runtime({ cacheBytes: 1000 }).cacheStats().budgetBytes).toBe(1000);
  });

  test('concurrent requests ≡ the same requests one by one', async () => {
    const prompts = [P1, P2, P1.slice(0, 100), P2.slice(0, 150)];
    const serial = runtime();
    const expected = [];
    for (const p of prompts) expected.push(await run(serial, p));
    const together = runtime({ maxStepTokens: 48 });
    const got = await Promise.all(prompts.map((p) => run(together, p)));
    expect(got.map((g) => g.tokens)).toEqual(expected.map((e) => e.tokens));
    expect(got.map((g) => g.logprobs)).toEqual(expected.map((e) => e.logprobs));
  });

  test('a cancelled request leaves no trace', async () => {
    const rt = runtime();
    const g = rt.generate({ prompt: P2, maxTokens: 64, sampling: SEEDED, grammar: CALCULATOR });
    for await (const _ of g) {
      g.cancel();
      break;
    }
    expect(await g.done()).toBe('cancelled');
    const [after, fresh] = [await run(rt, P2), await run(runtime(), P2)];
    expect(after.tokens).toEqual(fresh.tokens);
    expect(after.logprobs).toEqual(fresh.logprobs);
    expect(after.usage.cachedTokens).toBeGreaterThan(0); // the cancelled request's KV was reused
  });

  test('max tokens k gives a prefix of k + m', async () => {
    const rt = runtime();
    const long = await run(rt, P1, SEEDED, 32);
    const short = await run(rt, P1, SEEDED, 7);
    expect(long.tokens.slice(0, short.tokens.length)).toEqual(short.tokens);
    if (short.finish !== 'length') expect(long.tokens).toEqual(short.tokens);
  });

  test('seeded sampling is reproducible; unseeded requests draw their own seeds', async () => {
    const rt = runtime();
    expect((await run(rt, P1, { temperature: 1, seed: 7 }, 16, null)).tokens).toEqual((await run(runtime(), P1, { temperature: 1, seed: 7 }, 16, null)).tokens);
    const a = rt.generate({ prompt: P1, maxTokens: 1, sampling: { temperature: 1 } });
    const b = rt.generate({ prompt: P1, maxTokens: 1, sampling: { temperature: 1 } });
    await Promise.all([a.tokens(), b.tokens()]);
    expect(a.seed).not.toBe(b.seed);
  });
});

describe('bad requests are refused before anything changes', () => {
  test.each([
    [{ prompt: [], maxTokens: 4 }, /prompt is empty/],
    [{ prompt: [1, 201088], maxTokens: 4 }, /outside the vocabulary/],
    [{ prompt: [1, 2], maxTokens: 0 }, /max tokens must be/],
    [{ prompt: [1, 2], maxTokens: 10_000_000 }, /exceeds the context length/],
    [{ prompt: [1, 2], maxTokens: 4, grammar: { tools: ['calculator'], toolChoice: { name: 'nope' } } }, /not a declared tool/],
    [{ prompt: [1, 2], maxTokens: 4, sampling: { temperature: -1 } }, /temperature/],
  ])('%#', async (request, message) => {
    const rt = runtime();
    const before = await run(rt, P1);
    expect(() => rt.generate(request as never)).toThrow(GenerateError);
    expect(() => rt.generate(request as never)).toThrow(message);
    expect(rt.cacheStats().entries).toBe(1);
    expect(await run(rt, P1)).toMatchObject({ tokens: before.tokens });
  });

  test('a full queue answers overloaded', () => {
    const rt = runtime({ maxConcurrency: 1, maxQueue: 1 });
    rt.generate({ prompt: P1, maxTokens: 4 });
    rt.generate({ prompt: P1, maxTokens: 4 });
    expect(() => rt.generate({ prompt: P1, maxTokens: 4 })).toThrow(/overloaded/);
  });
});

describe('exo #1362: p1, p2, p1', () => {
  async function exo(options: RuntimeOptions, grammar: GrammarSpec | null = CALCULATOR) {
    const rt = runtime(options);
    const first = await run(rt, P1, SEEDED, 24, grammar);
    await run(rt, P2, SEEDED, 24, grammar);
    return { first, again: await run(rt, P1, SEEDED, 24, grammar) };
  }

  test.each([
    ['full KV', {}],
    ['ring KV', { slidingKv: 'ring' as const }],
  ])('p1 is answered the same both times (%s)', async (_name, options) => {
    const { first, again } = await exo(options);
    expect(again.tokens).toEqual(first.tokens);
  });

  test("kv-trim-noop (ring KV: exactly exo's mechanism) makes the second p1 differ", async () => {
    const { first, again } = await exo({ slidingKv: 'ring', failpoints: ['kv-trim-noop'] });
    expect(again.tokens).not.toEqual(first.tokens);
  });

  // Unconstrained: with the grammar on, the first token after `<|start|>assistant` is forced
  // (`<|channel|>`), which hides stale first-token logits.
  test('full-hit-no-rerun makes the second p1 differ (unconstrained sampling)', async () => {
    const { first, again } = await exo({ failpoints: ['full-hit-no-rerun'] }, null);
    // The tiny model's message terminators dominate unconstrained sampling, so the stale logits may
    // still pick the same token; their log-probabilities give them away.
    expect({ tokens: again.tokens, logprobs: again.logprobs }).not.toEqual({ tokens: first.tokens, logprobs: first.logprobs });
  });
});

test('ignoreStop generates through stop tokens to max tokens (unconstrained only)', async () => {
  const rt = runtime();
  const out = await run(rt, P1, { temperature: 0 }, 20, null);
  const through = rt.generate({ prompt: P1, maxTokens: 20, sampling: { temperature: 0 }, ignoreStop: true });
  const tokens = (await through.tokens()).map((t) => t.token);
  expect(through.finishReason).toBe('length');
  expect(tokens).toHaveLength(20);
  expect(tokens.slice(0, out.tokens.length)).toEqual(out.tokens);
  expect(() => rt.generate({ prompt: P1, maxTokens: 4, ignoreStop: true, grammar: CALCULATOR })).toThrow(/ignoreStop/);
});

describe('failpoint hooks', () => {
  test('response-memo keys a prompt by its last user message', () => {
    expect(encodeText('user')).toEqual([USER_ROLE_TOKEN]);
    const prompt = encodeHarmonyText(
      '<|start|>user<|message|>first<|end|><|start|>assistant<|channel|>final<|message|>ok<|end|><|start|>user<|message|>second<|end|><|start|>assistant',
    );
    expect(new Failpoints(['response-memo']).memoKey(prompt)).toBe(encodeText('second').join(','));
    expect(new Failpoints([]).memoKey(prompt)).toBeUndefined();
  });

  test('response-memo replays an earlier answer to the same last user message', async () => {
    const rt = runtime({ failpoints: ['response-memo'] });
    const first = await run(rt, P1);
    const other = await run(rt, [...P1.slice(0, 3), ...P1]); // other context, same last user message
    expect(other.tokens).toEqual(first.tokens);
    expect(other.usage.cachedTokens).toBe(0);
  });

  test('an unknown failpoint is refused', () => {
    expect(() => runtime({ failpoints: ['nope'] })).toThrow(UnknownFailpointError);
  });
});
