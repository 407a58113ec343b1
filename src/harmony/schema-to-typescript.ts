// JSON Schema -> the TypeScript-ish text harmony puts in `# Tools` sections: a port of
// openai/harmony v0.0.8 `json_schema_to_typescript(schema, indent)`, byte for byte
// (spec/harmony.md §2). Several outputs look wrong (a description printed twice, `(_: // …`,
// unsplit multi-line comments); they are kept on purpose, because the model was trained on exactly
// this text.
//
// Known divergences, all caused by JSON.parse rather than by this code:
// - Property order follows JS object key order, which is the request's order except that
//   integer-like keys ("0", "42") move to the front; serde_json (preserve_order) keeps them in place.
// - Non-string defaults are printed with JSON.stringify. serde_json prints floats its own way
//   (`1.0` stays `1.0`, `1e21` is `1e21`), where JS prints `1` and `1e+21`; integers beyond 2^53
//   lose precision in JS.
import type { JsonSchema } from './conversation.ts';

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** serde_json's `Value::get(key)`: an object's own field; undefined for anything that is not an object. */
function get(value: unknown, key: string): unknown {
  return isObject(value) && Object.hasOwn(value, key) ? value[key] : undefined;
}

/** Only string values count for titles, descriptions, examples and enum members (`as_str()`). */
function getString(value: unknown, key: string): string | undefined {
  const v = get(value, key);
  return typeof v === 'string' ? v : undefined;
}

/** Upstream's `is_enum`: a non-empty `enum` array of any item type. */
function isEnum(schema: unknown): boolean {
  const values = get(schema, 'enum');
  return Array.isArray(values) && values.length > 0;
}

/**
 * `default: …` text. A string default is quoted raw (no escaping) unless the schema is an enum, where
 * it is printed bare. The one exception is a schema-level `oneOf` variant: upstream prints its enum
 * string through serde's Display, i.e. as JSON (`jsonForEnumString`).
 */
function defaultText(value: unknown, schema: unknown, jsonForEnumString = false): string {
  if (typeof value === 'string') {
    if (!isEnum(schema)) return `default: "${value}"`;
    if (!jsonForEnumString) return `default: ${value}`;
  }
  return `default: ${JSON.stringify(value)}`;
}

/** ` | null` for `nullable: true`, unless the type text already mentions null anywhere. */
function withNullable(text: string, schema: unknown): string {
  return get(schema, 'nullable') === true && !text.includes('null') ? `${text} | null` : text;
}

function trailingComment(notes: string[]): string {
  return notes.length > 0 ? ` // ${notes.join(' ')}` : '';
}

/**
 * Limits on a tool's `parameters`, checked before rendering (spec/api.md "Limits"). The renderer
 * recurses once per schema level, so without a bound a deeply nested schema overflows the stack;
 * the bounds are far above any schema a model can use (OpenAI's own structured outputs allow 10
 * levels and 5,000 properties) and far below what overflows.
 * - depth: objects and arrays nested in one another, the schema itself counting 1 (an object
 *   property costs 2: `properties` and the property's schema), so 64 allows 31 nested objects.
 * - nodes: JSON values of any kind (objects, arrays, strings, numbers, …) in the schema.
 */
export const SCHEMA_LIMITS = { maxDepth: 64, maxNodes: 10_000 } as const;

export interface JsonLimits {
  maxDepth: number;
  maxNodes?: number;
}

/** Where a JSON value first exceeds a limit: the keys and indexes leading to it from the root. */
export interface JsonLimitViolation {
  limit: 'depth' | 'nodes';
  path: (string | number)[];
}

/**
 * The first place `value` exceeds `limits`, or null. Iterative (an explicit stack), so it is safe on
 * any value JSON.parse returns, however deep.
 */
