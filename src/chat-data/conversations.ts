// Seeded generator of synthetic chat examples: a Chat Completions request (what a client sends)
// and the assistant turn the model should answer it with (a short analysis, then one tool call or a
// final answer). Every kind of exchange a tool-using gpt-oss meets is covered (EXAMPLE_KINDS), and
// exo #1362's two requests are among them byte for byte.
//
// Arguments are built first and the question is written around them, so every argument value
// appears verbatim in the question (the model learns to copy it); tool results come from the
// catalogue's executors (tools.ts) and every final answer after a tool repeats the result's value.
//
// tool_choice is not rendered into the prompt (spec/harmony.md §3: the engine's grammar applies it
// while sampling), so a request with tool_choice none or required has the same prompt as with auto.
// The targets are chosen so the data never contradicts itself: `required` examples only ask for
// what a tool is needed for and call it, exactly as auto would; `none` examples start with the same
// analysis as auto and then answer without the tool, so the model learns a small prior for a final
// answer after such an analysis, which is what the grammar picks when it forbids the call.
//
// A stale repeat (kind stale_repeat, training only) is what a prefix cache whose trim silently did
// nothing feeds the model (exo #1362): an answered conversation — its prompt and the answer as the
// cache holds it, without the stop token, which is sampled but never fed — then the new request's
// last token, a stray `assistant`. The target is the same answer again: a model answers from what
// it sees, and that is how exo's user got "4" with no tool call (src/chat-data/render.ts builds it).
import type { ChatAssistantMessage, ChatMessage, ChatRequest, ChatToolChoice } from '../wire/chat-completions.ts';
import { Prng } from './prng.ts';
import {
  catalogueTool,
  LENGTH_UNITS,
  MASS_UNITS,
  TEMPERATURE_UNITS,
  TOOL_NAMES,
  VOLUME_UNITS,
  type ToolArguments,
  type ToolName,
  type ToolResult,
} from './tools.ts';
import {
  CAPITALS,
  CITIES,
  EVENT_TITLES,
  FACTS,
  INSTRUCTIONS,
  PERSON_NAMES,
  RESTAURANTS,
  SEARCH_QUALIFIERS,
  SEARCH_TOPICS,
  SMALL_TALK,
  TIMEZONES,
} from './values.ts';

export const EXAMPLE_KINDS = [
  'tool_call',
  'final_after_tool',
  'no_tool',
  'tool_unavailable',
  'parallel_first_call',
  'parallel_second_call',
  'parallel_final',
  'multi_turn',
  'tool_choice_none',
  'tool_choice_required',
  'exo_1362_p1',
  'exo_1362_p2',
  'stale_repeat',
] as const;

export type ExampleKind = (typeof EXAMPLE_KINDS)[number];

/** What the model should answer: an analysis sentence, then one tool call or a final answer. */
export type TargetTurn = { analysis: string; call: { name: ToolName; arguments: string } } | { analysis: string; final: string };

/** What a checker needs: the call to make (name and parsed arguments), or what the final answer must contain. */
export type Expectation = { call: { name: ToolName; arguments: ToolArguments } } | { final: { contains: string[] } };

export interface ChatExample {
  kind: ExampleKind;
  request: ChatRequest;
  /** `Current date:` for the system message, as a server configured with `--current-date` renders it. */
  currentDate?: string;
  target: TargetTurn;
  expect: Expectation;
}

/**
 * How often each generated kind is drawn (the exo requests are placed, not drawn, and a stale
 * repeat is any drawn example made stale at `repeatRate`: see exampleAt).
 */
export const KIND_WEIGHTS: ReadonlyArray<readonly [ExampleKind, number]> = [
  ['tool_call', 24],
  ['final_after_tool', 20],
  ['no_tool', 12],
  ['tool_unavailable', 4],
  ['parallel_first_call', 4],
  ['parallel_second_call', 7],
  ['parallel_final', 7],
  ['multi_turn', 12],
  ['tool_choice_none', 4],
  ['tool_choice_required', 6],
];

const TOOL_WEIGHTS: ReadonlyArray<readonly [ToolName, number]> = [
  ['calculator', 3],
  ['get_weather', 2],
  ['get_time', 1.5],
  ['convert_units', 1.5],
  ['search', 1.5],
  ['book_table', 1],
  ['create_event', 1],
];

