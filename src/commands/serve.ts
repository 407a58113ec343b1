// `amnesia serve`: the OpenAI-compatible server on a gpt-oss checkpoint (by default the talking tiny model).
// Loopback by default; prints its URL; SIGINT/SIGTERM end in-flight requests and exit cleanly (a
// second signal, or a stop that takes over STOP_GRACE_MS, exits at once).
import { parseArgs } from 'node:util';
import { failpointsFromEnv, parseFailpoints, UnknownFailpointError } from '../engine/failpoints.ts';
import { CheckpointError } from '../engine/checkpoint.ts';
import { startLocalServer } from '../server/local-server.ts';
import { DEFAULT_MODEL } from '../server/open-model.ts';
import { stopTokenizing } from '../server/tokenize-pool.ts';
import { usageLine, type CommandHelp } from './help.ts';
import { UsageError } from './usage-error.ts';

export const serveFlags = {
  model: { type: 'string', default: DEFAULT_MODEL },
  host: { type: 'string', default: '127.0.0.1' },
  port: { type: 'string', default: '8000' },
  'api-key': { type: 'string' },
  'public-metrics': { type: 'boolean', default: false },
  'cache-bytes': { type: 'string' },
  'max-concurrency': { type: 'string' },
  context: { type: 'string' },
  kv: { type: 'string', default: 'full' },
  'current-date': { type: 'string' },
  failpoint: { type: 'string', multiple: true, default: [] as string[] },
} as const;

export const serveHelp: CommandHelp = {
  name: 'serve',
  summary:
    'The reference server: gpt-oss over OpenAI Chat Completions (spec/api.md), exact by construction. POST /admin/cache/flush empties ' +
    'the prefix cache, GET /metrics is Prometheus text, GET /health needs no key. SIGINT or SIGTERM ends in-flight streams with an ' +
    'in-band error and exits.',
  flags: [
    {
      flag: '--model',
      value: 'DIR|tiny|tiny-chat',
      text:
        "a gpt-oss checkpoint folder (Hugging Face layout); tiny-chat: the project's talking tiny model; tiny: its tiny random " +
        `checkpoint, for tests (both made locally; default ${DEFAULT_MODEL})`,
    },
    { flag: '--host', value: 'ADDRESS', text: 'the address to listen on (default 127.0.0.1)' },
    { flag: '--port', value: 'N', text: 'the port to listen on, 0 for any free one (default 8000)' },
    { flag: '--api-key', value: 'KEY', text: 'require this bearer token on every route but /health (and /metrics with --public-metrics)' },
    { flag: '--public-metrics', text: 'serve /metrics without the key' },
    { flag: '--cache-bytes', value: 'N', text: 'the prefix cache budget in bytes, 0 for no prefix cache (default 134217728)' },
    { flag: '--max-concurrency', value: 'N', text: 'requests decoded together, 1 to 1024; later ones queue (default 16)' },
    { flag: '--context', value: 'N', text: "the context length in tokens, at least 16 (default: the model's, as far as the KV pool holds it)" },
    { flag: '--kv', value: 'full|ring', text: "sliding-window layers keep every position's KV (full) or a ring of the window (ring) (default full)" },
    {
      flag: '--current-date',
      value: 'YYYY-MM-DD',
      text: "the system message's Current date (default: none rendered, so answers do not change from day to day)",
    },
    {
      flag: '--failpoint',
      value: 'NAME',
      repeat: true,
      text: 'switch on a failpoint of spec/failpoints.md: a re-created real bug, to see a check fail (also $AMNESIA_FAILPOINTS, comma-separated)',
    },
  ],
  exit: ['0  stopped by SIGINT or SIGTERM', '2  usage error, an unusable checkpoint, or an address it cannot listen on (one line on stderr)'],
};

export const serveUsage = usageLine(serveHelp);

function integer(flag: string, text: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) throw new UsageError(`${flag} must be an integer from ${min} to ${max}, got '${text}'`);
  return Number(text);
}

