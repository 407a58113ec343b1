import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { jsonLimitViolation, jsonSchemaToTypeScript, paramPath, SCHEMA_LIMITS, SchemaLimitError } from './schema-to-typescript.ts';
import type { JsonSchema, Message, ToolNamespaceConfig } from './conversation.ts';

interface RenderCase {
  name: string;
  messages: Message[];
  expected_text: string;
}

const fixture = JSON.parse(readFileSync(new URL('../../golden/harmony/upstream/render_cases.json', import.meta.url), 'utf8')) as { cases: RenderCase[] };

const FIXTURE_CASES = ['test_render_functions_with_parameters', 'test_browser_tool_only', 'test_browser_and_function_tool'];

/** Every tool with parameters in a case, from system (built-in) and developer (functions) content. */
function toolsWithParameters(c: RenderCase): { name: string; parameters: JsonSchema }[] {
  const out: { name: string; parameters: JsonSchema }[] = [];
  for (const message of c.messages) {
    for (const content of message.content) {
      if (content.type === 'text' || !content.tools) continue;
      for (const ns of Object.values(content.tools) as ToolNamespaceConfig[]) {
        for (const tool of ns.tools) {
          if (tool.parameters) out.push({ name: tool.name, parameters: tool.parameters });
        }
      }
    }
  }
  return out;
}

const ts = (schema: JsonSchema): string => jsonSchemaToTypeScript(schema, '');
/** Render one property the way it sits inside an object, to check a single line. */
const prop = (schema: JsonSchema): string => ts({ type: 'object', properties: { x: schema } });

describe('upstream fixtures', () => {
  const rows = FIXTURE_CASES.flatMap((caseName) => {
    const c = fixture.cases.find((x) => x.name === caseName);
    if (!c) throw new Error(`missing fixture case ${caseName}`);
    return toolsWithParameters(c).map((tool) => ({ caseName, ...tool, expected: c.expected_text }));
  });

  test('the fixtures hold the expected tools', () => {
    expect(rows.map((r) => `${r.caseName}:${r.name}`)).toEqual([
      'test_render_functions_with_parameters:get_current_weather',
      'test_render_functions_with_parameters:get_multiple_weathers',
      'test_render_functions_with_parameters:kitchensink',
      'test_browser_tool_only:search',
      'test_browser_tool_only:open',
      'test_browser_tool_only:find',
      'test_browser_and_function_tool:search',
      'test_browser_and_function_tool:open',
      'test_browser_and_function_tool:find',
      'test_browser_and_function_tool:lookup_weather',
    ]);
  });

  test.each(rows)('$caseName: $name', ({ name, parameters, expected }) => {
    expect(expected).toContain(`type ${name} = (_: ${jsonSchemaToTypeScript(parameters, '')}) => any;`);
  });

  test('kitchensink keeps the `(_: // params object` quirk', () => {
    const c = fixture.cases.find((x) => x.name === 'test_render_functions_with_parameters')!;
    const kitchensink = toolsWithParameters(c).find((t) => t.name === 'kitchensink')!;
    expect(ts(kitchensink.parameters).startsWith('// params object\n{\n// STRING\n//\n')).toBe(true);
  });
});