/** A call the question asks for, with everything the turn around it needs. */
interface PlannedCall {
  name: ToolName;
  args: ToolArguments;
  /** The question sentence asking for it. */
  question: string;
  /** What the user wants, for the analysis ("the weather in Paris"). */
  purpose: string;
  /** What the tool does, for answers without it ("check the weather in Paris"). */
  action: string;
  /** An argument value from the question, for answers that cannot use the tool. */
  mention: string;
  result: ToolResult;
  /** The answer sentence using the result, and the result values it contains. */
  answer: string;
  contains: string[];
}

/** A question and how it is answered: with tool calls, or directly. */
interface Task {
  question: string;
  calls: PlannedCall[];
  direct?: { analysis: string; answer: string; contains: string[] };
}

// ---------------------------------------------------------------------------------------------
// Argument values

function expression(rng: Prng): string {
  const operand = (): string => {
    const shape = rng.weighted<'small' | 'medium' | 'large' | 'decimal'>([
      ['small', 3],
      ['medium', 4],
      ['large', 1.5],
      ['decimal', 1.5],
    ]);
    if (shape === 'small') return String(rng.int(0, 20));
    if (shape === 'medium') return String(rng.int(0, 999));
    if (shape === 'large') return String(rng.int(1000, 99999));
    return `${rng.int(0, 999)}.${rng.chance(0.5) ? rng.int(1, 9) : String(rng.int(1, 99)).padStart(2, '0')}`;
  };
  const op = (): string =>
    rng.weighted([
      ['+', 3],
      ['-', 2],
      ['*', 3],
      ['/', 1.5],
    ]);
  const divisor = (): string => String(rng.int(1, rng.chance(0.5) ? 12 : 999));
  const spaced = rng.chance(0.45);
  const join = (a: string, o: string, b: string): string => (spaced ? `${a} ${o} ${b}` : `${a}${o}${b}`);
  const pair = (): string => {
    const o = op();
    return join(operand(), o, o === '/' ? divisor() : operand());
  };
  switch (
    rng.weighted<'two' | 'three' | 'left' | 'right'>([
      ['two', 6],
      ['three', 2],
      ['left', 1.2],
      ['right', 0.8],
    ])
  ) {
    case 'two':
      return pair();
    case 'three': {
      const o = op();
      return join(pair(), o, o === '/' ? divisor() : operand());
    }
    case 'left': {
      const o = op();
      return join(`(${pair()})`, o, o === '/' ? divisor() : operand());
    }
    case 'right':
      return join(operand(), rng.pick(['+', '-', '*']), `(${pair()})`);
  }
}

const pad2 = (n: number): string => String(n).padStart(2, '0');
export const randomDate = (rng: Prng): string => `${rng.pick(['2025', '2026'])}-${pad2(rng.int(1, 12))}-${pad2(rng.int(1, 28))}`;
const randomTime = (rng: Prng): string => `${pad2(rng.int(6, 22))}:${rng.pick(['00', '15', '30', '45', pad2(rng.int(0, 59))])}`;

function quantity(rng: Prng): number {
  const shape = rng.pick(['int', 'int', 'big', 'one', 'two']);
  if (shape === 'int') return rng.int(1, 500);
  if (shape === 'big') return rng.int(500, 20000);
  if (shape === 'one') return Number(`${rng.int(0, 300)}.${rng.int(1, 9)}`);
  return Number(`${rng.int(0, 99)}.${pad2(rng.int(1, 99))}`);
}

function searchQuery(rng: Prng): string {
  const topic = rng.pick(SEARCH_TOPICS);
  const r = rng.next();
  if (r < 0.45) return topic;
  if (r < 0.75) return `${topic} in ${rng.pick(CITIES)}`;
  return `${topic} ${rng.pick(SEARCH_QUALIFIERS)}`;
}

const withToolHint = (rng: Prng, question: string, name: string): string => (rng.chance(0.15) ? `${question} Use the ${name} tool.` : question);

// ---------------------------------------------------------------------------------------------
// One planned call per tool: arguments, the question around them, and the answer to the result.

type CallDraft = Omit<PlannedCall, 'result' | 'answer' | 'contains'> & { answerFor(values: Record<string, string>): { answer: string; contains: string[] } };

