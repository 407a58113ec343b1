// The tool catalogue (tools.ts): the calculator really computes (arithmetic.ts, no eval), the other
// executors are deterministic and consistent with their arguments, and schema-check.ts accepts
// what conforms and names what does not.
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { ArithmeticError, calculate } from './arithmetic.ts';
import { schemaErrors } from './schema-check.ts';
import { catalogueTool, convertUnits, TOOLS } from './tools.ts';

describe('calculator', () => {
  test.each([
    ['2+2', '4'],
    ['17*23', '391'],
    ['17 * 23', '391'],
    ['2+3*4', '14'],
    ['(2+3)*4', '20'],
    ['10-4-3', '3'],
    ['100/10/5', '2'],
    ['7/3', '2.3333'],
    ['2/3', '0.6667'],
    ['1/3*3', '1'],
    ['0.1+0.2', '0.3'],
    ['1.5*4', '6'],
    ['-5+2', '-3'],
    ['5-10', '-5'],
    ['0*-3', '0'],
    ['-(4 + 6) / 4', '-2.5'],
    ['2*(3+4)*5', '70'],
    ['(33393 + 31064) * 145', '9346265'],
    ['99999*99999', '9999800001'],
    [' 8 / 2 ', '4'],
    ['12.05 - 0.05', '12'],
  ])('%s = %s', (expression, value) => {
    expect(calculate(expression)).toBe(value);
  });

  test.each(['', '2+', '2**3', '2^3', '1/0', '4/(2-2)', '(1+2', '1+2)', 'abc', '2 2', 'eval(1)', '1e3', '.5'])('%j is refused', (expression) => {
    expect(() => calculate(expression)).toThrow(ArithmeticError);
  });

  test('the executor answers with the number, or an error text', () => {
    const calculator = catalogueTool('calculator');
    expect(calculator.execute({ expression: '2+2' }, 1)).toEqual({ content: '4', values: { value: '4' } });
    expect(calculator.execute({ expression: '1/0' }, 1).content).toBe('error: division by zero');
  });

  test("its definition is exo #1362's, byte for byte", () => {
    const scenario = JSON.parse(readFileSync(new URL('../../spec/scenarios/exo-1362.json', import.meta.url), 'utf8')) as {
      requests: { p1: { tools: unknown[] } };
    };
    expect(JSON.stringify(catalogueTool('calculator').definition)).toBe(JSON.stringify(scenario.requests.p1.tools[0]));
  });
});

describe('the other executors', () => {
  test('get_weather echoes city and unit, and is a pure function of arguments and seed', () => {
    const weather = catalogueTool('get_weather');
    const c = JSON.parse(weather.execute({ city: 'Paris' }, 7).content) as { city: string; temperature: number; unit: string; condition: string };
    const f = JSON.parse(weather.execute({ city: 'Paris', unit: 'fahrenheit' }, 7).content) as typeof c;
    expect(c).toMatchObject({ city: 'Paris', unit: 'celsius' });
    expect(f).toMatchObject({ city: 'Paris', unit: 'fahrenheit', condition: c.condition });
    expect(f.temperature).toBe(Math.round((c.temperature * 9) / 5 + 32));
    expect(weather.execute({ city: 'Paris' }, 7)).toEqual(weather.execute({ city: 'Paris' }, 7));
    // The seed moves the weather: an answer must read the result, not remember the city.
    const temperatures = new Set(Array.from({ length: 20 }, (_, seed) => weather.execute({ city: 'Paris' }, seed).values.temperature));
    expect(temperatures.size).toBeGreaterThan(5);
  });

  test('get_time answers HH:MM for the time zone asked', () => {
    const result = catalogueTool('get_time').execute({ timezone: 'Asia/Tokyo' }, 3);
    expect(JSON.parse(result.content)).toEqual({ timezone: 'Asia/Tokyo', time: result.values.time });
    expect(result.values.time).toMatch(/^\d{2}:\d{2}$/);
  });

  test.each([
    [1, 'km', 'mi', '0.62'],
    [10, 'mi', 'km', '16.09'],
    [100, 'celsius', 'fahrenheit', '212'],
    [32, 'fahrenheit', 'celsius', '0'],
    [1, 'gal', 'l', '3.79'],
    [2.5, 'kg', 'lb', '5.51'],
    [12, 'in', 'cm', '30.48'],
  ])('convert_units %d %s → %s = %s', (value, from, to, result) => {
    expect(catalogueTool('convert_units').execute({ value, from, to }, 0)).toEqual({
      content: JSON.stringify({ result: Number(result), unit: to }),
      values: { result, unit: to },
    });
  });

  test('convert_units refuses units of different dimensions', () => {
    expect(() => convertUnits(1, 'km', 'kg')).toThrow();
  });

  test('search gives at most 3 titles (fewer when asked), each naming the query', () => {
    const search = catalogueTool('search');
    const three = JSON.parse(search.execute({ query: 'chess openings' }, 1).content) as { results: string[] };
    expect(three.results).toHaveLength(3);
    for (const title of three.results) expect(title.startsWith('Chess openings: ')).toBe(true);
    expect((JSON.parse(search.execute({ query: 'chess openings', max_results: 1 }, 1).content) as { results: string[] }).results).toHaveLength(1);
  });

  test('book_table and create_event echo what they booked', () => {
    const booking = catalogueTool('book_table').execute({ restaurant: 'Sakura', date: '2025-03-14', guests: [{ name: 'Anna', age: 34 }] }, 5);
    expect(JSON.parse(booking.content)).toMatchObject({ restaurant: 'Sakura', date: '2025-03-14', guests: 1 });
    expect(booking.values.confirmation).toMatch(/^BK-\d{4}$/);
    const event = catalogueTool('create_event').execute({ title: 'Yoga class', when: { date: '2025-03-14', time: '09:30' } }, 5);
    expect(JSON.parse(event.content)).toMatchObject({ title: 'Yoga class', start: '2025-03-14 09:30' });
  });
});