export function jsonLimitViolation(value: unknown, limits: JsonLimits): JsonLimitViolation | null {
  interface Entry {
    value: unknown;
    depth: number;
    key: string | number | null;
    parent: Entry | null;
  }
  const pathOf = (entry: Entry): (string | number)[] => {
    const path: (string | number)[] = [];
    for (let e: Entry | null = entry; e !== null && e.key !== null; e = e.parent) path.push(e.key);
    return path.reverse();
  };
  const stack: Entry[] = [{ value, depth: 0, key: null, parent: null }];
  let nodes = 0;
  while (stack.length > 0) {
    const entry = stack.pop()!;
    nodes++;
    if (limits.maxNodes !== undefined && nodes > limits.maxNodes) return { limit: 'nodes', path: pathOf(entry) };
    const v = entry.value;
    if (v === null || typeof v !== 'object') continue;
    const depth = entry.depth + 1;
    if (depth > limits.maxDepth) return { limit: 'depth', path: pathOf(entry) };
    // Pushed in reverse, so that values are visited in document order.
    const children: [string | number, unknown][] = Array.isArray(v) ? v.map((item, i) => [i, item]) : Object.entries(v);
    for (let i = children.length - 1; i >= 0; i--) stack.push({ value: children[i]![1], depth, key: children[i]![0], parent: entry });
  }
  return null;
}

const MAX_PARAM_SEGMENTS = 12;
const MAX_KEY_LENGTH = 40;

/**
 * A path in OpenAI's param form after `prefix` (`tools[0].function.parameters` + `properties`, `a`,
 * `items` → `tools[0].function.parameters.properties.a.items`): at most 12 segments, then `…`; a
 * key longer than 40 characters is cut with `…`.
 */
export function paramPath(prefix: string, path: readonly (string | number)[]): string {
  let out = prefix;
  for (const part of path.slice(0, MAX_PARAM_SEGMENTS)) {
    if (typeof part === 'number') out += `[${part}]`;
    else {
      const key = part.length > MAX_KEY_LENGTH ? `${part.slice(0, MAX_KEY_LENGTH)}…` : part;
      out += out === '' ? key : `.${key}`;
    }
  }
  return path.length > MAX_PARAM_SEGMENTS ? `${out}…` : out;
}

/** A schema over SCHEMA_LIMITS; `path` leads from the schema's root to where the limit was passed. */
export class SchemaLimitError extends Error {
  override name = 'SchemaLimitError';
  constructor(readonly violation: JsonLimitViolation) {
    super(
      violation.limit === 'depth'
        ? `the schema nests deeper than ${SCHEMA_LIMITS.maxDepth} levels of objects and arrays`
        : `the schema has more than ${SCHEMA_LIMITS.maxNodes} JSON values`,
    );
  }
}

/** Throws SchemaLimitError for a schema over SCHEMA_LIMITS (what jsonSchemaToTypeScript accepts). */
export function checkSchemaLimits(schema: unknown): void {
  const violation = jsonLimitViolation(schema, SCHEMA_LIMITS);
  if (violation !== null) throw new SchemaLimitError(violation);
}

/** The TypeScript-ish text for a schema; SchemaLimitError if it is over SCHEMA_LIMITS. */
export function jsonSchemaToTypeScript(schema: JsonSchema, indent: string): string {
  checkSchemaLimits(schema);
  return toTypeScript(schema, indent);
}

// Recursion sees arbitrary JSON (a variant or `items` may be `true`, a string, …), hence `unknown`.
function toTypeScript(schema: unknown, indent: string): string {
  // A schema-level oneOf wins over everything else, `type` included.
  const oneOf = get(schema, 'oneOf');
  if (Array.isArray(oneOf)) {
    return oneOf
      .map((variant) => {
        const notes: string[] = [];
        const description = getString(variant, 'description');
        if (description !== undefined) notes.push(description);
        const def = get(variant, 'default');
        if (def !== undefined) notes.push(defaultText(def, variant, true));
        const text = withNullable(toTypeScript(variant, `${indent}   `), variant);
        return `\n${indent} | ${text}${trailingComment(notes)}`;
      })
      .join('');
  }

  const type = get(schema, 'type');
  if (Array.isArray(type)) {
    const names = type.filter((t): t is string => typeof t === 'string');
    // Only integer is mapped; other names (even "object") are printed as they are.
    if (names.length > 0) return names.map((t) => (t === 'integer' ? 'number' : t)).join(' | ');
  }
  // No usable `type`: anyOf, allOf, $ref, const and enum-only schemas all end up here.
  if (typeof type !== 'string') return 'any';

  switch (type) {
    case 'object':
      return objectToTypeScript(schema, indent);
    case 'string': {
      const values = get(schema, 'enum');
      const members = Array.isArray(values) ? values.filter((v): v is string => typeof v === 'string') : [];
      // Members are quoted raw, without escaping, like upstream.
      return members.length > 0 ? members.map((m) => `"${m}"`).join(' | ') : 'string';
    }
    case 'number':
    case 'integer':
      // An integer enum is not honoured: still `number`.
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'array': {
      const items = get(schema, 'items');
      // Items keep the caller's indent (no extra 4 spaces).
      return items !== undefined ? `${toTypeScript(items, indent)}[]` : 'Array<any>';
    }
    default:
      return 'any';
  }
}

