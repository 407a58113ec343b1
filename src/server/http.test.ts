// The server over raw HTTP: SSE framing byte for byte, the error envelope for malformed input,
// disconnects, shutdown, metrics and the cache flush endpoint.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ChatRequest } from '../wire/chat-completions.ts';
import { startLocalServer, type LocalServer } from './local-server.ts';
import { slowSteps } from './testing.ts';

/** A response body as the tests read it: deep field access on JSON the assertions then check. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type ResponseJson = Record<string, any>;

const P1 = JSON.parse(readFileSync(new URL('../../golden/chat/exo-1362-p1/request.json', import.meta.url), 'utf8')) as ChatRequest;

let local: LocalServer;
beforeAll(async () => {
  local = await startLocalServer({ model: 'tiny', bodyLimit: 64 * 1024 });
});
afterAll(async () => local?.close());

const post = (body: unknown, init: RequestInit = {}) =>
  fetch(`${local.baseUrl}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...init,
  });
const request = (extra: Record<string, unknown> = {}) => ({ ...P1, model: local.modelId, seed: 11, temperature: 1, ...extra });

/** The `data:` payloads of an SSE body, checking the framing on the way. */
function events(text: string): string[] {
  expect(text.endsWith('\n\n')).toBe(true);
  const blocks = text.slice(0, -2).split('\n\n');
  for (const b of blocks) expect(b).toMatch(/^data: [^\n]+$/);
  return blocks.map((b) => b.slice('data: '.length));
}

describe('SSE framing', () => {
  test('role chunk, deltas, finish chunk, usage chunk, [DONE]; one id; usage null until the end', async () => {
    const res = await post(request({ stream: true, stream_options: { include_usage: true } }));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const data = events(await res.text());
    expect(data.at(-1)).toBe('[DONE]');
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d) as ResponseJson);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(new Set(chunks.map((c) => c.created)).size).toBe(1);
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
    expect(chunks[0]!.choices[0].delta).toEqual({ role: 'assistant' });
    const usage = chunks.at(-1)!;
    expect(usage.choices).toEqual([]);
    expect(usage.usage.total_tokens).toBe(usage.usage.prompt_tokens + usage.usage.completion_tokens);
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
    const finish = chunks.at(-2)!;
    expect(finish.choices[0].delta).toEqual({});
    expect(['stop', 'length', 'tool_calls']).toContain(finish.choices[0].finish_reason);
    expect(chunks.slice(0, -2).every((c) => c.choices[0].finish_reason === null)).toBe(true);
  });

  test('without include_usage there is no usage field and no usage chunk', async () => {
    const data = events(await (await post(request({ stream: true }))).text());
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d) as Record<string, unknown>);
    expect(chunks.every((c) => !('usage' in c))).toBe(true);
    expect(data.at(-1)).toBe('[DONE]');
  });

  test('tool-call deltas: index every time, id/type/name first, argument fragments after', async () => {
    const data = events(await (await post(request({ stream: true, tool_choice: 'required', max_tokens: 60 }))).text());
    const calls = data
      .slice(0, -1)
      .map((d) => JSON.parse(d).choices[0]?.delta?.tool_calls)
      .filter(Boolean)
      .flat();
    expect(calls.length).toBeGreaterThan(1);
    expect(calls[0]).toMatchObject({ index: 0, type: 'function', function: { name: 'calculator', arguments: '' } });
    expect(calls[0].id).toMatch(/^call_/);
    for (const c of calls.slice(1)) expect(Object.keys(c).sort()).toEqual(['function', 'index']);
  });
});

