// The reference server under abuse (spec/api.md "Errors"): what a hostile or careless client sends
// never gets a 5xx, never goes unanswered and never changes a later answer; streaming clients that
// go away mid-answer leave the others' answers and the server's state as if they had never come;
// SIGTERM under load ends every stream in-band and exits.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startLocalServer, type LocalServer } from '../src/server/local-server.ts';
import { normaliser } from '../src/server/normalise-response.ts';

const seed = fc.readConfigureGlobal().seed ?? 20261124;
const FUZZ_REQUESTS = 2_000;
/** A request unanswered after this long is a hang (a liveness bound, not a speed target). */
const HANG_MS = 60_000;

const base = (model: string) => ({ model, messages: [{ role: 'user', content: 'What is 2+2?' }], max_tokens: 4 });

// ── Hostile requests, from the request fields of spec/api.md ─────────────────────────────────────

/** Nested `depth` levels deep: arrays, objects, or a tool schema's `items`. */
function nested(kind: 'array' | 'object' | 'schema', depth: number): unknown {
  let v: unknown = kind === 'schema' ? { type: 'string' } : 1;
  for (let i = 0; i < depth; i++) v = kind === 'array' ? [v] : kind === 'object' ? { a: v } : { type: 'array', items: v };
  return v;
}

// Up to 8K characters (up to ~5,400 tokens: 'x y' is two tokens per three characters): a valid prompt
// much longer is a legitimate long prefill on the tiny model, not a hang, and how long it takes
// depends on the machine (20K characters of 'x y', 13,400 tokens, took 82 s on a busy two-core machine
// without AVX-512, past HANG_MS).
const longText = fc
  .tuple(fc.constantFrom('a', 'ab', '7', '€', '😀', ' ', '\n', '<|start|>', 'x y', '\u0000'), fc.constantFrom(1_000, 8_000))
  .map(([unit, chars]) => unit.repeat(Math.ceil(chars / unit.length)));

const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1.5, 2 ** 53, -(2 ** 31), 1e308, '', 'x', '1', [], {}, [null], { '': '' }, ['a', 'b', 'c', 'd', 'e']),
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom('array', 'object').chain((k) => fc.constantFrom(100, 2_000, 4_000).map((d) => nested(k as 'array' | 'object', d))),
  longText,
);

const FIELDS = [
  'model',
  'messages',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'reasoning_effort',
  'temperature',
  'top_p',
  'seed',
  'max_tokens',
  'max_completion_tokens',
  'stop',
  'n',
  'logprobs',
  'top_logprobs',
  'stream',
  'stream_options',
  'response_format',
  'user',
  'frequency_penalty',
  'presence_penalty',
  'logit_bias',
];

const hostileMessage: fc.Arbitrary<unknown> = fc.oneof(
  fc.record({ role: fc.constantFrom('user', 'system', 'developer', 'assistant', 'tool', 'robot', ''), content: hostileValue }),
  fc.record({ role: fc.constant('assistant'), content: fc.constant(null), tool_calls: hostileValue }),
  fc.record({
    role: fc.constant('assistant'),
    content: fc.constant(null),
    tool_calls: fc.constant([{ id: 'c', type: 'function', function: { name: 'calc', arguments: '{"a":' } }]),
  }),
  fc.record({ role: fc.constant('tool'), content: hostileValue, tool_call_id: hostileValue }),
  hostileValue,
);

const hostileTool: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(100, 2_000, 4_000).map((d) => ({ type: 'function', function: { name: 'deep', parameters: nested('schema', d) } })),
  fc.record({ type: fc.constant('function'), function: fc.record({ name: hostileValue, parameters: hostileValue, description: hostileValue }) }),
  hostileValue,
);

interface HostileRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  contentType?: string;
  contentEncoding?: string;
  body?: string;
}