function objectToTypeScript(schema: unknown, indent: string): string {
  // The description goes before the `{`, so a top-level call yields `(_: // desc\n{` and a nested
  // object prints its description a second time after `key: `. Both quirks are upstream's.
  const description = getString(schema, 'description');
  let out = description !== undefined ? `${indent}// ${description}\n` : '';
  out += '{\n';

  const properties = get(schema, 'properties');
  if (isObject(properties)) {
    const requiredList = get(schema, 'required');
    // Without a `required` array every property is optional.
    const required = new Set(Array.isArray(requiredList) ? requiredList : []);
    // Object.entries: integer-like keys come first (see the divergence note at the top).
    for (const [key, prop] of Object.entries(properties)) {
      const optional = required.has(key) ? '' : '?';
      const oneOf = get(prop, 'oneOf');
      const propDescription = getString(prop, 'description');

      const title = getString(prop, 'title');
      if (title !== undefined) out += `${indent}// ${title}\n${indent}//\n`;
      // Not split into lines: a multi-line description leaves its later lines uncommented (upstream bug).
      if (oneOf === undefined && propDescription !== undefined) out += `${indent}// ${propDescription}\n`;
      const examples = get(prop, 'examples');
      if (Array.isArray(examples) && examples.length > 0) {
        out += `${indent}// Examples:\n`;
        for (const example of examples) {
          if (typeof example === 'string') out += `${indent}// - "${example}"\n`;
        }
      }

      if (Array.isArray(oneOf)) {
        out += oneOfProperty(key, optional, prop, oneOf, propDescription, indent);
        continue;
      }

      out += `${indent}${key}${optional}: ${withNullable(toTypeScript(prop, `${indent}    `), prop)},`;
      // A non-array `oneOf` also suppresses the default comment, as upstream checks only presence.
      const def = get(prop, 'default');
      if (oneOf === undefined && def !== undefined) out += ` // ${defaultText(def, prop)}`;
      out += '\n';
    }
  }
  return `${out}${indent}}`;
}

/** A property whose schema has a `oneOf` array: comments above, then one ` | variant` line each. */
function oneOfProperty(key: string, optional: string, prop: unknown, variants: unknown[], propDescription: string | undefined, indent: string): string {
  // The property description goes above unless it equals the first variant's; in that case it is
  // not printed anywhere, since variants repeating the property description are skipped too.
  const firstDescription = getString(variants[0], 'description');
  const descriptionAbove = propDescription !== undefined && propDescription !== firstDescription;

  let out = descriptionAbove ? `${indent}// ${propDescription}\n` : '';
  const def = get(prop, 'default');
  if (def !== undefined) out += `${indent}// ${defaultText(def, prop)}\n`;
  out += `${indent}${key}${optional}:\n`;

  variants.forEach((variant, i) => {
    const notes: string[] = [];
    const description = getString(variant, 'description');
    if (!(i === 0 && descriptionAbove) && description !== undefined && description !== propDescription) {
      notes.push(description);
    }
    const variantDefault = get(variant, 'default');
    if (variantDefault !== undefined) notes.push(defaultText(variantDefault, variant));
    const text = withNullable(toTypeScript(variant, `${indent}   `), variant);
    out += `${indent} | ${text}${trailingComment(notes)}\n`;
  });
  return `${out}${indent},\n`;
}
