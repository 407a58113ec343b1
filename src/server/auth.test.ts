// `--api-key` is decided on the route fastify matched, not on the text of the request target: every
// encoding, case and absolute form of a path that reaches a route gets that route's decision. The
// requests go over bare sockets (raw-http.ts), so nothing normalises the request line on the way.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startLocalServer, type LocalServer } from './local-server.ts';
import { httpText, rawExchange, rawRequest, type RawResponse } from './raw-http.ts';

const KEY = 'sk-amnesia-test-key';
const CHAT = JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 1, seed: 1 });

let keyed: LocalServer;
let publicMetrics: LocalServer;
beforeAll(async () => {
  keyed = await startLocalServer({ model: 'tiny', apiKey: KEY });
  publicMetrics = await startLocalServer({ model: 'tiny', apiKey: KEY, publicMetrics: true });
});
afterAll(async () => {
  await keyed?.close();
  await publicMetrics?.close();
});

const portOf = (local: LocalServer) => Number(new URL(local.origin).port);

/** The Authorization header cases: the key, none, and several wrong ones. */
const AUTH = {
  key: `Bearer ${KEY}`,
  none: undefined,
  wrong: 'Bearer sk-wrong',
  prefix: `Bearer ${KEY.slice(0, -1)}`,
  longer: `Bearer ${KEY}x`,
  basic: `Basic ${Buffer.from(`user:${KEY}`).toString('base64')}`,
  bare: KEY,
} as const;
type AuthCase = keyof typeof AUTH;

interface Row {
  method: string;
  /** The request target as written on the request line; PORT becomes the server's port. */
  target: string;
  body?: string;
  /** Status with the right key. */
  status: number;
  /** Public rows answer the same without a key; all others get 401 without the right one. */
  isPublic?: boolean;
  /** A route to /metrics: public with --public-metrics. */
  metrics?: boolean;
}

const abs = (path: string) => `http://127.0.0.1:PORT${path}`;

// Each guarded route under several spellings that fastify routes to it, then targets that match no
// route (404 with the key, 401 without: no handler ever runs), then the public /health.
const ROWS: Row[] = [
  // GET /v1/models
  { method: 'GET', target: '/v1/models', status: 200 },
  { method: 'GET', target: '/%76%31/models', status: 200 },
  { method: 'GET', target: '/%761/models', status: 200 },
  { method: 'GET', target: '/v%31/%6d%6F%64els', status: 200 },
  { method: 'GET', target: '/v1/models?x=1&y', status: 200 },
  { method: 'GET', target: '/v1/models#frag', status: 200 },
  { method: 'GET', target: abs('/v1/models'), status: 200 },
  { method: 'GET', target: 'HTTP://evil.example/v1/models', status: 200 },
  { method: 'GET', target: abs('/%76%31/models'), status: 200 },
  { method: 'HEAD', target: '/v1/models', status: 200 },
  { method: 'HEAD', target: '/%76%31/models', status: 200 },
  // GET /v1/models/:id
  { method: 'GET', target: '/v1/models/gpt-oss-tiny', status: 200 },
  { method: 'GET', target: '/%76%31/models/%67pt-oss-tiny', status: 200 },
  { method: 'GET', target: '/v1/models/gpt-oss-tiny;x=1', status: 404 },
  { method: 'GET', target: '/v1/models/..', status: 404 },
  { method: 'GET', target: '/v1/models/%2e%2e%2fhealth', status: 404 },
  // POST /v1/chat/completions
  { method: 'POST', target: '/v1/chat/completions', body: CHAT, status: 200 },
  { method: 'POST', target: '/%76%31/chat/completions', body: CHAT, status: 200 },
  { method: 'POST', target: '/v1/chat/%63ompletions?stream=true', body: CHAT, status: 200 },
  { method: 'POST', target: abs('/v1/chat/completions'), body: CHAT, status: 200 },
  // POST /admin/cache/flush
  { method: 'POST', target: '/admin/cache/flush', status: 200 },
  { method: 'POST', target: '/%61dmin/cache/flush', status: 200 },
  { method: 'POST', target: '/admin/cache/flush?', status: 200 },
  { method: 'POST', target: abs('/admin/cache/flush'), status: 200 },
  // GET /metrics (behind the key unless --public-metrics)
  { method: 'GET', target: '/metrics', status: 200, metrics: true },
  { method: 'GET', target: '/%6detrics', status: 200, metrics: true },
  { method: 'GET', target: '/metrics?format=prometheus', status: 200, metrics: true },
  { method: 'GET', target: abs('/metrics'), status: 200, metrics: true },
  { method: 'HEAD', target: '/metrics', status: 200, metrics: true },
  // No route: never a handler, and no hint without the key.
  { method: 'GET', target: '/V1/models', status: 404 },
  { method: 'GET', target: '/v1/models/', status: 404 },
  { method: 'GET', target: '//v1/models', status: 404 },
  { method: 'GET', target: '/v1//models', status: 404 },
  { method: 'GET', target: '/v1/models;x=1', status: 404 },
  { method: 'GET', target: '/v1%2fmodels', status: 404 },
  { method: 'GET', target: '/./v1/models', status: 404 },
  { method: 'GET', target: '/x/../v1/models', status: 404 },
  { method: 'GET', target: '/v1/nope', status: 404 },
  { method: 'POST', target: '/v1/completions', body: CHAT, status: 404 },
  { method: 'GET', target: '/v1/chat/completions', status: 404 },
  { method: 'OPTIONS', target: '/v1/chat/completions', status: 404 },
  { method: 'OPTIONS', target: '*', status: 404 },
  { method: 'DELETE', target: '/admin/cache/flush', status: 404 },
  { method: 'GET', target: '/admin/cache/flush', status: 404 },
  { method: 'POST', target: '/admin/cache/flush/', status: 404 },
  { method: 'POST', target: '/ADMIN/cache/flush', status: 404 },
  { method: 'GET', target: '/metrics/', status: 404 },
  { method: 'GET', target: '/', status: 404 },
  // /health is public under every spelling.
  { method: 'GET', target: '/health', status: 200, isPublic: true },
  { method: 'GET', target: '/%68ealth?x=1', status: 200, isPublic: true },
  { method: 'GET', target: abs('/health'), status: 200, isPublic: true },
  { method: 'HEAD', target: '/health', status: 200, isPublic: true },
];

