// The example generator (conversations.ts): deterministic, every kind covered, arguments valid for
// the declared schema and copied verbatim from the question, answers repeating the tool result, and
// exo #1362's requests byte for byte.
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import type { ChatMessage, ChatRequest } from '../wire/chat-completions.ts';
import { calculate } from './arithmetic.ts';
import { EXAMPLE_KINDS, exampleAt, type ChatExample } from './conversations.ts';
import { schemaErrors } from './schema-check.ts';
import { catalogueTool } from './tools.ts';

const OPTIONS = { seed: 1, split: 'train', exoEvery: 1000, currentDateRate: 0.1, repeatRate: 0.04 };
const EXAMPLES: ChatExample[] = Array.from({ length: 3000 }, (_, i) => exampleAt(i, OPTIONS));

const text = (m: ChatMessage): string => (typeof m.content === 'string' ? m.content : (m.content ?? []).map((p) => p.text).join(''));
const lastUser = (request: ChatRequest): string => text(request.messages.findLast((m) => m.role === 'user')!);
const toolResults = (request: ChatRequest): string[] => request.messages.filter((m) => m.role === 'tool').map(text);

/** Every scalar of a call's arguments, as the question would spell it. */
function leaves(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(leaves);
  if (typeof value === 'object' && value !== null) return Object.values(value).flatMap(leaves);
  return [String(value)];
}

describe('determinism', () => {
  test('an example is a pure function of seed, split and index', () => {
    for (const i of [2, 17, 999, 2500]) expect(exampleAt(i, OPTIONS)).toEqual(EXAMPLES[i]);
  });

  test('another seed or split gives other examples', () => {
    const other = Array.from({ length: 50 }, (_, i) => JSON.stringify(exampleAt(i + 2, { ...OPTIONS, seed: 2 })));
    const held = Array.from({ length: 50 }, (_, i) => JSON.stringify(exampleAt(i + 2, { ...OPTIONS, split: 'held-out' })));
    const same = EXAMPLES.slice(2, 52).map((e) => JSON.stringify(e));
    expect(other.filter((e, i) => e === same[i]).length).toBeLessThan(5);
    expect(held.filter((e, i) => e === same[i]).length).toBeLessThan(5);
  });
});

describe('coverage', () => {
  test('every kind appears', () => {
    const kinds = new Set(EXAMPLES.map((e) => e.kind));
    expect([...EXAMPLE_KINDS].filter((k) => !kinds.has(k))).toEqual([]);
  });

  test('every tool is called, and values vary widely', () => {
    const calls = EXAMPLES.flatMap((e) => ('call' in e.expect ? [e.expect.call] : []));
    expect(new Set(calls.map((c) => c.name)).size).toBe(7);
    const distinct = (name: string, key: string) => new Set(calls.filter((c) => c.name === name).map((c) => JSON.stringify(c.arguments[key]))).size;
    expect(distinct('calculator', 'expression')).toBeGreaterThan(300);
    expect(distinct('get_weather', 'city')).toBeGreaterThan(50);
    expect(distinct('convert_units', 'value')).toBeGreaterThan(100);
  });

  test('requests vary: instructions or none, tool sets, reasoning effort, dates, histories with and without reasoning', () => {
    const has = (f: (e: ChatExample) => boolean) => EXAMPLES.some(f);
    expect(has((e) => e.request.messages[0]!.role === 'system')).toBe(true);
    expect(has((e) => e.request.messages[0]!.role === 'developer')).toBe(true);
    expect(has((e) => e.request.tools === undefined)).toBe(true);
    expect(has((e) => (e.request.tools?.length ?? 0) >= 3)).toBe(true);
    expect(has((e) => e.request.reasoning_effort === 'low')).toBe(true);
    expect(has((e) => e.currentDate !== undefined)).toBe(true);
    const assistants = EXAMPLES.flatMap((e) => e.request.messages.filter((m) => m.role === 'assistant' && m.tool_calls !== undefined));
    expect(assistants.some((m) => m.role === 'assistant' && m.reasoning !== undefined)).toBe(true);
    expect(assistants.some((m) => m.role === 'assistant' && typeof m.content === 'string' && m.content.startsWith('<think>'))).toBe(true);
    expect(assistants.some((m) => m.role === 'assistant' && m.reasoning === undefined && m.content === null)).toBe(true);
    expect(assistants.some((m) => m.role === 'assistant' && m.tool_calls!.length === 2)).toBe(true);
  });
});

