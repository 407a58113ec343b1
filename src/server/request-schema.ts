// JSON Schema for the body of POST /v1/chat/completions, checked by fastify's ajv before the route
// runs (types, ranges, enums). What a schema cannot say — a tool_call_id that matches no call, a
// call to an undeclared function — is checked by the harmony mapping, which names the field too.
// Fields not listed are accepted and ignored, as OpenAI does. See spec/api.md.

export const MAX_CHOICES = 16;
export const MAX_STOP_SEQUENCES = 4;
export const MAX_TOP_LOGPROBS = 20;
/**
 * How deep objects and arrays may nest anywhere in a body (the body itself counting 1), checked
 * before the schema. The deepest thing a request needs is a tool's `parameters`, which starts at
 * depth 5 and may nest 64 levels (SCHEMA_LIMITS in src/harmony/schema-to-typescript.ts), so 128 is
 * room to spare; JSON.stringify overflows the stack at a few thousand levels.
 */
export const MAX_BODY_DEPTH = 128;

const nullable = (schema: Record<string, unknown>) => ({ anyOf: [schema, { type: 'null' }] });
const content = { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'object' } }] };

export const chatCompletionBodySchema = {
  type: 'object',
  required: ['messages'],
  properties: {
    model: { type: 'string' },
    messages: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['role'],
        properties: {
          role: { enum: ['system', 'developer', 'user', 'assistant', 'tool'] },
          content: nullable(content),
          name: { type: 'string' },
          tool_call_id: { type: 'string' },
          tool_calls: nullable({ type: 'array', items: { type: 'object' } }),
          reasoning: nullable({ type: 'string' }),
          reasoning_content: nullable({ type: 'string' }),
          thinking: nullable({ type: 'string' }),
        },
      },
    },
    tools: nullable({ type: 'array', items: { type: 'object' } }),
    tool_choice: nullable({
      anyOf: [
        { enum: ['auto', 'none', 'required'] },
        {
          type: 'object',
          required: ['type', 'function'],
          properties: {
            type: { const: 'function' },
            function: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } },
          },
        },
      ],
    }),
    parallel_tool_calls: nullable({ type: 'boolean' }),
    reasoning_effort: nullable({ enum: ['low', 'medium', 'high'] }),
    temperature: nullable({ type: 'number', minimum: 0, maximum: 2 }),
    top_p: nullable({ type: 'number', exclusiveMinimum: 0, maximum: 1 }),
    seed: nullable({ type: 'integer', minimum: 0, maximum: 2 ** 53 - 1 }),
    max_tokens: nullable({ type: 'integer', minimum: 1 }),
    max_completion_tokens: nullable({ type: 'integer', minimum: 1 }),
    stop: nullable({
      anyOf: [
        { type: 'string', minLength: 1 },
        { type: 'array', maxItems: MAX_STOP_SEQUENCES, items: { type: 'string', minLength: 1 } },
      ],
    }),
    n: nullable({ type: 'integer', minimum: 1, maximum: MAX_CHOICES }),
    logprobs: nullable({ type: 'boolean' }),
    top_logprobs: nullable({ type: 'integer', minimum: 0, maximum: MAX_TOP_LOGPROBS }),
    // Token ids (decimal, as OpenAI spells them) → a bias added to their logits.
    logit_bias: nullable({
      type: 'object',
      propertyNames: { pattern: '^(0|[1-9][0-9]{0,9})$' },
      additionalProperties: { type: 'number', minimum: -100, maximum: 100 },
    }),
    stream: nullable({ type: 'boolean' }),
    stream_options: nullable({ type: 'object', properties: { include_usage: { type: 'boolean' } } }),
    response_format: nullable({
      type: 'object',
      required: ['type'],
      properties: { type: { enum: ['text'] } },
    }),
  },
} as const;