describe('edge cases (notes §5)', () => {
  test('the `nested` block', () => {
    const schema: JsonSchema = {
      type: 'object',
      properties: {
        filter: {
          type: 'object',
          description: 'A filter',
          properties: {
            field: { type: 'string' },
            op: { type: 'string', enum: ['eq', 'ne'], default: 'eq' },
          },
          required: ['field'],
        },
        items: { type: 'array', items: { type: 'object', properties: { id: { type: 'integer' } } } },
        maybe: { type: ['integer', 'null'] },
        nullable_str: { type: 'string', nullable: true, default: 'x' },
        anyof: { anyOf: [{ type: 'string' }, { type: 'number' }] },
        oneof: {
          description: 'a oneof',
          default: 20,
          oneOf: [
            { type: 'string', default: 's' },
            { type: 'integer', description: 'num' },
          ],
        },
        title_ex: { type: 'string', title: 'T', examples: ['a'] },
      },
      required: ['filter'],
    };
    expect(`type nested = (_: ${ts(schema)}) => any;`).toBe(
      [
        'type nested = (_: {',
        '// A filter',
        'filter:     // A filter',
        '{',
        '    field: string,',
        '    op?: "eq" | "ne", // default: eq',
        '    },',
        'items?: {',
        '    id?: number,',
        '    }[],',
        'maybe?: number | null,',
        'nullable_str?: string | null, // default: "x"',
        'anyof?: any,',
        '// a oneof',
        '// default: 20',
        'oneof?:',
        ' | string // default: "s"',
        ' | number // num',
        ',',
        '// T',
        '//',
        '// Examples:',
        '// - "a"',
        'title_ex?: string,',
        '}) => any;',
      ].join('\n'),
    );
  });
});

describe('small cases', () => {
  test('empty object', () => {
    expect(ts({ type: 'object', properties: {} })).toBe('{\n}');
    expect(ts({ type: 'object' })).toBe('{\n}');
  });

  test('type arrays join with | and map integer to number', () => {
    expect(ts({ type: ['integer', 'null'] })).toBe('number | null');
    expect(prop({ type: ['string', 'null'], nullable: true })).toBe('{\nx?: string | null,\n}');
  });

  test('an integer enum is just number', () => {
    expect(ts({ type: 'integer', enum: [1, 2, 3] })).toBe('number');
  });

  test('arrays', () => {
    expect(ts({ type: 'array' })).toBe('Array<any>');
    expect(ts({ type: 'array', items: { type: 'string', enum: ['a', 'b'] } })).toBe('"a" | "b"[]');
  });

  test('schemas without a type are any', () => {
    expect(ts({ anyOf: [{ type: 'string' }, { type: 'number' }] })).toBe('any');
    expect(ts({ allOf: [{ type: 'string' }] })).toBe('any');
    expect(ts({ $ref: '#/$defs/x' })).toBe('any');
    expect(ts({ const: 'a' })).toBe('any');
    expect(ts({ enum: ['a', 'b'] })).toBe('any');
    expect(ts({ type: 'null' })).toBe('any');
  });

  test('defaults: JSON for non-strings, bare strings on enums, quoted otherwise', () => {
    expect(prop({ type: 'integer', enum: [1, 2], default: 1 })).toBe('{\nx?: number, // default: 1\n}');
    expect(prop({ type: 'string', enum: ['a'], default: null })).toBe('{\nx?: "a", // default: null\n}');
    expect(prop({ type: 'object', default: { a: 1 } })).toBe('{\nx?: {\n    }, // default: {"a":1}\n}');
    expect(prop({ type: 'array', default: [1, 2] })).toBe('{\nx?: Array<any>, // default: [1,2]\n}');
    expect(prop({ type: 'string', enum: ['c', 'f'], default: 'c' })).toBe('{\nx?: "c" | "f", // default: c\n}');
    expect(prop({ type: 'string', default: 'c' })).toBe('{\nx?: string, // default: "c"\n}');
  });

  test('a top-level oneOf', () => {
    const schema: JsonSchema = {
      oneOf: [
        { type: 'string', description: 'a name' },
        { type: 'integer', nullable: true, default: 3 },
        { type: 'string', enum: ['a', 'b'], default: 'a' },
      ],
    };
    // Unlike in properties, an enum string default in a schema-level variant is printed as JSON.
    expect(ts(schema)).toBe('\n | string // a name\n | number | null // default: 3\n | "a" | "b" // default: "a"');
  });

  test('a multi-line description is not split (upstream bug, kept)', () => {
    expect(prop({ type: 'string', description: 'one\ntwo' })).toBe('{\n// one\ntwo\nx?: string,\n}');
  });

  test('a oneOf property whose description equals the first variant’s prints it nowhere', () => {
    const schema: JsonSchema = {
      type: 'object',
      properties: {
        v: { description: 'same', oneOf: [{ type: 'string', description: 'same' }, { type: 'boolean' }] },
      },
      required: ['v'],
    };
    expect(ts(schema)).toBe('{\nv:\n | string\n | boolean\n,\n}');
  });

  test('a oneOf property drops the first variant description when its own is printed above', () => {
    const schema: JsonSchema = {
      type: 'object',
      properties: {
        v: {
          description: 'prop',
          oneOf: [
            { type: 'string', description: 'first', nullable: true },
            { type: 'object', description: 'second', properties: { a: { type: 'number' } } },
          ],
        },
      },
    };
    expect(ts(schema)).toBe('{\n// prop\nv?:\n | string | null\n |    // second\n{\n   a?: number,\n   } // second\n,\n}');
  });

  test('properties keep insertion order', () => {
    expect(ts({ type: 'object', properties: { b: { type: 'string' }, a: { type: 'boolean' } }, required: ['a'] })).toBe('{\nb?: string,\na: boolean,\n}');
  });
});

