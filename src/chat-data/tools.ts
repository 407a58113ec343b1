// The tool catalogue of the synthetic chat data: each tool's definition as a request declares it
// (OpenAI `tools[i]`, JSON Schema parameters) and a deterministic executor that computes a plausible
// result from the arguments. Results echo the arguments where a real tool would (city, time zone,
// unit) and vary with a per-example seed elsewhere (temperature, clock, titles, codes), so a final
// answer can only be right by reading the tool result, never by remembering a city's weather.
import type { ChatFunctionTool } from '../wire/chat-completions.ts';
import { ArithmeticError, calculate } from './arithmetic.ts';
import { Prng } from './prng.ts';
import type { SchemaNode } from './schema-check.ts';

export type ToolArguments = Record<string, unknown>;

/** What an executor returns: the tool message's content and the values a final answer must repeat. */
export interface ToolResult {
  /** The `content` of the tool message (a plain number for the calculator, compact JSON otherwise). */
  content: string;
  /** Named result values, as text, for the answer templates (conversations.ts). */
  values: Record<string, string>;
}

export interface CatalogueTool {
  name: ToolName;
  definition: ChatFunctionTool;
  parameters: SchemaNode;
  execute(args: ToolArguments, seed: number): ToolResult;
}

export type ToolName = 'calculator' | 'get_weather' | 'get_time' | 'convert_units' | 'search' | 'book_table' | 'create_event';

export const LENGTH_UNITS = ['km', 'mi', 'm', 'ft', 'cm', 'in'] as const;
export const MASS_UNITS = ['kg', 'lb', 'g', 'oz'] as const;
export const TEMPERATURE_UNITS = ['celsius', 'fahrenheit'] as const;
export const VOLUME_UNITS = ['l', 'gal', 'ml'] as const;
export const UNIT_DIMENSIONS = [LENGTH_UNITS, MASS_UNITS, TEMPERATURE_UNITS, VOLUME_UNITS] as const;
const ALL_UNITS: readonly string[] = UNIT_DIMENSIONS.flat();

/** Each unit in its dimension's base unit (m, kg, l); temperatures are converted by formula. */
const UNIT_FACTORS: Record<string, number> = {
  km: 1000,
  mi: 1609.344,
  m: 1,
  ft: 0.3048,
  cm: 0.01,
  in: 0.0254,
  kg: 1,
  lb: 0.45359237,
  g: 0.001,
  oz: 0.028349523125,
  l: 1,
  gal: 3.785411784,
  ml: 0.001,
};

export const WEATHER_CONDITIONS = ['sunny', 'cloudy', 'rainy', 'windy', 'foggy', 'snowy'] as const;

function tool(name: ToolName, description: string, parameters: SchemaNode): Pick<CatalogueTool, 'name' | 'definition' | 'parameters'> {
  return { name, parameters, definition: { type: 'function', function: { name, description, parameters } } };
}

const str = (args: ToolArguments, key: string): string => {
  const v = args[key];
  if (typeof v !== 'string') throw new Error(`argument '${key}' must be a string`);
  return v;
};

const num = (args: ToolArguments, key: string): number => {
  const v = args[key];
  if (typeof v !== 'number') throw new Error(`argument '${key}' must be a number`);
  return v;
};

