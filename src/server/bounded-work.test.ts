// Bounded work per request: a megabyte prompt is tokenized in a worker thread while /health is
// answered, and a prompt that cannot fit the context is refused before any merging.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startLocalServer, type LocalServer } from './local-server.ts';
import { sharedTokenizePool } from './tokenize-pool.ts';

/** A run without spaces: one pre-tokenizer piece, the case that was quadratic (about 1 s a megabyte now). */
function noSpaces(chars: number): string {
  const words = ['bounded', 'work', 'per', 'request', 'the', 'of', 'tokens'];
  let s = '';
  for (let i = 0; s.length < chars; i++) s += words[(i * 5 + (i >> 2)) % words.length];
  return s.slice(0, chars);
}

let local: LocalServer;
beforeAll(async () => {
  local = await startLocalServer({ model: 'tiny' });
});
afterAll(async () => local?.close());

const post = (body: unknown) =>
  fetch(`${local.baseUrl}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('bounded work per request', () => {
  test('/health answers while a 1 MB prompt without spaces is being tokenized', async () => {
    const pool = sharedTokenizePool();
    const order: string[] = [];
    // 1 MB is about 250K tokens: more than the context (131,072), found only by encoding it all.
    const big = post({ model: local.modelId, messages: [{ role: 'user', content: noSpaces(2 ** 20) }], max_tokens: 4 }).then(async (res) => {
      order.push('big');
      return { status: res.status, body: (await res.json()) as { error: { code: string; param: string } } };
    });
    await expect.poll(() => pool.running, { timeout: 30_000, interval: 5 }).toBe(1);
    const health = await fetch(`${local.origin}/health`);
    order.push('health');
    expect(health.status).toBe(200);
    // The tokenizing goes on: the health check was answered in the middle of it.
    expect(pool.running).toBe(1);
    const answer = await big;
    expect(order).toEqual(['health', 'big']);
    expect(answer.status).toBe(400);
    expect(answer.body.error.code).toBe('context_length_exceeded');
    expect(answer.body.error.param).toBe('messages');
  });

  test('a prompt that cannot fit is refused before tokenizing: more UTF-8 bytes than context × 128', async () => {
    const own = await startLocalServer({ model: 'tiny', runtime: { contextLength: 1024 } });
    try {
      const res = await fetch(`${own.baseUrl}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: own.modelId, messages: [{ role: 'user', content: noSpaces(200_000) }] }),
      });
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(res.status).toBe(400);
      expect(body.error.code).toBe('context_length_exceeded');
      expect(body.error.message).toMatch(/^the prompt is at least \d+ tokens; the context holds 1024$/);
    } finally {
      await own.close();
    }
  });

  test('a prompt just over the context, found while tokenizing, and one that fits', async () => {
    const own = await startLocalServer({ model: 'tiny', runtime: { contextLength: 256 } });
    try {
      const ask = async (content: string) => {
        const res = await fetch(`${own.baseUrl}/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: own.modelId, messages: [{ role: 'user', content }], max_tokens: 1 }),
        });
        return { status: res.status, body: (await res.json()) as { error?: { code: string; message: string }; usage?: { prompt_tokens: number } } };
      };
      const over = await ask('word '.repeat(400));
      expect(over.status).toBe(400);
      expect(over.body.error?.message).toBe('the prompt is more than 255 tokens; the context holds 256');
      const fits = await ask('word '.repeat(20));
      expect(fits.status).toBe(200);
      expect(fits.body.usage!.prompt_tokens).toBeLessThan(256);
    } finally {
      await own.close();
    }
  });
});