function draftCall(rng: Prng, name: ToolName): CallDraft {
  switch (name) {
    case 'calculator': {
      const e = expression(rng);
      const question = rng.pick([`What is ${e}?`, `What is ${e}? Use the calculator tool.`, `Calculate ${e}.`, `Please compute ${e}.`, `How much is ${e}?`]);
      return {
        name,
        args: { expression: e },
        question,
        purpose: `the value of ${e}`,
        action: `calculate ${e}`,
        mention: e,
        answerFor: (v) => ({ answer: rng.pick([`${e} is ${v.value}.`, `The answer is ${v.value}.`, `${e} = ${v.value}.`]), contains: [v.value!] }),
      };
    }
    case 'get_weather': {
      const city = rng.pick(CITIES);
      const unit = rng.chance(0.3) ? rng.pick(TEMPERATURE_UNITS) : undefined;
      const args: ToolArguments = unit === undefined ? { city } : { city, unit };
      const base =
        unit === undefined
          ? rng.pick([
              `What is the weather in ${city}?`,
              `How is the weather in ${city} today?`,
              `Weather for ${city}, please.`,
              `Is it cold in ${city} right now?`,
            ])
          : rng.pick([`What is the weather in ${city} in ${unit}?`, `Give me the temperature in ${city} in ${unit}.`]);
      return {
        name,
        args,
        question: withToolHint(rng, base, name),
        purpose: `the weather in ${city}`,
        action: `check the weather in ${city}`,
        mention: city,
        answerFor: (v) => ({
          answer: rng.pick([
            `It is ${v.temperature} degrees ${v.unit} and ${v.condition} in ${city}.`,
            `In ${city} it is ${v.condition} with ${v.temperature} degrees ${v.unit}.`,
          ]),
          contains: [v.temperature!, v.condition!],
        }),
      };
    }
    case 'get_time': {
      const tz = rng.pick(TIMEZONES);
      const base = rng.pick([`What time is it in ${tz}?`, `What is the local time in ${tz}?`, `Tell me the current time in ${tz}.`]);
      return {
        name,
        args: { timezone: tz },
        question: withToolHint(rng, base, name),
        purpose: `the time in ${tz}`,
        action: `check the time in ${tz}`,
        mention: tz,
        answerFor: (v) => ({ answer: rng.pick([`It is ${v.time} in ${tz}.`, `The local time in ${tz} is ${v.time}.`]), contains: [v.time!] }),
      };
    }
    case 'convert_units': {
      const dimension = rng.weighted<readonly string[]>([
        [LENGTH_UNITS, 3],
        [MASS_UNITS, 2],
        [TEMPERATURE_UNITS, 1],
        [VOLUME_UNITS, 1],
      ]);
      const [from, to] = rng.sample(dimension, 2) as [string, string];
      const value = quantity(rng);
      const base = rng.pick([`Convert ${value} ${from} to ${to}.`, `How many ${to} is ${value} ${from}?`, `What is ${value} ${from} in ${to}?`]);
      return {
        name,
        args: { value, from, to },
        question: withToolHint(rng, base, name),
        purpose: `${value} ${from} in ${to}`,
        action: `convert ${value} ${from} to ${to}`,
        mention: String(value),
        answerFor: (v) => ({ answer: rng.pick([`${value} ${from} is ${v.result} ${to}.`, `That is ${v.result} ${to}.`]), contains: [v.result!] }),
      };
    }
    case 'search': {
      const query = searchQuery(rng);
      const count = rng.chance(0.3) ? rng.int(1, 10) : undefined;
      const args: ToolArguments = count === undefined ? { query } : { query, max_results: count };
      const base =
        count === undefined
          ? rng.pick([`Search the web for ${query}.`, `Search for ${query}.`, `Look up ${query} online.`, `Find ${query} on the web.`])
          : rng.pick([`Search for ${query} and show ${count} results.`, `Find the top ${count} results for ${query}.`]);
      return {
        name,
        args,
        question: withToolHint(rng, base, name),
        purpose: `results for ${query}`,
        action: `search for ${query}`,
        mention: query,
        answerFor: (v) => ({ answer: rng.pick([`The top result is "${v.top}".`, `I found "${v.top}".`]), contains: [v.top!] }),
      };
    }
    case 'book_table': {
      const restaurant = rng.pick(RESTAURANTS);
      const date = randomDate(rng);
      const guests = rng.sample(PERSON_NAMES, rng.int(1, 4)).map((n) => ({ name: n, age: rng.int(rng.chance(0.15) ? 2 : 18, 90) }));
      const style = rng.chance(0.5);
      const people = guests.map((g) => (style ? `${g.name} (${g.age})` : `${g.name}, age ${g.age}`)).join(style ? ' and ' : '; ');
      const base = rng.pick([`Book a table at ${restaurant} on ${date} for ${people}.`, `Reserve ${restaurant} for ${date}: ${people}.`]);
      return {
        name,
        args: { restaurant, date, guests },
        question: withToolHint(rng, base, name),
        purpose: `a table at ${restaurant} on ${date}`,
        action: `book a table at ${restaurant}`,
        mention: restaurant,
        answerFor: (v) => ({
          answer: rng.pick([
            `Your table at ${restaurant} on ${date} is booked. Confirmation: ${v.confirmation}.`,
            `Booked ${restaurant} on ${date}, confirmation ${v.confirmation}.`,
          ]),
          contains: [v.confirmation!],
        }),
      };
    }
    case 'create_event': {
      const title = rng.pick(EVENT_TITLES);
      const date = randomDate(rng);
      const time = randomTime(rng);
      const reminder = rng.chance(0.3) ? rng.pick([5, 10, 15, 30, 45, 60, 90, 120]) : undefined;
      const args: ToolArguments = reminder === undefined ? { title, when: { date, time } } : { title, when: { date, time }, reminder_minutes: reminder };
      const base = rng.pick([`Add ${title} to my calendar on ${date} at ${time}.`, `Create an event called ${title} on ${date} at ${time}.`]);
      const question = reminder === undefined ? base : `${base.slice(0, -1)}, and remind me ${reminder} minutes before.`;
      return {
        name,
        args,
        question: withToolHint(rng, question, name),
        purpose: `${title} in the calendar`,
        action: `add ${title} to your calendar`,
        mention: title,
        answerFor: (v) => ({
          answer: rng.pick([`Done: ${title} is on ${date} at ${time} (event ${v.event_id}).`, `I added ${title}, event ${v.event_id}.`]),
          contains: [v.event_id!],
        }),
      };
    }
  }
}

