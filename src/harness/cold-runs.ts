// Cold runs on a server without amnesia's flush endpoint (spec/properties.md "Cold runs"): the
// user's own way to empty its caches (`--flush-command`, run where the harness would call the
// endpoint), and fields every chat request carries (`--extra-body`, e.g. a server's own cache
// switch such as llama.cpp's `cache_prompt: false`). Both wrap the target's transport, so every path
// that flushes (cold baselines, flush steps, the reset between histories) and every request (the
// probe's too) gets them. Without any of those, `--cache-bust` at least starts each history cold.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { FLUSH_PATH, type Exchange, type ExchangeResponse, type Transport } from './transport.ts';

/** How long a flush command may run before it counts as failed. */
export const FLUSH_COMMAND_TIMEOUT_MS = 120_000;

const encoder = new TextEncoder();
const reply = (status: number, body: unknown): ExchangeResponse => ({
  status,
  headers: { 'content-type': 'application/json' },
  body: (async function* () {
    yield encoder.encode(JSON.stringify(body));
  })(),
});

/** Runs `command` with sh; resolves with its exit code (null: killed at the timeout) and the end of its output. */
export function runCommand(command: string, timeoutMs = FLUSH_COMMAND_TIMEOUT_MS): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', command], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (d: Buffer) => (output = (output + d.toString()).slice(-2000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: 127, output: e.message });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output: output.trim() });
    });
  });
}

/**
 * The transport with `flush` in place of the flush endpoint: it resolves to undefined when the caches
 * are empty, else to why not (a 500 saying so). A connector's own way to empty a target (a restart).
 */
export function withFlush(transport: Transport, flush: () => Promise<string | undefined>): Transport {
  const sendOrigin = async (x: Exchange): Promise<ExchangeResponse> => {
    if (x.method !== 'POST' || x.path !== FLUSH_PATH) return transport.sendOrigin(x);
    const failed = await flush();
    if (failed === undefined) return reply(200, { flushed: true });
    return reply(500, { error: { message: failed, type: 'flush_command', param: null, code: null } });
  };
  return { name: transport.name, send: (x) => transport.send(x), sendOrigin };
}

/** The transport with `command` in place of the flush endpoint: exit 0 is a flush, anything else a 500 saying why. */
export function withFlushCommand(transport: Transport, command: string, timeoutMs = FLUSH_COMMAND_TIMEOUT_MS): Transport {
  return withFlush(transport, async () => {
    const { code, output } = await runCommand(command, timeoutMs);
    if (code === 0) return undefined;
    const why = code === null ? `killed after ${timeoutMs / 1000} s` : `exit ${code}`;
    return `the flush command failed (${why}): ${output.slice(-300)}`;
  });
}

/**
 * The transport with `extra` added to every chat request that is a JSON object, where the request
 * does not set the field itself (the generated traffic stays what its scenario says); a malformed
 * body is sent as it is.
 */
export function withExtraBody(transport: Transport, extra: Record<string, unknown>): Transport {
  return withChatBodies(transport, (body) => ({ ...extra, ...body }));
}

/**
 * The transport with every chat request that is a JSON object sent as `rewrite` makes it (undefined:
 * as it is); a malformed body, and every other exchange, goes as it is.
 */
function withChatBodies(transport: Transport, rewrite: (body: Record<string, unknown>) => Record<string, unknown> | undefined): Transport {
  const send = (x: Exchange): Promise<ExchangeResponse> => {
    if (x.method !== 'POST' || x.path !== '/chat/completions' || x.body === undefined) return transport.send(x);
    let body: unknown;
    try {
      body = JSON.parse(x.body);
    } catch {
      return transport.send(x);
    }
    const rewritten = typeof body === 'object' && body !== null && !Array.isArray(body) ? rewrite(body as Record<string, unknown>) : undefined;
    return transport.send(rewritten === undefined ? x : { ...x, body: JSON.stringify(rewritten) });
  };
  return { name: transport.name, send, sendOrigin: (x) => transport.sendOrigin(x) };
}

/**
 * The nonce `--cache-bust` puts first in a history's prompt: 12 hex digits, new at every reset, so
 * no prefix of one history's prompts is a prefix of another's, this run's or an earlier one's.
 */
const newNonce = () => randomBytes(6).toString('hex');

/** A first message with `nonce` in front of its text (a string, or the first of its parts); other shapes as they are. */
function nonced(message: unknown, nonce: string): unknown {
  if (typeof message !== 'object' || message === null) return message;
  const m = message as Record<string, unknown>;
  const tag = `[${nonce}] `;
  if (typeof m.content === 'string') return { ...m, content: `${tag}${m.content}` };
  if (Array.isArray(m.content)) return { ...m, content: [{ type: 'text', text: tag }, ...(m.content as unknown[])] };
  return m;
}

/**
 * `--cache-bust`: every chat request's first message starts with the history's nonce, and `renew`
 * (the reset between histories) draws a new one. Each history then starts with nothing of its own
 * cached — only the chat template's fixed head, before the first message, is shared — while the
 * requests within a history stay byte-identical to each other. It cannot give a request a cold run
 * of itself once sent (the same bytes are cached by then), so it does not stand in for a flush.
 */
export function withNonce(transport: Transport): { transport: Transport; renew(): void } {
  let nonce = newNonce();
  return {
    transport: withChatBodies(transport, ({ messages, ...body }) =>
      Array.isArray(messages) && messages.length > 0 ? { ...body, messages: [nonced(messages[0], nonce), ...messages.slice(1)] } : undefined,
    ),
    renew: () => void (nonce = newNonce()),
  };
}
