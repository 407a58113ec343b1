// --cache-bust on a server that cannot be flushed: a prefix cache that drifts log-probs on a hit
// ('cache-drift'), behind a transport with no flush endpoint. The same scenario replayed twice on the
// same server is masked the second time (both of its sends hit what the first replay cached); with a
// fresh nonce per history, each replay starts cold and fails again.
import { expect, test } from 'vitest';
import { replay } from '../src/api.ts';
import { httpTransport, FLUSH_PATH, type Transport } from '../src/harness/transport.ts';
import type { Scenario } from '../src/harness/scenario.ts';
import { FAKE_MODEL, useFakeServers } from './fake-server.ts';

const fresh = useFakeServers('bust.amnesia.test');

/** The fake as a server without a way to empty its caches: the flush endpoint is not there. */
function unflushable(baseUrl: string): () => Promise<{ transport: Transport; close(): Promise<void> }> {
  const inner = httpTransport(baseUrl);
  const notFound = async () => ({
    status: 404,
    headers: { 'content-type': 'application/json' },
    body: (async function* () {
      yield new TextEncoder().encode('{"error":{"message":"no such route","type":"invalid_request_error","param":null,"code":null}}');
    })(),
  });
  const transport: Transport = { name: baseUrl, send: (x) => inner.send(x), sendOrigin: (x) => (x.path === FLUSH_PATH ? notFound() : inner.sendOrigin(x)) };
  return async () => ({ transport, close: async () => {} });
}

const twice: Scenario = {
  name: 'same-request-twice',
  requests: {
    p: { model: FAKE_MODEL, messages: [{ role: 'user', content: 'Name a colour.' }], max_tokens: 8, temperature: 0, logprobs: true, top_logprobs: 2 },
  },
  steps: [{ send: 'p' }, { send: 'p' }],
};

test('without a flush, a second replay is masked by the first one’s cache; with --cache-bust it fails again', { timeout: 60_000 }, async () => {
  const plain = unflushable(fresh('cache-drift'));
  const first = await replay(twice, { target: plain });
  expect(first.violation).toMatchObject({ class: 'numeric-drift' });
  const second = await replay(twice, { target: plain });
  expect(second.ok).toBe(true); // the bug is there, but both sends hit the cache the first replay filled

  const busted = unflushable(fresh('cache-drift'));
  for (let k = 0; k < 2; k++) {
    const r = await replay(twice, { target: busted, cacheBust: true });
    expect(r.violation).toMatchObject({ class: 'numeric-drift' });
  }
});

test('the nonce goes first in the first message, the same within a history, and the report says how the check ran', { timeout: 60_000 }, async () => {
  const seen: string[] = [];
  const inner = httpTransport(fresh('correct'));
  const transport: Transport = {
    name: 'recording',
    send: (x) => {
      if (x.path === '/chat/completions' && x.body) seen.push(x.body);
      return inner.send(x);
    },
    sendOrigin: (x) => (x.path === FLUSH_PATH ? Promise.reject(new Error('no flush here')) : inner.sendOrigin(x)),
  };
  const r = await replay(twice, { target: async () => ({ transport, close: async () => {} }), cacheBust: true });
  expect(r.ok).toBe(true);
  const firsts = seen.slice(-2).map((b) => (JSON.parse(b) as { messages: Array<{ content: string }> }).messages[0]!.content);
  expect(firsts[0]).toMatch(/^\[[0-9a-f]{12}\] Name a colour\.$/);
  expect(firsts[1]).toBe(firsts[0]);
});