describe('stop strings and log-probabilities', () => {
  test('an answer is cut before the stop string, streamed or not; log-prob bytes spell the answer', async () => {
    let cut = 0;
    for (let seed = 0; seed < 16; seed++) {
      const base = request({ seed, tool_choice: 'none', max_tokens: 40, logprobs: true, top_logprobs: 2 });
      const full = (await (await post(base)).json()) as ResponseJson;
      const answer: string = full.choices[0].message.content ?? '';
      const bytes = full.choices[0].logprobs.content.flatMap((e: { bytes: number[] }) => e.bytes);
      expect(Buffer.from(bytes).toString('utf8')).toBe(answer);
      for (const e of full.choices[0].logprobs.content) expect(e.top_logprobs).toHaveLength(2);
      if (answer.length < 4) continue;
      const stop = answer.slice(2, 4);
      const stopped = (await (await post({ ...base, stop })).json()) as ResponseJson;
      const expected = answer.slice(0, answer.indexOf(stop));
      expect(stopped.choices[0].message.content).toBe(expected);
      expect(stopped.choices[0].finish_reason).toBe('stop');
      const streamed = events(await (await post({ ...base, stop, stream: true })).text())
        .slice(0, -1)
        .map((d) => JSON.parse(d).choices[0]?.delta?.content ?? '')
        .join('');
      expect(streamed).toBe(expected);
      cut++;
    }
    expect(cut).toBeGreaterThan(2);
  });

  test('logit_bias: the bytes of 東 pushed by 100 are all the answer says, characters split across tokens; log-probs are the model’s own', async () => {
    // o200k's byte tokens: 0xE6 0x9D 0xB1 are ids 162, 251, 109.
    const logit_bias = { '162': 100, '251': 100, '109': 100 };
    const base = request({ tool_choice: 'none', max_tokens: 24, logprobs: true });
    const plain = (await (await post(base)).json()) as ResponseJson;
    const pushed = (await (await post({ ...base, logit_bias })).json()) as ResponseJson;
    const content: string = pushed.choices[0].message.content;
    const entries: Array<{ bytes: number[]; logprob: number }> = pushed.choices[0].logprobs.content;
    // A byte per token, in whatever order the model prefers: characters made of these bytes (東 is
    // E6 9D B1, 汝 E6 B1 9D) where they line up, U+FFFD elsewhere.
    const chars = [...content];
    expect(chars.length).toBeGreaterThan(3);
    for (const c of chars)
      if (c !== '\uFFFD')
        expect(
          [...Buffer.from(c)].every((b) => [0xe6, 0x9d, 0xb1].includes(b)),
          c,
        ).toBe(true);
    expect(chars.some((c) => c !== '\uFFFD')).toBe(true);
    expect(pushed.choices[0].finish_reason).toBe('length');
    expect(Buffer.from(entries.flatMap((e) => e.bytes)).toString('utf8')).toBe(content);
    // The model's log-probabilities: bytes it would not pick keep low ones.
    expect(Math.max(...entries.map((e) => e.logprob))).toBeLessThan(-1);
    expect(content).not.toBe(plain.choices[0].message.content);
  });
});

describe('bad input gets the envelope, never a 5xx', () => {
  const expectEnvelope = async (res: Response, status: number, code: string | null, param?: string | null) => {
    expect(res.status).toBe(status);
    const body = (await res.json()) as { error: Record<string, unknown> };
    expect(Object.keys(body)).toEqual(['error']);
    expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
    expect(body.error.code).toBe(code);
    if (param !== undefined) expect(body.error.param).toBe(param);
    expect(typeof body.error.message).toBe('string');
  };

  test('malformed JSON, wrong media type, too large, unknown route', async () => {
    await expectEnvelope(await post('{"messages": ['), 400, 'invalid_json');
    await expectEnvelope(await post(''), 400, 'invalid_json');
    await expectEnvelope(await post('hello', { headers: { 'content-type': 'text/plain' } }), 415, 'unsupported_media_type');
    await expectEnvelope(await post(request({ pad: 'x'.repeat(100_000) })), 413, 'request_too_large');
    await expectEnvelope(await fetch(`${local.baseUrl}/completions`, { method: 'POST' }), 404, 'not_found');
  });

  test('schema and mapping errors name the field', async () => {
    await expectEnvelope(await post(request({ messages: [] })), 400, 'invalid_value', 'messages');
    await expectEnvelope(await post(request({ n: 0 })), 400, 'invalid_value', 'n');
    await expectEnvelope(await post(request({ max_tokens: '5' })), 400, 'invalid_type', 'max_tokens');
    await expectEnvelope(await post(request({ temperature: 3 })), 400, 'invalid_value', 'temperature');
    await expectEnvelope(await post(request({ messages: [{ role: 'user' }] })), 400, 'missing_required_parameter', 'messages[0].content');
    await expectEnvelope(await post(request({ max_tokens: 10_000_000 })), 400, 'context_length_exceeded', 'max_tokens');
    await expectEnvelope(
      await post(request({ tool_choice: { type: 'function', function: { name: 'nope' } } })),
      400,
      'unknown_function',
      'tool_choice.function.name',
    );
    await expectEnvelope(
      await post(request({ messages: [{ role: 'tool', tool_call_id: 'x', content: '4' }] })),
      400,
      'unknown_tool_call_id',
      'messages[0].tool_call_id',
    );
    await expectEnvelope(await post(request({ model: 'other' })), 404, 'model_not_found', 'model');
    await expectEnvelope(await post(request({ logit_bias: { '12': 101 } })), 400, 'invalid_value', 'logit_bias[12]');
    await expectEnvelope(await post(request({ logit_bias: { x: 1 } })), 400, 'invalid_value', 'logit_bias');
    await expectEnvelope(await post(request({ logit_bias: { '999999': 1 } })), 400, 'invalid_value', 'logit_bias');
  });
});

