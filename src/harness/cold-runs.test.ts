// --flush-command and --extra-body, on a hand-made transport that records what reaches it.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { withExtraBody, withFlushCommand } from './cold-runs.ts';
import { FLUSH_PATH, type Exchange, type ExchangeResponse, type Transport } from './transport.ts';

function recorder(): Transport & { seen: Exchange[] } {
  const seen: Exchange[] = [];
  const answer = async (x: Exchange): Promise<ExchangeResponse> => {
    seen.push(x);
    return { status: 200, headers: {}, body: (async function* () {})() };
  };
  return { name: 'stub', seen, send: answer, sendOrigin: answer };
}

const text = async (r: ExchangeResponse) => {
  let s = '';
  for await (const c of r.body) s += new TextDecoder().decode(c);
  return s;
};

describe('withFlushCommand', () => {
  test('the command runs where the endpoint would be called: exit 0 is a flush, the target never sees the request', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'amnesia-flush-'));
    const inner = recorder();
    const t = withFlushCommand(inner, `echo flushed >> '${join(dir, 'log')}'`);
    expect((await t.sendOrigin({ method: 'POST', path: FLUSH_PATH, body: '{}' })).status).toBe(200);
    await t.sendOrigin({ method: 'POST', path: FLUSH_PATH, body: '{}' });
    expect(readFileSync(join(dir, 'log'), 'utf8')).toBe('flushed\nflushed\n');
    expect(inner.seen).toEqual([]);
    // Everything else goes through.
    await t.sendOrigin({ method: 'GET', path: '/health' });
    await t.send({ method: 'GET', path: '/models' });
    expect(inner.seen.map((x) => x.path)).toEqual(['/health', '/models']);
  });

  test('a failing or slow command is a 500 that says why', async () => {
    const failed = await withFlushCommand(recorder(), 'echo no cache here >&2; exit 3').sendOrigin({ method: 'POST', path: FLUSH_PATH });
    expect(failed.status).toBe(500);
    expect(JSON.parse(await text(failed)).error.message).toBe('the flush command failed (exit 3): no cache here');
    const slow = await withFlushCommand(recorder(), 'sleep 5', 100).sendOrigin({ method: 'POST', path: FLUSH_PATH });
    expect(JSON.parse(await text(slow)).error.message).toMatch(/^the flush command failed \(killed after 0.1 s\)/);
  });
});

describe('withExtraBody', () => {
  test('added to every chat request that is a JSON object, where it does not set the field; malformed bodies and other paths as they are', async () => {
    const inner = recorder();
    const t = withExtraBody(inner, { cache_prompt: false, temperature: 0 });
    await t.send({ method: 'POST', path: '/chat/completions', body: JSON.stringify({ messages: [], temperature: 1 }) });
    await t.send({ method: 'POST', path: '/chat/completions', body: '{"messages": [' });
    await t.send({ method: 'POST', path: '/chat/completions', body: '[1]' });
    await t.sendOrigin({ method: 'POST', path: FLUSH_PATH, body: '{}' });
    expect(inner.seen.map((x) => x.body)).toEqual(['{"cache_prompt":false,"temperature":1,"messages":[]}', '{"messages": [', '[1]', '{}']);
  });
});
