// A model and a listening server over it, in this process: `amnesia serve`, the server `amnesia
// check` embeds when it has no --target, and what the tests and benchmarks talk to.
import type { MappingOptions } from '../harmony/chat-to-harmony.ts';
import type { RuntimeOptions } from '../engine/runtime.ts';
import { buildServer, type AmnesiaServer } from './app.ts';
import type { GrammarMode } from './completion-plan.ts';
import { DEFAULT_MODEL, openModel, type OpenedModel } from './open-model.ts';

export interface LocalServerOptions {
  /** `tiny-chat` (DEFAULT_MODEL), `tiny` or a checkpoint directory. */
  model?: string;
  runtime?: RuntimeOptions;
  apiKey?: string;
  /** Answer /metrics without the API key (by default it needs the key when one is set). */
  publicMetrics?: boolean;
  mapping?: MappingOptions;
  bodyLimit?: number;
  /** Override the model's default (see OpenedModel.grammar). */
  grammar?: GrammarMode;
  /** Default 127.0.0.1 and a free port. */
  host?: string;
  port?: number;
}

export interface LocalServer {
  /** Base URL including /v1, e.g. http://127.0.0.1:41234/v1 (what OpenAI clients call baseURL). */
  baseUrl: string;
  /** Origin without /v1, for /health, /metrics and /admin. */
  origin: string;
  modelId: string;
  model: OpenedModel;
  server: AmnesiaServer;
  close(): Promise<void>;
}

export async function startLocalServer(options: LocalServerOptions = {}): Promise<LocalServer> {
  const model = await openModel(options.model ?? DEFAULT_MODEL, options.runtime ?? {});
  const server = buildServer({
    runtime: model.runtime,
    modelId: model.id,
    grammar: options.grammar ?? model.grammar,
    systemFingerprint: model.fingerprint,
    ...(options.apiKey !== undefined ? { apiKey: options.apiKey } : {}),
    ...(options.publicMetrics !== undefined ? { publicMetrics: options.publicMetrics } : {}),
    ...(options.mapping !== undefined ? { mapping: options.mapping } : {}),
    ...(options.bodyLimit !== undefined ? { bodyLimit: options.bodyLimit } : {}),
  });
  let origin: string;
  try {
    origin = await server.app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 0 });
  } catch (e) {
    await model.close();
    throw e;
  }
  return {
    baseUrl: `${origin}/v1`,
    origin,
    modelId: model.id,
    model,
    server,
    close: async () => {
      await server.shutdown();
      await model.close();
    },
  };
}
