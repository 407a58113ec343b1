// The HTTP server (spec/api.md): fastify routes over one runtime. Every failure goes through
// toApiError, so a client only ever sees the OpenAI error envelope; streams are written by hand
// (hijacked replies) so that errors after the headers go in-band and a disconnect cancels the
// generation.
import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { MappingOptions } from '../harmony/chat-to-harmony.ts';
import type { Runtime } from '../engine/runtime.ts';
import { ApiError, toApiError } from './api-error.ts';
import { ChatOutputMapping } from './chat-output.ts';
import { startCompletion } from './completion.ts';
import { planCompletion, type GrammarMode } from './completion-plan.ts';
import { Metrics } from './metrics.ts';
import { chatCompletionBodySchema } from './request-schema.ts';
import { collectResponse, eventChunk, responseMeta, roleChunk, usageChunk, type ResponseMeta } from './response.ts';
import type { CompletionPlan } from './completion-plan.ts';
import type { CompletionRun } from './completion.ts';

export interface ServerOptions {
  runtime: Runtime;
  modelId: string;
  /** Which requests the harmony grammar constrains (see OpenedModel.grammar). */
  grammar: GrammarMode;
  systemFingerprint: string;
  /** Require `Authorization: Bearer KEY` on /v1 and /admin. */
  apiKey?: string;
  mapping?: MappingOptions;
  /** Largest request body in bytes (default 16 MiB); larger gets 413. */
  bodyLimit?: number;
}

export interface AmnesiaServer {
  app: FastifyInstance;
  /** Ends in-flight requests (streams get an in-band error), stops listening; leaves the runtime open. */
  shutdown(): Promise<void>;
}

const SHUTTING_DOWN = new ApiError(503, 'the server is shutting down', 'server_error', null, 'server_shutting_down');
const CREATED = Math.floor(Date.now() / 1000);

function keyMatches(header: string | undefined, key: string): boolean {
  const given = Buffer.from(header?.startsWith('Bearer ') ? header.slice('Bearer '.length) : '');
  const want = Buffer.from(key);
  return given.length === want.length && timingSafeEqual(given, want);
}

export function buildServer(options: ServerOptions): AmnesiaServer {
  const { runtime, modelId } = options;
  const metrics = new Metrics(runtime);
  // One output mapping for every request (under the parser-reuse failpoint, one parser for all).
  const output = new ChatOutputMapping(runtime.failpoints);
  const inflight = new Map<AbortController, Promise<unknown>>();
  let closing = false;

  const app = Fastify({
    logger: false,
    bodyLimit: options.bodyLimit ?? 16 * 2 ** 20,
    // On close, idle keep-alive sockets go at once; requests in flight are ended by shutdown() first.
    forceCloseConnections: 'idle',
    // Strict types, as OpenAI: "5" is not a number and nothing is coerced or removed.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false } },
  });

  // Bodies are JSON only (fastify would also accept text/plain).
  app.removeContentTypeParser('text/plain');

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
    const guarded = request.url.startsWith('/v1/') || request.url.startsWith('/admin/');
    if (guarded && options.apiKey !== undefined && !keyMatches(request.headers.authorization, options.apiKey)) {
      throw new ApiError(401, 'missing or wrong API key: send Authorization: Bearer <key>', 'invalid_request_error', null, 'invalid_api_key');
    }
  });

  const model = { id: modelId, object: 'model', created: CREATED, owned_by: 'amnesia' };
  app.get('/health', async () => ({ status: 'ok', model: modelId, active_requests: runtime.activeRequests, queue_depth: runtime.queueDepth }));
  app.get('/v1/models', async () => ({ object: 'list', data: [model] }));
  app.get<{ Params: { id: string } }>('/v1/models/:id', async (request) => {
    if (request.params.id !== modelId)
      throw new ApiError(404, `the model '${request.params.id}' does not exist`, 'invalid_request_error', 'model', 'model_not_found');
    return model;
  });
  app.get('/metrics', async (_request, reply) => reply.type('text/plain; version=0.0.4; charset=utf-8').send(metrics.render()));
  app.post('/admin/cache/flush', async () => {
    const before = runtime.cacheStats();
    await runtime.flushCache();
    return { flushed: true, entries: before.entries, bytes: before.bytes };
  });

  app.post('/v1/chat/completions', { schema: { body: chatCompletionBodySchema } }, async (request, reply) => {
    const plan = planCompletion(request.body, {
      modelId,
      contextLength: runtime.contextLength,
      grammar: options.grammar,
      mapping: options.mapping ?? {},
    });
    const controller = new AbortController();
    // A client that goes away cancels its generation (and so frees its KV).
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) controller.abort();
    });
    const work = (async () => {
      const run = startCompletion(runtime, plan, controller.signal, output);
      const meta = responseMeta(modelId, options.systemFingerprint);
      if (!plan.stream) {
        const response = await collectResponse(run, meta, plan.sampling.length, plan.logprobs);
        if (controller.signal.aborted) throw closing ? SHUTTING_DOWN : new ApiError(499, 'the client closed the request', 'invalid_request_error');
        metrics.completion(response.usage);
        return response;
      }
      await writeStream(reply, run, meta, plan, controller.signal);
      return reply;
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

  /** SSE: headers once the first event is there (earlier errors are ordinary HTTP errors). */
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
        if (e.kind === 'finish' && e.reason === 'cancelled') continue;
        send(eventChunk(meta, e, plan.includeUsage));
      }
      if (signal.aborted) {
        if (closing) send(SHUTTING_DOWN.body);
      } else {
        const usage = run.usage();
        metrics.completion(usage);
        if (plan.includeUsage) send(usageChunk(meta, usage));
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
