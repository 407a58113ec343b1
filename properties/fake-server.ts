// A small, deterministic OpenAI-compatible chat server made of msw handlers (no sockets: msw answers
// global fetch), for testing the harness itself: the 'correct' variant must pass every property of
// `check()`, and each leaky variant is a known class of statefulness bug that a given property must
// find, shrink and hand back as a scenario that replays. It speaks the contract of spec/api.md.
//
// The "model" is a pure function of the request: sha256 of the canonical JSON of what decides an
// answer (messages, tools, tool_choice, reasoning_effort, parallel_tool_calls, top_p and the sampling:
// greedy at temperature 0, else temperature and seed + choice index) seeds a PRNG that picks
// reasoning words, then either tool calls or content words. Words are tokens. The whole token
// sequence is generated first and then cut, so max_tokens k is a prefix of k + m; a stop string cuts
// the content before its first occurrence. The JSON message is the fold of the stream's deltas (one
// code path), so the two agree by construction — except in the 'stream-drift' variant.
import { createHash } from 'node:crypto';
import { http, HttpResponse, type HttpHandler } from 'msw';
import { setupServer, type SetupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll } from 'vitest';

export type FakeVariant =
  /** Everything above, stateless: `check()` must pass every property. */
  | 'correct'
  /**
   * An answer cache keyed only by the last user message's text (too coarse), refreshed by every
   * request (stale-while-revalidate): a request gets the answer the cache holds for its last user
   * message — computed for whichever request last had that message — and then stores its own.
   */
  | 'answer-memo'
  /**
   * Server-side conversation state: a request is answered from the previous request's messages
   * plus its own last message, not from the history it sent (the last session leaks into the next).
   */
  | 'session-history'
  /** The stream drops the last content delta of a choice (when it has two or more): stream ≠ JSON. */
  | 'stream-drift'
  /** Bad input gets fastify's default error body `{statusCode, error, message}` (400 or 500), not the envelope. */
  | 'broken-envelope'
  /**
   * A streamed request that sets `tool_choice` never gets an answer (not even headers): a hang. The
   * probe sends no such request; tool-call-assembly's streams do.
   */
  | 'hang-tool-stream'
  /**
   * The first time a request is ever seen (by its body, stream fields aside; a flush does not forget),
   * its content and reasoning come back upper-cased; every later time, right. A failure that does not
   * happen again: flaky.
   */
  | 'first-time-wrong'
  /**
   * A prefix cache that changes numbers, not tokens: a request whose conversation shares a prefix
   * with one served before (the flush forgets) gets every log-prob 0.001 lower — the same tokens.
   * Leak-free; what a server that is not bit-exact does on a cache hit.
   */
  | 'cache-drift'
  /**
   * A prefix cache that tips a near-tie: every answer's first content token has a runner-up 0.001
   * below it, and on such a hit the runner-up is chosen — other tokens, nothing another request had.
   */
  | 'cache-diverge'
  /**
   * An output buffer not cleared between requests: an answer's content starts with what is left of
   * the previous answer's content (the flush clears it). A content leak anyone can read.
   */
  | 'stale-buffer'
  /**
   * Not bit-exact, and leak-free: every answer's log-probs are lower by a different small amount each
   * time (0 to 6 × 1e-4, by a request counter), the tokens always the same — as a server whose
   * kernels depend on the batch it happens to run in.
   */
  | 'jitter'
  /** A stop string ends the answer but stays in the content (what `transformers serve` did). */
  | 'stop-kept'
  /** A body that is not JSON gets HTTP 500 (with the envelope), not 400 (what llama.cpp's server did). */
  | 'bad-json-500'
  /**
   * Numerics that depend on the batch: a request that arrives while another is in flight gets its
   * log-probs 0.002 lower (the same tokens), as kernels whose reduction order follows the batch size.
   */
  | 'batch-numerics'
  /** Streams end without `data: [DONE]` (the chunks are right). */
  | 'no-done'
  /** `n` is accepted and ignored: one choice whatever `n` says. */
  | 'n-ignored'
  /** Every chat request gets HTTP 500 (with the error envelope): a server that is up and broken. */
  | 'always-500'
  /** `stream_options.include_usage` is accepted and ignored: no stream carries a usage chunk. */
  | 'usage-ignored'
  /** Every stream ends with a usage chunk, asked for or not. */
  | 'usage-unasked'
  /**
   * One sampler RNG for the whole server, re-seeded by every request that sends a seed (what
   * `transformers serve` does: `torch.manual_seed(seed)` on the process-wide generator, then sampling
   * from it). A seeded choice at temperature > 0 re-seeds it with its seed (seed + choice index) as it
   * starts, then draws its content words from it one at a time, waiting a few ms before each as a server
   * generating token by token. Alone, a seeded request answers the same every time; two that overlap
   * move each other's RNG, and both sample other words — nothing of the other's text: a divergence.
   * Its sampling distribution is flat (every word log-prob −ln 32), so where the runs part the
   * expected run was no surer of its word than of the other: a margin of 0.
   */
  | 'reseeded-rng'
  /**
   * What llama.cpp's server does when the model's output does not parse as its chat format: HTTP 500
   * with an error object that has no `param` — here for every request whose last message is not a
   * user's (an assistant turn or a tool result), every time, whatever ran before. The probe's requests
   * all end with a user message; generated histories often do not.
   */
  | 'parse-500'
  /** parse-500 and answer-memo together: a one-request contract break beside a history leak. */
  | 'parse-500-memo'
  /**
   * HTTP 500 for a request whose last user message was served before (until a flush): a contract
   * break that needs what ran before, which the request alone does not show.
   */
  | 'repeat-500';

