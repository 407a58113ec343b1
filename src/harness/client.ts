// Sends chat requests through a transport and records exactly what came back: status, the JSON
// body or every SSE event, whether the stream ended with [DONE], cancellation, and timing. Nothing
// is interpreted here (answer.ts does that), so a recorded history can be checked again offline.
import { createParser } from 'eventsource-parser';
import type { Transport } from './transport.ts';

export interface ChatCall {
  /** The request body as sent (for a stream call, `stream`/`stream_options` are added on top). */
  body: Record<string, unknown>;
  stream: boolean;
  /** Cancel a stream after this many events (the client goes away). */
  cancelAfter?: number;
  /** Sent verbatim instead of `body` (a malformed request). */
  raw?: string;
}

export interface Observation {
  status: number;
  /** The parsed JSON body: the completion, or an error envelope. */
  json?: unknown;
  /** The parsed `data:` payloads of a stream, in order, without `[DONE]`. */
  events?: unknown[];
  /** The stream ended with `data: [DONE]`. */
  done?: boolean;
  cancelled: boolean;
  /** A framing problem: a body that is not JSON, an SSE payload that is not JSON. */
  problem?: string;
  /** Milliseconds since the client was created. */
  started: number;
  ended: number;
}

export interface ClientOptions {
  /** Ask for the usage chunk in streams (when the target supports stream_options). */
  includeUsage: boolean;
  /** Per-request time limit, ms. */
  timeoutMs: number;
}

const decoder = () => new TextDecoder();

export class ChatClient {
  private readonly epoch = performance.now();

  constructor(
    readonly transport: Transport,
    private readonly options: ClientOptions = { includeUsage: true, timeoutMs: 120_000 },
  ) {}

  private now(): number {
    return Math.round((performance.now() - this.epoch) * 1000) / 1000;
  }

  /** The request exactly as sent for a call. */
  wireBody(call: ChatCall): Record<string, unknown> {
    if (!call.stream) return call.body;
    return { ...call.body, stream: true, ...(this.options.includeUsage ? { stream_options: { include_usage: true } } : {}) };
  }

  async chat(call: ChatCall): Promise<Observation> {
    const started = this.now();
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error(`no complete answer within ${this.options.timeoutMs} ms`)), this.options.timeoutMs);
    try {
      const res = await this.transport.send({
        method: 'POST',
        path: '/chat/completions',
        body: JSON.stringify(this.wireBody(call)),
        signal: controller.signal,
      });
      const isStream = (res.headers['content-type'] ?? '').startsWith('text/event-stream');
      if (!isStream) return this.jsonObservation(res.status, await readAll(res.body), started);
      const obs: Observation = { status: res.status, events: [], done: false, cancelled: false, started, ended: started };
      const parser = createParser({
        onEvent: (e) => {
          if (e.data === '[DONE]') {
            obs.done = true;
            return;
          }
          try {
            const payload = JSON.parse(e.data) as unknown;
            obs.events!.push(e.event === 'error' && !hasError(payload) ? { error: payload } : payload);
          } catch {
            obs.problem ??= `an SSE event is not JSON: ${JSON.stringify(e.data.slice(0, 200))}`;
          }
        },
      });
      const text = decoder();
      try {
        for await (const bytes of res.body) {
          parser.feed(text.decode(bytes, { stream: true }));
          if (call.cancelAfter !== undefined && obs.events!.length >= call.cancelAfter && !obs.done) {
            // The client goes away: the connection closes, and the server should stop generating.
            obs.cancelled = true;
            controller.abort();
            break;
          }
        }
      } catch (e) {
        // Leaving the body after the abort rejects with AbortError (fetch); that is the cancel itself.
        if (!obs.cancelled) throw e;
      }
      obs.ended = this.now();
      return obs;
    } catch (e) {
      if (controller.signal.aborted && controller.signal.reason instanceof Error) throw controller.signal.reason;
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /** A raw body (malformed on purpose): status and parsed JSON body, if any. */
  async raw(body: string, contentType = 'application/json'): Promise<Observation> {
    const started = this.now();
    const res = await this.transport.send({ method: 'POST', path: '/chat/completions', body, contentType });
    return this.jsonObservation(res.status, await readAll(res.body), started);
  }

  private jsonObservation(status: number, text: string, started: number): Observation {
    const obs: Observation = { status, cancelled: false, started, ended: this.now() };
    try {
      obs.json = JSON.parse(text);
    } catch {
      obs.problem = `the body is not JSON: ${JSON.stringify(text.slice(0, 200))}`;
    }
    return obs;
  }

  /** Empties the target's prefix cache; false if it has no such endpoint. */
  async flush(): Promise<boolean> {
    const res = await this.transport.sendOrigin({ method: 'POST', path: '/admin/cache/flush', body: '{}' });
    await readAll(res.body);
    return res.status >= 200 && res.status < 300;
  }

  /** The ids of /v1/models, or undefined if the target does not list models. */
  async models(): Promise<string[] | undefined> {
    const res = await this.transport.send({ method: 'GET', path: '/models' });
    const text = await readAll(res.body);
    if (res.status !== 200) return undefined;
    try {
      const data = (JSON.parse(text) as { data?: Array<{ id?: unknown }> }).data;
      return Array.isArray(data) ? data.map((m) => String(m.id)) : undefined;
    } catch {
      return undefined;
    }
  }
}

const hasError = (v: unknown) => typeof v === 'object' && v !== null && 'error' in v;

async function readAll(body: AsyncIterable<Uint8Array>): Promise<string> {
  const text = decoder();
  let out = '';
  for await (const bytes of body) out += text.decode(bytes, { stream: true });
  return out + text.decode();
}