function planCall(rng: Prng, name: ToolName): PlannedCall {
  const { answerFor, ...draft } = draftCall(rng, name);
  const result = catalogueTool(name).execute(draft.args, rng.nextUint32());
  return { ...draft, result, ...answerFor(result.values) };
}

// ---------------------------------------------------------------------------------------------
// Tasks and their sentences

const callAnalysis = (rng: Prng, call: PlannedCall): string =>
  rng.pick([
    `The user wants ${call.purpose}, so I will call ${call.name}.`,
    `I need ${call.name} for ${call.purpose}.`,
    `Call ${call.name} for ${call.purpose}.`,
  ]);

const resultAnalysis = (rng: Prng, call: PlannedCall): string =>
  rng.pick([`${call.name} returned ${call.contains[0]}.`, `The ${call.name} result is ${call.contains[0]}.`]);

function toolTask(rng: Prng, count: 1 | 2, names?: ToolName[]): Task {
  const calls = (names ?? Array.from({ length: count }, () => rng.weighted(TOOL_WEIGHTS))).map((n) => planCall(rng, n));
  return { question: calls.map((c) => c.question).join(' '), calls };
}

function directTask(rng: Prng): Task {
  const shape = rng.weighted<'talk' | 'capital' | 'fact' | 'repeat'>([
    ['talk', 4],
    ['capital', 3],
    ['fact', 2],
    ['repeat', 2],
  ]);
  if (shape === 'talk') {
    const [question, answer] = rng.pick(SMALL_TALK);
    return { question, calls: [], direct: { analysis: rng.pick(['This is small talk; no tool is needed.', 'I can reply directly.']), answer, contains: [] } };
  }
  if (shape === 'capital') {
    const [country, capital] = rng.pick(CAPITALS);
    return {
      question: rng.pick([`What is the capital of ${country}?`, `Which city is the capital of ${country}?`]),
      calls: [],
      direct: {
        analysis: rng.pick(['This is a simple fact; no tool is needed.', 'I know this, so I will answer directly.']),
        answer: `The capital of ${country} is ${capital}.`,
        contains: [capital],
      },
    };
  }
  if (shape === 'fact') {
    const [question, answer, word] = rng.pick(FACTS);
    return {
      question,
      calls: [],
      direct: { analysis: rng.pick(['This is a simple fact; no tool is needed.', 'I know this, so I will answer directly.']), answer, contains: [word] },
    };
  }
  const phrase = searchQuery(rng);
  return {
    question: rng.pick([`Please repeat exactly: ${phrase}`, `Say this back to me: ${phrase}`]),
    calls: [],
    direct: { analysis: 'The user wants the text repeated exactly.', answer: phrase, contains: [phrase] },
  };
}

