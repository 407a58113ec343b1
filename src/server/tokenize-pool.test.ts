// The tokenize pool: the worker's ids are encodePieces' ids, the queue is bounded, and stop() ends
// a job mid-encode.
import { afterAll, describe, expect, test } from 'vitest';
import { encodePieces, Tok } from '../harmony/tokens.ts';
import { ApiError } from './api-error.ts';
import { TokenizePool, TokenizingStopped } from './tokenize-pool.ts';

/** A run without spaces: one pre-tokenizer piece, the slow case (about 1 s a megabyte). */
const noSpaces = (chars: number): string => {
  const words = ['bounded', 'work', 'per', 'request', 'the', 'of', 'tokens'];
  let s = '';
  for (let i = 0; s.length < chars; i++) s += words[(i * 5 + (i >> 2)) % words.length];
  return s.slice(0, chars);
};

describe('TokenizePool', () => {
  const pool = new TokenizePool({ workers: 1, maxQueue: 1 });
  afterAll(() => pool.stop());

  test('the same ids as encodePieces, and null over the limit', async () => {
    const pieces = [Tok.start, 'user', Tok.message, `héllo wörld 😀 ${noSpaces(3000)}`, Tok.end];
    const all = encodePieces(pieces)!;
    expect(await pool.encode(pieces, Infinity)).toEqual(all);
    expect(await pool.encode(pieces, all.length)).toEqual(all);
    expect(await pool.encode(pieces, all.length - 1)).toBeNull();
    expect(pool.running).toBe(0);
  });

  test('one worker busy and the queue full: the next job gets 429', async () => {
    const big = [noSpaces(300_000)];
    const first = pool.encode(big, Infinity);
    const second = pool.encode(big, Infinity);
    await expect(pool.encode(big, Infinity)).rejects.toSatisfy((e) => e instanceof ApiError && e.status === 429);
    expect(pool.running + pool.queued).toBe(2);
    expect((await first)!.length).toBeGreaterThan(10_000);
    expect(await second).toEqual(await first);
  });

  test('stop() ends a job mid-encode, and every later one', async () => {
    const own = new TokenizePool({ workers: 1 });
    const job = own.encode([noSpaces(4_000_000)], Infinity);
    await expect.poll(() => own.running).toBe(1);
    const queued = own.encode(['x'], Infinity);
    const ended = Promise.all([expect(job).rejects.toBeInstanceOf(TokenizingStopped), expect(queued).rejects.toBeInstanceOf(TokenizingStopped)]);
    await own.stop();
    await ended;
    await expect(own.encode(['x'], Infinity)).rejects.toBeInstanceOf(TokenizingStopped);
    expect(own.running).toBe(0);
  });
});