describe('lifecycle', () => {
  test('a stream begins within its first token, even when nothing shows yet (output still in a header)', async () => {
    const restore = slowSteps(local, 20);
    const controller = new AbortController();
    // No tools, so no grammar: the pushed bytes stay in what the parser takes for a header until the end.
    const body = {
      messages: [{ role: 'user', content: 'Hi' }],
      stream: true,
      max_tokens: 2000,
      temperature: 0,
      logit_bias: { '162': 100, '251': 100, '109': 100 },
    };
    const res = await post(body, { signal: controller.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toContain('"role":"assistant"');
    // The role chunk came while the generation runs, not after its 2000 tokens.
    expect(local.model.runtime.activeRequests).toBe(1);
    controller.abort();
    await expect.poll(() => local.model.runtime.activeRequests, { timeout: 10_000 }).toBe(0);
    restore();
  });

  test('a client that disconnects cancels its generation and frees its KV', async () => {
    const free = local.model.runtime.engine.kvStats().blocksFree;
    const restore = slowSteps(local, 20);
    const controller = new AbortController();
    const res = await post(request({ stream: true, max_tokens: 2000, tool_choice: 'none', temperature: 1 }), { signal: controller.signal });
    const reader = res.body!.getReader();
    await reader.read();
    expect(local.model.runtime.activeRequests).toBe(1);
    controller.abort();
    await expect.poll(() => local.model.runtime.activeRequests, { timeout: 10_000 }).toBe(0);
    restore();
    // Its KV went to the prefix cache; flushing the cache gives every block back.
    const flushed = (await (await fetch(`${local.origin}/admin/cache/flush`, { method: 'POST' })).json()) as { flushed: boolean };
    expect(flushed.flushed).toBe(true);
    expect(local.model.runtime.engine.kvStats().blocksFree).toBeGreaterThanOrEqual(free);
    expect(local.model.runtime.cacheStats().entries).toBe(0);
  });

  test('metrics: Prometheus text with requests by status and cache state', async () => {
    await post(request({ max_tokens: 2 }));
    const res = await fetch(`${local.origin}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0.0.4/);
    const text = await res.text();
    expect(text).toMatch(/^amnesia_http_requests_total\{route="\/v1\/chat\/completions",status="200"\} \d+$/m);
    expect(text).toMatch(/^amnesia_http_requests_total\{route="\/v1\/chat\/completions",status="400"\} \d+$/m);
    for (const name of [
      'amnesia_completion_tokens_total',
      'amnesia_prefix_cache_hits_total',
      'amnesia_prefix_cache_bytes',
      'amnesia_queue_depth',
      'amnesia_generation_tokens_per_second',
    ]) {
      expect(text).toMatch(new RegExp(`^# TYPE ${name} `, 'm'));
    }
  });

  test('shutdown: an in-flight stream ends with an in-band error; new requests are refused', async () => {
    const own = await startLocalServer({ model: 'tiny' });
    slowSteps(own, 20);
    const res = await fetch(`${own.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...P1, model: own.modelId, stream: true, max_tokens: 4000, tool_choice: 'none' }),
    });
    const reader = res.body!.getReader();
    await reader.read();
    const closing = own.close();
    let rest = '';
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
    await closing;
    expect(rest).toContain('"code":"server_shutting_down"');
    expect(rest).not.toContain('[DONE]');
    await expect(fetch(`${own.origin}/health`)).rejects.toThrow();
  });
});