export interface FakeServerOptions {
  variant: FakeVariant;
  /** Base URL of the API (ending in /v1); the flush endpoint lives on its origin. */
  baseUrl?: string;
}

export const FAKE_MODEL = 'fake-oss-1';
export const DEFAULT_FAKE_BASE_URL = 'http://fake.amnesia.test/v1';

const CONTEXT_LENGTH = 8192;
const MAX_CHOICES = 16;
const MAX_STOPS = 4;
const MAX_TOP_LOGPROBS = 20;
const ROLES = ['system', 'developer', 'user', 'assistant', 'tool'];
const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const CREATED = 1_750_000_000;

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

// ── Errors ───────────────────────────────────────────────────────────────────────────────────────

class FakeError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null,
    readonly code: string,
    readonly type = 'invalid_request_error',
  ) {
    super(message);
  }
}

const invalid = (message: string, param: string | null, code = 'invalid_value'): never => {
  throw new FakeError(400, message, param, code);
};

// ── Validation (spec/api.md "Requests" and "Errors") ─────────────────────────────────────────────

interface ToolDecl {
  name: string;
  parameters: Json | undefined;
}

/** A request that passed validation, with the fields the model reads. */
interface ChatBody {
  raw: Json;
  messages: Json[];
  tools: ToolDecl[];
  toolChoice: 'auto' | 'none' | 'required' | { name: string };
  temperature: number;
  seed: number;
  n: number;
  maxTokens: number | undefined;
  stop: string[];
  logprobs: boolean;
  topLogprobs: number;
  stream: boolean;
  includeUsage: boolean;
}

const optional = (body: Json, key: string): unknown => (body[key] === null ? undefined : body[key]);

function number(body: Json, key: string, check: (x: number) => boolean, what: string): number | undefined {
  const v = optional(body, key);
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) invalid(`${key} must be a number`, key, 'invalid_type');
  if (!check(v as number)) invalid(`${key} must be ${what}`, key);
  return v as number;
}

function integer(body: Json, key: string, min: number, max: number): number | undefined {
  const v = optional(body, key);
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) invalid(`${key} must be an integer`, key, 'invalid_type');
  if ((v as number) < min || (v as number) > max) invalid(`${key} must be between ${min} and ${max}`, key);
  return v as number;
}

function boolean(body: Json, key: string): boolean | undefined {
  const v = optional(body, key);
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') invalid(`${key} must be a boolean`, key, 'invalid_type');
  return v as boolean;
}

/** Content: a string or text parts; `null`/absent only where allowed. */
function contentText(v: unknown, at: string, allowNull: boolean): string | null {
  if (v == null) {
    if (allowNull) return null;
    return invalid(`${at} is required`, at, 'missing_required_parameter');
  }
  if (typeof v === 'string') return v;
  if (!Array.isArray(v)) return invalid(`${at} must be a string or an array of text parts`, at, 'invalid_type');
  return v
    .map((part, j) => {
      const where = `${at}[${j}]`;
      if (!isObject(part)) invalid(`${where} must be an object`, where, 'invalid_type');
      const p = part as Json;
      if (p.type !== 'text') invalid(`${where}.type ${JSON.stringify(p.type)} is not supported`, `${where}.type`, 'unsupported_content_part');
      if (typeof p.text !== 'string') invalid(`${where}.text must be a string`, `${where}.text`, 'invalid_type');
      return p.text as string;
    })
    .join('');
}

function optionalString(v: unknown, at: string): string | undefined {
  if (v == null) return undefined;
  if (typeof v !== 'string') invalid(`${at} must be a string`, at, 'invalid_type');
  return v as string;
}

function readTools(v: unknown): ToolDecl[] {
  if (v == null) return [];
  if (!Array.isArray(v)) return invalid('tools must be an array', 'tools', 'invalid_type');
  const seen = new Set<string>();
  return v.map((tool, i) => {
    const at = `tools[${i}]`;
    if (!isObject(tool) || tool.type !== 'function' || !isObject(tool.function))
      invalid(`${at} must be {"type":"function","function":{...}}`, at, 'invalid_type');
    const fn = (tool as Json).function as Json;
    if (typeof fn.name !== 'string' || !TOOL_NAME.test(fn.name)) invalid(`${at}.function.name must match ${TOOL_NAME.source}`, `${at}.function.name`);
    const name = fn.name as string;
    if (seen.has(name)) invalid(`${at}.function.name '${name}' is declared twice`, `${at}.function.name`);
    seen.add(name);
    optionalString(fn.description, `${at}.function.description`);
    if (fn.parameters != null && !isObject(fn.parameters)) invalid(`${at}.function.parameters must be an object`, `${at}.function.parameters`, 'invalid_type');
    return { name, parameters: isObject(fn.parameters) ? fn.parameters : undefined };
  });
}