describe('schema check', () => {
  const booking = catalogueTool('book_table').parameters;

  test('a conforming value has no errors', () => {
    expect(schemaErrors(booking, { restaurant: 'Sakura', date: '2025-03-14', guests: [{ name: 'Anna', age: 34 }] })).toEqual([]);
  });

  test.each([
    [{ restaurant: 'Sakura', date: '2025-03-14' }, "$: missing required property 'guests'"],
    [{ restaurant: 'Sakura', date: '14/03/2025', guests: [{ name: 'Anna', age: 34 }] }, '$.date: "14/03/2025" does not match'],
    [{ restaurant: 'Sakura', date: '2025-03-14', guests: [] }, '$.guests: fewer than 1 items'],
    [{ restaurant: 'Sakura', date: '2025-03-14', guests: [{ name: 'Anna', age: 34.5 }] }, '$.guests[0].age: expected integer'],
    [{ restaurant: 'Sakura', date: '2025-03-14', guests: [{ name: 'Anna' }] }, "$.guests[0]: missing required property 'age'"],
    [{ restaurant: 7, date: '2025-03-14', guests: [{ name: 'Anna', age: 3 }] }, '$.restaurant: expected string'],
    ['Sakura', '$: expected object'],
  ])('%j breaks it', (value, error) => {
    expect(schemaErrors(booking, value).join('\n')).toContain(error);
  });

  test('enums, bounds and nested objects', () => {
    expect(schemaErrors(catalogueTool('get_weather').parameters, { city: 'Oslo', unit: 'kelvin' })[0]).toContain('is not one of');
    expect(schemaErrors(catalogueTool('search').parameters, { query: 'x', max_results: 11 })[0]).toContain('> maximum 10');
    expect(schemaErrors(catalogueTool('create_event').parameters, { title: 'x', when: { date: '2025-01-01' } })[0]).toContain(
      "$.when: missing required property 'time'",
    );
  });

  test('a keyword it does not know is an error in the schema, not a pass', () => {
    expect(() => schemaErrors({ type: 'string', format: 'date' }, 'x')).toThrow(/format/);
  });

  test('every catalogue schema, nested parts included, uses only keywords it knows and accepts a full call', () => {
    const full: Record<string, unknown> = {
      calculator: { expression: '2+2' },
      get_weather: { city: 'Oslo', unit: 'fahrenheit' },
      get_time: { timezone: 'UTC' },
      convert_units: { value: 1.5, from: 'km', to: 'mi' },
      search: { query: 'tea shops', max_results: 2 },
      book_table: { restaurant: 'Sakura', date: '2025-03-14', guests: [{ name: 'Anna', age: 34 }] },
      create_event: { title: 'Haircut', when: { date: '2025-03-14', time: '09:30' }, reminder_minutes: 15 },
    };
    expect(Object.keys(full)).toEqual(TOOLS.map((t) => t.name));
    for (const tool of TOOLS) expect(schemaErrors(tool.parameters, full[tool.name])).toEqual([]);
  });
});