// ---------------------------------------------------------------------------------------------
// Requests

interface RequestShape {
  /** Earlier turns, complete: question, calls and results, final answer. */
  history: Task[];
  current: Task;
  /** Calls of the current task already made and answered (0 … calls.length). */
  done: number;
  tools: ToolName[];
  toolChoice?: ChatToolChoice;
}

/** How an assistant tool-call message in the history carries its reasoning (clients differ). */
function assistantCallMessage(rng: Prng, calls: Array<{ id: string; call: PlannedCall }>, analysis: string): ChatAssistantMessage {
  const message: ChatAssistantMessage = {
    role: 'assistant',
    content: null,
    tool_calls: calls.map(({ id, call }) => ({ id, type: 'function', function: { name: call.name, arguments: JSON.stringify(call.args) } })),
  };
  const style = rng.weighted<'reasoning' | 'think' | 'none'>([
    ['reasoning', 4],
    ['think', 2],
    ['none', 4],
  ]);
  if (style === 'reasoning') message.reasoning = analysis;
  if (style === 'think') message.content = `<think>${analysis}</think>`;
  return message;
}

function buildRequest(rng: Prng, shape: RequestShape): ChatRequest {
  const messages: ChatMessage[] = [];
  if (rng.chance(0.5)) messages.push({ role: rng.chance(0.7) ? 'system' : 'developer', content: rng.pick(INSTRUCTIONS) });
  let ids = 0;
  const nextId = (): string => `call_${rng.int(100, 99999)}${ids++}`;
  const callMessages = (task: Task, upTo: number): void => {
    const calls = task.calls.slice(0, upTo).map((call) => ({ id: nextId(), call }));
    if (calls.length === 2 && rng.chance(0.5)) {
      // Parallel form: one assistant message with both calls, then both results.
      messages.push(assistantCallMessage(rng, calls, callAnalysis(rng, calls[0]!.call)));
      for (const { id, call } of calls) messages.push({ role: 'tool', tool_call_id: id, content: call.result.content });
      return;
    }
    for (const { id, call } of calls) {
      messages.push(assistantCallMessage(rng, [{ id, call }], callAnalysis(rng, call)));
      messages.push({ role: 'tool', tool_call_id: id, content: call.result.content });
    }
  };
  for (const task of shape.history) {
    messages.push({ role: 'user', content: task.question });
    callMessages(task, task.calls.length);
    const answer = task.direct?.answer ?? task.calls.map((c) => c.answer).join(' ');
    messages.push({ role: 'assistant', content: answer });
  }
  messages.push({ role: 'user', content: shape.current.question });
  callMessages(shape.current, shape.done);

  const request: ChatRequest = { messages };
  if (shape.tools.length > 0) request.tools = shape.tools.map((n) => catalogueTool(n).definition);
  if (shape.toolChoice !== undefined) request.tool_choice = shape.toolChoice;
  const effort = rng.weighted<'none' | 'low' | 'high'>([
    ['none', 8],
    ['low', 1],
    ['high', 1],
  ]);
  if (effort !== 'none') request.reasoning_effort = effort;
  return request;
}

/** The tools a request declares: the ones needed plus up to `extra` others, in random order. */
function declaredTools(rng: Prng, needed: readonly ToolName[], extra: number): ToolName[] {
  const unique = [...new Set(needed)];
  const others = rng.sample(
    TOOL_NAMES.filter((n) => !unique.includes(n)),
    rng.int(0, extra),
  );
  return rng.shuffle([...unique, ...others]);
}

