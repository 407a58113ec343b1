// exo #1362 on the talking tiny model (issue 15): at temperature 0, p1 ("What is 2+2? Use the
// calculator tool.") gets one calculator call with {"expression":"2+2"}; p2 (p1, that call and its
// result 4) gets a final answer with 4; and p1 again gets the call again — unless the prefix cache's
// trim silently does nothing (failpoint kv-trim-noop, in ring-KV mode as exo's rotating cache): then
// p1 runs after p2's whole conversation, its answer included (the prefix cache forks the latest
// conversation through p1, as exo's one-slot cache held it), skips the tool call and answers "4", as
// exo's user saw. The model learnt that from stale repeats in its data (src/chat-data/conversations.ts):
// a model answers from what it sees.
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, test } from 'vitest';
import type { RuntimeOptions } from '../src/engine/runtime.ts';
import { startLocalServer, type LocalServer } from '../src/server/local-server.ts';
import { TINY_CHAT_MODEL_ID } from '../src/server/open-model.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

const request = (name: string) => JSON.parse(readFileSync(new URL(`../golden/chat/${name}/request.json`, import.meta.url), 'utf8')) as Json;
const p1 = { ...request('exo-1362-p1'), model: TINY_CHAT_MODEL_ID, temperature: 0 };
const p2 = { ...request('exo-1362-p2'), model: TINY_CHAT_MODEL_ID, temperature: 0 };

const servers: LocalServer[] = [];
afterAll(async () => Promise.all(servers.map((s) => s.close())));

async function serve(runtime: RuntimeOptions): Promise<(body: Json) => Promise<Json>> {
  const local = await startLocalServer({ model: 'tiny-chat', runtime });
  servers.push(local);
  return async (body) => {
    const r = await fetch(`${local.baseUrl}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(r.status).toBe(200);
    return ((await r.json()) as Json).choices[0];
  };
}

const expectCalculatorCall = (choice: Json) => {
  expect(choice.finish_reason).toBe('tool_calls');
  expect(choice.message.tool_calls).toHaveLength(1);
  expect(choice.message.tool_calls[0].function.name).toBe('calculator');
  expect(JSON.parse(choice.message.tool_calls[0].function.arguments)).toEqual({ expression: '2+2' });
};

const expectAnswerFour = (choice: Json) => {
  expect(choice.finish_reason).toBe('stop');
  expect(choice.message.tool_calls ?? []).toEqual([]);
  expect(choice.message.content).toMatch(/\b4\b/);
};

describe('exo #1362 on the talking tiny model', () => {
  test.each([
    ['full KV', { slidingKv: 'full' } as const],
    ['ring KV', { slidingKv: 'ring' } as const],
  ])('%s: p1 calls the calculator, p2 answers 4, p1 again calls it again', async (_, runtime) => {
    const send = await serve(runtime);
    expectCalculatorCall(await send(p1));
    expectAnswerFour(await send(p2));
    expectCalculatorCall(await send(p1));
  });

  test.each([
    ['full KV', { slidingKv: 'full' } as const],
    ['ring KV', { slidingKv: 'ring' } as const],
  ])('kv-trim-noop (%s): after p2, p1 skips the tool call and answers 4', async (_, runtime) => {
    const send = await serve({ ...runtime, failpoints: ['kv-trim-noop'] });
    expectCalculatorCall(await send(p1));
    expectAnswerFour(await send(p2));
    expectAnswerFour(await send(p1));
  });
});