const hostileRequest = (model: string): fc.Arbitrary<HostileRequest> => {
  const body = fc.oneof(
    // One field of a valid request given a hostile value.
    fc.record({ field: fc.constantFrom(...FIELDS), value: hostileValue }).map(({ field, value }) => JSON.stringify({ ...base(model), [field]: value })),
    fc.array(hostileMessage, { maxLength: 4 }).map((messages) => JSON.stringify({ ...base(model), messages })),
    fc.array(hostileTool, { minLength: 1, maxLength: 2 }).map((tools) => JSON.stringify({ ...base(model), tools })),
    // Not JSON, or not an object.
    fc.constantFrom('', '{', '{"messages":', 'null', '[]', '"x"', '{"model":"m",}', '\u0000', '{"a":1}{"b":2}'),
    fc.string({ maxLength: 64 }),
    // Deeper than JSON.stringify can write: built as text.
    fc.constantFrom(20_000, 100_000).map((d) => '['.repeat(d) + ']'.repeat(d)),
    fc.constantFrom(20_000, 50_000).map((d) => {
      const schema = '{"type":"array","items":'.repeat(d) + '{"type":"string"}' + '}'.repeat(d);
      return JSON.stringify(base(model)).replace(/}$/, `,"tools":[{"type":"function","function":{"name":"deep","parameters":${schema}}}]}`);
    }),
    // A valid request with random sampling fields: it must be answered.
    fc
      .record({
        temperature: fc.constantFrom(0, 0.5, 1, 2),
        n: fc.integer({ min: 1, max: 4 }),
        logprobs: fc.boolean(),
        stream: fc.boolean(),
        stop: fc.option(fc.constantFrom('4', ' ', '\n', ['a', 'b']), { nil: undefined }),
      })
      .map((extra) => JSON.stringify({ ...base(model), ...extra, ...(extra.logprobs ? { top_logprobs: 2 } : {}) })),
  );
  return fc.oneof(
    { weight: 6, arbitrary: body.map((b): HostileRequest => ({ method: 'POST', path: '/v1/chat/completions', contentType: 'application/json', body: b })) },
    {
      weight: 1,
      arbitrary: fc.record({
        method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE'),
        path: fc.constantFrom(
          '/v1/chat/completions',
          '/v1/chat/completions/',
          '/v1//chat/completions',
          '/%76%31/chat/completions',
          '/v1/models',
          '/v1/models/%00',
          `/v1/models/${'x'.repeat(5000)}`,
          '/v1/../v1/models',
          '/v1/chat/completions?x=1',
          '/admin/cache/flush',
          '/health',
          '/metrics',
          '/nope',
        ),
        contentType: fc.constantFrom(
          'application/json',
          'text/plain',
          'application/x-www-form-urlencoded',
          'application/json; charset=latin1',
          'multipart/form-data',
        ),
        contentEncoding: fc.option(fc.constantFrom('gzip', 'br', 'identity', 'x-bogus'), { nil: undefined }),
        body: fc.option(body, { nil: undefined }),
      }),
    },
  );
};

/** Sends one request; returns its status and body text, or 'hang' after HANG_MS. */
async function send(origin: string, r: HostileRequest): Promise<{ status: number | 'hang'; text: string }> {
  const headers: Record<string, string> = {};
  if (r.contentType) headers['content-type'] = r.contentType;
  if (r.contentEncoding) headers['content-encoding'] = r.contentEncoding;
  const withBody = r.body !== undefined && r.method !== 'GET';
  try {
    const res = await fetch(`${origin}${r.path}`, {
      method: r.method,
      headers,
      ...(withBody ? { body: r.body } : {}),
      signal: AbortSignal.timeout(HANG_MS),
    });
    return { status: res.status, text: await res.text() };
  } catch (e) {
    if ((e as Error).name === 'TimeoutError') return { status: 'hang', text: '' };
    throw e;
  }
}

const hasEnvelope = (text: string): boolean => {
  try {
    const e = (JSON.parse(text) as { error?: Record<string, unknown> }).error;
    return typeof e === 'object' && e !== null && typeof e.message === 'string' && typeof e.type === 'string' && 'param' in e && 'code' in e;
  } catch {
    return false;
  }
};

