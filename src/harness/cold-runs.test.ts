// --flush-command and --extra-body, on a hand-made transport that records what reaches it.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { withExtraBody, withFlushCommand, withNonce } from './cold-runs.ts';
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

describe('withNonce', () => {
  const chat = (body: unknown) => ({ method: 'POST' as const, path: '/chat/completions', body: typeof body === 'string' ? body : JSON.stringify(body) });
  const firstContent = (x: Exchange) => (JSON.parse(x.body!) as { messages: Array<{ content: unknown }> }).messages[0]!.content;

  test('the first message starts with the nonce (text or parts); the same until renewed, then another', async () => {
    const inner = recorder();
    const { transport, renew } = withNonce(inner);
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'hi' },
    ];
    await transport.send(chat({ model: 'm', messages }));
    await transport.send(chat({ model: 'm', messages }));
    renew();
    await transport.send(chat({ model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] }));
    const [a, b, c] = inner.seen.map(firstContent);
    expect(a).toMatch(/^\[[0-9a-f]{12}\] Be brief\.$/);
    expect(b).toBe(a);
    const parts = c as Array<{ type: string; text: string }>;
    expect(parts[0]!.text).toMatch(/^\[[0-9a-f]{12}\] $/);
    expect(parts[0]!.text).not.toBe((a as string).slice(0, 15));
    expect(parts[1]).toEqual({ type: 'text', text: 'hi' });
    // Only the first message changes.
    expect((JSON.parse(inner.seen[0]!.body!) as { messages: unknown[] }).messages[1]).toEqual(messages[1]);
  });

  test('malformed bodies, bodies without messages and other paths go as they are', async () => {
    const inner = recorder();
    const { transport } = withNonce(inner);
    await transport.send(chat('{"messages": ['));
    await transport.send(chat({ model: 'm', messages: [] }));
    await transport.send(chat([1]));
    await transport.send({ method: 'GET', path: '/models' });
    await transport.sendOrigin({ method: 'POST', path: FLUSH_PATH, body: '{}' });
    expect(inner.seen.map((x) => x.body)).toEqual(['{"messages": [', '{"model":"m","messages":[]}', '[1]', undefined, '{}']);
  });
});
