// Nesting and size limits (spec/api.md "Limits"): no body, however deep, reaches anything that
// recurses (ajv, the harmony mapping, the schema renderer, JSON.stringify), so a deep body gets a
// 400 naming the place, never a 5xx from a stack overflow.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { SCHEMA_LIMITS } from '../harmony/schema-to-typescript.ts';
import { startLocalServer, type LocalServer } from './local-server.ts';
import { MAX_BODY_DEPTH } from './request-schema.ts';

let local: LocalServer;
beforeAll(async () => {
  local = await startLocalServer({ model: 'tiny' });
});
afterAll(async () => local?.close());

const USER = { role: 'user', content: 'hi' };

/** Sends a body written by hand (so it may nest deeper than JSON.stringify can go). */
const post = (path: string, body: string) => fetch(`${local.origin}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
const chat = (fields: string) => post('/v1/chat/completions', `{"messages":[${JSON.stringify(USER)}],"max_tokens":1,"seed":1${fields}}`);

/** `[[[…0…]]]`, `depth` arrays deep. */
const deepArray = (depth: number) => `${'['.repeat(depth)}0${']'.repeat(depth)}`;
/** A schema whose object property `a` holds an object, `levels` times. */
const nestedObjects = (levels: number) => `${'{"type":"object","properties":{"a":'.repeat(levels)}{"type":"string"}${'}}'.repeat(levels)}`;
/** A schema of arrays of arrays, `levels` deep. */
const nestedItems = (levels: number) => `${'{"type":"array","items":'.repeat(levels)}{"type":"string"}${'}'.repeat(levels)}`;
const tool = (parameters: string) => `,"tools":[{"type":"function","function":{"name":"f","parameters":${parameters}}}]`;

async function expectError(res: Response, code: string, param: string | RegExp) {
  const text = await res.text();
  expect(res.status, text.slice(0, 300)).toBe(400);
  const body = JSON.parse(text) as { error: { message: string; type: string; param: string; code: string } };
  expect(body.error.type).toBe('invalid_request_error');
  expect(body.error.code).toBe(code);
  if (typeof param === 'string') expect(body.error.param).toBe(param);
  else expect(body.error.param).toMatch(param);
  expect(body.error.param.length).toBeLessThan(200);
  return body.error;
}

const expectOk = async (res: Response) => {
  const text = await res.text();
  expect(res.status, text.slice(0, 300)).toBe(200);
};

describe('tool parameters: depth and size, checked before rendering', () => {
  test(`${SCHEMA_LIMITS.maxDepth} levels are rendered; one more is a 400 naming the path`, async () => {
    // An object property costs two levels (`properties`, then the property), the schema itself one:
    // 31 nested objects reach depth 63, 32 reach 65.
    const fits = Math.floor((SCHEMA_LIMITS.maxDepth - 1) / 2);
    await expectOk(await chat(tool(nestedObjects(fits))));
    const error = await expectError(
      await chat(tool(nestedObjects(fits + 1))),
      'schema_too_deep',
      'tools[0].function.parameters.properties.a.properties.a.properties.a.properties.a.properties.a.properties.a…',
    );
    expect(error.message).toContain(`deeper than ${SCHEMA_LIMITS.maxDepth} levels`);

    await expectOk(await chat(tool(nestedItems(SCHEMA_LIMITS.maxDepth - 1))));
    await expectError(await chat(tool(nestedItems(SCHEMA_LIMITS.maxDepth))), 'schema_too_deep', /^tools\[0\]\.function\.parameters(\.items){12}…$/);
  });

  test('2,000 and 10,000 levels: a 400, not a stack overflow', async () => {
    for (const levels of [2_000, 10_000]) {
      await expectError(await chat(tool(nestedObjects(levels))), 'nesting_too_deep', /^tools\[0\]\.function\.parameters\.properties\.a\.properties\.a.*…$/);
      await expectError(await chat(tool(nestedItems(levels))), 'nesting_too_deep', /^tools\[0\]\.function\.parameters\.items\.items.*…$/);
    }
    // The second tool, streamed: still an ordinary error before any header.
    const two = `,"stream":true,"tools":[{"type":"function","function":{"name":"g"}},{"type":"function","function":{"name":"f","parameters":${nestedObjects(40)}}}]`;
    await expectError(await chat(two), 'schema_too_deep', /^tools\[1\]\.function\.parameters\.properties\.a/);
  });

  test(`more than ${SCHEMA_LIMITS.maxNodes} values in one schema is a 400`, async () => {
    const values = (n: number) => JSON.stringify(Array.from({ length: n }, (_, i) => `v${i}`));
    // 6 values besides the enum's members: the schema, "object", properties, x, "string", enum.
    const schema = (n: number) => `{"type":"object","properties":{"x":{"type":"string","enum":${values(n)}}}}`;
    const error = await expectError(
      await chat(tool(schema(SCHEMA_LIMITS.maxNodes))),
      'schema_too_large',
      /^tools\[0\]\.function\.parameters\.properties\.x\.enum\[\d+\]$/,
    );
    expect(error.message).toContain(`more than ${SCHEMA_LIMITS.maxNodes} JSON values`);
  });

  test('a deep default inside a schema', async () => {
    await expectError(
      await chat(tool(`{"type":"object","properties":{"x":{"type":"array","default":${deepArray(10_000)}}}}`)),
      'nesting_too_deep',
      /^tools\[0\]\.function\.parameters\.properties\.x\.default\[0\]/,
    );
  });
});

describe(`no body nests deeper than ${MAX_BODY_DEPTH} levels`, () => {
  const cases: { name: string; send: () => Promise<Response>; param: RegExp }[] = [
    {
      name: 'message content',
      send: () => post('/v1/chat/completions', `{"messages":[{"role":"user","content":${deepArray(10_000)}}]}`),
      param: /^messages\[0\]\.content(\[0\]){9}…$/,
    },
    {
      name: 'a field of a content part',
      send: () => post('/v1/chat/completions', `{"messages":[{"role":"user","content":[{"type":"text","text":"hi","x":${deepArray(10_000)}}]}]}`),
      param: /^messages\[0\]\.content\[0\]\.x\[0\]/,
    },
    { name: 'an unknown top-level field', send: () => chat(`,"metadata":${deepArray(10_000)}`), param: /^metadata(\[0\])+…$/ },
    {
      name: 'tool_choice',
      send: () => chat(`,"tool_choice":{"type":"function","function":{"name":${deepArray(10_000)}}}`),
      param: /^tool_choice\.function\.name\[0\]/,
    },
    {
      name: 'response_format',
      send: () => chat(`,"response_format":{"type":"text","x":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}}`),
      param: /^response_format\.x\.a\.a/,
    },
    {
      name: 'tool call arguments',
      send: () =>
        post(
          '/v1/chat/completions',
          `{"messages":[${JSON.stringify(USER)},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":${deepArray(10_000)}}}]}]}`,
        ),
      param: /^messages\[1\]\.tool_calls\[0\]\.function\.arguments/,
    },
    { name: 'the body itself', send: () => post('/v1/chat/completions', deepArray(10_000)), param: /^(\[0\]){12}…$/ },
    { name: 'a million levels (2 MB)', send: () => post('/v1/chat/completions', `{"messages":${deepArray(1_000_000)}}`), param: /^messages(\[0\])+…$/ },
    {
      name: 'with __proto__ text, which makes the JSON parser scan the value',
      send: () => chat(`,"x":"__proto__ constructor","y":${'{"constructor":'.repeat(10_000)}1${'}'.repeat(10_000)}`),
      param: /^y\.constructor/,
    },
    { name: 'the cache flush route', send: () => post('/admin/cache/flush', `{"x":${deepArray(10_000)}}`), param: /^x(\[0\])+…$/ },
  ];

  test.each(cases)('$name', async ({ send, param }) => {
    const error = await expectError(await send(), 'nesting_too_deep', param);
    expect(error.message).toContain(`deeper than ${MAX_BODY_DEPTH} levels`);
  });

  test(`${MAX_BODY_DEPTH} levels are fine (an ignored field)`, async () => {
    // The body is level 1, so the field may hold MAX_BODY_DEPTH - 1 levels.
    await expectOk(await chat(`,"metadata":${deepArray(MAX_BODY_DEPTH - 1)}`));
    await expectError(await chat(`,"metadata":${deepArray(MAX_BODY_DEPTH)}`), 'nesting_too_deep', /^metadata(\[0\]){11}…$/);
  });

  test('the server is healthy afterwards', async () => {
    await expectOk(await chat(''));
  });
});