/** The answer to a fixed probe request, normalised (ids, created, fingerprint): must never change. */
async function probeAnswer(local: LocalServer): Promise<unknown> {
  const res = await fetch(`${local.baseUrl}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...base(local.modelId), max_tokens: 12, temperature: 1, seed: 7, logprobs: true, top_logprobs: 2 }),
  });
  expect(res.status).toBe(200);
  return normaliser()(await res.json());
}

describe(`${FUZZ_REQUESTS} hostile requests`, () => {
  let local: LocalServer;
  beforeAll(async () => {
    local = await startLocalServer({ model: 'tiny' });
  });
  afterAll(async () => local?.close());

  test('no 5xx, no hang, every error in the envelope, the probe answer unchanged', { timeout: 1_200_000 }, async () => {
    const before = await probeAnswer(local);
    const requests = fc.sample(hostileRequest(local.modelId), { seed, numRuns: FUZZ_REQUESTS });
    const bad: string[] = [];
    const statuses = new Map<string, number>();
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < requests.length; i = next++) {
        const r = requests[i]!;
        const { status, text } = await send(local.origin, r);
        statuses.set(String(status), (statuses.get(String(status)) ?? 0) + 1);
        const what = `#${i} ${r.method} ${r.path.slice(0, 60)} ${r.contentType ?? ''} ${r.contentEncoding ?? ''} ${(r.body ?? '').slice(0, 80)}`;
        if (status === 'hang') bad.push(`hang: ${what}`);
        else if (status >= 500) bad.push(`${status}: ${what}: ${text.slice(0, 200)}`);
        else if (status >= 400 && !hasEnvelope(text)) bad.push(`${status} without the envelope: ${what}: ${text.slice(0, 200)}`);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    expect(bad, JSON.stringify(Object.fromEntries(statuses))).toEqual([]);
    // Both kinds of traffic really ran: answered requests and refused ones.
    expect(statuses.get('200') ?? 0).toBeGreaterThan(50);
    expect([...statuses.keys()].filter((s) => s.startsWith('4')).length).toBeGreaterThan(2);
    const health = await fetch(`${local.origin}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', active_requests: 0, queue_depth: 0 });
    expect(await probeAnswer(local)).toEqual(before);
  });
});

// ── Streaming clients that go away ────────────────────────────────────────────────────────────────

/** A stream's answer: per choice the content, reasoning, tool calls and finish reason (the fold). */
async function streamAnswer(res: Response, cancelAfter?: number): Promise<string | 'cancelled'> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    text += decoder.decode(r.value, { stream: true });
    if (cancelAfter !== undefined && text.split('\n\n').length - 1 >= cancelAfter) {
      await reader.cancel();
      return 'cancelled';
    }
  }
  const fold = { content: '', reasoning: '', tools: '', finish: '' };
  for (const block of text.split('\n\n')) {
    const data = block.slice('data: '.length);
    if (!data || data === '[DONE]') continue;
    const chunk = JSON.parse(data) as { choices: Array<{ delta: Record<string, unknown>; finish_reason: string | null }> };
    for (const c of chunk.choices) {
      fold.content += (c.delta.content as string | undefined) ?? '';
      fold.reasoning += (c.delta.reasoning as string | undefined) ?? '';
      for (const t of (c.delta.tool_calls as Array<{ function: { name?: string; arguments: string } }> | undefined) ?? []) {
        fold.tools += `${t.function.name ?? ''}(${t.function.arguments})`;
      }
      if (c.finish_reason) fold.finish = c.finish_reason;
    }
  }
  expect(text.endsWith('data: [DONE]\n\n'), text.slice(-200)).toBe(true);
  return JSON.stringify(fold);
}

describe('32 streaming clients, some going away mid-answer', () => {
  let local: LocalServer;
  beforeAll(async () => {
    local = await startLocalServer({ model: 'tiny' });
  });
  afterAll(async () => local?.close());

  test('every finished answer equals the same request alone; the server returns to idle', { timeout: 600_000 }, async () => {
    const questions = ['What is 2+2?', 'Name a colour.', 'Say hi.', 'Count to three.', 'Why is the sky blue?', 'Tell me a joke.', 'What day is it?', '7*6?'];
    const body = (q: number) =>
      JSON.stringify({
        model: local.modelId,
        messages: [{ role: 'user', content: questions[q] }],
        max_tokens: 24,
        temperature: 1,
        seed: q,
        stream: true,
      });
    const open = (q: number) => fetch(`${local.baseUrl}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(q) });
    const plan = fc.sample(
      fc.record({ q: fc.nat({ max: questions.length - 1 }), cancelAfter: fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined }) }),
      {
        seed,
        numRuns: 32,
      },
    );
    const concurrent = await Promise.all(plan.map(async ({ q, cancelAfter }) => ({ q, answer: await streamAnswer(await open(q), cancelAfter) })));
    expect(concurrent.some((c) => c.answer === 'cancelled')).toBe(true);
    // The server notices each client that went away; then nothing is active.
    for (let i = 0; i < 200; i++) {
      const h = (await (await fetch(`${local.origin}/health`)).json()) as { active_requests: number; queue_depth: number };
      if (h.active_requests === 0 && h.queue_depth === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await (await fetch(`${local.origin}/health`)).json()).toMatchObject({ active_requests: 0, queue_depth: 0 });
    const metrics = await (await fetch(`${local.origin}/metrics`)).text();
    expect(metrics).toMatch(/^amnesia_active_requests 0$/m);
    expect(metrics).toMatch(/^amnesia_queue_depth 0$/m);
    // Serially, one request at a time, on a flushed cache and then warm: the same answers.
    await fetch(`${local.origin}/admin/cache/flush`, { method: 'POST' });
    for (const { q, answer } of concurrent) {
      if (answer === 'cancelled') continue;
      expect(await streamAnswer(await open(q)), questions[q]).toBe(answer);
    }
  });
});

