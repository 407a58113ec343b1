// Errors raised before a route runs — by Node's HTTP parser (the server's `clientError` event), by
// fastify before routing (frameworkErrors) or while reading the body — get the OpenAI envelope like
// every other error, and leave the server answering the next request normally. Bare sockets
// (raw-http.ts), so each malformed request reaches the server exactly as written.
import { gzipSync, deflateSync, brotliCompressSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startLocalServer, type LocalServer } from './local-server.ts';
import { httpText, rawExchange, rawRequest, type RawResponse } from './raw-http.ts';

const BODY_LIMIT = 64 * 1024;
const CHAT = JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 1, seed: 1 });

let local: LocalServer;
let port: number;
beforeAll(async () => {
  local = await startLocalServer({ model: 'tiny', bodyLimit: BODY_LIMIT });
  port = Number(new URL(local.origin).port);
});
afterAll(async () => local?.close());

function expectEnvelope(res: RawResponse, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = JSON.parse(res.body) as { error: Record<string, unknown> };
  expect(Object.keys(body)).toEqual(['error']);
  expect(body.error).toEqual({ message: expect.any(String), type: 'invalid_request_error', param: null, code });
  expect(body.error.message).not.toBe('');
}

/** The server still answers a good request (on a fresh connection) after a bad one. */
async function expectHealthy() {
  const health = await rawRequest(port, httpText('GET', '/health'));
  expect(health.status).toBe(200);
  expect(JSON.parse(health.body)).toMatchObject({ status: 'ok' });
  const chat = await rawRequest(port, httpText('POST', '/v1/chat/completions', { 'content-type': 'application/json' }, CHAT));
  expect(chat.status).toBe(200);
  expect(JSON.parse(chat.body)).toMatchObject({ object: 'chat.completion' });
}

const chatPost = (headers: Record<string, string>, body: string | Buffer): Buffer => {
  const bytes = Buffer.from(body);
  const head = httpText('POST', '/v1/chat/completions', { 'content-type': 'application/json', 'content-length': String(bytes.length), ...headers });
  return Buffer.concat([Buffer.from(head), bytes]);
};

interface Case {
  name: string;
  request: string | Buffer;
  status: number;
  code: string;
}