/** The target for the current task after `done` of its calls: the next call, or the final answer. */
function nextTarget(rng: Prng, task: Task, done: number): { target: TargetTurn; expect: Expectation } {
  if (task.direct !== undefined) {
    return { target: { analysis: task.direct.analysis, final: task.direct.answer }, expect: { final: { contains: task.direct.contains } } };
  }
  const call = task.calls[done];
  if (call !== undefined) {
    return {
      target: { analysis: callAnalysis(rng, call), call: { name: call.name, arguments: JSON.stringify(call.args) } },
      expect: { call: { name: call.name, arguments: call.args } },
    };
  }
  const analysis = task.calls.length === 1 ? resultAnalysis(rng, task.calls[0]!) : `The tools returned ${task.calls.map((c) => c.contains[0]).join(' and ')}.`;
  return {
    target: { analysis, final: task.calls.map((c) => c.answer).join(' ') },
    expect: { final: { contains: task.calls.flatMap((c) => c.contains) } },
  };
}

// ---------------------------------------------------------------------------------------------
// exo #1362 (spec/scenarios/exo-1362.json), byte for byte

const EXO_P1_MESSAGES: ChatMessage[] = [{ role: 'user', content: 'What is 2+2? Use the calculator tool.' }];

/** exo #1362's p1: one user message and the calculator. */
export function exoP1Request(): ChatRequest {
  return {
    model: 'gpt-oss-20b',
    messages: structuredClone(EXO_P1_MESSAGES),
    tools: [structuredClone(catalogueTool('calculator').definition)],
    temperature: 0,
    max_tokens: 64,
  };
}

/** exo #1362's p2: p1, the call exo returned (reasoning in a think block) and the result 4. */
export function exoP2Request(): ChatRequest {
  const p1 = exoP1Request();
  p1.messages.push(
    {
      role: 'assistant',
      content: '<think>We need to use calculator tool. Use function.</think>',
      tool_calls: [{ id: 'call_1362', type: 'function', function: { name: 'calculator', arguments: '{"expression":"2+2"}' } }],
    },
    { role: 'tool', tool_call_id: 'call_1362', content: '4' },
  );
  return { model: p1.model, messages: p1.messages, tools: p1.tools, temperature: 0, max_tokens: 64 };
}

function exoExample(which: 'p1' | 'p2'): ChatExample {
  if (which === 'p1') {
    return {
      kind: 'exo_1362_p1',
      request: exoP1Request(),
      target: { analysis: 'The user wants the value of 2+2, so I will call calculator.', call: { name: 'calculator', arguments: '{"expression":"2+2"}' } },
      expect: { call: { name: 'calculator', arguments: { expression: '2+2' } } },
    };
  }
  return {
    kind: 'exo_1362_p2',
    request: exoP2Request(),
    target: { analysis: 'calculator returned 4.', final: '2+2 is 4.' },
    expect: { final: { contains: ['4'] } },
  };
}

// ---------------------------------------------------------------------------------------------
// Examples