/** A number rounded to `decimals`, printed without trailing zeros: 7.7700 → "7.77". */
export function roundedText(value: number, decimals: number): string {
  const r = Number(value.toFixed(decimals));
  return String(Object.is(r, -0) ? 0 : r);
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** exo #1362's calculator, byte for byte (spec/scenarios/exo-1362.json), so p1 is one of ours. */
const calculator: CatalogueTool = {
  ...tool('calculator', 'Evaluate a math expression', {
    type: 'object',
    properties: { expression: { type: 'string', description: 'A math expression, e.g. 2+2' } },
    required: ['expression'],
  }),
  execute(args): ToolResult {
    try {
      const value = calculate(str(args, 'expression'));
      return { content: value, values: { value } };
    } catch (e) {
      if (!(e instanceof ArithmeticError)) throw e;
      return { content: `error: ${e.message}`, values: { error: e.message } };
    }
  },
};

const getWeather: CatalogueTool = {
  ...tool('get_weather', 'Get the current weather in a city', {
    type: 'object',
    properties: {
      city: { type: 'string', description: 'City name, e.g. Paris' },
      unit: { type: 'string', enum: [...TEMPERATURE_UNITS], default: 'celsius' },
    },
    required: ['city'],
  }),
  execute(args, seed): ToolResult {
    const city = str(args, 'city');
    const unit = args.unit === undefined ? 'celsius' : str(args, 'unit');
    const rng = new Prng('weather', seed, city);
    const celsius = rng.int(-12, 38);
    const condition = rng.pick(celsius <= 1 ? WEATHER_CONDITIONS : WEATHER_CONDITIONS.slice(0, 5));
    const temperature = unit === 'fahrenheit' ? Math.round((celsius * 9) / 5 + 32) : celsius;
    return {
      content: JSON.stringify({ city, temperature, unit, condition }),
      values: { city, temperature: String(temperature), unit, condition },
    };
  },
};

const getTime: CatalogueTool = {
  ...tool('get_time', 'Get the current local time in a time zone', {
    type: 'object',
    properties: { timezone: { type: 'string', description: 'IANA time zone, e.g. Europe/Paris' } },
    required: ['timezone'],
  }),
  execute(args, seed): ToolResult {
    const timezone = str(args, 'timezone');
    const rng = new Prng('time', seed, timezone);
    const time = `${pad2(rng.int(0, 23))}:${pad2(rng.int(0, 59))}`;
    return { content: JSON.stringify({ timezone, time }), values: { timezone, time } };
  },
};

/** `value` in `from`, converted to `to`; both in the same dimension (else an Error). */
export function convertUnits(value: number, from: string, to: string): number {
  const dimension = UNIT_DIMENSIONS.find((d) => (d as readonly string[]).includes(from));
  if (dimension === undefined || !(dimension as readonly string[]).includes(to)) throw new Error(`cannot convert ${from} to ${to}`);
  if (dimension === TEMPERATURE_UNITS) {
    if (from === to) return value;
    return from === 'celsius' ? (value * 9) / 5 + 32 : ((value - 32) * 5) / 9;
  }
  return (value * UNIT_FACTORS[from]!) / UNIT_FACTORS[to]!;
}

const convertUnitsTool: CatalogueTool = {
  ...tool('convert_units', 'Convert a value from one unit to another', {
    type: 'object',
    properties: {
      value: { type: 'number' },
      from: { type: 'string', enum: ALL_UNITS },
      to: { type: 'string', enum: ALL_UNITS },
    },
    required: ['value', 'from', 'to'],
  }),
  execute(args): ToolResult {
    const to = str(args, 'to');
    try {
      const result = roundedText(convertUnits(num(args, 'value'), str(args, 'from'), to), 2);
      return { content: JSON.stringify({ result: Number(result), unit: to }), values: { result, unit: to } };
    } catch (e) {
      return { content: JSON.stringify({ error: (e as Error).message }), values: { error: (e as Error).message } };
    }
  },
};

export const SEARCH_TITLE_ENDINGS = [
  'what to know',
  'a short guide',
  'latest news',
  'top tips',
  'common questions',
  'a beginner guide',
  'facts and figures',
] as const;

const capitalize = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

const search: CatalogueTool = {
  ...tool('search', 'Search the web', {
    type: 'object',
    properties: {
      query: { type: 'string', description: 'What to search for' },
      max_results: { type: 'integer', minimum: 1, maximum: 10, description: 'How many results, default 3' },
    },
    required: ['query'],
  }),
  execute(args, seed): ToolResult {
    const query = str(args, 'query');
    const count = Math.min(args.max_results === undefined ? 3 : num(args, 'max_results'), 3);
    const rng = new Prng('search', seed, query);
    const titles = rng.sample(SEARCH_TITLE_ENDINGS, count).map((ending) => `${capitalize(query)}: ${ending}`);
    return { content: JSON.stringify({ results: titles }), values: { top: titles[0]! } };
  },
};

const bookTable: CatalogueTool = {
  ...tool('book_table', 'Book a restaurant table', {
    type: 'object',
    properties: {
      restaurant: { type: 'string' },
      date: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$', description: 'YYYY-MM-DD' },
      guests: {
        type: 'array',
        minItems: 1,
        items: {
          type: 'object',
          properties: { name: { type: 'string' }, age: { type: 'integer', minimum: 0, maximum: 120 } },
          required: ['name', 'age'],
        },
      },
    },
    required: ['restaurant', 'date', 'guests'],
  }),
  execute(args, seed): ToolResult {
    const restaurant = str(args, 'restaurant');
    const date = str(args, 'date');
    const guests = args.guests;
    if (!Array.isArray(guests)) throw new Error("argument 'guests' must be an array");
    const confirmation = `BK-${new Prng('booking', seed, restaurant, date).int(1000, 9999)}`;
    return {
      content: JSON.stringify({ confirmation, restaurant, date, guests: guests.length }),
      values: { confirmation, restaurant, date, guests: String(guests.length) },
    };
  },
};

const createEvent: CatalogueTool = {
  ...tool('create_event', 'Add an event to the calendar', {
    type: 'object',
    properties: {
      title: { type: 'string' },
      when: {
        type: 'object',
        properties: {
          date: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$', description: 'YYYY-MM-DD' },
          time: { type: 'string', pattern: '^\\d{2}:\\d{2}$', description: 'HH:MM' },
        },
        required: ['date', 'time'],
      },
      reminder_minutes: { type: 'integer', minimum: 0, maximum: 1440 },
    },
    required: ['title', 'when'],
  }),
  execute(args, seed): ToolResult {
    const title = str(args, 'title');
    const when = args.when as { date?: unknown; time?: unknown } | undefined;
    if (typeof when?.date !== 'string' || typeof when.time !== 'string') throw new Error("argument 'when' must hold a date and a time");
    const eventId = `EV-${new Prng('event', seed, title).int(100, 999)}`;
    return {
      content: JSON.stringify({ event_id: eventId, title, start: `${when.date} ${when.time}` }),
      values: { event_id: eventId, title, date: when.date, time: when.time },
    };
  },
};

/** The catalogue, in a fixed order. */
export const TOOLS: readonly CatalogueTool[] = [calculator, getWeather, getTime, convertUnitsTool, search, bookTable, createEvent];

export const TOOL_NAMES: readonly ToolName[] = TOOLS.map((t) => t.name);

export function catalogueTool(name: string): CatalogueTool {
  const found = TOOLS.find((t) => t.name === name);
  if (found === undefined) throw new Error(`no tool '${name}' in the catalogue`);
  return found;
}
