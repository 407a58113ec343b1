// Checks a JSON value against the small JSON Schema subset the tool catalogue uses (tools.ts):
// `type` (object, array, string, number, integer, boolean), `properties`, `required`,
// `additionalProperties: false`, `items`, `enum`, `minimum`, `maximum`, `minItems`, `maxItems`,
// `pattern`, and `description` and `default` (ignored). Any other keyword is an error in the schema itself, so a
// schema this check does not understand can never pass silently.

export type SchemaNode = { [keyword: string]: unknown };

const KNOWN = new Set([
  'type',
  'description',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'enum',
  'minimum',
  'maximum',
  'minItems',
  'maxItems',
  'pattern',
  'default',
]);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function typeOk(type: unknown, value: unknown): boolean {
  switch (type) {
    case 'object':
      return isObject(value);
    case 'array':
      return Array.isArray(value);
    case 'string':
      return typeof value === 'string';
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'boolean':
      return typeof value === 'boolean';
    default:
      throw new Error(`schema type ${JSON.stringify(type)} is not supported`);
  }
}

/** Every way `value` breaks `schema`, as `path: problem` lines; empty when it conforms. */
export function schemaErrors(schema: SchemaNode, value: unknown, path = '$'): string[] {
  for (const keyword of Object.keys(schema)) {
    if (!KNOWN.has(keyword)) throw new Error(`${path}: schema keyword '${keyword}' is not supported`);
  }
  if (schema.type !== undefined && !typeOk(schema.type, value)) return [`${path}: expected ${String(schema.type)}, got ${JSON.stringify(value)}`];
  const errors: string[] = [];
  if (Array.isArray(schema.enum) && !schema.enum.some((e) => e === value))
    errors.push(`${path}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) errors.push(`${path}: ${value} < minimum ${schema.minimum}`);
    if (typeof schema.maximum === 'number' && value > schema.maximum) errors.push(`${path}: ${value} > maximum ${schema.maximum}`);
  }
  if (typeof value === 'string' && typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) {
    errors.push(`${path}: ${JSON.stringify(value)} does not match ${schema.pattern}`);
  }
  if (isObject(value)) {
    const properties = isObject(schema.properties) ? schema.properties : {};
    for (const name of Array.isArray(schema.required) ? (schema.required as string[]) : []) {
      if (!(name in value)) errors.push(`${path}: missing required property '${name}'`);
    }
    for (const [name, v] of Object.entries(value)) {
      const sub = properties[name];
      if (isObject(sub)) errors.push(...schemaErrors(sub, v, `${path}.${name}`));
      else if (schema.additionalProperties === false) errors.push(`${path}: property '${name}' is not allowed`);
    }
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems) errors.push(`${path}: fewer than ${schema.minItems} items`);
    if (typeof schema.maxItems === 'number' && value.length > schema.maxItems) errors.push(`${path}: more than ${schema.maxItems} items`);
    if (isObject(schema.items)) value.forEach((item, i) => errors.push(...schemaErrors(schema.items as SchemaNode, item, `${path}[${i}]`)));
  }
  return errors;
}
