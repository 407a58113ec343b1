// The mutation catalogue (spec/failpoints.md) is observable over HTTP: for each of its failpoints a
// fixed, hand-written sequence of at most 4 ordinary, valid requests shows a violation of
// statelessness or of the API contract on the embedded server with the failpoint, and the same
// sequence shows none on a correct server. Directed tests, not properties: they prove each bug can
// be seen from outside, whatever traffic the harness generates to find it.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CATALOGUE_FAILPOINTS, type FailpointName } from '../src/engine/failpoints.ts';
import { EMBEDDED_RUNTIME } from '../src/embedded/embedded-target.ts';
import { startLocalServer, type LocalServer } from '../src/server/local-server.ts';
import { normalise } from '../src/server/normalise-response.ts';
import { byteTokenId } from '../src/harness/arbitraries/options.ts';

/** A response body as the tests read it: deep field access on JSON the checks then compare. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;
type Body = Record<string, unknown>;

/** A server to send requests to, and a way to start another like it (for an answer on a fresh one). */
interface Target {
  server: LocalServer;
  fresh(): Promise<LocalServer>;
}

/** A case: the requests it sends, and the violation they show (undefined: none). */
interface Case {
  name: FailpointName;
  observe(target: Target): Promise<string | undefined>;
}

/** Servers started for the test running now (closed after it), or for the whole file. */
let started: LocalServer[] = [];
const start = async (failpoints: FailpointName[]): Promise<LocalServer> => {
  const local = await startLocalServer({ model: 'tiny', runtime: { ...EMBEDDED_RUNTIME, failpoints } });
  started.push(local);
  return local;
};
const closeStarted = async () => {
  const servers = started;
  started = [];
  for (const local of servers) await local.close();
};
const targetOf = async (failpoints: FailpointName[]): Promise<Target> => ({ server: await start(failpoints), fresh: () => start(failpoints) });

const post = (server: LocalServer, body: Body, init: RequestInit = {}) =>
  fetch(`${server.baseUrl}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    ...init,
  });

const complete = async (server: LocalServer, body: Body): Promise<Json> => {
  const res = await post(server, body);
  const json = (await res.json()) as Json;
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${JSON.stringify(json)}`);
  return json;
};

/** The `data:` chunks of a stream (without `[DONE]`). */
const streamChunks = async (server: LocalServer, body: Body): Promise<Json[]> => {
  const text = await (await post(server, { ...body, stream: true })).text();
  return text
    .split('\n\n')
    .filter((block) => block.startsWith('data: ') && block !== 'data: [DONE]')
    .map((block) => JSON.parse(block.slice('data: '.length)) as Json);
};

/** What must be equal between two answers to one request: the choices, tool-call ids normalised. */
const answer = (response: Json): string => JSON.stringify((normalise(response) as Json).choices);

/** A difference between two answers to one request, described; undefined when they are equal. */
const differs = (what: string, a: Json, b: Json): string | undefined =>
  answer(a) === answer(b) ? undefined : `${what}: ${answer(a).slice(0, 160)} ≠ ${answer(b).slice(0, 160)}`;

const user = (content: string) => ({ role: 'user', content });
const fn = (name: string, description: string) => ({
  type: 'function',
  function: { name, description, parameters: { type: 'object', properties: { input: { type: 'string' } }, required: ['input'] } },
});
const CALCULATOR = fn('calculator', 'Evaluate a math expression');
const WEATHER = fn('get_weather', 'The current weather in a city');
const SEARCH = fn('search', 'Search the web and return the top results');

/** A plain chat: unconstrained on the tiny model (no tools), seeded so that its answer is fixed. */
const chat = (content: string, extra: Body = {}): Body => ({ messages: [user(content)], seed: 11, max_tokens: 24, ...extra });

/** Whether the bytes of the log-probability entries spell the content (spec/api.md "Log-probabilities"). */
const spells = (choice: Json): boolean => {
  const bytes = (choice.logprobs?.content ?? []).flatMap((e: { bytes: number[] }) => e.bytes);
  return Buffer.from(bytes).toString('utf8') === (choice.message.content ?? '');
};

const toolCalls = (response: Json): unknown[] => response.choices[0].message.tool_calls ?? [];

