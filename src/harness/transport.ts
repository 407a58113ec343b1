// How the harness reaches a target: one HTTP exchange at a time, with the response body as a byte
// stream (so a stream can be read chunk by chunk and cancelled midway). The harness ships the HTTP
// transport for any server; the embedded reference server brings its own (src/embedded/).

export interface Exchange {
  method: 'GET' | 'POST';
  /** Path under the target's base URL, e.g. `/chat/completions` or `/models`. */
  path: string;
  /** A body to send verbatim (JSON text, or deliberately malformed text). */
  body?: string;
  contentType?: string;
  signal?: AbortSignal;
}

export interface ExchangeResponse {
  status: number;
  headers: Record<string, string>;
  body: AsyncIterable<Uint8Array>;
}

export interface Transport {
  /** What the report calls the target, e.g. `http://127.0.0.1:8000/v1`. */
  readonly name: string;
  send(exchange: Exchange): Promise<ExchangeResponse>;
  /** Requests outside the OpenAI base path (the cache flush endpoint, /health). */
  sendOrigin(exchange: Exchange): Promise<ExchangeResponse>;
}

/** amnesia's cache flush endpoint, on the target's origin (the harness's cold runs; cold-runs.ts can stand in for it). */
export const FLUSH_PATH = '/admin/cache/flush';

/** The target could not be reached at all (exit code 3), as opposed to answering wrongly. */
export class UnreachableError extends Error {
  override name = 'UnreachableError';
}

const headersOf = (h: Headers): Record<string, string> => Object.fromEntries([...h.entries()].map(([k, v]) => [k.toLowerCase(), v]));

/** Any OpenAI-compatible server: `baseUrl` ends in /v1 (as OpenAI clients' baseURL does). */
export function httpTransport(baseUrl: string, apiKey?: string): Transport {
  const base = baseUrl.replace(/\/+$/, '');
  const origin = new URL(base).origin;
  const go = async (url: string, x: Exchange): Promise<ExchangeResponse> => {
    const headers: Record<string, string> = {};
    if (x.body !== undefined) headers['content-type'] = x.contentType ?? 'application/json';
    if (apiKey !== undefined) headers.authorization = `Bearer ${apiKey}`;
    let res: Response;
    try {
      res = await fetch(url, { method: x.method, headers, ...(x.body !== undefined ? { body: x.body } : {}), ...(x.signal ? { signal: x.signal } : {}) });
    } catch (e) {
      if ((e as Error).name === 'AbortError') throw e;
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new UnreachableError(`${url}: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
    }
    const body = res.body ?? (async function* () {})();
    return { status: res.status, headers: headersOf(res.headers), body: body as AsyncIterable<Uint8Array> };
  };
  return {
    name: base,
    send: (x) => go(`${base}${x.path}`, x),
    sendOrigin: (x) => go(`${origin}${x.path}`, x),
  };
}