export interface ServeConfig {
  model: string;
  host: string;
  port: number;
  apiKey: string | undefined;
  /** Serve /metrics without the API key (every other route but /health needs it). */
  publicMetrics: boolean;
  currentDate: string | undefined;
  runtime: {
    cacheBytes?: number;
    maxConcurrency?: number;
    contextLength?: number;
    slidingKv: 'full' | 'ring';
    failpoints: string[];
  };
}

export function parseServeArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): ServeConfig {
  const { values, positionals } = parseArgs({ args: argv, options: serveFlags, allowPositionals: true });
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'; ${serveUsage}`);
  if (values.kv !== 'full' && values.kv !== 'ring') throw new UsageError(`--kv must be full or ring, got '${values.kv}'`);
  const date = values['current-date'];
  if (date !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(date)) throw new UsageError(`--current-date must be YYYY-MM-DD, got '${date}'`);
  if (values['api-key'] === '') throw new UsageError('--api-key must not be empty');
  let failpoints: string[];
  try {
    failpoints = [...new Set([...failpointsFromEnv(env), ...parseFailpoints(values.failpoint)])];
  } catch (e) {
    if (e instanceof UnknownFailpointError) throw new UsageError(e.message);
    throw e;
  }
  const runtime: ServeConfig['runtime'] = { slidingKv: values.kv, failpoints };
  const cacheBytes = integer('--cache-bytes', values['cache-bytes'], 0);
  const maxConcurrency = integer('--max-concurrency', values['max-concurrency'], 1, 1024);
  const contextLength = integer('--context', values.context, 16);
  if (cacheBytes !== undefined) runtime.cacheBytes = cacheBytes;
  if (maxConcurrency !== undefined) runtime.maxConcurrency = maxConcurrency;
  if (contextLength !== undefined) runtime.contextLength = contextLength;
  return {
    model: values.model,
    host: values.host,
    port: integer('--port', values.port, 0, 65535)!,
    apiKey: values['api-key'],
    publicMetrics: values['public-metrics'],
    currentDate: date,
    runtime,
  };
}

export async function serveCommand(argv: string[]): Promise<string> {
  const config = parseServeArgs(argv);
  const local = await startLocalServer({
    model: config.model,
    runtime: config.runtime,
    host: config.host,
    port: config.port,
    ...(config.apiKey !== undefined ? { apiKey: config.apiKey } : {}),
    publicMetrics: config.publicMetrics,
    ...(config.currentDate !== undefined ? { mapping: { currentDate: config.currentDate } } : {}),
  }).catch((e: unknown) => {
    if (e instanceof CheckpointError) throw new UsageError(e.message);
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE' || (e as NodeJS.ErrnoException).code === 'EACCES') {
      throw new UsageError(`cannot listen on ${config.host}:${config.port}: ${(e as Error).message}`);
    }
    throw e;
  });
  const failpoints = config.runtime.failpoints.length > 0 ? ` (failpoints: ${config.runtime.failpoints.join(', ')})` : '';
  console.log(`amnesia serve: ${local.modelId} at ${local.baseUrl}${failpoints}`);
  const signal = await new Promise<string>((resolve) => {
    let received: string | undefined;
    const onSignal = (name: string) => {
      // A second signal while stopping: exit now.
      if (received !== undefined) exitNow(`${name} while stopping`);
      received = name;
      resolve(name);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  // In-flight requests end (streams with an in-band error), prompts being tokenized in worker threads
  // at once; whatever still holds the process after STOP_GRACE_MS does not keep it alive.
  setTimeout(() => exitNow(`not stopped ${STOP_GRACE_MS / 1000} s after ${signal}`), STOP_GRACE_MS).unref();
  await Promise.all([local.close(), stopTokenizing()]);
  return `amnesia serve: stopped (${signal})`;
}

/** After SIGINT/SIGTERM, the most a clean stop may take before the process exits anyway. */
export const STOP_GRACE_MS = 10_000;

function exitNow(why: string): never {
  console.error(`amnesia serve: ${why}; exiting now`);
  process.exit(1);
}