describe('limits (SCHEMA_LIMITS): checked before rendering, never a stack overflow', () => {
  /** `levels` objects nested through a property `a`. */
  const nested = (levels: number): JsonSchema => {
    let schema: JsonSchema = { type: 'string' };
    for (let i = 0; i < levels; i++) schema = { type: 'object', properties: { a: schema } };
    return schema;
  };

  test('a schema 2,000 and 100,000 levels deep is refused with SchemaLimitError, not RangeError', () => {
    for (const levels of [2_000, 100_000]) {
      let error: unknown;
      try {
        ts(nested(levels));
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(SchemaLimitError);
      expect((error as SchemaLimitError).violation.limit).toBe('depth');
      expect((error as SchemaLimitError).violation.path.slice(0, 4)).toEqual(['properties', 'a', 'properties', 'a']);
    }
  });

  test('the deepest and largest schemas allowed still render', () => {
    // Depth 1 + 2 × 31 = 63.
    expect(ts(nested(31))).toContain('a?: {');
    expect(() => ts(nested(32))).toThrow(SchemaLimitError);
    const members = Array.from({ length: SCHEMA_LIMITS.maxNodes - 6 }, (_, i) => `v${i}`);
    const big: JsonSchema = { type: 'object', properties: { x: { type: 'string', enum: members } } };
    expect(ts(big)).toContain('"v0" | "v1"');
    expect(() => ts({ ...big, properties: { x: { type: 'string', enum: [...members, 'one more'] } } })).toThrow(/more than 10000 JSON values/);
  });

  test('jsonLimitViolation: depth counts objects and arrays, the path is the first place in document order', () => {
    expect(jsonLimitViolation('x', { maxDepth: 0 })).toBeNull();
    expect(jsonLimitViolation({}, { maxDepth: 1 })).toBeNull();
    expect(jsonLimitViolation({ a: {} }, { maxDepth: 1 })).toEqual({ limit: 'depth', path: ['a'] });
    expect(jsonLimitViolation({ a: 1, b: [[1]], c: [[[1]]] }, { maxDepth: 2 })).toEqual({ limit: 'depth', path: ['b', 0] });
    expect(jsonLimitViolation([1, 2, 3], { maxDepth: 5, maxNodes: 3 })).toEqual({ limit: 'nodes', path: [2] });
    const deep = JSON.parse(`${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}`) as unknown;
    expect(jsonLimitViolation(deep, { maxDepth: 128 })?.path).toHaveLength(128);
  });

  test('paramPath: OpenAI form, at most 12 segments, long keys cut', () => {
    expect(paramPath('tools[0].function.parameters', ['properties', 'a', 'items', 3])).toBe('tools[0].function.parameters.properties.a.items[3]');
    expect(paramPath('', ['messages', 0, 'content'])).toBe('messages[0].content');
    expect(
      paramPath(
        '',
        Array.from({ length: 20 }, () => 0),
      ),
    ).toBe(`${'[0]'.repeat(12)}…`);
    expect(paramPath('p', ['k'.repeat(100)])).toBe(`p.${'k'.repeat(40)}…`);
  });
});