const CASES: Case[] = [
  {
    // B, A (temperature 0, log-probs), B: the second B samples greedily and returns log-probs it never asked for.
    name: 'sticky-sampling',
    async observe({ server }) {
      const b = chat('Tell me a story about a lighthouse.');
      const first = await complete(server, b);
      await complete(server, chat('Hi', { temperature: 0, logprobs: true, top_logprobs: 2, max_tokens: 1 }));
      const again = await complete(server, b);
      if (again.choices[0].logprobs !== null) return 'log-probabilities in the answer to a request that asked for none';
      return differs('B after A', first, again);
    },
  },
  {
    // B, A (reasoning_effort low), B: the second B is rendered with "Reasoning: low".
    name: 'sticky-reasoning-effort',
    async observe({ server }) {
      const b = chat('Explain photosynthesis.');
      const first = await complete(server, b);
      await complete(server, chat('Hi', { reasoning_effort: 'low', max_tokens: 1 }));
      return differs('B after A', first, await complete(server, b));
    },
  },
  {
    // B, A (stop: a piece of B's answer), B: the second B is cut at A's stop string.
    name: 'stop-accumulates',
    async observe({ server }) {
      const b = chat('Name three rivers.', { max_tokens: 40 });
      const first = await complete(server, b);
      const content: string = first.choices[0].message.content ?? '';
      if (content.length < 8) throw new Error(`the answer is too short to take a stop string from: ${JSON.stringify(content)}`);
      await complete(server, chat('Hi', { stop: [content.slice(4, 7)], max_tokens: 1 }));
      return differs('B after A', first, await complete(server, b));
    },
  },
  {
    // A (two tools), then B (the same messages, one other tool): B gets A's rendered prompt.
    name: 'render-cache',
    async observe({ server, fresh }) {
      const messages = [user('What should I do today?')];
      const b: Body = { messages, tools: [WEATHER], seed: 5, max_tokens: 24 };
      const alone = await complete(await fresh(), b);
      await complete(server, { messages, tools: [CALCULATOR, SEARCH], seed: 5, max_tokens: 1 });
      const after = await complete(server, b);
      if (after.usage.prompt_tokens !== alone.usage.prompt_tokens) {
        return `B's prompt is ${after.usage.prompt_tokens} tokens after A, ${alone.usage.prompt_tokens} alone`;
      }
      return differs('B after A vs B alone', alone, after);
    },
  },
  {
    // A (tools: calculator, tool_choice required), B (tools: get_weather, tool_choice required):
    // B's call to get_weather is not recognised, so a required call is missing.
    name: 'callable-stale',
    async observe({ server }) {
      await complete(server, { messages: [user('What is 2+2?')], tools: [CALCULATOR], tool_choice: 'required', seed: 3, max_tokens: 60 });
      const b = await complete(server, { messages: [user('Weather in Paris?')], tools: [WEATHER], tool_choice: 'required', seed: 3, max_tokens: 60 });
      if (toolCalls(b).length === 0) return `tool_choice "required" answered without a tool call (finish_reason ${b.choices[0].finish_reason})`;
      return undefined;
    },
  },
  {
    // A and B alone, then A and B at once: a character A's tokens split is completed by B's bytes.
    // Greedy, with tools (the grammar makes the tiny model write messages the parser decodes token by
    // token) and logit_bias pushing the bytes of one multi-byte character, as the harness's traffic
    // does: each answer spells its character a byte per token whatever the CPU's arithmetic (left to
    // sampling, which answers split a character depended on the machine's vector width).
    name: 'shared-decoder',
    async observe({ server }) {
      const pushed = (c: string) => Object.fromEntries([...new TextEncoder().encode(c)].map((b) => [String(byteTokenId(b)), 100]));
      const ask = (content: string, c: string): Body => ({
        messages: [user(content)],
        tools: [CALCULATOR],
        tool_choice: 'none',
        temperature: 0,
        logit_bias: pushed(c),
        max_tokens: 64,
      });
      const a = ask('Write a haiku in Japanese.', 'é');
      const b = ask('Write a proverb in Chinese.', '中');
      const aloneA = await complete(server, a);
      const aloneB = await complete(server, b);
      const [withA, withB] = await Promise.all([complete(server, a), complete(server, b)]);
      return differs('A beside B vs A alone', aloneA, withA) ?? differs('B beside A vs B alone', aloneB, withB);
    },
  },
  {
    // A (log-probs), B (log-probs): B's entries start where A's count ended, so they no longer spell B's content.
    name: 'logprob-offset',
    async observe({ server }) {
      await complete(server, chat('Count to ten.', { logprobs: true, max_tokens: 40 }));
      const b = await complete(server, chat('Say hello.', { logprobs: true, max_tokens: 12 }));
      if (!spells(b.choices[0])) return `the log-probabilities of B do not spell its content (${b.choices[0].logprobs.content.length} entries)`;
      return undefined;
    },
  },
  {
    // Stream A, stream B (include_usage): B's usage adds A's completion tokens to its own.
    name: 'usage-carryover',
    async observe({ server }) {
      const usageOf = async (body: Body) => (await streamChunks(server, { ...body, stream_options: { include_usage: true } })).at(-1)!.usage;
      await usageOf(chat('Count to ten.', { max_tokens: 20 }));
      const usage = await usageOf(chat('Say hello.', { max_tokens: 12 }));
      if (usage.total_tokens !== usage.prompt_tokens + usage.completion_tokens) return `B's usage does not add up: ${JSON.stringify(usage)}`;
      if (usage.completion_tokens > 12) return `B reports ${usage.completion_tokens} completion tokens with max_tokens 12`;
      return undefined;
    },
  },
  {
    // A alone, B alone, then A and B at once: they get one id and each other's tokens.
    name: 'clock-ids',
    async observe({ server }) {
      const a = chat('Describe the sea.', { seed: 31, max_tokens: 64 });
      const b = chat('Describe a forest.', { seed: 32, max_tokens: 64 });
      const aloneA = await complete(server, a);
      const aloneB = await complete(server, b);
      // Both must start within one second (the clock's tick): try again if they straddle one.
      for (let attempt = 0; attempt < 3; attempt++) {
        const [withA, withB] = await Promise.all([complete(server, a), complete(server, b)]);
        if (withA.id !== withB.id && attempt < 2) continue;
        const shown = differs('A beside B vs A alone', aloneA, withA) ?? differs('B beside A vs B alone', aloneB, withB);
        return shown && `${shown} (ids ${withA.id}, ${withB.id})`;
      }
      return undefined;
    },
  },
  {
    // The same seeded request with n = 2, twice: the second choice changes.
    name: 'choice-seed-counter',
    async observe({ server }) {
      const c = chat('Suggest a name for a cat.', { n: 2, seed: 7, max_tokens: 16 });
      return differs('the same seeded request twice', await complete(server, c), await complete(server, c));
    },
  },
  {
    // A (stream, a large budget) cancelled after its first chunk, then B: B never gets an answer.
    name: 'cancel-leak',
    async observe({ server }) {
      const controller = new AbortController();
      // A's answer runs for about 90 tokens: it is still generating when the client goes away.
      const res = await post(server, { ...chat('Describe the sea.', { seed: 4, max_tokens: 30_000 }), stream: true }, { signal: controller.signal });
      await res.body!.getReader().read();
      controller.abort();
      await expect.poll(() => server.model.runtime.activeRequests, { timeout: 10_000 }).toBe(0);
      try {
        // B names no max_tokens: its budget is the default 4096 tokens, more than the leak left.
        await post(server, { messages: [user('Say hello.')], seed: 11 }, { signal: AbortSignal.timeout(3_000) }).then((r) => r.json());
        return undefined;
      } catch (e) {
        if ((e as Error).name === 'TimeoutError') return 'B got no answer within 3 s';
        throw e;
      }
    },
  },
  {
    // A (tools: calculator, tool_choice none), B (the same tools, tool_choice required): B is held
    // to A's grammar, so a required call is missing.
    name: 'grammar-cache',
    async observe({ server }) {
      await complete(server, { messages: [user('What is 2+2?')], tools: [CALCULATOR], tool_choice: 'none', seed: 4, max_tokens: 24 });
      const b = await complete(server, { messages: [user('What is 3+3?')], tools: [CALCULATOR], tool_choice: 'required', seed: 4, max_tokens: 100 });
      if (toolCalls(b).length === 0) return `tool_choice "required" answered without a tool call (finish_reason ${b.choices[0].finish_reason})`;
      return undefined;
    },
  },
  {
    // The same request twice: the second reuses the first's KV, less its partial last block.
    name: 'partial-block-skip',
    async observe({ server }) {
      const p = chat('What is the capital of France?', { max_tokens: 16 });
      return differs('the same request twice', await complete(server, p), await complete(server, p));
    },
  },
  {
    // C (seed s, n = 1, top_logprobs), then C with n = 2: choice 0 (seed s) shows choice 1's top log-probs.
    name: 'topk-scratch',
    async observe({ server }) {
      const c = chat('Pick a colour.', { seed: 10, max_tokens: 16, logprobs: true, top_logprobs: 3 });
      const one = await complete(server, c);
      const two = await complete(server, { ...c, n: 2 });
      return differs('choice 0 of n = 2 vs n = 1', one, { choices: two.choices.slice(0, 1) });
    },
  },
  {
    // The same request twice: the second's attention reads the first's KV past its own end.
    name: 'attend-past-end',
    async observe({ server }) {
      const p = chat('What is the capital of France?', { max_tokens: 16 });
      return differs('the same request twice', await complete(server, p), await complete(server, p));
    },
  },
];

let correct: Target;
let correctServers: LocalServer[];
beforeAll(async () => {
  correct = await targetOf([]);
  correctServers = started;
  started = [];
});
afterAll(async () => {
  await closeStarted();
  for (const local of correctServers) await local.close();
});

test('every catalogue failpoint has a case', () => {
  expect(CASES.map((c) => c.name).sort()).toEqual([...CATALOGUE_FAILPOINTS].sort());
});

describe('each catalogue failpoint shows over HTTP in at most 4 requests; a correct server shows nothing', () => {
  for (const c of CASES) {
    test(c.name, { timeout: 60_000 }, async () => {
      try {
        const shown = await c.observe(await targetOf([c.name]));
        expect(shown, `${c.name} was not observed`).toBeDefined();
        expect(await c.observe(correct), 'the correct server showed a violation').toBeUndefined();
      } finally {
        await closeStarted();
      }
    });
  }
});
