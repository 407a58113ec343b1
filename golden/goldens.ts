// Every golden kind, defined once: a case folder's inputs → the files it must contain. The update
// script (`npm run golden:update`) writes those files; the tests compare them and never write.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChatMappingError, renderChatPrompt, type MappingOptions } from '../src/harmony/chat-to-harmony.ts';
import { completionToChat } from '../src/harmony/harmony-to-chat.ts';
import { encodeHarmonyText } from '../src/harmony/tokens.ts';
import { loadNativeAddon } from '../src/engine/native-addon.ts';
import { normaliser, type Normaliser } from '../src/server/normalise-response.ts';
import { startLocalServer, type LocalServer } from '../src/server/local-server.ts';

export const goldenRoot = fileURLToPath(new URL('.', import.meta.url));

export interface GoldenKind {
  /** Folder under golden/ holding one sub-folder per case. */
  folder: string;
  /** The files the case must hold, computed from its inputs. */
  expectedFiles(caseDir: string): Record<string, string>;
}

const readJson = (path: string): unknown => JSON.parse(readFileSync(path, 'utf8'));
const json = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;

/** OpenAI request → harmony prompt (text and ids), or the error the mapping must raise. */
export const chatMapping: GoldenKind = {
  folder: 'chat',
  expectedFiles(dir): Record<string, string> {
    const request = readJson(join(dir, 'request.json'));
    const optionsFile = join(dir, 'options.json');
    const options = (existsSync(optionsFile) ? readJson(optionsFile) : {}) as MappingOptions;
    try {
      const prompt = renderChatPrompt(request, options);
      return { 'prompt.txt': prompt.text, 'prompt.tokens.json': `${JSON.stringify(prompt.tokens)}\n` };
    } catch (e) {
      if (!(e instanceof ChatMappingError)) throw e;
      return { 'error.json': json({ param: e.param, code: e.code, message: e.message }) };
    }
  },
};

/** Sampled completion (harmony text) → the OpenAI message and the SSE delta sequence. */
export const completionParsing: GoldenKind = {
  folder: 'completions',
  expectedFiles(dir) {
    // One trailing newline is the file's, not the completion's.
    const text = readFileSync(join(dir, 'completion.txt'), 'utf8').replace(/\n$/, '');
    const tokens = encodeHarmonyText(text);
    const out = completionToChat(tokens, { toolCallId: (i) => `call_${i}` });
    return {
      'completion.tokens.json': `${JSON.stringify(tokens)}\n`,
      'message.json': json({ message: out.message, finish_reason: out.finishReason }),
      'deltas.json': `[\n${out.deltas.map((d) => `  ${JSON.stringify(d)}`).join(',\n')}\n]\n`,
    };
  },
};

export const goldenKinds = [chatMapping, completionParsing];

/** A golden kind whose files come from a live server (so asynchronously). */
export interface AsyncGoldenKind {
  folder: string;
  /** The files the case must hold: what the server at `baseUrl` (ending in /v1) answers to its inputs. */
  expectedFilesAsync(caseDir: string, baseUrl: string): Promise<Record<string, string>>;
  /** Files of a case folder that are inputs (never written); every other file must be expected. */
  inputFiles: readonly string[];
  /** Every file name expectedFilesAsync can return (the update script removes those it no longer does). */
  outputFiles: readonly string[];
}

/** One SSE transcript with every `data:` JSON payload normalised; framing, blank lines and `[DONE]` kept. */
function normaliseSse(text: string, normalise: Normaliser): string {
  const ids = new Set<unknown>();
  const created = new Set<unknown>();
  const out = text.split('\n').map((line) => {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') return line;
    const payload = JSON.parse(line.slice('data: '.length)) as Record<string, unknown>;
    if ('id' in payload) ids.add(payload.id);
    if ('created' in payload) created.add(payload.created);
    return `data: ${JSON.stringify(normalise(payload))}`;
  });
  // Normalising would hide chunks that disagree on these; the stream contract says they agree.
  if (ids.size > 1 || created.size > 1) throw new Error(`the stream's chunks disagree on id or created: ${[...ids, ...created].join(', ')}`);
  return out.join('\n');
}

/**
 * A POST /v1/chat/completions → its status and normalised body (`response.json`), or for an SSE
 * answer its status and content type (`response.json`) and the normalised transcript (`stream.sse`).
 * The body is `request.json` or, for bodies JSON cannot hold, `raw-body.txt`, sent verbatim.
 * `folder` holds the cases of one model (`model`, as `amnesia serve --model` names it).
 */
function apiResponsesOf(folder: string, model: 'tiny' | 'tiny-chat'): AsyncGoldenKind & { model: 'tiny' | 'tiny-chat' } {
  return {
    folder,
    model,
    inputFiles: ['request.json', 'raw-body.txt', 'about.txt'],
    outputFiles: ['response.json', 'stream.sse'],
    async expectedFilesAsync(dir, baseUrl): Promise<Record<string, string>> {
      const raw = join(dir, 'raw-body.txt');
      const body = readFileSync(existsSync(raw) ? raw : join(dir, 'request.json'), 'utf8');
      const res = await fetch(`${baseUrl}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      const text = await res.text();
      const type = res.headers.get('content-type') ?? '';
      // One normaliser per response, so tool-call ids number consistently across a stream's chunks.
      const normalise = normaliser();
      if (type.startsWith('text/event-stream')) {
        return { 'response.json': json({ status: res.status, headers: { 'content-type': type } }), 'stream.sse': normaliseSse(text, normalise) };
      }
      return { 'response.json': json({ status: res.status, body: normalise(JSON.parse(text)) }) };
    },
  };
}

/** golden/api: the HTTP contract on the tiny random model. */
export const apiResponses = apiResponsesOf('api', 'tiny');
/** golden/api-chat: the talking tiny model's answers (exo #1362's requests among them). */
export const apiChatResponses = apiResponsesOf('api-chat', 'tiny-chat');
export const apiKinds = [apiResponses, apiChatResponses] as const;

/** `Current date:` in the api goldens' prompts, so they do not change from day to day. */
export const API_GOLDEN_DATE = '2025-06-28';

/**
 * The server the api goldens are written and checked against: the tiny model on a free loopback
 * port, on the scalar kernels. Results may differ between kernel sets (spec/engine.md §1; here
 * plain-chat samples other tokens on AVX-512, and log-probabilities differ in their last digits),
 * and scalar is there on every x86-64 machine, so the goldens are the same wherever they are written. Call it before anything else in the process uses
 * the engine: the kernel set is chosen once per process.
 */
export async function startApiGoldenServer(model: 'tiny' | 'tiny-chat' = 'tiny'): Promise<LocalServer> {
  process.env.AMNESIA_NATIVE_SIMD = 'scalar';
  const server = await startLocalServer({ model, mapping: { currentDate: API_GOLDEN_DATE } });
  const simd = loadNativeAddon().simd();
  if (simd !== 'scalar') {
    await server.close();
    throw new Error(`golden/api needs the scalar kernels, but this process already runs on ${simd} (the engine was used before startApiGoldenServer)`);
  }
  return server;
}

export function caseDirs(kind: { folder: string }): string[] {
  const root = join(goldenRoot, kind.folder);
  return readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => join(root, e.name))
    .sort();
}
