// Random OpenAI chat requests with tools: multi-turn conversations with reasoning (under every alias
// clients use), parallel tool calls, tool results in any order, and content as strings or text parts.
import fc from 'fast-check';
import type { ChatContent, ChatFunctionTool, ChatMessage, ChatRequest } from '../../wire/chat-completions.ts';
import { anyText } from './text.ts';

/** A realistic tool catalogue: flat, enum + default, nested objects, arrays, no parameters. */
export const toolCatalogue: ChatFunctionTool[] = [
  {
    type: 'function',
    function: {
      name: 'calculator',
      description: 'Evaluate a math expression',
      parameters: { type: 'object', properties: { expression: { type: 'string', description: 'e.g. 2+2' } }, required: ['expression'] },
    },
  },
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Get the current weather for a city.',
      parameters: {
        type: 'object',
        properties: {
          location: { type: 'string', description: 'City name' },
          unit: { type: 'string', enum: ['celsius', 'fahrenheit'], default: 'celsius' },
        },
        required: ['location'],
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'search_web',
      description: 'Search the web.\nReturns the top results.',
      parameters: {
        type: 'object',
        properties: {
          query: { type: 'string' },
          filters: {
            type: 'object',
            description: 'Optional filters',
            properties: { site: { type: 'string' }, after: { type: ['string', 'null'] } },
          },
          top_k: { type: 'integer', default: 5 },
        },
        required: ['query'],
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'create_event',
      description: 'Create a calendar event.',
      parameters: {
        type: 'object',
        properties: {
          title: { type: 'string', title: 'Title', examples: ['Standup'] },
          attendees: { type: 'array', items: { type: 'object', properties: { email: { type: 'string' } }, required: ['email'] } },
          when: {
            oneOf: [
              { type: 'string', description: 'ISO date' },
              { type: 'number', description: 'epoch seconds' },
            ],
          },
        },
        required: ['title'],
      },
    },
  },
  { type: 'function', function: { name: 'get_time', description: 'Current UTC time.' } },
];

/** Arguments as clients send them: a JSON string, compact or spaced. */
const argumentsJson: fc.Arbitrary<string> = fc
  .tuple(fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }), fc.constantFrom(undefined, 1, 2))
  .map(([value, space]) => JSON.stringify(value, null, space));

/** Message content: a string, or the same text split into text parts. */
const content = (text: fc.Arbitrary<string>): fc.Arbitrary<ChatContent> =>
  fc.oneof(
    text,
    fc.array(text, { minLength: 1, maxLength: 3 }).map((parts) => parts.map((t) => ({ type: 'text' as const, text: t }))),
  );

const REASONING_FIELDS = ['reasoning', 'reasoning_content', 'thinking', '<think>'] as const;

/** Assistant reasoning under one of its aliases, or a leading `<think>` block in `content`. */
function withReasoning(message: Record<string, unknown>, field: (typeof REASONING_FIELDS)[number], reasoning: string): void {
  if (field === '<think>') message.content = `<think>${reasoning}</think>${(message.content as string | null) ?? ''}`;
  else message[field] = reasoning;
}

// Generated text never starts with `<think>` or whitespace on its own: the mapping would read that as
// a think block or trim it, and round-trip comparisons would need to guess which.
const turnTextShrinking = anyText(30).filter((t) => !/^\s/.test(t) && !t.startsWith('<think>') && t.trim() === t);

/** The free text of a conversation: message text, tool arguments and results. */
interface Texts {
  turn: fc.Arbitrary<string>;
  result: fc.Arbitrary<string>;
  arguments: fc.Arbitrary<string>;
}

type Turn =
  | { kind: 'user'; content: ChatContent }
  | { kind: 'system'; role: 'system' | 'developer'; content: ChatContent }
  | { kind: 'final'; content: string; reasoning?: { field: (typeof REASONING_FIELDS)[number]; text: string } }
  | {
      kind: 'tools';
      preamble: string | null;
      reasoning?: { field: (typeof REASONING_FIELDS)[number]; text: string };
      calls: Array<{ name: string; arguments: string; result: ChatContent }>;
      resultOrder: number[];
    };

