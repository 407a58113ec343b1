// Sends chat requests through a transport and records exactly what came back: status, the JSON
// body or every SSE event, whether the stream ended with [DONE], cancellation, and timing. Nothing
// is interpreted here (answer.ts does that), so a recorded history can be checked again offline.
import { createParser } from 'eventsource-parser';
import { FLUSH_PATH, type Exchange, type Transport } from './transport.ts';

export interface ChatCall {
  /** The request body as sent (for a stream call, `stream`/`stream_options` are added on top). */
  body: Record<string, unknown>;
  stream: boolean;
  /** Cancel a stream after this many events (the client goes away). */
  cancelAfter?: number;
  /** Sent verbatim instead of `body` (a malformed request). */
  raw?: string;
  /** How many requests of a burst went out together with this one (itself included); 1 alone. */
  burst?: number;
}

export interface Observation {
  /** The HTTP status; 0 when no response came (a request that timed out before its headers). */
  status: number;
  /** The parsed JSON body: the completion, or an error envelope. */
  json?: unknown;
  /** The parsed `data:` payloads of a stream, in order, without `[DONE]`. */
  events?: unknown[];
  /** The stream ended with `data: [DONE]`. */
  done?: boolean;
  /** The stream asked for the usage chunk (`stream_options.include_usage`, the client's or the body's own). */
  usageAsked?: boolean;
  cancelled: boolean;
  /**
   * No complete answer came within `deadlineMs` (the client gave up and went away): a hang, which
   * the deadline rule reports. What did come (the status, the stream's first events) is kept.
   */
  timedOut?: boolean;
  /** The request's deadline, ms (set on a request that timed out, or a stream left at it). */
  deadlineMs?: number;
  /**
   * A stream the client meant to abandon after `cancelAfter` events went away at its deadline with
   * fewer (set with `cancelled`): the server was answering but kept tokens back, which is no hang.
   */
  leftAtDeadline?: boolean;
  /** A framing problem: a body that is not JSON, an SSE payload that is not JSON. */
  problem?: string;
  /** Milliseconds since the client was created. */
  started: number;
  ended: number;
}

export interface ClientOptions {
  /** Ask for the usage chunk in streams (when the target supports stream_options). */
  includeUsage: boolean;
  /** Per-request deadline, ms: the whole exchange, body included. */
  timeoutMs: number;
  /** A deadline per call instead (its budget, its burst), ms; `timeoutMs` where it gives none. */
  deadlineOf?: (call: ChatCall) => number;
  /**
   * A request past its deadline: recorded as an observation with `timedOut` (default; a hang is a
   * verdict), or thrown as a DeadlineError (the probe, which has no verdict to give).
   */
  onTimeout?: 'record' | 'throw';
}

/** A request got no complete answer within its deadline (thrown only with `onTimeout: 'throw'`). */
export class DeadlineError extends Error {
  override name = 'DeadlineError';
}

const decoder = () => new TextDecoder();

/** What a deadline race resolves to when the deadline wins. */
const EXPIRED = Symbol('deadline');

/**
 * A deadline for one exchange. `race` settles with EXPIRED once it passes, whatever the transport
 * does with the abort signal: a transport that ignores it cannot make the harness hang.
 */
class Deadline {
  readonly controller = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly expired: Promise<typeof EXPIRED>;
  passed = false;

  constructor(readonly ms: number) {
    this.expired = new Promise((resolve) => {
      this.timer = setTimeout(() => {
        this.passed = true;
        this.controller.abort(new DeadlineError(`no complete answer within ${ms} ms`));
        resolve(EXPIRED);
      }, ms);
    });
  }

  race<T>(p: Promise<T>): Promise<T | typeof EXPIRED> {
    // The loser may still settle (an aborted fetch rejects): nobody is waiting for it any more.
    p.catch(() => {});
    return Promise.race([p, this.expired]);
  }

  clear(): void {
    clearTimeout(this.timer);
  }
}

export class ChatClient {
  private readonly epoch = performance.now();
  /** Requests that timed out so far (the check notes a target that hung). */
  timeouts = 0;

  constructor(
    readonly transport: Transport,
    readonly options: ClientOptions = { includeUsage: true, timeoutMs: 120_000 },
  ) {}

  private now(): number {
    return Math.round((performance.now() - this.epoch) * 1000) / 1000;
  }

  /** The request exactly as sent for a call. */
  wireBody(call: ChatCall): Record<string, unknown> {
    if (!call.stream) return call.body;
    return { ...call.body, stream: true, ...(this.options.includeUsage ? { stream_options: { include_usage: true } } : {}) };
  }

  /**
   * What a request that ran out of time leaves: what came, flagged; or the error, for the probe.
   * A stream the client was going to abandon anyway, which has begun (an event came), is left there
   * instead: the server may keep any number of tokens back between events (harmony headers,
   * reasoning it does not stream, a tool call buffered until complete), so only a stream that sent
   * nothing is a hang; the requests after it show whatever it left behind.
   */
  private expired(obs: Observation, deadline: Deadline, call?: ChatCall): Observation {
    if (call?.cancelAfter !== undefined && (obs.events?.length ?? 0) > 0) {
      return { ...obs, cancelled: true, leftAtDeadline: true, deadlineMs: deadline.ms, ended: this.now() };
    }
    this.timeouts++;
    if (this.options.onTimeout === 'throw') throw new DeadlineError(`no complete answer within ${deadline.ms} ms`);
    return { ...obs, timedOut: true, deadlineMs: deadline.ms, ended: this.now() };
  }