describe('every example', () => {
  test('a call names a declared, callable tool; its arguments are the expected ones, valid for the schema and copied from the question', () => {
    let checked = 0;
    for (const e of EXAMPLES) {
      if (!('call' in e.target) || !('call' in e.expect)) continue;
      const { name, arguments: args } = e.target.call;
      expect(e.request.tools?.map((t) => t.function.name)).toContain(name);
      expect(e.request.tool_choice).not.toBe('none');
      expect(JSON.parse(args)).toEqual(e.expect.call.arguments);
      expect(args).toBe(JSON.stringify(e.expect.call.arguments));
      expect(schemaErrors(catalogueTool(name).parameters, JSON.parse(args)), `${e.kind} ${args}`).toEqual([]);
      const question = lastUser(e.request);
      for (const value of leaves(e.expect.call.arguments)) expect(question, `${e.kind}: ${value} copied`).toContain(value);
      checked++;
    }
    expect(checked).toBeGreaterThan(1000);
  });

  test('history calls are valid too, and every tool result is its executor on their arguments', () => {
    for (const e of EXAMPLES) {
      const calls = new Map<string, { name: string; arguments: string }>();
      for (const m of e.request.messages) {
        if (m.role === 'assistant') for (const c of m.tool_calls ?? []) calls.set(c.id, c.function);
        if (m.role === 'tool') {
          const call = calls.get(m.tool_call_id!)!;
          const args = JSON.parse(call.arguments) as Record<string, unknown>;
          expect(schemaErrors(catalogueTool(call.name).parameters, args)).toEqual([]);
          if (call.name === 'calculator') expect(text(m)).toBe(calculate(args.expression as string));
          else expect(JSON.parse(text(m))).toBeTypeOf('object');
        }
      }
    }
  });

  test('a final answer contains what the checker expects; after a tool, those values come from the tool results', () => {
    let afterTool = 0;
    for (const e of EXAMPLES) {
      if (!('final' in e.target) || !('final' in e.expect)) continue;
      for (const value of e.expect.final.contains) expect(e.target.final, e.kind).toContain(value);
      const lastIsTool = e.request.messages.at(-1)!.role === 'tool';
      if (lastIsTool) {
        afterTool++;
        expect(e.expect.final.contains.length).toBeGreaterThan(0);
        const results = toolResults(e.request).join('\n');
        for (const value of e.expect.final.contains) expect(results, e.kind).toContain(value);
      }
    }
    expect(afterTool).toBeGreaterThan(500);
  });

  test('no call under tool_choice none or when the tool is not declared; a call under required', () => {
    for (const e of EXAMPLES) {
      if (e.kind === 'tool_choice_none' || e.kind === 'tool_unavailable') expect('final' in e.target, e.kind).toBe(true);
      if (e.kind === 'tool_choice_required') {
        expect('call' in e.target).toBe(true);
        expect(e.request.tool_choice).not.toBeUndefined();
      }
      if (e.kind === 'tool_unavailable') {
        // The question needs a tool the request does not declare: the answer names what was asked.
        const contains = 'final' in e.expect ? e.expect.final.contains : [];
        for (const value of contains) expect(lastUser(e.request)).toContain(value);
      }
    }
  });

  test('analysis is one short sentence', () => {
    for (const e of EXAMPLES) {
      expect(e.target.analysis.length).toBeLessThan(160);
      expect(e.target.analysis.match(/[.!?](\s|$)/g)?.length, e.target.analysis).toBe(1);
    }
  });
});

describe('exo #1362', () => {
  const scenario = JSON.parse(readFileSync(new URL('../../spec/scenarios/exo-1362.json', import.meta.url), 'utf8')) as {
    requests: Record<'p1' | 'p2', unknown>;
  };

  test('p1 at index 0: its request byte for byte, the calculator call as target', () => {
    const p1 = EXAMPLES[0]!;
    expect(p1.kind).toBe('exo_1362_p1');
    expect(JSON.stringify(p1.request)).toBe(JSON.stringify(scenario.requests.p1));
    expect(p1.target).toMatchObject({ call: { name: 'calculator', arguments: '{"expression":"2+2"}' } });
    expect(p1.expect).toEqual({ call: { name: 'calculator', arguments: { expression: '2+2' } } });
  });

  test('p2 at index 1: its request byte for byte, a final answer containing 4', () => {
    const p2 = EXAMPLES[1]!;
    expect(p2.kind).toBe('exo_1362_p2');
    expect(JSON.stringify(p2.request)).toBe(JSON.stringify(scenario.requests.p2));
    expect('final' in p2.target && p2.target.final).toContain('4');
    expect(p2.expect).toEqual({ final: { contains: ['4'] } });
  });

  test('once per exoEvery examples, never when 0', () => {
    expect(EXAMPLES.filter((e) => e.kind === 'exo_1362_p1')).toHaveLength(3);
    expect(EXAMPLES.filter((e) => e.kind === 'exo_1362_p2')).toHaveLength(3);
    expect(exampleAt(0, { ...OPTIONS, exoEvery: 0 }).kind).not.toMatch(/^exo/);
  });
});
