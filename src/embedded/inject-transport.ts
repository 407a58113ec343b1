// A Transport into a fastify app without sockets (fastify's inject), the body streamed as it is
// written: a server in this process, as the harness benchmark measures it (bench/harness.bench.ts).
// The embedded target itself runs in child processes (child-target.ts).
import type { FastifyInstance } from 'fastify';
import type { ExchangeResponse, Exchange, Transport } from '../harness/transport.ts';

/**
 * The embedded server without sockets: fastify's inject, the body streamed as it is written.
 * `app` may be a function, for a server that is restarted between histories.
 */
export function injectTransport(app: FastifyInstance | (() => FastifyInstance), name = 'in-process'): Transport {
  const current = typeof app === 'function' && !('inject' in app) ? app : () => app as FastifyInstance;
  const go = async (url: string, x: Exchange): Promise<ExchangeResponse> => {
    const res = await current().inject({
      method: x.method,
      url,
      ...(x.body !== undefined ? { payload: x.body, headers: { 'content-type': x.contentType ?? 'application/json' } } : {}),
      ...(x.signal ? { signal: x.signal } : {}),
      payloadAsStream: true,
    });
    // inject does not tell the server when an aborted request goes away: close the server's side of
    // the response ourselves, as a dropped socket would, so the server cancels the generation.
    x.signal?.addEventListener('abort', () => res.raw.res.destroy(), { once: true });
    const headers = Object.fromEntries(Object.entries(res.headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
    return { status: res.statusCode, headers, body: res.stream() as AsyncIterable<Uint8Array> };
  };
  return { name, send: (x) => go(`/v1${x.path}`, x), sendOrigin: (x) => go(x.path, x) };
}