function readMessages(v: unknown, declared: ReadonlySet<string>): Json[] {
  if (v == null) return invalid('messages is required', 'messages', 'missing_required_parameter');
  if (!Array.isArray(v)) return invalid('messages must be an array', 'messages', 'invalid_type');
  if (v.length === 0) invalid('messages must not be empty', 'messages');
  const calls = new Set<string>();
  v.forEach((m, i) => {
    const at = `messages[${i}]`;
    if (!isObject(m)) return invalid(`${at} must be an object`, at, 'invalid_type');
    if (typeof m.role !== 'string' || !ROLES.includes(m.role)) invalid(`${at}.role ${JSON.stringify(m.role)} is not one of ${ROLES.join(', ')}`, `${at}.role`);
    optionalString(m.name, `${at}.name`);
    if (m.role === 'assistant') {
      for (const f of ['reasoning', 'reasoning_content', 'thinking']) optionalString(m[f], `${at}.${f}`);
      const content = contentText(m.content, `${at}.content`, true);
      const toolCalls = m.tool_calls ?? [];
      if (!Array.isArray(toolCalls)) return invalid(`${at}.tool_calls must be an array`, `${at}.tool_calls`, 'invalid_type');
      if (toolCalls.length === 0 && content === null) invalid(`${at} needs content or tool_calls`, `${at}.content`, 'missing_required_parameter');
      toolCalls.forEach((call, j) => {
        const c = `${at}.tool_calls[${j}]`;
        if (!isObject(call) || call.type !== 'function' || !isObject(call.function))
          return invalid(`${c} must be {"id","type":"function","function"}`, c, 'invalid_type');
        const id = optionalString(call.id, `${c}.id`);
        if (id === undefined) invalid(`${c}.id is required`, `${c}.id`, 'missing_required_parameter');
        const fn = call.function as Json;
        if (typeof fn.name !== 'string') invalid(`${c}.function.name must be a string`, `${c}.function.name`, 'invalid_type');
        if (!declared.has(fn.name as string))
          invalid(`${c} calls '${String(fn.name)}', which is not a function in tools`, `${c}.function.name`, 'unknown_function');
        if (typeof fn.arguments !== 'string') invalid(`${c}.function.arguments must be a string`, `${c}.function.arguments`, 'invalid_type');
        calls.add(id!);
      });
    } else if (m.role === 'tool') {
      const id = optionalString(m.tool_call_id, `${at}.tool_call_id`);
      if (id !== undefined && !calls.has(id))
        invalid(`${at}.tool_call_id '${id}' matches no earlier assistant tool call`, `${at}.tool_call_id`, 'unknown_tool_call_id');
      if (id === undefined && optionalString(m.name, `${at}.name`) === undefined)
        invalid(`${at} needs a tool_call_id`, `${at}.tool_call_id`, 'missing_required_parameter');
      contentText(m.content, `${at}.content`, false);
    } else {
      contentText(m.content, `${at}.content`, false);
    }
  });
  return v as Json[];
}

function readToolChoice(v: unknown, declared: ReadonlySet<string>): ChatBody['toolChoice'] {
  if (v == null) return 'auto';
  if (v === 'auto' || v === 'none') return v;
  if (v === 'required') {
    if (declared.size === 0) invalid(`tool_choice 'required' needs at least one tool`, 'tool_choice');
    return v;
  }
  if (isObject(v) && v.type === 'function' && isObject(v.function) && typeof v.function.name === 'string') {
    const name = v.function.name;
    if (!declared.has(name)) invalid(`tool_choice names '${name}', which is not a function in tools`, 'tool_choice.function.name', 'unknown_function');
    return { name };
  }
  return invalid('tool_choice must be auto, none, required or {"type":"function","function":{"name"}}', 'tool_choice', 'invalid_type');
}

function readStop(v: unknown): string[] {
  if (v == null) return [];
  if (typeof v === 'string') return v === '' ? invalid('stop must not be empty', 'stop') : [v];
  if (!Array.isArray(v)) return invalid('stop must be a string or an array of strings', 'stop', 'invalid_type');
  if (v.length > MAX_STOPS) invalid(`stop holds at most ${MAX_STOPS} strings`, 'stop');
  v.forEach((s, i) => {
    if (typeof s !== 'string') invalid(`stop[${i}] must be a string`, `stop[${i}]`, 'invalid_type');
    if (s === '') invalid(`stop[${i}] must not be empty`, `stop[${i}]`);
  });
  return v as string[];
}

/** Parses and validates a body; throws FakeError. */
function validate(text: string): ChatBody {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return invalid(`the body is not JSON: ${(e as Error).message}`, null, 'invalid_json');
  }
  if (!isObject(raw)) return invalid('the request body must be a JSON object', null, 'invalid_type');
  const model = optional(raw, 'model');
  if (model !== undefined && typeof model !== 'string') invalid('model must be a string', 'model', 'invalid_type');
  const tools = readTools(raw.tools);
  const declared = new Set(tools.map((t) => t.name));
  const messages = readMessages(raw.messages, declared);
  const toolChoice = readToolChoice(raw.tool_choice, declared);
  boolean(raw, 'parallel_tool_calls');
  const effort = optional(raw, 'reasoning_effort');
  if (effort !== undefined && !['low', 'medium', 'high'].includes(effort as string))
    invalid('reasoning_effort must be low, medium or high', 'reasoning_effort');
  const temperature = number(raw, 'temperature', (x) => x >= 0 && x <= 2, 'between 0 and 2') ?? 1;
  number(raw, 'top_p', (x) => x > 0 && x <= 1, 'in (0, 1]');
  const seed = integer(raw, 'seed', 0, 2 ** 53 - 1) ?? 0;
  const maxTokens = integer(raw, 'max_tokens', 1, Number.MAX_SAFE_INTEGER);
  const maxCompletion = integer(raw, 'max_completion_tokens', 1, Number.MAX_SAFE_INTEGER);
  const stop = readStop(raw.stop);
  const n = integer(raw, 'n', 1, MAX_CHOICES) ?? 1;
  const logprobs = boolean(raw, 'logprobs') ?? false;
  const topLogprobs = integer(raw, 'top_logprobs', 0, MAX_TOP_LOGPROBS) ?? 0;
  if (topLogprobs > 0 && !logprobs) invalid('top_logprobs needs logprobs: true', 'top_logprobs');
  const stream = boolean(raw, 'stream') ?? false;
  const options = optional(raw, 'stream_options');
  if (options !== undefined && !isObject(options)) invalid('stream_options must be an object', 'stream_options', 'invalid_type');
  const includeUsage = isObject(options) ? (boolean(options, 'include_usage') ?? false) : false;
  const format = optional(raw, 'response_format');
  if (format !== undefined && !(isObject(format) && format.type === 'text')) invalid('response_format must be {"type":"text"}', 'response_format');
  if (model !== undefined && model !== FAKE_MODEL) {
    throw new FakeError(404, `the model '${String(model)}' does not exist; this server serves '${FAKE_MODEL}'`, 'model', 'model_not_found');
  }
  const budget = maxCompletion ?? maxTokens;
  const prompt = promptTokens(messages, tools);
  if (budget !== undefined && prompt + budget > CONTEXT_LENGTH) {
    invalid(
      `the prompt (${prompt} tokens) plus the budget (${budget}) exceeds the context length (${CONTEXT_LENGTH})`,
      maxCompletion !== undefined ? 'max_completion_tokens' : 'max_tokens',
      'context_length_exceeded',
    );
  }
  return { raw, messages, tools, toolChoice, temperature, seed, n, maxTokens: budget, stop, logprobs, topLogprobs, stream, includeUsage };
}

