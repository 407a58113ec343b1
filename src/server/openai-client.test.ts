// The server through the official openai SDK (maxRetries 0, so no server error is retried away):
// non-stream, the SDK's stream helpers, and errors mapped to the SDK's error classes.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readFileSync } from 'node:fs';
import { renderChatPrompt } from '../harmony/chat-to-harmony.ts';
import type { ChatRequest } from '../wire/chat-completions.ts';
import { normalise } from './normalise-response.ts';
import { startLocalServer, type LocalServer } from './local-server.ts';
import { slowSteps } from './testing.ts';

const KEY = 'sk-amnesia-test';
const P1 = JSON.parse(readFileSync(new URL('../../golden/chat/exo-1362-p1/request.json', import.meta.url), 'utf8')) as ChatRequest;
const P2 = JSON.parse(readFileSync(new URL('../../golden/chat/exo-1362-p2/request.json', import.meta.url), 'utf8')) as ChatRequest;

let local: LocalServer;
let client: OpenAI;

beforeAll(async () => {
  local = await startLocalServer({ model: 'tiny', apiKey: KEY });
  client = new OpenAI({ baseURL: local.baseUrl, apiKey: KEY, maxRetries: 0, timeout: 30_000 });
});
afterAll(async () => local?.close());

const body = (r: ChatRequest, extra: Record<string, unknown> = {}) =>
  ({ ...r, model: local.modelId, temperature: 1, seed: 7, ...extra }) as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming;

describe('openai SDK', () => {
  test('non-stream: the response shape, and prompt_tokens is the rendered prompt length', async () => {
    const res = await client.chat.completions.create(body(P1));
    expect(res.object).toBe('chat.completion');
    expect(res.id).toMatch(/^chatcmpl-/);
    expect(res.model).toBe(local.modelId);
    expect(res.choices).toHaveLength(1);
    expect(['stop', 'length', 'tool_calls']).toContain(res.choices[0]!.finish_reason);
    expect(res.usage!.prompt_tokens).toBe(renderChatPrompt(P1).tokens.length);
    expect(res.usage!.total_tokens).toBe(res.usage!.prompt_tokens + res.usage!.completion_tokens);
  });

  test('the stream helper assembles the same tool calls, content and finish reason as the JSON response', async () => {
    // Seeds chosen so both a tool call and an answer with reasoning are covered.
    let sawToolCall = false;
    let sawReasoning = false;
    for (let seed = 0; seed < 12; seed++) {
      const whole = await client.chat.completions.create(body(P2, { seed }));
      const stream = client.chat.completions.stream({ ...body(P2, { seed }), stream: true });
      // The SDK's snapshot keeps only the last `reasoning` delta, so reasoning is assembled from the chunks.
      let reasoning: string | undefined;
      stream.on('chunk', (chunk) => {
        const delta = chunk.choices[0]?.delta as { reasoning?: string } | undefined;
        if (delta?.reasoning !== undefined) reasoning = (reasoning ?? '') + delta.reasoning;
      });
      const final = await stream.finalChatCompletion();
      const wholeMessage = whole.choices[0]!.message as OpenAI.ChatCompletionMessage & { reasoning?: string };
      expect(normalise({ tool_calls: final.choices[0]!.message.tool_calls ?? [] })).toEqual(normalise({ tool_calls: wholeMessage.tool_calls ?? [] }));
      // The SDK skips empty content deltas, so an empty answer ('') folds to null in its snapshot.
      expect(final.choices[0]!.message.content ?? '').toBe(wholeMessage.content ?? '');
      expect(final.choices[0]!.finish_reason).toBe(whole.choices[0]!.finish_reason);
      expect(reasoning).toBe(wholeMessage.reasoning);
      sawToolCall ||= (wholeMessage.tool_calls ?? []).length > 0;
      sawReasoning ||= (wholeMessage.reasoning ?? '') !== '';
    }
    expect(sawToolCall).toBe(true);
    expect(sawReasoning).toBe(true);
  });

  test('stream with include_usage: the usage equals the JSON response usage', async () => {
    const stream = await client.chat.completions.create({ ...body(P1), stream: true, stream_options: { include_usage: true } });
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
    const whole = await client.chat.completions.create(body(P1));
    expect(usage).toEqual({ ...whole.usage, prompt_tokens_details: { cached_tokens: usage!.prompt_tokens_details!.cached_tokens } });
  });

  test('n choices: one per index, usage summed', async () => {
    const res = await client.chat.completions.create(body(P1, { n: 3, max_tokens: 6 }));
    expect(res.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    const one = await Promise.all([0, 1, 2].map((i) => client.chat.completions.create(body(P1, { seed: 7 + i, max_tokens: 6 }))));
    // Choice i samples with seed + i: the same answers as n separate requests.
    expect(res.choices.map((c) => c.message)).toEqual(
      one.map((r) => r.choices[0]!.message).map((m, i) => ({ ...m, tool_calls: m.tool_calls && res.choices[i]!.message.tool_calls })),
    );
    expect(res.usage!.completion_tokens).toBe(one.reduce((n, r) => n + r.usage!.completion_tokens, 0));
  });

  test('errors surface as the SDK error classes, with the envelope', async () => {
    await expect(client.chat.completions.create(body(P1, { model: 'gpt-4o' }))).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    const bad = await client.chat.completions.create(body({ messages: [{ role: 'robot', content: 'hi' }] } as unknown as ChatRequest)).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    expect((bad as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('messages[0].role');
    expect((bad as InstanceType<typeof OpenAI.BadRequestError>).type).toBe('invalid_request_error');
    const noKey = new OpenAI({ baseURL: local.baseUrl, apiKey: 'wrong', maxRetries: 0 });
    await expect(noKey.chat.completions.create(body(P1))).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    await expect(noKey.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  });

  test('models.list names the served model', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual([local.modelId]);
  });
});

describe('a busy server', () => {
  test('overload is a 429 RateLimitError with Retry-After, and the server recovers', async () => {
    // One request generating (max concurrency 1, no queue): the next one is refused.
    const busy = await startLocalServer({ model: 'tiny', runtime: { maxConcurrency: 1, maxQueue: 0 } });
    slowSteps(busy, 20);
    const client = new OpenAI({ baseURL: busy.baseUrl, apiKey: 'none', maxRetries: 0, timeout: 30_000 });
    const body = (r: ChatRequest, extra: Record<string, unknown> = {}) =>
      ({ ...r, model: busy.modelId, temperature: 1, seed: 7, ...extra }) as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming;
    const long = await client.chat.completions.create({ ...body(P1, { max_tokens: 400, temperature: 1 }), stream: true });
    const it = long[Symbol.asyncIterator]();
    await it.next();
    const refused = await client.chat.completions.create(body(P1)).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
    expect((refused as InstanceType<typeof OpenAI.RateLimitError>).headers?.get('retry-after')).toBe('1');
    long.controller.abort();
    await expect
      .poll(async () => ((await (await fetch(`${busy.origin}/health`)).json()) as { active_requests: number }).active_requests, { timeout: 10_000 })
      .toBe(0);
    const after = await client.chat.completions.create(body(P1));
    expect(after.choices).toHaveLength(1);
    await busy.close();
  });
});
