// golden/api and golden/api-chat: what the server answers on the tiny random model and on the talking
// tiny model, compared byte for byte with the pinned files. The cases run in another order than
// `npm run golden:update` writes them (sorted), each after whatever the previous ones left in the
// prefix cache: an answer must not depend on that.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { LocalServer } from '../src/server/local-server.ts';
import { apiKinds, caseDirs, startApiGoldenServer } from './goldens.ts';

/** A fixed order unrelated to the sorted one: by a hash of the case's name. */
const hashOrder = (dirs: string[]) => {
  const key = (d: string) => createHash('sha256').update(basename(d)).digest('hex');
  return [...dirs].sort((a, b) => (key(a) < key(b) ? -1 : 1));
};

describe.each(apiKinds.map((kind) => [kind.folder, kind] as const))('golden/%s', (folder, kind) => {
  let server: LocalServer | undefined;
  beforeAll(async () => {
    server = await startApiGoldenServer(kind.model);
  }, 60_000);
  afterAll(async () => {
    await server?.close();
  });

  const sorted = caseDirs(kind);
  const shuffled = hashOrder(sorted);

  test('has cases, run in another order than the update', () => {
    expect(sorted.length).toBeGreaterThan(1);
    expect(shuffled).not.toEqual(sorted);
    expect(shuffled).not.toEqual([...sorted].reverse());
  });

  test.each(shuffled.map((d) => [basename(d), d] as const))('%s', async (name, dir) => {
    const files = await kind.expectedFilesAsync(dir, server!.baseUrl);
    for (const [file, content] of Object.entries(files)) {
      const path = join(dir, file);
      expect(existsSync(path), `${path} is missing: run npm run golden:update`).toBe(true);
      expect(content, `${folder}/${name}/${file}`).toBe(readFileSync(path, 'utf8'));
    }
    const outputs = readdirSync(dir).filter((f) => !kind.inputFiles.includes(f));
    expect(outputs.sort(), `${folder}/${name}: files that are neither inputs nor expected`).toEqual(Object.keys(files).sort());
  });
});

// A streamed case `X-stream` and its non-stream twin `X` (same request, stream false) must tell the
// same thing: the stream's deltas, folded, are the twin's message, with the same finish_reason.
interface Delta {
  role?: string;
  content?: string | null;
  reasoning?: string;
  tool_calls?: Array<{ index: number; id?: string; type?: string; function?: { name?: string; arguments?: string } }>;
}
interface Chunk {
  choices: Array<{ index: number; delta: Delta; finish_reason: string | null }>;
  usage?: unknown;
}

function foldStream(sse: string) {
  const chunks = sse
    .split('\n')
    .filter((l) => l.startsWith('data: ') && l !== 'data: [DONE]')
    .map((l) => JSON.parse(l.slice('data: '.length)) as Chunk);
  const choices: Array<{ message: Record<string, unknown>; finish_reason: string | null }> = [];
  let usage: unknown;
  for (const chunk of chunks) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      const choice = (choices[c.index] ??= { message: { role: undefined, content: null }, finish_reason: null });
      const m = choice.message;
      const d = c.delta;
      if (d.role !== undefined) m.role = d.role;
      if (typeof d.content === 'string') m.content = `${(m.content as string | null) ?? ''}${d.content}`;
      if (d.reasoning !== undefined) m.reasoning = `${(m.reasoning as string | undefined) ?? ''}${d.reasoning}`;
      for (const t of d.tool_calls ?? []) {
        const calls = (m.tool_calls ??= []) as Array<{ id?: string; type?: string; function: { name?: string; arguments: string } }>;
        const call = (calls[t.index] ??= { function: { arguments: '' } });
        if (t.id !== undefined) call.id = t.id;
        if (t.type !== undefined) call.type = t.type;
        if (t.function?.name !== undefined) call.function.name = t.function.name;
        call.function.arguments += t.function?.arguments ?? '';
      }
      if (c.finish_reason !== null) choice.finish_reason = c.finish_reason;
    }
  }
  return { choices, usage };
}

describe('golden/api streams tell what their non-stream twins do', () => {
  const pairs = apiKinds
    .flatMap((kind) => caseDirs(kind).map((d) => [`${kind.folder}/${basename(d)}`, d] as const))
    .filter(([name]) => name.endsWith('-stream'))
    .map(([name, d]) => [name, d, d.replace(/-stream$/, '')] as const);
  test('there are pairs', () => expect(pairs.length).toBeGreaterThan(0));

  test.each(pairs)('%s', (_name, streamDir, twinDir) => {
    const request = (dir: string) => JSON.parse(readFileSync(join(dir, 'request.json'), 'utf8')) as Record<string, unknown>;
    const { stream: _s, stream_options: _o, ...streamed } = request(streamDir);
    expect(streamed, 'the twin is the same request without streaming').toEqual(request(twinDir));
    const stream = foldStream(readFileSync(join(streamDir, 'stream.sse'), 'utf8'));
    const twin = JSON.parse(readFileSync(join(twinDir, 'response.json'), 'utf8')) as {
      body: { choices: Array<{ message: Record<string, unknown>; finish_reason: string }>; usage: unknown };
    };
    const norm = (m: Record<string, unknown>) =>
      JSON.parse(
        JSON.stringify({
          ...m,
          tool_calls: (m.tool_calls as Array<Record<string, unknown>> | undefined)?.map((c) => ({ id: c.id, type: c.type, function: c.function })),
        }),
      );
    expect(stream.choices.map((c) => ({ message: norm(c.message), finish_reason: c.finish_reason }))).toEqual(
      twin.body.choices.map((c) => ({ message: norm(c.message), finish_reason: c.finish_reason })),
    );
    if (stream.usage !== undefined) expect(stream.usage).toEqual(twin.body.usage);
  });
});
