// The HTTP server (spec/api.md): fastify routes over one runtime. Every failure goes through
// toApiError, so a client only ever sees the OpenAI error envelope; streams are written by hand
// (hijacked replies) so that errors after the headers go in-band and a disconnect cancels the
// generation.
import { createHash, timingSafeEqual } from 'node:crypto';
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { MappingOptions } from '../harmony/chat-to-harmony.ts';
import { jsonLimitViolation, paramPath } from '../harmony/schema-to-typescript.ts';
import type { Runtime } from '../engine/runtime.ts';
import { ApiError, fromClientError, invalidRequest, toApiError } from './api-error.ts';
import { ChatOutputMapping } from './chat-output.ts';
import { callableFunctions, startCompletion } from './completion.ts';
import { planCompletionOffLoop, TokenizingStopped, type GrammarMode } from './completion-plan.ts';
import { Metrics } from './metrics.ts';
import { chatCompletionBodySchema, MAX_BODY_DEPTH } from './request-schema.ts';
import { collectResponse, eventChunk, responseMeta, roleChunk, streamedUsage, usageChunk, type ResponseMeta } from './response.ts';
import type { CompletionPlan } from './completion-plan.ts';
import type { CompletionRun } from './completion.ts';

export interface ServerOptions {
  runtime: Runtime;
  modelId: string;
  /** Which requests the harmony grammar constrains (see OpenedModel.grammar). */
  grammar: GrammarMode;
  systemFingerprint: string;
  /** Require `Authorization: Bearer KEY` on every route but /health (and /metrics with publicMetrics). */
  apiKey?: string;
  /** Answer /metrics without the API key. */
  publicMetrics?: boolean;
  mapping?: MappingOptions;
  /** Largest request body in bytes (default 16 MiB); larger gets 413. */
  bodyLimit?: number;
}

export interface AmnesiaServer {
  app: FastifyInstance;
  /** Ends in-flight requests (streams get an in-band error), stops listening; leaves the runtime open. */
  shutdown(): Promise<void>;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * `public`: answered without the API key. Every other route, and a request that matches no
     * route, needs the key when one is set: the decision is made on the route fastify matched, so
     * it is the same for every spelling of a target that reaches that route.
     */
    access?: 'public';
  }
}

const SHUTTING_DOWN = new ApiError(503, 'the server is shutting down', 'server_error', null, 'server_shutting_down');
const UNAUTHORIZED = new ApiError(401, 'missing or wrong API key: send Authorization: Bearer <key>', 'invalid_request_error', null, 'invalid_api_key');
const CREATED = Math.floor(Date.now() / 1000);

const sha256 = (text: string) => createHash('sha256').update(text).digest();

/** `Authorization: Bearer KEY` (the scheme in any case); digests compared in constant time. */
function keyMatches(header: string | undefined, keyDigest: Buffer): boolean {
  const given = /^bearer +(.+)$/i.exec(header ?? '')?.[1];
  return given !== undefined && timingSafeEqual(sha256(given), keyDigest);
}

/** Whether a request carries a body (what fastify reads and parses). */
function hasBody(request: FastifyRequest): boolean {
  return request.headers['transfer-encoding'] !== undefined || (request.headers['content-length'] ?? '0') !== '0';
}

/**
 * An error response written on the socket itself, for requests Node's parser refused (there is no
 * request object to answer through); the connection closes after it.
 */
