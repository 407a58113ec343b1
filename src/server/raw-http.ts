// Test support: HTTP/1.1 over a bare `node:net` socket, so that a request line, a header or a body
// reaches the server exactly as written (fetch and undici normalise targets, refuse bad headers and
// set Content-Length themselves).
import { connect } from 'node:net';

export interface RawResponse {
  status: number;
  /** Lower-case names; a repeated header keeps its last value. */
  headers: Record<string, string>;
  body: string;
}

/**
 * The first response in `bytes` (Content-Length or chunked framing; no body for a HEAD request);
 * null while it is incomplete.
 */
export function parseResponse(bytes: Buffer, head = false): RawResponse | null {
  return parseOne(bytes, head)?.response ?? null;
}

function parseOne(bytes: Buffer, head: boolean): { response: RawResponse; used: number } | null {
  const end = bytes.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const [statusLine, ...lines] = bytes.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1]);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let rest = bytes.subarray(end + 4);
  if (head) return { response: { status, headers, body: '' }, used: end + 4 };
  if (headers['transfer-encoding'] === 'chunked') {
    const parts: Buffer[] = [];
    for (;;) {
      const eol = rest.indexOf('\r\n');
      if (eol < 0) return null;
      const size = parseInt(rest.subarray(0, eol).toString('latin1'), 16);
      if (size === 0) break;
      if (rest.length < eol + 2 + size + 2) return null;
      parts.push(rest.subarray(eol + 2, eol + 2 + size));
      rest = rest.subarray(eol + 2 + size + 2);
    }
    const last = rest.indexOf('\r\n\r\n');
    if (last < 0) return null;
    const used = bytes.length - rest.length + last + 4;
    return { response: { status, headers, body: Buffer.concat(parts).toString('utf8') }, used };
  }
  const length = Number(headers['content-length'] ?? 0);
  if (rest.length < length) return null;
  return { response: { status, headers, body: rest.subarray(0, length).toString('utf8') }, used: end + 4 + length };
}

/** Every complete response in `bytes`, in order (none of them to a HEAD request). */
export function parseResponses(bytes: Buffer): RawResponse[] {
  const out: RawResponse[] = [];
  for (let one = parseOne(bytes, false); one !== null; one = parseOne(bytes, false)) {
    out.push(one.response);
    bytes = bytes.subarray(one.used);
  }
  return out;
}

/** Sends `bytes` (several pipelined requests, say) and parses every response until the server closes. */
export function rawExchange(port: number, bytes: string | Buffer, timeoutMs = 10_000): Promise<RawResponse[]> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(parseResponses(Buffer.concat(chunks)));
    };
    const timer = setTimeout(finish, timeoutMs);
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('close', finish);
    socket.on('error', () => undefined);
    socket.write(bytes);
  });
}

/**
 * Sends `request` as is and reads the first response. It waits for the socket to close unless
 * `keepOpen` (then the first complete response is enough), so a request without `Connection:
 * close` should pass it. Rejects when no complete response arrives within `timeoutMs`.
 */
export function rawRequest(port: number, text: string | Buffer, options: { timeoutMs?: number; keepOpen?: boolean } = {}): Promise<RawResponse> {
  const request = Buffer.from(text);
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const head = request.subarray(0, 5).toString('latin1') === 'HEAD ';
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      const response = parseResponse(Buffer.concat(chunks), head);
      if (response) resolve(response);
      else reject(new Error(`no complete response; got ${JSON.stringify(Buffer.concat(chunks).toString('latin1').slice(0, 300))}`));
    };
    const timer = setTimeout(finish, options.timeoutMs ?? 10_000);
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      if (options.keepOpen && parseResponse(Buffer.concat(chunks), head)) finish();
    });
    socket.on('close', finish);
    socket.on('error', () => undefined);
    socket.write(request);
  });
}

/** A request with `Host` and `Connection: close`, and Content-Length for a body. */
export function httpText(method: string, target: string, headers: Record<string, string> = {}, body?: string): string {
  const all: Record<string, string> = { host: 'localhost', connection: 'close', ...headers };
  if (body !== undefined && all['content-length'] === undefined) all['content-length'] = String(Buffer.byteLength(body));
  const head = Object.entries(all)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return `${method} ${target} HTTP/1.1\r\n${head}\r\n${body ?? ''}`;
}
