// HTTP server benchmark on the tiny model: what the fastify server (src/server/app.ts, started by
// startLocalServer on a loopback port) costs on top of the runtime, for the smallest request that
// still goes through every layer — a `max_tokens: 1` chat completion with a tool catalogue.
//  - requests/s and per-request p50/p99 latency at 1, 8 and 32 concurrent clients (the runtime runs
//    16 at once and queues the rest, so 32 also measures the queue);
//  - streaming time to first byte (`stream: true`), for an answer (tool_choice none: text after a
//    3-token channel header) and for the tool call the greedy tiny model makes (the route sends
//    nothing until the call's whole header is out: 12 tokens; the report prints the counts);
//  - HTTP overhead: the same request in-process (planCompletion → startCompletion → collectResponse,
//    what the route does minus HTTP) is the anchor, so the HTTP ×1 row's ratio is the overhead.
//
// Client and server share this process (and its event loop): the client's fetch and JSON parsing
// count as HTTP overhead, and at 32 clients they compete with the server for the same thread. The
// machine this was written on has 2 cores; the engine's step runs off the event loop.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { ChatRequest } from '../src/wire/chat-completions.ts';
import { startCompletion } from '../src/server/completion.ts';
import { planCompletion, type PlanOptions } from '../src/server/completion-plan.ts';
import { startLocalServer } from '../src/server/local-server.ts';
import { collectResponse, responseMeta, type ChatCompletionResponse } from '../src/server/response.ts';
import type { Row, Suite } from './suite.ts';

const IN_PROCESS = 'in-process ×1 (plan → runtime → response, no HTTP)';
const CONCURRENCY = [1, 8, 32] as const;
const httpTask = (k: number) => `HTTP ×${k} (${k} concurrent max_tokens 1 requests)`;
/** Room for the greedy tool call (13 tokens on the tiny model) to end on its own; 8 would cut it mid-header. */
const STREAM_MAX_TOKENS = 32;
const STREAM_TEXT = 'HTTP stream ×1, answer (tool_choice none)';
const STREAM_TOOL = 'HTTP stream ×1, tool call (tool_choice auto)';

/**
 * The request of client slot `slot`: golden/chat/exo-1362-p1 (one user message, a calculator tool),
 * greedy and seeded, with the slot number appended to the user text.
 *
 * What the prefix cache does here: the slots' prompts are identical up to that number, and there are
 * at most 32 of them, so each slot's first request (in warmup) reuses the shared prefix and every
 * later request of that slot finds its whole prompt cached — the runtime then reuses all but the last
 * prompt token and recomputes that one for its logits. The timed requests are therefore one 1-token
 * step each (plus a KV fork of the cached prefix): this measures the server and the scheduling
 * around the engine, not prefill. The in-process task, HTTP ×1 and the streams all send client 1's
 * prompt (the streams' tool_choice changes only the grammar), so they share its entry. The report
 * shows the cached_tokens the timed responses carried.
 */
function requestBody(golden: ChatRequest, modelId: string, slot: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const [user] = golden.messages;
  if (user?.role !== 'user' || typeof user.content !== 'string') throw new Error('server bench: expected the golden to start with a user text message');
  return {
    ...golden,
    model: modelId,
    messages: [{ role: 'user', content: `${user.content} (client ${slot + 1})` }],
    seed: 1234,
    temperature: 0,
    max_tokens: 1,
    ...extra,
  };
}

/** Per-request wall times (ms) and cached prompt tokens, in call order, for the timed phase only. */
class Timings {
  readonly ms: number[] = [];
  readonly cached: number[] = [];
  constructor(readonly perOp: number) {}

  add(ms: number, cachedTokens = NaN): void {
    this.ms.push(ms);
    this.cached.push(cachedTokens);
  }

  /**
   * The last `samples` ops' entries: tinybench warms every task up before it times any, so the timed
   * ops are the last `samples` calls of each task.
   */
  measured<T>(values: readonly T[], samples: number): T[] {
    return values.slice(Math.max(0, values.length - samples * this.perOp));
  }

  /** The cached_tokens range over the timed requests, e.g. `134` or `130–134`. */
  cachedRange(samples: number): string {
    const c = this.measured(this.cached, samples).filter((n) => !Number.isNaN(n));
    if (c.length === 0) return '–';
    const [min, max] = [Math.min(...c), Math.max(...c)];
    return min === max ? `${min}` : `${min}–${max}`;
  }
}

/** Linear-interpolated quantile of unsorted values. */
function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

function checkResponse(json: ChatCompletionResponse, where: string): void {
  const finish = json.choices?.[0]?.finish_reason;
  if (json.object !== 'chat.completion' || json.usage?.completion_tokens !== 1 || finish === undefined) {
    throw new Error(`${where}: unexpected response ${JSON.stringify(json).slice(0, 300)}`);
  }
}

/** Whether an SSE chunk's first choice carries output (content, reasoning or tool calls; not only the role). */
function carriesOutput(chunk: unknown): boolean {
  const delta = (chunk as { choices?: Array<{ delta?: Record<string, unknown> }> }).choices?.[0]?.delta;
  return delta !== undefined && ('content' in delta || 'reasoning' in delta || 'tool_calls' in delta);
}