function writeRawError(socket: Duplex, e: ApiError): void {
  const body = JSON.stringify(e.body);
  socket.end(
    `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? 'Error'}\r\ncontent-type: application/json; charset=utf-8\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
  // Closed once the answer is flushed, or after a grace period if the peer never reads it.
  socket.once('finish', () => socket.destroy());
  setTimeout(() => socket.destroy(), 5_000).unref();
}

export function buildServer(options: ServerOptions): AmnesiaServer {
  const { runtime, modelId } = options;
  const metrics = new Metrics(runtime);
  // One output mapping for every request (under the parser-reuse failpoint, one parser for all).
  const output = new ChatOutputMapping(runtime.failpoints);
  const inflight = new Map<AbortController, Promise<unknown>>();
  let closing = false;

  const keyDigest = options.apiKey === undefined ? undefined : sha256(options.apiKey);

  const app = Fastify({
    logger: false,
    bodyLimit: options.bodyLimit ?? 16 * 2 ** 20,
    // A missing Host is refused in onRequest, in the envelope (Node's own refusal has no body).
    http: { requireHostHeader: false },
    // Requests Node's HTTP parser refuses (431 header too large, 400 malformed request line or
    // Content-Length, 408 timeout) never reach fastify's routes; they still get the envelope.
    clientErrorHandler: (error: Error & { code?: string }, socket: Duplex) => {
      const e = fromClientError(error);
      // Nothing to answer to, or a response of this connection is already on the wire.
      const busy = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
      if (e === null || socket.destroyed || !socket.writable || busy) {
        socket.destroy();
        return;
      }
      writeRawError(socket, e);
    },
    // Errors fastify raises before routing (a target that does not percent-decode, a too-long path
    // parameter): no route, so no hook and no handler runs; only this answer.
    frameworkErrors: (error, _request, reply) => {
      const e = toApiError(error);
      // The generic reply type of this hook does not accept a plain status and body.
      void (reply as unknown as FastifyReply).code(e.status).headers(e.headers).send(e.body);
    },
    // On close, idle keep-alive sockets go at once; requests in flight are ended by shutdown() first.
    forceCloseConnections: 'idle',
    // Strict types, as OpenAI: "5" is not a number and nothing is coerced or removed.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false } },
  });

  // Bodies are JSON only (fastify would also accept text/plain).
  app.removeContentTypeParser('text/plain');

  // What Node answers by itself, without a body, unless told otherwise: an `Expect` other than
  // 100-continue (417) and CONNECT (it would drop the connection).
  app.server.on('checkExpectation', (_request, response: ServerResponse) => {
    const e = new ApiError(417, 'only Expect: 100-continue is supported', 'invalid_request_error', null, 'expectation_failed');
    response.writeHead(e.status, { 'content-type': 'application/json; charset=utf-8', connection: 'close' }).end(JSON.stringify(e.body));
  });
  app.server.on('connect', (_request, socket: Duplex) => {
    writeRawError(socket, new ApiError(405, 'CONNECT is not supported', 'invalid_request_error', null, 'method_not_allowed'));
  });

  app.setErrorHandler((error, _request, reply) => {
    const e = toApiError(error);
    if (e.status >= 500 && e !== SHUTTING_DOWN) console.error('amnesia serve: internal error:', error);
    void reply.code(e.status).headers(e.headers).send(e.body);
  });
  app.setNotFoundHandler((request, reply) => {
    const e = new ApiError(404, `no route ${request.method} ${request.url.split('?')[0]}`, 'invalid_request_error', null, 'not_found');
    void reply.code(404).send(e.body);
  });

  app.addHook('onRequest', async (request, reply) => {
    reply.raw.once('close', () => metrics.request(request.routeOptions.url ?? 'unmatched', reply.raw.statusCode));
    if (closing) throw SHUTTING_DOWN;
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) {
      throw invalidRequest('an HTTP/1.1 request needs a Host header', null, 'missing_host_header');
    }
    // On the matched route (its config), never on the text of the target: `/%76%31/models`,
    // `http://host/v1/models` and `/v1/models?x` all reach the same route and the same decision.
    const open = request.is404 !== true && request.routeOptions.config.access === 'public';
    if (keyDigest !== undefined && !open && !keyMatches(request.headers.authorization, keyDigest)) throw UNAUTHORIZED;
  });

  // Bodies are identity-encoded JSON: a compressed body is refused, not parsed as JSON.
  app.addHook('preParsing', async (request, _reply, payload) => {
    const encoding = request.headers['content-encoding'];
    if (encoding !== undefined && hasBody(request) && encoding.trim().toLowerCase() !== 'identity') {
      const shown = encoding.length > 40 ? `${encoding.slice(0, 40)}…` : encoding;
      throw new ApiError(
        415,
        `Content-Encoding '${shown}' is not supported: send the body uncompressed`,
        'invalid_request_error',
        null,
        'unsupported_content_encoding',
        { 'accept-encoding': 'identity', connection: 'close' },
      );
    }
    return payload;
  });

  // No body nests deeper than MAX_BODY_DEPTH (spec/api.md "Limits"), so nothing after this (ajv,
  // the mapping, JSON.stringify) recurses deep enough to overflow the stack.
  app.addHook('preValidation', async (request) => {
    const over = request.body == null ? null : jsonLimitViolation(request.body, { maxDepth: MAX_BODY_DEPTH });
    if (over !== null) {
      const where = paramPath('', over.path);
      throw invalidRequest(`the request body nests deeper than ${MAX_BODY_DEPTH} levels of objects and arrays (at ${where})`, where, 'nesting_too_deep');
    }
  });

  const model = { id: modelId, object: 'model', created: CREATED, owned_by: 'amnesia' };
  app.get('/health', { config: { access: 'public' } }, async () => ({
    status: 'ok',
    model: modelId,
    active_requests: runtime.activeRequests,
    queue_depth: runtime.queueDepth,
  }));
  app.get('/v1/models', async () => ({ object: 'list', data: [model] }));
  app.get<{ Params: { id: string } }>('/v1/models/:id', async (request) => {
    if (request.params.id !== modelId)
      throw new ApiError(404, `the model '${request.params.id}' does not exist`, 'invalid_request_error', 'model', 'model_not_found');
    return model;
  });
  app.get('/metrics', { config: options.publicMetrics === true ? { access: 'public' } : {} }, async (_request, reply) =>
    reply.type('text/plain; version=0.0.4; charset=utf-8').send(metrics.render()),
  );
  app.post('/admin/cache/flush', async () => {
    const before = runtime.cacheStats();
    await runtime.flushCache();
    return { flushed: true, entries: before.entries, bytes: before.bytes };
  });

  app.post('/v1/chat/completions', { schema: { body: chatCompletionBodySchema } }, async (request, reply) => {
    // A large prompt is tokenized in a worker thread; one still being tokenized at shutdown ends here.
    const plan = await planCompletionOffLoop(request.body, {
      modelId,
      contextLength: runtime.contextLength,
      vocabSize: runtime.vocabSize,
      grammar: options.grammar,
      mapping: options.mapping ?? {},
      failpoints: runtime.failpoints,
    }).catch((e: unknown) => {
      throw e instanceof TokenizingStopped ? SHUTTING_DOWN : e;
    });
    const controller = new AbortController();
    // A client that goes away cancels its generation (and so frees its KV).
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) controller.abort();
    });
    const work = (async () => {
      const own = startCompletion(runtime, plan, controller.signal, output, callableFunctions(request.body));
      const meta = responseMeta(modelId, options.systemFingerprint, runtime.failpoints.has('clock-ids'));
      // Failpoint clock-ids: in-flight completions are found by response id, so a request whose id
      // collides with a running one reads that one's events (each request gets some of them).
      const run = runtime.failpoints.joinInflight(meta.id, own);
      try {
        if (!plan.stream) {
          const response = await collectResponse(run, meta, plan.sampling.length, plan.logprobs);
          if (controller.signal.aborted) throw closing ? SHUTTING_DOWN : new ApiError(499, 'the client closed the request', 'invalid_request_error');
          metrics.completion(response.usage);
          return response;
        }
        await writeStream(reply, run, meta, plan, controller.signal);
        return reply;
      } finally {
        runtime.failpoints.leaveInflight(meta.id, own);
      }
    })();
    inflight.set(
      controller,
      work.catch(() => undefined),
    );
    try {
      return await work;
    } finally {
      inflight.delete(controller);
    }
  });

  /**
   * SSE: headers once the first event is there — the first token sampled, even when nothing shows yet
   * (earlier errors are ordinary HTTP errors) — so a client sees the stream begin within a token.
   */
  async function writeStream(reply: FastifyReply, run: CompletionRun, meta: ResponseMeta, plan: CompletionPlan, signal: AbortSignal): Promise<void> {
    let next = await run.events.next();
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    const send = (data: unknown) => res.write(`data: ${JSON.stringify(data)}\n\n`);
    try {
      for (let i = 0; i < plan.sampling.length; i++) send(roleChunk(meta, i, plan.includeUsage));
      for (; !next.done; next = await run.events.next()) {
        const e = next.value;
        if (e.kind === 'started' || (e.kind === 'finish' && e.reason === 'cancelled')) continue;
        send(eventChunk(meta, e, plan.includeUsage));
      }
      if (signal.aborted) {
        if (closing) send(SHUTTING_DOWN.body);
      } else {
        const usage = run.usage();
        metrics.completion(usage);
        // Failpoint usage-carryover: the writer's output counters outlive the stream.
        if (plan.includeUsage) send(usageChunk(meta, streamedUsage(usage, runtime.failpoints.usageTotals())));
        res.write('data: [DONE]\n\n');
      }
    } catch (error) {
      // After the headers, an error can only be reported in-band.
      send(toApiError(error).body);
    } finally {
      res.end();
    }
  }

  return {
    app,
    shutdown: async () => {
      closing = true;
      for (const controller of inflight.keys()) controller.abort();
      await Promise.all(inflight.values());
      await app.close();
    },
  };
}
