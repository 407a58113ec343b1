// The output contract over HTTP on the tiny model (random weights, so it samples every kind of
// malformed harmony): for random requests, every choice calls only functions the request lets it
// call, says `tool_calls` exactly when it has tool calls, carries log-probabilities that spell its
// content byte for byte, and streams what the JSON answer says. And `n` choices add one abort
// listener, not n (spec/api.md "Responses").
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startLocalServer, type LocalServer } from './local-server.ts';

/** A response body as the tests read it: deep field access on JSON the assertions then check. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

let local: LocalServer;
beforeAll(async () => {
  local = await startLocalServer({ model: 'tiny' });
});
afterAll(async () => local?.close());

const post = (body: unknown) =>
  fetch(`${local.baseUrl}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

const CALCULATOR = {
  type: 'function',
  function: { name: 'calculator', description: 'Evaluate a math expression', parameters: { type: 'object', properties: { expression: { type: 'string' } } } },
};
const WEATHER = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } };

/** Random requests: with or without tools and tool_choice, stop strings, budgets, log-probs, n. */
const requests = fc
  .record({
    seed: fc.integer({ min: 0, max: 2 ** 31 }),
    content: fc.constantFrom('Tell me something.', 'What is 2+2? Use the calculator tool.', 'Hola, ¿qué tal?', '写一首诗'),
    tools: fc.constantFrom([], [], [CALCULATOR], [CALCULATOR, WEATHER]),
    toolChoice: fc.constantFrom(undefined, 'auto', 'none', 'required', 'named'),
    maxTokens: fc.integer({ min: 1, max: 60 }),
    stop: fc.option(fc.constantFrom('a', 'e', ' ', 'о', 'er', 'the', '\n', ['a', 'o'], ['ing', 'es', 'ت']), { nil: undefined }),
    topLogprobs: fc.constantFrom(0, 2),
    n: fc.constantFrom(1, 1, 2),
    temperature: fc.constantFrom(0, 0.8, 1, 1.5),
  })
  .map((r) => {
    const body: Json = {
      messages: [{ role: 'user', content: r.content }],
      seed: r.seed,
      max_tokens: r.maxTokens,
      logprobs: true,
      top_logprobs: r.topLogprobs,
      n: r.n,
      temperature: r.temperature,
    };
    if (r.stop !== undefined) body.stop = r.stop;
    if (r.tools.length > 0) {
      body.tools = r.tools;
      if (r.toolChoice === 'named') body.tool_choice = { type: 'function', function: { name: 'calculator' } };
      else if (r.toolChoice !== undefined) body.tool_choice = r.toolChoice;
    } else if (r.toolChoice === 'auto' || r.toolChoice === 'none') body.tool_choice = r.toolChoice;
    return body;
  });

/** The functions a request lets the model call. */
function callable(body: Json): string[] {
  const names: string[] = (body.tools ?? []).map((t: Json) => t.function.name);
  if (body.tool_choice === 'none') return [];
  if (typeof body.tool_choice === 'object') return [body.tool_choice.function.name];
  return names;
}

/** The contract every choice of a JSON answer keeps. */
function checkChoice(body: Json, choice: Json): void {
  const calls: Json[] = choice.message.tool_calls ?? [];
  for (const call of calls) expect(callable(body), `a call to ${JSON.stringify(call.function.name)}`).toContain(call.function.name);
  expect(choice.finish_reason === 'tool_calls', `finish_reason ${choice.finish_reason} with ${calls.length} tool calls`).toBe(calls.length > 0);
  const content: string = choice.message.content ?? '';
  const entries: Json[] = choice.logprobs.content;
  const bytes = Buffer.from(entries.flatMap((e) => e.bytes as number[]));
  expect(bytes.toString('hex'), `log-prob bytes vs content ${JSON.stringify(content)}`).toBe(Buffer.from(content, 'utf8').toString('hex'));
  expect(entries.length > 0).toBe(content !== '');
  for (const e of entries) {
    expect(e.bytes.length).toBeGreaterThan(0);
    expect(e.top_logprobs).toHaveLength(body.top_logprobs ?? 0);
  }
}