function turnArb(toolNames: string[], text: Texts): fc.Arbitrary<Turn> {
  const reasoningArb = fc.option(fc.record({ field: fc.constantFrom(...REASONING_FIELDS), text: text.turn.filter((t) => t !== '') }), {
    nil: undefined,
  });
  const turns: Array<fc.Arbitrary<Turn>> = [
    content(text.turn).map((c) => ({ kind: 'user' as const, content: c })),
    fc.record({ kind: fc.constant('system' as const), role: fc.constantFrom('system' as const, 'developer' as const), content: content(text.turn) }),
    fc.record({ kind: fc.constant('final' as const), content: text.turn, reasoning: reasoningArb }, { requiredKeys: ['kind', 'content'] }),
  ];
  if (toolNames.length > 0) {
    const call = fc.record({ name: fc.constantFrom(...toolNames), arguments: text.arguments, result: content(text.result) });
    turns.push(
      fc.tuple(fc.option(text.turn, { nil: null }), reasoningArb, fc.array(call, { minLength: 1, maxLength: 3 })).chain(([preamble, reasoning, calls]) =>
        fc.shuffledSubarray([...calls.keys()], { minLength: calls.length, maxLength: calls.length }).map((resultOrder) => {
          const turn: Turn = { kind: 'tools', preamble, calls, resultOrder };
          if (reasoning) turn.reasoning = reasoning;
          return turn;
        }),
      ),
    );
  }
  return fc.oneof(...turns);
}

function toMessages(turns: Turn[]): ChatMessage[] {
  const messages: ChatMessage[] = [];
  turns.forEach((turn, t) => {
    switch (turn.kind) {
      case 'user':
        messages.push({ role: 'user', content: turn.content });
        break;
      case 'system':
        messages.push({ role: turn.role, content: turn.content });
        break;
      case 'final': {
        const m: Record<string, unknown> = { role: 'assistant', content: turn.content };
        if (turn.reasoning) withReasoning(m, turn.reasoning.field, turn.reasoning.text);
        messages.push(m as unknown as ChatMessage);
        break;
      }
      case 'tools': {
        const ids = turn.calls.map((_, j) => `call_${t}_${j}`);
        const m: Record<string, unknown> = {
          role: 'assistant',
          content: turn.preamble,
          tool_calls: turn.calls.map((c, j) => ({ id: ids[j], type: 'function', function: { name: c.name, arguments: c.arguments } })),
        };
        if (turn.reasoning) withReasoning(m, turn.reasoning.field, turn.reasoning.text);
        messages.push(m as unknown as ChatMessage);
        for (const j of turn.resultOrder) messages.push({ role: 'tool', tool_call_id: ids[j]!, content: turn.calls[j]!.result });
        break;
      }
    }
  });
  return messages;
}

const chatRequestOf = (text: Texts): fc.Arbitrary<ChatRequest> =>
  fc
    .record({
      tools: fc.subarray(toolCatalogue),
      reasoning_effort: fc.option(fc.constantFrom('low' as const, 'medium' as const, 'high' as const), { nil: undefined }),
    })
    .chain(({ tools, reasoning_effort }) =>
      fc
        .tuple(
          content(text.turn),
          fc.array(
            turnArb(
              tools.map((t) => t.function.name),
              text,
            ),
            { maxLength: 6 },
          ),
        )
        .map(([first, turns]) => {
          const request: ChatRequest = { model: 'gpt-oss-20b', messages: toMessages([{ kind: 'user', content: first }, ...turns]) };
          if (tools.length > 0) request.tools = tools;
          if (reasoning_effort !== undefined) request.reasoning_effort = reasoning_effort;
          return request;
        }),
    );

/** A valid chat request: tools from the catalogue, a user turn first, then any mix of turns. */
export const chatRequest: fc.Arbitrary<ChatRequest> = chatRequestOf({ turn: turnTextShrinking, result: anyText(30), arguments: argumentsJson });

/**
 * The same requests (the same values for the same seed), with their free text kept whole while
 * shrinking: for traffic to a server, where each shrinking candidate replays a whole history with
 * its cold runs (seconds), and fast-check would spend its candidates taking a long message apart
 * character by character before any message is dropped. Messages and fields are dropped, numbers
 * and lists shrunk, as before; a text that matters stays in the report whole (at most 30 characters).
 */
export const historyRequest: fc.Arbitrary<ChatRequest> = chatRequestOf({
  turn: fc.noShrink(turnTextShrinking),
  result: fc.noShrink(anyText(30)),
  arguments: fc.noShrink(argumentsJson),
});