  async chat(call: ChatCall): Promise<Observation> {
    const started = this.now();
    const deadline = new Deadline(this.options.deadlineOf?.(call) ?? this.options.timeoutMs);
    const { controller } = deadline;
    let obs: Observation = { status: 0, cancelled: false, started, ended: started };
    try {
      const wire = this.wireBody(call);
      const res = await deadline.race(
        this.transport.send({ method: 'POST', path: '/chat/completions', body: JSON.stringify(wire), signal: controller.signal }),
      );
      if (res === EXPIRED) return this.expired(obs, deadline);
      obs.status = res.status;
      const isStream = (res.headers['content-type'] ?? '').startsWith('text/event-stream');
      if (!isStream) {
        const text = await deadline.race(readAll(res.body));
        if (text === EXPIRED) return this.expired(obs, deadline);
        return this.jsonObservation(res.status, text, started);
      }
      const options = wire.stream_options as { include_usage?: unknown } | undefined;
      obs = { ...obs, events: [], done: false, ...(call.stream ? { usageAsked: options?.include_usage === true } : {}) };
      const events = obs.events!;
      const parser = createParser({
        onEvent: (e) => {
          // Gone after `cancelAfter` events: what came in the same read after them is not seen (a
          // network that delivers several events at once must not change what the client saw).
          if (call.cancelAfter !== undefined && events.length >= call.cancelAfter) return;
          if (e.data === '[DONE]') {
            obs.done = true;
            return;
          }
          try {
            const payload = JSON.parse(e.data) as unknown;
            events.push(e.event === 'error' && !hasError(payload) ? { error: payload } : payload);
          } catch {
            obs.problem ??= `an SSE event is not JSON: ${JSON.stringify(e.data.slice(0, 200))}`;
          }
        },
      });
      const text = decoder();
      const chunks = res.body[Symbol.asyncIterator]();
      try {
        for (;;) {
          const next = await deadline.race(chunks.next());
          if (next === EXPIRED) {
            void Promise.resolve(chunks.return?.()).catch(() => {});
            return this.expired(obs, deadline, call);
          }
          if (next.done) break;
          parser.feed(text.decode(next.value, { stream: true }));
          if (call.cancelAfter !== undefined && events.length >= call.cancelAfter) {
            // The client goes away: the connection closes, and the server should stop generating.
            obs.cancelled = true;
            controller.abort();
            void Promise.resolve(chunks.return?.()).catch(() => {});
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
      if (deadline.passed) return this.expired(obs, deadline, call);
      throw e;
    } finally {
      deadline.clear();
    }
  }

  /** A raw body (malformed on purpose): status and parsed JSON body, if any. */
  async raw(body: string, contentType = 'application/json'): Promise<Observation> {
    const started = this.now();
    const deadline = new Deadline(this.options.timeoutMs);
    const obs: Observation = { status: 0, cancelled: false, started, ended: started };
    try {
      const res = await deadline.race(
        this.transport.send({ method: 'POST', path: '/chat/completions', body, contentType, signal: deadline.controller.signal }),
      );
      if (res === EXPIRED) return this.expired(obs, deadline);
      obs.status = res.status;
      const text = await deadline.race(readAll(res.body));
      if (text === EXPIRED) return this.expired(obs, deadline);
      return this.jsonObservation(res.status, text, started);
    } catch (e) {
      if (deadline.passed) return this.expired(obs, deadline);
      throw e;
    } finally {
      deadline.clear();
    }
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

  /** A request outside the chat endpoint, under the same deadline; past it, a DeadlineError. */
  private async exchange(what: string, x: Exchange, origin: boolean): Promise<{ status: number; text: string }> {
    const deadline = new Deadline(this.options.timeoutMs);
    const fail = () => {
      this.timeouts++;
      return new DeadlineError(`${what} got no answer within ${deadline.ms} ms`);
    };
    try {
      const send = origin ? this.transport.sendOrigin(x) : this.transport.send(x);
      const res = await deadline.race(send);
      if (res === EXPIRED) throw fail();
      const text = await deadline.race(readAll(res.body));
      if (text === EXPIRED) throw fail();
      return { status: res.status, text };
    } catch (e) {
      if (deadline.passed && !(e instanceof DeadlineError)) throw fail();
      throw e;
    } finally {
      deadline.clear();
    }
  }

  /** Empties the target's prefix cache; false if it has no such endpoint. */
  async flush(): Promise<boolean> {
    const res = await this.exchange('the cache flush', { method: 'POST', path: FLUSH_PATH, body: '{}' }, true);
    return res.status >= 200 && res.status < 300;
  }

  /** The ids of /v1/models, or undefined if the target does not list models. */
  async models(): Promise<string[] | undefined> {
    const res = await this.exchange('GET /models', { method: 'GET', path: '/models' }, false);
    if (res.status !== 200) return undefined;
    try {
      const data = (JSON.parse(res.text) as { data?: Array<{ id?: unknown }> }).data;
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