/** The SSE body folded into choices (message, log-probs, finish_reason), as a client would. */
function foldStream(text: string, n: number): Json[] {
  const choices = Array.from({ length: n }, () => ({
    message: { role: undefined as string | undefined, content: null as string | null } as Json,
    logprobs: [] as Json[],
    finish_reason: null as string | null,
  }));
  const data = text
    .split('\n\n')
    .filter((b) => b.startsWith('data: '))
    .map((b) => b.slice('data: '.length));
  expect(data.at(-1)).toBe('[DONE]');
  for (const d of data.slice(0, -1)) {
    for (const c of (JSON.parse(d) as Json).choices as Json[]) {
      const choice = choices[c.index]!;
      const m = choice.message;
      if (c.delta.role !== undefined) m.role = c.delta.role;
      if (c.delta.content !== undefined) m.content = (m.content ?? '') + c.delta.content;
      if (c.delta.reasoning !== undefined) m.reasoning = (m.reasoning ?? '') + c.delta.reasoning;
      for (const tc of c.delta.tool_calls ?? []) {
        const calls = (m.tool_calls ??= []) as Json[];
        const call = (calls[tc.index] ??= { id: '', type: 'function', function: { name: '', arguments: '' } });
        if (tc.id !== undefined) call.id = tc.id;
        if (tc.function.name !== undefined) call.function.name = tc.function.name;
        call.function.arguments += tc.function.arguments;
      }
      if (c.logprobs) choice.logprobs.push(...c.logprobs.content);
      if (c.finish_reason !== null) choice.finish_reason = c.finish_reason;
      // Log-probabilities never run ahead of the text they spell.
      const spelled = Buffer.from(choice.logprobs.flatMap((e) => e.bytes as number[])).toString('hex');
      expect(
        Buffer.from(m.content ?? '', 'utf8')
          .toString('hex')
          .startsWith(spelled),
        'streamed log-probs ahead of the streamed content',
      ).toBe(true);
    }
  }
  return choices;
}

/** A choice without its random tool-call ids. */
const comparable = (message: Json) => ({
  ...message,
  ...(message.tool_calls && { tool_calls: message.tool_calls.map((c: Json) => ({ ...c, id: c.id.startsWith('call_') })) }),
});

describe('the output contract, over random requests on the tiny model', () => {
  test('tool calls only to callable functions; finish_reason tool_calls iff tool calls; log-probs spell content; stream ≡ JSON', async () => {
    await fc.assert(
      fc.asyncProperty(requests, async (body) => {
        const res = await post(body);
        expect(res.status).toBe(200);
        const json = (await res.json()) as Json;
        expect(json.choices).toHaveLength(body.n);
        for (const choice of json.choices as Json[]) checkChoice(body, choice);
        const streamed = foldStream(await (await post({ ...body, stream: true })).text(), body.n);
        for (const [i, choice] of (json.choices as Json[]).entries()) {
          const s = streamed[i]!;
          checkChoice(body, { ...s, logprobs: { content: s.logprobs } });
          expect(comparable(s.message)).toEqual(comparable(choice.message));
          expect(s.finish_reason).toBe(choice.finish_reason);
          expect(s.logprobs).toEqual(choice.logprobs.content);
        }
      }),
      { numRuns: 60 },
    );
  }, 120_000);

  test('no tools declared: a sampled recipient is never a tool call', async () => {
    // Unconstrained (no grammar without tools on the tiny model): headers with recipients are common.
    for (let seed = 0; seed < 40; seed++) {
      const body = { messages: [{ role: 'user', content: 'Call a tool.' }], seed, max_tokens: 24, logprobs: true };
      const json = (await (await post(body)).json()) as Json;
      checkChoice(body, json.choices[0]);
    }
  });
});

describe('abort listeners', () => {
  test('n: 16 adds one abort listener to the request, not one per choice', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      for (const stream of [false, true]) {
        const res = await post({ messages: [{ role: 'user', content: 'hi' }], n: 16, max_tokens: 8, seed: 1, stream });
        expect(res.status).toBe(200);
        await res.text();
      }
      // Warnings are emitted on the next tick.
      await new Promise((resolve) => setTimeout(resolve, 10));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message)).toEqual([]);
  });
});