// ── SIGTERM under load ────────────────────────────────────────────────────────────────────────────

describe('SIGTERM under load', () => {
  test('every stream ends (answered, or an in-band server_shutting_down error) and the process exits 0', { timeout: 300_000 }, async () => {
    const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', cli, 'serve', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    for (let i = 0; i < 600 && !/ at (http:\S+)/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
    const baseUrl = / at (http:\S+)/.exec(out)?.[1];
    expect(baseUrl, out).toBeDefined();
    const model = ((await (await fetch(`${baseUrl}/models`)).json()) as { data: Array<{ id: string }> }).data[0]!.id;
    // Long prompts: while the first answers stream, the others are still being prefilled, so the
    // signal meets requests in every state (queued, prefilling, decoding, finished).
    const story = 'Once upon a time there was a server that remembered everything. '.repeat(100);
    let firstChunk!: () => void;
    const streaming = new Promise<void>((r) => (firstChunk = r));
    const streams = Array.from({ length: 16 }, async (_, i) => {
      const res = await fetch(`${baseUrl}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model,
          messages: [{ role: 'user', content: `${story} Story number ${i}, please.` }],
          max_tokens: 4000,
          tool_choice: 'none',
          stream: true,
        }),
      });
      if (res.status !== 200) return `status ${res.status}`;
      let text = '';
      const decoder = new TextDecoder();
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        text += decoder.decode(chunk, { stream: true });
        firstChunk();
      }
      if (text.endsWith('data: [DONE]\n\n')) return 'answered';
      if (text.includes('"code":"server_shutting_down"')) return 'shut down in-band';
      return `cut off: ${text.slice(-200)}`;
    });
    await streaming;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const outcomes = await Promise.all(streams.map((s) => s.catch((e: Error) => `error: ${e.message}`)));
    const [code] = (await exited) as [number | null];
    for (const o of outcomes) expect(['answered', 'shut down in-band', 'status 503']).toContain(o);
    expect(outcomes.filter((o) => o !== 'answered').length, 'the signal met requests in flight').toBeGreaterThan(0);
    expect(code, out).toBe(0);
  });
});