async function send(local: LocalServer, row: Row, auth: string | undefined): Promise<RawResponse> {
  const headers: Record<string, string> = {};
  if (auth !== undefined) headers.authorization = auth;
  if (row.body !== undefined) headers['content-type'] = 'application/json';
  const port = portOf(local);
  return rawRequest(port, httpText(row.method, row.target.replace('PORT', String(port)), headers, row.body));
}

function expectUnauthorized(res: RawResponse, what: string) {
  expect(res.status, what).toBe(401);
  if (res.body !== '') {
    expect(JSON.parse(res.body), what).toEqual({
      error: { message: expect.any(String), type: 'invalid_request_error', param: null, code: 'invalid_api_key' },
    });
  }
}

/** One row under every Authorization case; the outcome for each, to compare in one assertion. */
async function outcomes(local: LocalServer, row: Row, metricsPublic: boolean): Promise<void> {
  const isPublic = row.isPublic === true || (metricsPublic && row.metrics === true);
  for (const [name, auth] of Object.entries(AUTH) as [AuthCase, string | undefined][]) {
    const what = `${row.method} ${row.target} with ${name}`;
    const res = await send(local, row, auth);
    if (name === 'key' || isPublic) expect(res.status, what).toBe(row.status);
    else expectUnauthorized(res, what);
  }
}

describe('--api-key: the decision follows the matched route', () => {
  test.each(ROWS)('$method $target', async (row) => {
    await outcomes(keyed, row, false);
  });

  test('a request without the key never reaches a handler: the cache is not flushed, nothing is generated', async () => {
    const runtime = keyed.model.runtime;
    await send(keyed, { method: 'POST', target: '/v1/chat/completions', body: CHAT, status: 200 }, AUTH.key);
    const entries = runtime.cacheStats().entries;
    expect(entries).toBeGreaterThan(0);
    for (const target of ['/%61dmin/cache/flush', abs('/admin/cache/flush'), '/admin/cache/flush?x']) {
      expectUnauthorized(await send(keyed, { method: 'POST', target, status: 200 }, undefined), target);
    }
    expect(runtime.cacheStats().entries).toBe(entries);
  });

  test('the scheme is case-insensitive; the key is not', async () => {
    const row: Row = { method: 'GET', target: '/v1/models', status: 200 };
    expect((await send(keyed, row, `bearer ${KEY}`)).status).toBe(200);
    expect((await send(keyed, row, `BEARER  ${KEY}`)).status).toBe(200);
    expectUnauthorized(await send(keyed, row, `Bearer ${KEY.toUpperCase()}`), 'upper-case key');
    expectUnauthorized(await send(keyed, row, 'Bearer '), 'empty key');
  });
});

describe('other ways to reach a route', () => {
  test('an Upgrade request is an ordinary request (no upgrade handler): the key still decides', async () => {
    const port = portOf(keyed);
    const upgrade = (auth: Record<string, string>) =>
      rawRequest(port, httpText('GET', '/%76%31/models', { connection: 'Upgrade', upgrade: 'websocket', ...auth }), { keepOpen: true });
    expectUnauthorized(await upgrade({}), 'upgrade without the key');
    expect((await upgrade({ authorization: AUTH.key })).status).toBe(200);
  });

  test('HTTP/1.0 and pipelined requests get the same decision', async () => {
    const port = portOf(keyed);
    expectUnauthorized(await rawRequest(port, 'GET /%76%31/models HTTP/1.0\r\n\r\n'), 'HTTP/1.0');
    expect((await rawRequest(port, `GET /%76%31/models HTTP/1.0\r\nauthorization: ${AUTH.key}\r\n\r\n`)).status).toBe(200);
    const pipelined = [
      httpText('GET', '/v1/models', { connection: 'keep-alive', authorization: AUTH.key }),
      httpText('GET', '/%76%31/models', { connection: 'keep-alive' }),
      httpText('POST', abs('/admin/cache/flush').replace('PORT', String(port))),
    ].join('');
    const responses = await rawExchange(port, pipelined);
    expect(responses.map((r) => r.status)).toEqual([200, 401, 401]);
  });
});

describe('--public-metrics', () => {
  const metricsRows = ROWS.filter((r) => r.metrics === true || r.isPublic === true || /metrics/.test(r.target));

  test.each(metricsRows)('$method $target', async (row) => {
    await outcomes(publicMetrics, row, true);
  });

  test('leaves /v1 and /admin behind the key', async () => {
    for (const row of ROWS.filter((r) => /v1|admin|%76|%61/.test(r.target))) {
      expectUnauthorized(await send(publicMetrics, row, undefined), `${row.method} ${row.target}`);
    }
  });
});