// ── The model ────────────────────────────────────────────────────────────────────────────────────

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (isObject(v)) {
    return `{${Object.keys(v)
      .filter((k) => v[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** mulberry32, seeded from a hex digest. */
function prng(hex: string): () => number {
  let s = Number.parseInt(hex.slice(0, 8), 16) >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = [
  'the',
  'a',
  'fox',
  'quick',
  'brown',
  'jumps',
  'over',
  'lazy',
  'dog',
  'four',
  'two',
  'plus',
  'is',
  'yes',
  'no',
  'maybe',
  'answer',
  'think',
  'so',
  'then',
  'we',
  'sum',
  'of',
  'and',
  'it',
  'green',
  'blue',
  'red',
  'seven',
  'eleven',
  'hello',
  'world',
];

const wordCount = (s: string) => s.split(/\s+/).filter(Boolean).length;

/** Deterministic prompt length: words of every string in the messages and tools, plus framing. */
function promptTokens(messages: Json[], tools: ToolDecl[]): number {
  const strings = (v: unknown): number =>
    typeof v === 'string'
      ? wordCount(v) + 1
      : Array.isArray(v)
        ? v.reduce((n: number, x) => n + strings(x), 0)
        : isObject(v)
          ? Object.values(v).reduce((n: number, x) => n + strings(x), 0)
          : 0;
  return 3 + messages.reduce((n, m) => n + 4 + strings(m), 0) + tools.reduce((n, t) => n + 8 + strings(t.parameters ?? {}), 0);
}

type Token =
  | { kind: 'reasoning' | 'content'; text: string }
  | { kind: 'call'; index: number; id: string; name: string }
  | { kind: 'arguments'; index: number; text: string };

/** Arguments for a declared function: a small JSON object over its first parameters. */
function argumentsFor(tool: ToolDecl, pick: () => number): string {
  const properties = isObject(tool.parameters?.properties) ? (tool.parameters.properties as Json) : {};
  const required = Array.isArray(tool.parameters?.required) ? (tool.parameters.required as unknown[]).filter((k): k is string => typeof k === 'string') : [];
  const keys = [...new Set([...required, ...Object.keys(properties)])].slice(0, 2);
  const word = () => WORDS[Math.floor(pick() * WORDS.length)]!;
  const args: Json = {};
  for (const key of keys) {
    const schema = isObject(properties[key]) ? (properties[key] as Json) : {};
    if (Array.isArray(schema.enum) && schema.enum.length > 0) args[key] = schema.enum[0];
    else if (schema.type === 'integer' || schema.type === 'number') args[key] = Math.floor(pick() * 10);
    else if (schema.type === 'object') args[key] = {};
    else if (schema.type === 'array') args[key] = [];
    else args[key] = `${word()} ${word()}`;
  }
  return JSON.stringify(args);
}

/** The full token sequence of one choice, before any budget or stop string. */
function generate(body: ChatBody, messages: Json[], choice: number): Token[] {
  const raw = body.raw;
  const sampling = body.temperature === 0 ? 'greedy' : { temperature: body.temperature, seed: body.seed + choice };
  const digest = sha256(
    canonical({
      messages,
      tools: raw.tools ?? null,
      tool_choice: raw.tool_choice ?? null,
      reasoning_effort: raw.reasoning_effort ?? null,
      parallel_tool_calls: raw.parallel_tool_calls ?? null,
      top_p: raw.top_p ?? null,
      sampling,
    }),
  );
  const pick = prng(digest);
  const word = () => WORDS[Math.floor(pick() * WORDS.length)]!;
  const effort = (raw.reasoning_effort as string | undefined) ?? 'medium';
  const reasoningWords = Math.floor(pick() * ({ low: 2, medium: 4, high: 6 }[effort] ?? 4));
  const tokens: Token[] = [];
  for (let i = 0; i < reasoningWords; i++) tokens.push({ kind: 'reasoning', text: `${i > 0 ? ' ' : ''}${word()}` });
  const choiceOf = body.toolChoice;
  const callTool = body.tools.length > 0 && choiceOf !== 'none' && (choiceOf !== 'auto' || pick() < 1 / 3);
  if (callTool) {
    const named = typeof choiceOf === 'object' ? choiceOf.name : undefined;
    const count = named === undefined && raw.parallel_tool_calls !== false && pick() < 1 / 4 ? 2 : 1;
    for (let index = 0; index < count; index++) {
      const tool = named !== undefined ? body.tools.find((t) => t.name === named)! : body.tools[Math.floor(pick() * body.tools.length)]!;
      tokens.push({ kind: 'call', index, id: `call_${digest.slice(0, 12)}_${index}`, name: tool.name });
      const args = argumentsFor(tool, pick);
      for (let at = 0; at < args.length;) {
        const size = 1 + Math.floor(pick() * 6);
        tokens.push({ kind: 'arguments', index, text: args.slice(at, at + size) });
        at += size;
      }
    }
  } else {
    const contentWords = 1 + Math.floor(pick() * 10);
    for (let i = 0; i < contentWords; i++) tokens.push({ kind: 'content', text: `${i > 0 ? ' ' : ''}${word()}` });
  }
  return tokens;
}

interface LogprobEntry {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: Array<{ token: string; logprob: number; bytes: number[] }>;
}

/** One streamed delta of a choice (a token, or what a stop string leaves of one). */
interface Delta {
  reasoning?: string;
  content?: string;
  toolCall?: { index: number; id?: string; type?: 'function'; function: { name?: string; arguments: string } };
  logprobs: LogprobEntry[];
}

interface Choice {
  deltas: Delta[];
  finish: 'stop' | 'length' | 'tool_calls';
  completionTokens: number;
}

interface Completion {
  choices: Choice[];
  promptTokens: number;
  logprobs: boolean;
  /** Prompt tokens served from the prefix cache (usage.prompt_tokens_details.cached_tokens); 0 without one. */
  cachedTokens?: number;
}

/** A fake but deterministic log-probability for a token's text (and alternatives). */
function logprobOf(text: string, top: number): LogprobEntry {
  const lp = (t: string) => -Number.parseInt(sha256(`logprob:${t}`).slice(0, 4), 16) / 10_000;
  const bytes = (t: string) => [...Buffer.from(t, 'utf8')];
  const alternatives = [
    text,
    ...WORDS.filter((w) => w !== text.trim())
      .slice(0, Math.max(0, top - 1))
      .map((w) => ` ${w}`),
  ].slice(0, top);
  return { token: text, logprob: lp(text), bytes: bytes(text), top_logprobs: alternatives.map((t) => ({ token: t, logprob: lp(t), bytes: bytes(t) })) };
}

/**
 * 'reseeded-rng': a log-prob entry of its flat sampling distribution — every word −ln 32; the
 * alternatives are the sampled word and the words after it in the vocabulary.
 */
function flatLogprobOf(text: string, top: number): LogprobEntry {
  const word = text.trim();
  const entry = (t: string) => ({ token: t, logprob: -Math.log(WORDS.length), bytes: [...Buffer.from(t, 'utf8')] });
  const alternatives = Array.from({ length: top }, (_, j) => entry(text.replace(word, WORDS[(WORDS.indexOf(word) + j) % WORDS.length]!)));
  return { ...entry(text), top_logprobs: alternatives };
}

/** A choice: the token sequence cut at the budget, then the content cut before the first stop string. */
function choiceOf(body: ChatBody, tokens: Token[], keepStop = false, logprob = logprobOf): Choice {
  const budget = body.maxTokens ?? Number.POSITIVE_INFINITY;
  const kept = tokens.slice(0, budget);
  const content = kept.map((t) => (t.kind === 'content' ? t.text : '')).join('');
  // The first occurrence of any stop string in the content (stop strings never apply to reasoning or arguments).
  let cut = Number.POSITIVE_INFINITY;
  let end = Number.POSITIVE_INFINITY;
  for (const s of body.stop) {
    const at = content.indexOf(s);
    if (at >= 0 && at < cut) [cut, end] = [at, at + s.length];
  }
  // 'stop-kept': the answer ends with the stop string instead of before it.
  if (keepStop) cut = end;
  const deltas: Delta[] = [];
  let at = 0;
  for (const [i, t] of kept.entries()) {
    if (t.kind === 'reasoning') deltas.push({ reasoning: t.text, logprobs: [] });
    else if (t.kind === 'call')
      deltas.push({ toolCall: { index: t.index, id: t.id, type: 'function', function: { name: t.name, arguments: '' } }, logprobs: [] });
    else if (t.kind === 'arguments') deltas.push({ toolCall: { index: t.index, function: { arguments: t.text } }, logprobs: [] });
    else {
      const [start, stop] = [at, at + t.text.length];
      at = stop;
      if (stop <= cut) deltas.push({ content: t.text, logprobs: body.logprobs ? [logprob(t.text, body.topLogprobs)] : [] });
      // A token cut by the stop string: its text before the cut, without a log-probability.
      else if (start < cut) deltas.push({ content: t.text.slice(0, cut - start), logprobs: [] });
      // completion_tokens counts up to the token that completed the stop string.
      if (stop >= end) return { deltas, finish: 'stop', completionTokens: i + 1 };
    }
  }
  const finish = kept.length < tokens.length ? 'length' : kept.some((t) => t.kind === 'call') ? 'tool_calls' : 'stop';
  return { deltas, finish, completionTokens: kept.length };
}

function complete(body: ChatBody, messages: Json[], keepStop = false): Completion {
  const choices = Array.from({ length: body.n }, (_, i) => choiceOf(body, generate(body, messages, i), keepStop));
  return { choices, promptTokens: promptTokens(messages, body.tools), logprobs: body.logprobs };
}

/** A step of generation, ms: long enough for a burst's other members to arrive before the first draw. */
const TOKEN_MS = 5;

/**
 * 'reseeded-rng': a seeded completion sampled from the server's one RNG. Per choice: re-seed it with
 * seed + choice, then, for each content word, wait a step and draw — the draw u picks the word at
 * ⌊32u⌋ places after the one the prompt puts there (inverse-CDF sampling of a flat distribution over
 * a vocabulary laid out in the prompt's order).
 */
async function sampleShared(body: ChatBody, messages: Json[], rng: { reseed(seed: number): void; draw(): number }): Promise<Completion> {
  const choices: Choice[] = [];
  for (let i = 0; i < body.n; i++) {
    rng.reseed(body.seed + i);
    const tokens = generate(body, messages, i);
    for (const t of tokens) {
      if (t.kind !== 'content') continue;
      await new Promise((resolve) => setTimeout(resolve, TOKEN_MS));
      const word = t.text.trim();
      t.text = t.text.replace(word, WORDS[(WORDS.indexOf(word) + Math.floor(rng.draw() * WORDS.length)) % WORDS.length]!);
    }
    choices.push(choiceOf(body, tokens, false, flatLogprobOf));
  }
  return { choices, promptTokens: promptTokens(messages, body.tools), logprobs: body.logprobs };
}

// ── Rendering ────────────────────────────────────────────────────────────────────────────────────

function message(choice: Choice): Json {
  const reasoning = choice.deltas.map((d) => d.reasoning ?? '').join('');
  const content = choice.deltas.map((d) => d.content ?? '').join('');
  const calls: Array<{ id: string; type: 'function'; function: { name: string; arguments: string } }> = [];
  for (const d of choice.deltas) {
    if (!d.toolCall) continue;
    const call = (calls[d.toolCall.index] ??= { id: d.toolCall.id ?? '', type: 'function', function: { name: '', arguments: '' } });
    call.function.name += d.toolCall.function.name ?? '';
    call.function.arguments += d.toolCall.function.arguments;
  }
  const m: Json = { role: 'assistant', content: content === '' && calls.length > 0 ? null : content };
  if (reasoning !== '') m.reasoning = reasoning;
  if (calls.length > 0) m.tool_calls = calls;
  return m;
}

const usageOf = (c: Completion) => {
  const completion = c.choices.reduce((n, ch) => n + ch.completionTokens, 0);
  return {
    prompt_tokens: c.promptTokens,
    completion_tokens: completion,
    total_tokens: c.promptTokens + completion,
    prompt_tokens_details: { cached_tokens: c.cachedTokens ?? 0 },
  };
};

function jsonBody(id: string, c: Completion): Json {
  return {
    id,
    object: 'chat.completion',
    created: CREATED,
    model: FAKE_MODEL,
    system_fingerprint: 'fp_fake',
    choices: c.choices.map((ch, index) => ({
      index,
      message: message(ch),
      logprobs: c.logprobs ? { content: ch.deltas.flatMap((d) => d.logprobs) } : null,
      finish_reason: ch.finish,
    })),
    usage: usageOf(c),
  };
}

/** The SSE events of a completion, each a `data: …` line and a blank line. */
function streamEvents(id: string, c: Completion, includeUsage: boolean, drift: boolean, done = true): string[] {
  const chunk = (choices: Json[], extra: Json = {}) =>
    `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: CREATED, model: FAKE_MODEL, system_fingerprint: 'fp_fake', choices, ...(includeUsage ? { usage: null } : {}), ...extra })}\n\n`;
  const events: string[] = [];
  c.choices.forEach((ch, index) => {
    events.push(chunk([{ index, delta: { role: 'assistant' }, logprobs: null, finish_reason: null }]));
    let deltas = ch.deltas;
    if (drift) {
      const last = deltas.findLastIndex((d) => d.content !== undefined);
      if (deltas.filter((d) => d.content !== undefined).length >= 2) deltas = deltas.filter((_, i) => i !== last);
    }
    for (const d of deltas) {
      const delta: Json =
        d.reasoning !== undefined ? { reasoning: d.reasoning } : d.content !== undefined ? { content: d.content } : { tool_calls: [d.toolCall] };
      events.push(chunk([{ index, delta, logprobs: c.logprobs ? { content: d.logprobs } : null, finish_reason: null }]));
    }
    events.push(chunk([{ index, delta: {}, logprobs: c.logprobs ? { content: [] } : null, finish_reason: ch.finish }]));
  });
  if (includeUsage) events.push(chunk([], { usage: usageOf(c) }));
  if (done) events.push('data: [DONE]\n\n');
  return events;
}

/** A stream that hands out one event per read, as a server writes them. */
function sse(events: string[]): HttpResponse<ReadableStream<Uint8Array>> {
  const encoder = new TextEncoder();
  let next = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (next < events.length) controller.enqueue(encoder.encode(events[next++]!));
      else controller.close();
    },
  });
  return new HttpResponse(body, { status: 200, headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' } });
}

function errorResponse(e: FakeError, variant: FakeVariant): Response {
  if (variant === 'bad-json-500' && e.code === 'invalid_json') {
    return HttpResponse.json({ error: { message: e.message, type: 'server_error', param: null, code: null } }, { status: 500 });
  }
  if (variant === 'broken-envelope') {
    // fastify without an error handler: its default body; 400 for what its schema and JSON parser
    // catch, 500 for anything the route itself threw.
    const status = ['invalid_json', 'invalid_type', 'missing_required_parameter'].includes(e.code) ? 400 : 500;
    const body = {
      statusCode: status,
      ...(status === 400 ? { code: e.code === 'invalid_json' ? 'FST_ERR_CTP_INVALID_JSON_BODY' : 'FST_ERR_VALIDATION' } : {}),
      error: status === 400 ? 'Bad Request' : 'Internal Server Error',
      message: e.message,
    };
    return HttpResponse.json(body, { status });
  }
  return HttpResponse.json({ error: { message: e.message, type: e.type, param: e.param, code: e.code } }, { status: e.status });
}

const lastUserText = (messages: Json[]): string | undefined => {
  const m = messages.findLast((x) => x.role === 'user');
  if (!m) return undefined;
  return typeof m.content === 'string' ? m.content : Array.isArray(m.content) ? m.content.map((p) => String((p as Json).text)).join('') : '';
};

/** The completion with its content and reasoning upper-cased ('first-time-wrong'). */
const shout = (c: Completion): Completion => ({
  ...c,
  choices: c.choices.map((ch) => ({
    ...ch,
    deltas: ch.deltas.map((d) => ({
      ...d,
      ...(d.content !== undefined ? { content: d.content.toUpperCase() } : {}),
      ...(d.reasoning !== undefined ? { reasoning: d.reasoning.toUpperCase() } : {}),
    })),
  })),
});

/** Every log-prob `by` lower: the same tokens, other numbers ('cache-drift', 'jitter'). */
const drifted = (c: Completion, by = 0.001): Completion => {
  const lower = (e: LogprobEntry): LogprobEntry => ({
    ...e,
    logprob: e.logprob - by,
    top_logprobs: e.top_logprobs.map((t) => ({ ...t, logprob: t.logprob - by })),
  });
  return { ...c, choices: c.choices.map((ch) => ({ ...ch, deltas: ch.deltas.map((d) => ({ ...d, logprobs: d.logprobs.map(lower) })) })) };
};

/**
 * 'cache-diverge': every choice's first content token is a near-tie — its runner-up, the next word of
 * the vocabulary, is listed 0.001 below it — and a cache hit tips it to the runner-up (unless that
 * would bring a stop string into the content). Other tokens, nothing another request had.
 */
function nearTie(c: Completion, stop: readonly string[], tipped: boolean): Completion {
  return {
    ...c,
    choices: c.choices.map((ch) => {
      const first = ch.deltas.findIndex((d) => d.content !== undefined && d.content.trim() !== '');
      if (first < 0) return ch;
      const d = ch.deltas[first]!;
      const word = d.content!.trim();
      const runnerUp = d.content!.replace(word, WORDS[(WORDS.indexOf(word) + 1) % WORDS.length]!);
      const tip = tipped && !stop.some((s) => runnerUp.includes(s));
      const entry = d.logprobs[0];
      let logprobs = d.logprobs;
      if (entry) {
        const [chosen, other] = tip ? [runnerUp, d.content!] : [d.content!, runnerUp];
        const bytes = (t: string) => [...Buffer.from(t, 'utf8')];
        const listed = [
          { token: chosen, logprob: entry.logprob, bytes: bytes(chosen) },
          { token: other, logprob: entry.logprob - 0.001, bytes: bytes(other) },
        ].slice(0, entry.top_logprobs.length);
        logprobs = [{ token: chosen, logprob: entry.logprob, bytes: bytes(chosen), top_logprobs: listed }];
      }
      const deltas = ch.deltas.map((x, i) => (i === first ? { ...x, content: tip ? runnerUp : d.content!, logprobs } : x));
      return { ...ch, deltas };
    }),
  };
}

// ── The handlers ─────────────────────────────────────────────────────────────────────────────────

/** The msw handlers of one fake server; its state (for the leaky variants) lives in this call. */
export function fakeServer(options: FakeServerOptions): HttpHandler[] {
  const { variant } = options;
  const base = (options.baseUrl ?? DEFAULT_FAKE_BASE_URL).replace(/\/+$/, '');
  const origin = new URL(base).origin;
  let served = 0;
  // 'batch-numerics': chat requests in flight now.
  let inFlight = 0;
  // 'answer-memo': last user message text → the last answer computed under it.
  const memo = new Map<string, Completion>();
  // 'session-history': the previous request's messages.
  let session: Json[] | undefined;
  // 'first-time-wrong': every request body seen so far (stream fields aside).
  const seen = new Set<string>();
  // 'cache-drift', 'cache-diverge': every prefix of every conversation served (a prefix cache).
  const prefixes = new Set<string>();
  // 'stale-buffer': the previous answer's content.
  let leftover = '';
  // 'reseeded-rng': the sampler's one RNG, which every seeded request re-seeds.
  let draw = prng(sha256('reseeded-rng'));
  const rng = {
    reseed(seed: number) {
      draw = prng(sha256(`seed:${seed}`));
    },
    draw: () => draw(),
  };

  const models = { object: 'list', data: [{ id: FAKE_MODEL, object: 'model', created: CREATED, owned_by: 'amnesia' }] };
  const notFound = (what: string) =>
    HttpResponse.json({ error: { message: `no route ${what}`, type: 'invalid_request_error', param: null, code: 'not_found' } }, { status: 404 });

  return [
    http.post(`${base}/chat/completions`, async ({ request }) => {
      let body: ChatBody;
      try {
        body = validate(await request.text());
      } catch (e) {
        if (e instanceof FakeError) return errorResponse(e, variant);
        throw e;
      }
      if (variant === 'hang-tool-stream' && body.stream && body.raw.tool_choice !== undefined) {
        // Never answers; gives up only when the client goes away.
        await new Promise((resolve) => request.signal.addEventListener('abort', resolve, { once: true }));
        return HttpResponse.json({ error: { message: 'gone', type: 'server_error', param: null, code: null } }, { status: 503 });
      }
      if (variant === 'always-500') {
        return HttpResponse.json({ error: { message: 'internal error', type: 'server_error', param: null, code: null } }, { status: 500 });
      }
      if ((variant === 'parse-500' || variant === 'parse-500-memo') && body.messages.at(-1)!.role !== 'user') {
        const message = 'The model produced output that does not match the expected format';
        return HttpResponse.json({ error: { code: 500, message, type: 'server_error' } }, { status: 500 });
      }
      if (variant === 'repeat-500') {
        const key = lastUserText(body.messages);
        const again = key !== undefined && memo.has(key);
        if (key !== undefined) memo.set(key, complete(body, body.messages));
        if (again) return HttpResponse.json({ error: { message: 'internal error', type: 'server_error', param: null, code: null } }, { status: 500 });
      }
      if (variant === 'n-ignored') body = { ...body, n: 1 };
      const id = `chatcmpl-fake-${++served}`;
      let completion: Completion;
      if (variant === 'session-history') {
        const last = body.messages.at(-1)!;
        completion = complete(body, session ? [...session, last] : body.messages);
        session = body.messages;
      } else if (variant === 'answer-memo' || variant === 'parse-500-memo') {
        const key = lastUserText(body.messages);
        const own = complete(body, body.messages);
        completion = (key !== undefined ? memo.get(key) : undefined) ?? own;
        if (key !== undefined) memo.set(key, own);
      } else if (variant === 'batch-numerics') {
        inFlight++;
        try {
          // Long enough for a burst's other members to arrive.
          await new Promise((resolve) => setTimeout(resolve, 5));
          completion = complete(body, body.messages);
          if (inFlight > 1) completion = drifted(completion, 0.002);
        } finally {
          inFlight--;
        }
      } else if (variant === 'reseeded-rng' && body.temperature > 0 && optional(body.raw, 'seed') !== undefined) {
        completion = await sampleShared(body, body.messages, rng);
      } else {
        completion = complete(body, body.messages, variant === 'stop-kept');
      }
      if (variant === 'cache-drift' || variant === 'cache-diverge') {
        const keys = body.messages.map((_, k) => canonical(body.messages.slice(0, k + 1)));
        const hit = keys.some((k) => prefixes.has(k));
        if (variant === 'cache-drift' && hit) completion = drifted(completion);
        if (variant === 'cache-diverge') completion = nearTie(completion, body.stop, hit);
        // Reported as a server with a prefix cache reports it: the prompt tokens of the longest cached prefix.
        const longest = keys.findLastIndex((k) => prefixes.has(k));
        if (longest >= 0) completion = { ...completion, cachedTokens: promptTokens(body.messages.slice(0, longest + 1), []) };
        for (const k of keys) prefixes.add(k);
      }
      if (variant === 'jitter') completion = drifted(completion, (served % 7) * 1e-4);
      if (variant === 'stale-buffer') {
        const own = message(completion.choices[0]!).content;
        const first = completion.choices[0]!.deltas.findIndex((d) => d.content !== undefined);
        if (first >= 0 && leftover !== '') {
          const choices = [...completion.choices];
          const deltas = choices[0]!.deltas.map((d, i) => (i === first ? { ...d, content: leftover + d.content! } : d));
          choices[0] = { ...choices[0]!, deltas };
          completion = { ...completion, choices };
        }
        leftover = typeof own === 'string' ? own : '';
      }
      if (variant === 'first-time-wrong') {
        const { stream: _s, stream_options: _o, ...rest } = body.raw;
        const key = canonical(rest);
        if (!seen.has(key)) completion = shout(completion);
        seen.add(key);
      }
      if (body.stream) {
        const includeUsage = variant === 'usage-unasked' || (body.includeUsage && variant !== 'usage-ignored');
        return sse(streamEvents(id, completion, includeUsage, variant === 'stream-drift', variant !== 'no-done'));
      }
      return HttpResponse.json(jsonBody(id, completion));
    }),
    http.get(`${base}/models`, () => HttpResponse.json(models)),
    http.get(`${base}/models/:id`, ({ params }) => (params.id === FAKE_MODEL ? HttpResponse.json(models.data[0]) : notFound(`model ${String(params.id)}`))),
    http.get(`${origin}/health`, () => HttpResponse.json({ status: 'ok', model: FAKE_MODEL })),
    http.post(`${origin}/admin/cache/flush`, () => {
      // The leaky variants keep their state in what the flush empties (a cache, a session store).
      const entries = memo.size + (session ? 1 : 0) + prefixes.size;
      memo.clear();
      session = undefined;
      prefixes.clear();
      leftover = '';
      return HttpResponse.json({ flushed: true, entries, bytes: 0 });
    }),
    http.all(`${origin}/*`, ({ request }) => notFound(`${request.method} ${new URL(request.url).pathname}`)),
  ];
}

/**
 * msw (2.15, @mswjs/interceptors 0.41) tees every mocked fetch response to hand a clone to its
 * `response:mocked` event; while that clone is unread, cancelling the client's body — what a client
 * that goes away midway does, and what `cancel-no-trace` does — never settles (the tee's cancel waits
 * for both branches; mswjs/interceptors#712). Cancelling each clone at once lets it settle.
 */
export function releaseResponseClones(server: SetupServer): void {
  server.events.on('response:mocked', ({ response }) => {
    void response.body?.cancel().catch(() => {});
  });
}

/**
 * The msw server of a test file (listening from beforeAll to afterAll, fakes dropped after each
 * test), and `fresh(variant)`: a new fake with its own state at its own host (`<variant>-<n>.<host>`),
 * whose base URL it returns.
 */
export function useFakeServers(host: string): (variant: FakeVariant) => string {
  const server = setupServer();
  beforeAll(() => {
    server.listen({ onUnhandledRequest: 'error' });
    releaseResponseClones(server);
  });
  afterEach(() => server.resetHandlers());
  afterAll(() => server.close());
  let instances = 0;
  return (variant) => {
    const baseUrl = `http://${variant}-${++instances}.${host}/v1`;
    server.use(...fakeServer({ variant, baseUrl }));
    return baseUrl;
  };
}