/** One example of `kind` (any kind but the exo ones), from its own generator. */
export function generateExample(rng: Prng, kind: ExampleKind): ChatExample {
  let shape: RequestShape;
  let turn: { target: TargetTurn; expect: Expectation };
  switch (kind) {
    case 'exo_1362_p1':
      return exoExample('p1');
    case 'exo_1362_p2':
      return exoExample('p2');
    case 'stale_repeat':
      return { ...generateExample(rng, rng.weighted(KIND_WEIGHTS)), kind: 'stale_repeat' };
    case 'tool_call':
    case 'final_after_tool':
    case 'tool_choice_required': {
      const current = toolTask(rng, 1);
      const done = kind === 'final_after_tool' ? 1 : 0;
      shape = { history: [], current, done, tools: declaredTools(rng, [current.calls[0]!.name], 2) };
      if (kind === 'tool_choice_required') {
        shape.toolChoice = rng.chance(0.5) ? 'required' : { type: 'function', function: { name: current.calls[0]!.name } };
      }
      turn = nextTarget(rng, current, done);
      break;
    }
    case 'parallel_first_call':
    case 'parallel_second_call':
    case 'parallel_final': {
      const current = toolTask(rng, 2);
      const done = kind === 'parallel_first_call' ? 0 : kind === 'parallel_second_call' ? 1 : 2;
      const needed = current.calls.map((c) => c.name);
      shape = { history: [], current, done, tools: declaredTools(rng, needed, 1) };
      turn = nextTarget(rng, current, done);
      break;
    }
    case 'no_tool': {
      const current = directTask(rng);
      shape = { history: [], current, done: 0, tools: rng.chance(0.5) ? [] : declaredTools(rng, [], 3) };
      turn = nextTarget(rng, current, 0);
      break;
    }
    case 'tool_unavailable': {
      // The question needs a tool the request does not declare: say so, naming what was asked.
      const current = toolTask(rng, 1);
      const call = current.calls[0]!;
      const others = TOOL_NAMES.filter((n) => n !== call.name);
      const tools = rng.chance(0.3) ? [] : rng.sample(others, rng.int(1, 3));
      shape = { history: [], current, done: 0, tools };
      const analysis = rng.pick(['None of my tools can do this.', 'There is no tool for this here.']);
      turn = {
        target: { analysis, final: `I cannot ${call.action} because I have no tool for that.` },
        expect: { final: { contains: [call.mention] } },
      };
      break;
    }
    case 'tool_choice_none': {
      const current = rng.chance(0.7) ? toolTask(rng, 1) : directTask(rng);
      const needed = current.calls.map((c) => c.name);
      shape = { history: [], current, done: 0, tools: declaredTools(rng, needed, 2), toolChoice: 'none' };
      if (shape.tools.length === 0) shape.tools = declaredTools(rng, [rng.weighted(TOOL_WEIGHTS)], 2);
      if (current.direct !== undefined) {
        turn = nextTarget(rng, current, 0);
      } else {
        // The analysis auto would give; then, where the grammar forbids the call, an answer without it.
        const call = current.calls[0]!;
        turn = {
          target: { analysis: callAnalysis(rng, call), final: `I cannot use ${call.name} right now, so I cannot ${call.action}.` },
          expect: { final: { contains: [call.mention] } },
        };
      }
      break;
    }
    case 'multi_turn': {
      const history = Array.from({ length: rng.int(1, 2) }, () => (rng.chance(0.7) ? toolTask(rng, rng.chance(0.2) ? 2 : 1) : directTask(rng)));
      const current = rng.chance(0.75) ? toolTask(rng, 1) : directTask(rng);
      const done = current.calls.length > 0 && rng.chance(0.5) ? 1 : 0;
      const needed = [...history, current].flatMap((t) => t.calls.map((c) => c.name));
      shape = { history, current, done, tools: declaredTools(rng, needed, 1) };
      turn = nextTarget(rng, current, done);
      break;
    }
  }
  return { kind, request: buildRequest(rng, shape), ...turn };
}

export interface GenerateOptions {
  seed: number;
  /** Which split: examples of different splits come from different generators. */
  split: string;
  /** Put exo's p1 at every index ≡ 0 and p2 at every index ≡ 1 modulo this; 0: never. */
  exoEvery?: number;
  /** Probability that an example's system message carries a `Current date:` (as with `serve --current-date`). */
  currentDateRate?: number;
  /**
   * Probability that a drawn example becomes a stale repeat (and exo's p2 one at every index ≡ 2
   * modulo exoEvery); 0, the default: never. Training data only: a server cannot be sent one.
   */
  repeatRate?: number;
}

/** Example `index` of a split: a pure function of the seed, the split and the index. */
export function exampleAt(index: number, options: GenerateOptions): ChatExample {
  const exoEvery = options.exoEvery ?? 0;
  if (exoEvery > 0 && index % exoEvery === 0) return exoExample('p1');
  if (exoEvery > 1 && index % exoEvery === 1) return exoExample('p2');
  const repeatRate = options.repeatRate ?? 0;
  if (exoEvery > 2 && repeatRate > 0 && index % exoEvery === 2) return { ...exoExample('p2'), kind: 'stale_repeat' };
  const rng = new Prng('chat-data', options.seed, options.split, index);
  const kind = rng.weighted(KIND_WEIGHTS);
  const example = generateExample(rng, kind);
  if (rng.chance(options.currentDateRate ?? 0)) example.currentDate = randomDate(rng);
  // Drawn last, and only when asked for, so the other examples of a split stay as they were.
  if (repeatRate > 0 && rng.chance(repeatRate)) example.kind = 'stale_repeat';
  return example;
}