export async function createSuite(log: (line: string) => void = console.log): Promise<Suite> {
  const server = await startLocalServer({ model: 'tiny' });
  const { runtime, grammar } = server.model;
  const golden = JSON.parse(readFileSync(new URL('../golden/chat/exo-1362-p1/request.json', import.meta.url), 'utf8')) as ChatRequest;
  const url = `${server.baseUrl}/chat/completions`;
  const maxSlots = Math.max(...CONCURRENCY);
  const bodies = Array.from({ length: maxSlots }, (_, slot) => requestBody(golden, server.modelId, slot));
  const payloads = bodies.map((b) => JSON.stringify(b));
  // As the route plans (app.ts): startLocalServer passes the model's grammar default and no mapping.
  const planOptions: PlanOptions = { modelId: server.modelId, contextLength: runtime.contextLength, vocabSize: runtime.vocabSize, grammar, mapping: {} };
  const promptTokens = planCompletion(bodies[0], planOptions).prompt.length;
  log(`server: ${server.origin}, ${server.modelId}, grammar ${grammar}; request golden/chat/exo-1362-p1 (${promptTokens} prompt tokens), max_tokens 1, greedy`);

  // --- In-process: the route's body minus fastify, the socket, JSON on either side and metrics.
  const inProcess = new Timings(1);
  const inProcessTask = async () => {
    const t0 = performance.now();
    const plan = planCompletion(bodies[0], planOptions);
    const run = startCompletion(runtime, plan, new AbortController().signal);
    const response = await collectResponse(run, responseMeta(server.modelId, 'fp_bench'), plan.sampling.length, plan.logprobs);
    inProcess.add(performance.now() - t0, response.usage.prompt_tokens_details.cached_tokens);
    checkResponse(response, IN_PROCESS);
  };

  // --- HTTP: K requests at once, each timed from fetch() to its parsed JSON body.
  const post = async (slot: number, timings: Timings) => {
    const t0 = performance.now();
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: payloads[slot] });
    const json = (await res.json()) as ChatCompletionResponse;
    timings.add(performance.now() - t0, json.usage?.prompt_tokens_details?.cached_tokens);
    if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${JSON.stringify(json).slice(0, 300)}`);
    checkResponse(json, `HTTP slot ${slot}`);
  };
  const http = new Map(CONCURRENCY.map((k) => [k, new Timings(k)]));
  const httpTasks = CONCURRENCY.map((k) => ({
    name: httpTask(k),
    fn: async () => {
      const timings = http.get(k)!;
      await Promise.all(Array.from({ length: k }, (_, slot) => post(slot, timings)));
    },
  }));

  // --- Streaming: time to the first body byte, each stream read to its [DONE]. The route writes its
  // headers only once the first completion event exists, then the role chunk and that event's chunk
  // back to back, so the first byte arrives with the first output delta — not with the first token:
  // harmony header tokens make no delta. How many tokens that is, is found in-process below (greedy,
  // so the HTTP streams generate the same tokens). Also timed: the first chunk that carries
  // content/reasoning/tool_calls as parsed here, to show that it comes in the same read.
  const makeStream = (name: string, extra: Record<string, unknown>) => {
    const body = requestBody(golden, server.modelId, 0, { stream: true, max_tokens: STREAM_MAX_TOKENS, ...extra });
    const payload = JSON.stringify(body);
    const stats = { name, body, firstByte: new Timings(1), firstOutput: new Timings(1), firstReadHadOutput: [] as boolean[] };
    const fn = async () => {
      const t0 = performance.now();
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: payload });
      if (res.status !== 200 || res.body === null) throw new Error(`${name}: HTTP ${res.status}: ${await res.text()}`);
      const decoder = new TextDecoder();
      let text = '';
      let reads = 0;
      let sawOutput = false;
      for await (const bytes of res.body) {
        if (reads++ === 0) stats.firstByte.add(performance.now() - t0);
        text += decoder.decode(bytes, { stream: true });
        if (sawOutput) continue;
        for (const event of text.split('\n\n')) {
          if (!event.startsWith('data: {') || !event.endsWith('}') || !carriesOutput(JSON.parse(event.slice('data: '.length)))) continue;
          sawOutput = true;
          stats.firstOutput.add(performance.now() - t0);
          stats.firstReadHadOutput.push(reads === 1);
          break;
        }
      }
      if (!sawOutput || !text.endsWith('data: [DONE]\n\n')) throw new Error(`${name}: no output chunk or no [DONE]: ${text.slice(-300)}`);
    };
    return { stats, task: { name, fn } };
  };
  const streams = [makeStream(STREAM_TEXT, { tool_choice: 'none' }), makeStream(STREAM_TOOL, { tool_choice: 'auto' })];

  /** In-process, a stream's first event: what it carries and how many tokens were generated by then. */
  const firstEvent = async (body: Record<string, unknown>) => {
    const plan = planCompletion(body, planOptions);
    const run = startCompletion(runtime, plan, new AbortController().signal);
    const first = await run.events.next();
    const tokensAtFirst = run.usage().completion_tokens;
    let finish = '';
    for (let e = first; !e.done; e = await run.events.next()) if (e.value.kind === 'finish') finish = e.value.reason;
    if (first.done || first.value.kind !== 'delta') throw new Error('server bench: a stream began with no delta');
    return { tokensAtFirst, delta: JSON.stringify(first.value.delta), finish, tokens: run.usage().completion_tokens };
  };
  const firstEvents = new Map<string, Awaited<ReturnType<typeof firstEvent>>>();
  for (const { stats } of streams) {
    const first = await firstEvent(stats.body);
    if (first.finish === 'length') throw new Error(`server bench: ${stats.name} ran out of max_tokens (${STREAM_MAX_TOKENS}); raise it`);
    firstEvents.set(stats.name, first);
    log(`server: ${stats.name}: first event ${first.delta} after ${first.tokensAtFirst} generated tokens; ${first.tokens} tokens, finish ${first.finish}`);
  }

  const ms = (v: number) => v.toFixed(2);
  const report = (rows: Row[]): string => {
    const row = (task: string) => rows.find((r) => r.task === task)!;
    const anchor = row(IN_PROCESS);
    const one = row(httpTask(1));
    const overhead = one.meanUs / anchor.meanUs;
    const inProcessMs = inProcess.measured(inProcess.ms, anchor.samples);
    const oneMs = http.get(1)!.measured(http.get(1)!.ms, one.samples);
    const [p50In, p50Http] = [quantile(inProcessMs, 0.5), quantile(oneMs, 0.5)];
    const signed = (us: number) => `${us >= 0 ? '+' : '−'}${Math.abs(us).toFixed(0)} µs`;
    const lines = [
      `Per request (prompt ${promptTokens} tokens, max_tokens 1, greedy; requests/s = concurrent requests × ops/s; p50/p99 of each request's own time, measured ops only):`,
      '',
      '| task | requests/s | requests/s vs in-process | p50 (ms) | p99 (ms) | requests timed | cached prompt tokens |',
      '|---|---:|---:|---:|---:|---:|---:|',
      `| ${IN_PROCESS} | ${anchor.opsPerSec.toFixed(0)} | 1.00 | ${ms(quantile(inProcessMs, 0.5))} | ${ms(quantile(inProcessMs, 0.99))} | ${inProcessMs.length} | ${inProcess.cachedRange(anchor.samples)} |`,
      ...CONCURRENCY.map((k) => {
        const r = row(httpTask(k));
        const t = http.get(k)!;
        const timed = t.measured(t.ms, r.samples);
        const rps = k * r.opsPerSec;
        return `| ${httpTask(k)} | ${rps.toFixed(0)} | ${(rps / anchor.opsPerSec).toFixed(2)} | ${ms(quantile(timed, 0.5))} | ${ms(quantile(timed, 0.99))} | ${timed.length} | ${t.cachedRange(r.samples)} |`;
      }),
    ];
    lines.push(
      '',
      `Streaming time to first byte (\`stream: true\`, max_tokens ${STREAM_MAX_TOKENS}, concurrency 1, the prompt of client 1; each op reads the whole stream):`,
      '',
      '| task | tokens generated by the first delta | first delta | p50 first byte (ms) | p99 first byte (ms) | p50 first output chunk (ms) | p99 first output chunk (ms) | first read held it | streams timed |',
      '|---|---:|---|---:|---:|---:|---:|---:|---:|',
      ...streams.map(({ stats }) => {
        const samples = row(stats.name).samples;
        const fb = stats.firstByte.measured(stats.firstByte.ms, samples);
        const fo = stats.firstOutput.measured(stats.firstOutput.ms, samples);
        const same = stats.firstOutput.measured(stats.firstReadHadOutput, samples).filter(Boolean).length;
        const first = firstEvents.get(stats.name)!;
        return `| ${stats.name} | ${first.tokensAtFirst} of ${first.tokens} (finish ${first.finish}) | \`${first.delta}\` | ${ms(quantile(fb, 0.5))} | ${ms(quantile(fb, 0.99))} | ${ms(quantile(fo, 0.5))} | ${ms(quantile(fo, 0.99))} | ${same} of ${fo.length} | ${fb.length} |`;
      }),
      '',
      `**HTTP overhead = ${overhead.toFixed(2)}× in-process (${signed(one.meanUs - anchor.meanUs)} per request)** — mean op time of \`${httpTask(1)}\` ÷ \`${IN_PROCESS}\` ` +
        `(by the p50s: ${(p50Http / p50In).toFixed(2)}×, ${signed((p50Http - p50In) * 1000)}). The HTTP side adds the client's fetch and JSON parse, ` +
        `fastify's routing, schema check and serialisation, and the loopback socket.`,
    );
    return lines.join('\n');
  };

  return {
    name: 'server',
    anchor: IN_PROCESS,
    tasks: [{ name: IN_PROCESS, fn: inProcessTask }, ...httpTasks, ...streams.map((s) => s.task)],
    report,
    // Async (run.ts awaits it): stops the server, then the runtime and the model.
    close: () => server.close(),
  };
}