const CASES: Case[] = [
  // Node's parser (clientError)
  { name: 'headers over 16 KiB', request: httpText('GET', '/health', { 'x-big': 'a'.repeat(20_000) }), status: 431, code: 'request_header_fields_too_large' },
  { name: 'garbage request line', request: 'GARBAGE\r\n\r\n', status: 400, code: 'malformed_request' },
  { name: 'unknown method', request: 'FETCH /health HTTP/1.1\r\nhost: x\r\n\r\n', status: 400, code: 'malformed_request' },
  { name: 'space in the target', request: 'GET /he alth HTTP/1.1\r\nhost: x\r\n\r\n', status: 400, code: 'malformed_request' },
  { name: 'bad HTTP version', request: 'GET /health HTTP/9.9\r\nhost: x\r\n\r\n', status: 400, code: 'malformed_request' },
  { name: 'a TLS ClientHello on the plain port', request: Buffer.from('16030100a5010000a10303', 'hex'), status: 400, code: 'malformed_request' },
  { name: 'a header name with a space', request: 'GET /health HTTP/1.1\r\nhost: x\r\nbad name: v\r\n\r\n', status: 400, code: 'malformed_request' },
  { name: 'non-numeric Content-Length', request: chatPost({ 'content-length': 'abc' }, CHAT), status: 400, code: 'invalid_content_length' },
  { name: 'negative Content-Length', request: chatPost({ 'content-length': '-1' }, CHAT), status: 400, code: 'invalid_content_length' },
  {
    name: 'two different Content-Lengths',
    request: `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${CHAT.length}\r\ncontent-length: 2\r\n\r\n${CHAT}`,
    status: 400,
    code: 'invalid_content_length',
  },
  {
    name: 'Content-Length with Transfer-Encoding: chunked',
    request: `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n`,
    status: 400,
    code: 'invalid_transfer_encoding',
  },
  {
    name: 'a bad chunk size',
    request: `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
    status: 400,
    code: 'invalid_transfer_encoding',
  },
  // Node, answered through our listeners instead of an empty response or a dropped connection
  { name: 'HTTP/1.1 without Host', request: 'GET /health HTTP/1.1\r\nconnection: close\r\n\r\n', status: 400, code: 'missing_host_header' },
  {
    name: 'Expect other than 100-continue',
    request: httpText('POST', '/v1/chat/completions', { 'content-type': 'application/json', expect: 'teapot' }, CHAT),
    status: 417,
    code: 'expectation_failed',
  },
  { name: 'CONNECT', request: 'CONNECT 127.0.0.1:80 HTTP/1.1\r\nhost: 127.0.0.1:80\r\n\r\n', status: 405, code: 'method_not_allowed' },
  // fastify before routing (frameworkErrors)
  { name: 'bad percent-encoding', request: httpText('GET', '/%zz'), status: 400, code: 'invalid_url' },
  { name: 'bad percent-encoding in a guarded route', request: httpText('GET', '/v1/models/%E0%A4%A'), status: 400, code: 'invalid_url' },
  { name: 'a path parameter over 100 characters', request: httpText('GET', `/v1/models/${'a'.repeat(200)}`), status: 414, code: 'uri_too_long' },
  // fastify reading the body
  { name: 'gzip body', request: chatPost({ 'content-encoding': 'gzip' }, gzipSync(CHAT)), status: 415, code: 'unsupported_content_encoding' },
  { name: 'deflate body', request: chatPost({ 'content-encoding': 'deflate' }, deflateSync(CHAT)), status: 415, code: 'unsupported_content_encoding' },
  { name: 'br body', request: chatPost({ 'content-encoding': 'br' }, brotliCompressSync(CHAT)), status: 415, code: 'unsupported_content_encoding' },
  { name: 'gzip, identity', request: chatPost({ 'content-encoding': 'gzip, identity' }, gzipSync(CHAT)), status: 415, code: 'unsupported_content_encoding' },
  { name: 'invalid JSON', request: chatPost({}, '{"messages": ['), status: 400, code: 'invalid_json' },
  { name: 'a __proto__ key', request: chatPost({}, '{"messages":[],"__proto__":{"x":1}}'), status: 400, code: 'invalid_json' },
  { name: 'a body over the limit (Content-Length)', request: chatPost({}, `{"pad":"${'x'.repeat(BODY_LIMIT)}"}`), status: 413, code: 'request_too_large' },
  {
    name: 'a body over the limit (chunked)',
    request: `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n${(BODY_LIMIT + 10).toString(16)}\r\n${'x'.repeat(BODY_LIMIT + 10)}\r\n0\r\n\r\n`,
    status: 413,
    code: 'request_too_large',
  },
  { name: 'a body that is not JSON', request: chatPost({ 'content-type': 'text/plain' }, 'hello'), status: 415, code: 'unsupported_media_type' },
  { name: 'an invalid Content-Type', request: chatPost({ 'content-type': '/;;' }, CHAT), status: 415, code: 'unsupported_media_type' },
];

describe('framework errors get the envelope; the server carries on', () => {
  test.each(CASES)('$name → $status $code', async ({ request, status, code }) => {
    expectEnvelope(await rawRequest(port, request), status, code);
    await expectHealthy();
  });

  test('Content-Encoding identity is accepted', async () => {
    const res = await rawRequest(port, chatPost({ 'content-encoding': 'identity' }, CHAT));
    expect(res.status).toBe(200);
  });

  test('HTTP/1.0 without Host is fine', async () => {
    const res = await rawRequest(port, 'GET /health HTTP/1.0\r\n\r\n');
    expect(res.status).toBe(200);
  });

  test('a Content-Length longer than the body, then the client hangs up: nothing breaks', async () => {
    await rawRequest(port, chatPost({ 'content-length': String(CHAT.length + 50) }, CHAT), { timeoutMs: 300 }).catch(() => undefined);
    await expectHealthy();
  });

  test('on a kept-alive connection, an ordinary error leaves the connection usable', async () => {
    const keepAlive = { connection: 'keep-alive' };
    // Pipelined on one socket: each failure is answered in turn, and so is each good request. (An
    // error while reading a body closes the connection instead: the rest of it is unread.)
    const responses = await rawExchange(
      port,
      [
        httpText('POST', '/v1/chat/completions', { ...keepAlive, 'content-type': 'application/json' }, '{"messages":[]}'),
        httpText('GET', '/health', keepAlive),
        httpText('GET', '/v1/nope', keepAlive),
        httpText('GET', '/%zz', keepAlive),
        httpText('GET', '/health'),
      ].join(''),
    );
    expect(responses.map((r) => r.status)).toEqual([400, 200, 404, 400, 200]);
    expect(JSON.parse(responses[0]!.body).error.code).toBe('invalid_value');
    expect(JSON.parse(responses[2]!.body).error.code).toBe('not_found');
    expectEnvelope(responses[3]!, 400, 'invalid_url');
  });
});
